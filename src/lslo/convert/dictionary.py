"""fairseq's dictionary (``dict.txt``), its language tokens and language lists.

A fairseq ``Dictionary`` holds ``<s> <pad> </s> <unk>`` (ids 0-3), then the symbols of
``dict.txt`` in file order, then what the task adds: ``translation_multi_simple_epoch`` appends
``__xx__`` for each language it does not find (in the order of ``--langs``, of the ``--lang-dict``
file, or sorted when it infers them from ``--lang-pairs``). A model's embedding may have a few rows
more (``pad_to_multiple_``), named ``madeupword0000`` ... as fairseq names them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lslo.convert.checkpoint import CheckpointError

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
_CODE = re.compile(r"[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]+)*")


def read_dict_file(path: str | Path) -> list[str]:
    """The symbols of a fairseq ``dict.txt``, in file order (lines ``SYMBOL COUNT [#fairseq:overwrite]``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such dictionary file (fairseq's dict.txt)")
    symbols: list[str] = []
    seen: set[str] = set(SPECIALS)
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rstrip().rsplit(" ", 2)
        overwrite = len(parts) == 3 and parts[2] == "#fairseq:overwrite"
        if overwrite:
            parts = parts[:2]
        else:
            parts = line.rstrip().rsplit(" ", 1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise CheckpointError(f"{path}:{n}: expected 'SYMBOL COUNT', got {line[:60]!r}")
        sym = parts[0]
        if sym in seen and not overwrite:
            raise CheckpointError(f"{path}:{n}: duplicate symbol {sym!r} (fairseq needs '#fairseq:overwrite' "
                                  "to allow it)")
        seen.add(sym)
        symbols.append(sym)  # with the flag a repeated symbol takes a new id, as in fairseq
    return symbols


def lang_token(code: str) -> str:
    return f"__{code}__"


def read_languages(langs: str | None = None, lang_dict: str | Path | None = None,
                   lang_pairs: str | Path | list[str] | None = None) -> list[str] | None:
    """The language list in fairseq's order: ``--langs`` as given, a ``--lang-dict`` file's lines,
    or the sorted languages of ``--lang-pairs`` (a file such as ``language_pairs.txt``, a
    comma-separated string, or a list of ``src-tgt``). None when nothing is given."""
    if langs:
        out = [x.strip() for x in (langs.split(",") if isinstance(langs, str) else langs) if x.strip()]
    elif lang_dict:
        p = Path(lang_dict)
        if not p.is_file():
            raise CheckpointError(f"{p}: no such language list file (one language per line)")
        out = [x.strip() for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]
    elif lang_pairs:
        if isinstance(lang_pairs, (list, tuple)):
            pairs = list(lang_pairs)
        elif Path(lang_pairs).is_file():
            pairs = re.split(r"[,\s]+", Path(lang_pairs).read_text(encoding="utf-8").strip())
        elif "-" in str(lang_pairs) and not str(lang_pairs).endswith(".txt"):
            pairs = str(lang_pairs).split(",")
        else:
            raise CheckpointError(f"{lang_pairs}: no such language pairs file (comma-separated src-tgt pairs)")
        bad = [p for p in pairs if p and p.count("-") != 1]
        if bad:
            raise CheckpointError(f"language pairs: {bad[0]!r} is not 'src-tgt'")
        out = sorted({x for p in pairs if p for x in p.split("-")})
    else:
        return None
    for code in out:
        if not _CODE.fullmatch(code):
            raise CheckpointError(f"language list: {code!r} is not a language code")
    if len(set(out)) != len(out):
        raise CheckpointError(f"language list: a language appears twice ({', '.join(out)})")
    return out


@dataclass
class FairseqVocab:
    """The full id -> symbol list of a fairseq model, and its languages."""

    symbols: list[str]
    languages: list[str]

    @classmethod
    def build(cls, dict_symbols: list[str], languages: list[str], size: int, where: str = "dict.txt") -> FairseqVocab:
        """fairseq's order: specials, ``dict.txt``, missing language tokens, then made-up words up
        to ``size`` (the embedding's rows)."""
        symbols = SPECIALS + list(dict_symbols)
        index = set(symbols)
        for code in languages:
            if lang_token(code) not in index:
                symbols.append(lang_token(code))
                index.add(lang_token(code))
        gap = size - len(symbols)
        if gap < 0 or gap >= 8:
            raise CheckpointError(
                f"{where}: gives {len(symbols)} symbols (4 special + {len(dict_symbols)} + the language tokens of "
                f"{len(languages)} languages), but the checkpoint's embedding has {size} rows; expected the "
                "model's own dictionary and language list")
        madeup = sum(1 for s in symbols if s.startswith("madeupword"))
        symbols += [f"madeupword{madeup + i:04d}" for i in range(gap)]
        return cls(symbols, list(languages))

    def language_ids(self) -> dict[str, int]:
        ids = {s: i for i, s in enumerate(self.symbols)}
        return {code: ids[lang_token(code)] for code in self.languages}
