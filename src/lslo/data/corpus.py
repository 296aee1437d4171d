"""Multi-way parallel corpora (FLORES-style): one aligned segment list per language.

A multi-way corpus stores each segment once per language, so every direction
``src -> tgt`` is available without duplicating data. Readers turn FLORES-101/200
directories, TSV files and JSONL files into a :class:`MultiWayCorpus` with our short
language codes, and refuse anything that would misalign the languages: every
problem is a :class:`CorpusError` whose one-line message names the file (and the
line) so the user can fix the data instead of debugging a silently shifted corpus.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lslo.errors import LSLoError
from lslo.tuner.langcodes import UnknownLanguageError, to_flores101, to_flores200, to_short

EmptyPolicy = Literal["error", "drop"]
SPLITS = ("dev", "devtest")
_FLORES200_CODE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")


class CorpusError(LSLoError):
    """Bad corpus data or arguments; the message is one line naming the file and line."""


@dataclass
class MultiWayCorpus:
    """Aligned segments: ``texts[lang][i]`` is segment ``ids[i]`` in language ``lang``."""

    languages: list[str]
    ids: list[str]
    texts: dict[str, list[str]]

    def __post_init__(self) -> None:
        if len(set(self.languages)) != len(self.languages):
            raise CorpusError(f"duplicate languages in corpus: {self.languages}")
        if set(self.texts) != set(self.languages):
            raise CorpusError(
                f"corpus languages {sorted(self.languages)} do not match text columns {sorted(self.texts)}"
            )
        for lang in self.languages:
            if len(self.texts[lang]) != len(self.ids):
                raise CorpusError(
                    f"language {lang!r} has {len(self.texts[lang])} segments but there are {len(self.ids)} ids"
                )
        seen: set[str] = set()
        for sid in self.ids:
            if sid in seen:
                raise CorpusError(f"duplicate segment id {sid!r} in corpus")
            seen.add(sid)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, languages: Iterable[str]) -> MultiWayCorpus:
        """The same segments restricted to ``languages`` (codes in any form), in that order."""
        wanted: list[str] = []
        for code in languages:
            short = _short_or_error(code, "requested language")
            if short not in self.texts:
                raise CorpusError(
                    f"language {code!r} is not in the corpus (it has: {' '.join(self.languages)})"
                )
            if short in wanted:
                raise CorpusError(f"language {code!r} requested twice")
            wanted.append(short)
        return MultiWayCorpus(wanted, list(self.ids), {lang: list(self.texts[lang]) for lang in wanted})

    def select(self, ids: Iterable[str]) -> MultiWayCorpus:
        """The segments with the given ids, in the order given (all languages kept)."""
        index = {sid: i for i, sid in enumerate(self.ids)}
        rows: list[int] = []
        chosen: set[str] = set()
        for sid in ids:
            sid = str(sid)
            if sid not in index:
                raise CorpusError(f"segment id {sid!r} is not in the corpus")
            if sid in chosen:
                raise CorpusError(f"segment id {sid!r} selected twice")
            chosen.add(sid)
            rows.append(index[sid])
        return self._take(rows)

    def split_by_ratio(self, ratios: Mapping[str, float], seed: int = 0) -> dict[str, MultiWayCorpus]:
        """Split into named parts with the given (relative) sizes, e.g. ``{"train": .9, "valid": .1}``.

        A segment's part depends only on ``(seed, id)`` through a hash, not on its
        position, so adding or removing other segments never moves it to another
        part (no leakage between train and valid when the corpus grows).
        Parts keep the corpus order.
        """
        if not ratios:
            raise CorpusError("split_by_ratio needs at least one part")
        names = list(ratios)
        weights = [float(ratios[n]) for n in names]
        if any(not w >= 0 for w in weights) or sum(weights) <= 0:
            raise CorpusError(f"split ratios must be >= 0 with a positive sum, got {dict(ratios)}")
        total = sum(weights)
        bounds: list[float] = []
        acc = 0.0
        for w in weights:
            acc += w / total
            bounds.append(acc)
        bounds[-1] = 1.0 + 1e-12  # guard against rounding leaving u just above the last bound
        rows: dict[str, list[int]] = {n: [] for n in names}
        for i, sid in enumerate(self.ids):
            u = unit_hash(seed, sid)
            part = next(n for n, b in zip(names, bounds) if u < b)
            rows[part].append(i)
        return {n: self._take(rows[n]) for n in names}

    def _take(self, rows: Sequence[int]) -> MultiWayCorpus:
        return MultiWayCorpus(
            list(self.languages),
            [self.ids[i] for i in rows],
            {lang: [self.texts[lang][i] for i in rows] for lang in self.languages},
        )


def unit_hash(seed: int, sid: str) -> float:
    """A uniform number in [0, 1) determined by (seed, segment id) only."""
    digest = hashlib.sha256(f"{seed}\x00{sid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _short_or_error(code: str, what: str, where: str = "") -> str:
    try:
        return to_short(code)
    except UnknownLanguageError as err:
        prefix = f"{where}: " if where else ""
        raise CorpusError(f"{prefix}{what}: {err}") from None


# --------------------------------------------------------------------------- reading


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file without their terminators; names the first undecodable line.

    Splits on ``\\n`` only: ``str.splitlines`` would also split on U+2028 and friends,
    which occur inside FLORES sentences and would shift all later lines.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CorpusError(f"{path}: cannot read ({err.strerror or err})") from None
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()  # the final newline does not start another line
    lines: list[str] = []
    for lineno, raw in enumerate(raw_lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorpusError(
                f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})"
            ) from None
        if lineno == 1 and text.startswith("\ufeff"):
            text = text[1:]  # a BOM opening the file is an encoding mark, not text
        if "\x00" in text:
            raise CorpusError(f"{path}:{lineno}: NUL byte at column {text.index(chr(0)) + 1} (a binary or "
                              "UTF-16 file?)")
        if "\ufeff" in text:
            raise CorpusError(f"{path}:{lineno}: byte-order mark (U+FEFF) inside the file at column "
                              f"{text.index(chr(0xFEFF)) + 1} (files concatenated?)")
        lines.append(text[:-1] if text.endswith("\r") else text)
    return lines


def _finish(
    languages: list[str],
    ids: list[str],
    texts: dict[str, list[str]],
    where: Mapping[str, Callable[[int], str]],
    empty: EmptyPolicy,
    source: str,
) -> MultiWayCorpus:
    """Apply the empty-segment policy and build the corpus (``source`` names the data in messages).

    ``where[lang](i)`` describes the location of row ``i`` of ``lang`` as ``file:line``.
    """
    if empty not in ("error", "drop"):
        raise CorpusError(f"empty must be 'error' or 'drop', got {empty!r}")
    bad: list[int] = []
    for i in range(len(ids)):
        for lang in languages:
            if not texts[lang][i].strip():
                if empty == "error":
                    raise CorpusError(
                        f"{where[lang](i)}: empty segment (id {ids[i]!r}, language {lang!r}); "
                        f"fix the data, or drop such segments in every language with --set data.empty=drop "
                        f"(Python: empty='drop')"
                    )
                bad.append(i)
                break
    if bad:
        drop = set(bad)
        shown = ", ".join(repr(ids[i]) for i in bad[:10]) + (", ..." if len(bad) > 10 else "")
        warnings.warn(
            f"{source}: dropped {len(bad)} of {len(ids)} segments that are empty in at least one language "
            f"(in all languages, to keep them aligned): ids {shown}",
            stacklevel=3,
        )
        keep = [i for i in range(len(ids)) if i not in drop]
        ids = [ids[i] for i in keep]
        texts = {lang: [texts[lang][i] for i in keep] for lang in languages}
    return MultiWayCorpus(languages, ids, texts)


def _find_flores_split_dir(root: Path, split: str) -> Path:
    candidates = [root / split]
    for sub in ("flores101_dataset", "flores200_dataset"):
        candidates.append(root / sub / split)
    if root.name == split:
        candidates.append(root)
    for cand in candidates:
        if cand.is_dir():
            return cand
    tried = ", ".join(str(c) for c in candidates)
    raise CorpusError(f"{root}: no FLORES {split!r} directory found (tried {tried})")


def read_flores(
    root: str | Path,
    split: str,
    languages: Sequence[str] | None = None,
    empty: EmptyPolicy = "error",
) -> MultiWayCorpus:
    """Read a FLORES-101 or FLORES-200 split; segment ids are 1-based line numbers.

    ``root`` may be the dataset directory (holding ``dev/`` and ``devtest/``) or the
    directory containing ``flores101_dataset/`` or ``flores200_dataset/``. The layout
    is detected from the file names (``eng.dev`` vs ``eng_Latn.dev``). With
    ``languages=None`` every file of the split whose code is known is read (files
    with unknown codes are reported in a warning); otherwise exactly the requested
    languages, in that order, and a missing file is an error.
    """
    root = Path(root)
    if split not in SPLITS:
        raise CorpusError(f"{root}: unknown FLORES split {split!r} (expected one of {', '.join(SPLITS)})")
    if not root.exists():
        raise CorpusError(f"{root}: no such directory")
    split_dir = _find_flores_split_dir(root, split)
    suffix = "." + split
    found = sorted(
        p.name[: -len(suffix)] for p in split_dir.iterdir() if p.name.endswith(suffix) and p.is_file()
    )
    flores200 = any(_FLORES200_CODE.match(code) for code in found)
    scheme, to_code = ("FLORES-200", to_flores200) if flores200 else ("FLORES-101", to_flores101)

    files: dict[str, Path] = {}
    if languages is None:
        if not found:
            raise CorpusError(f"{split_dir}: no *{suffix} files found")
        unknown: list[str] = []
        for code in found:
            try:
                short = to_short(code)
            except UnknownLanguageError:
                unknown.append(code)
                continue
            if short in files:
                raise CorpusError(
                    f"{split_dir}: files {files[short].name} and {code}{suffix} are both language {short!r}"
                )
            files[short] = split_dir / f"{code}{suffix}"
        if unknown:
            warnings.warn(
                f"{split_dir}: skipped {len(unknown)} file(s) with language codes lslo does not know: "
                + " ".join(unknown),
                stacklevel=2,
            )
        if not files:
            raise CorpusError(f"{split_dir}: none of the *{suffix} files has a known language code")
    else:
        if len(languages) == 0:
            raise CorpusError(f"{root}: empty language list")
        for code in languages:
            short = _short_or_error(code, "requested language", str(root))
            if short in files:
                raise CorpusError(f"{root}: language {code!r} requested twice")
            try:
                file_code = to_code(short)
            except UnknownLanguageError as err:
                raise CorpusError(f"{split_dir}: {err} ({scheme} layout)") from None
            path = split_dir / f"{file_code}{suffix}"
            if not path.is_file():
                raise CorpusError(f"missing language file for {short!r}: {path} does not exist")
            files[short] = path

    langs = list(files)
    texts: dict[str, list[str]] = {}
    first_lang = langs[0]
    for lang in langs:
        texts[lang] = [line.strip() for line in _read_lines(files[lang])]
        n_first, n = len(texts[first_lang]), len(texts[lang])
        if n != n_first:
            raise CorpusError(
                f"line count mismatch: {files[first_lang]} has {n_first} lines but {files[lang]} has {n}"
            )
    ids = [str(i) for i in range(1, len(texts[first_lang]) + 1)]
    where = {lang: (lambda i, p=files[lang]: f"{p}:{i + 1}") for lang in langs}
    return _finish(langs, ids, texts, where, empty, str(split_dir))


def read_tsv(path: str | Path, id_column: str = "id", empty: EmptyPolicy = "error") -> MultiWayCorpus:
    """Read a TSV file: a header row, then one segment per row, one column per language.

    Columns are named by language code (any form); ``id_column`` holds the segment
    ids, and when the header has no such column the ids are the file line numbers.
    Fields are split on tabs only (no quoting), so quotes in sentences stay as they are.
    Note: ``id`` is also the ISO code of Indonesian; name an Indonesian column ``ind``.
    """
    path = Path(path)
    lines = _read_lines(path)
    if not lines:
        raise CorpusError(f"{path}: empty file (expected a header row)")
    header = [h.strip() for h in lines[0].split("\t")]
    id_pos = header.index(id_column) if id_column in header else None
    langs: list[str] = []
    lang_pos: list[int] = []
    for col, name in enumerate(header):
        if col == id_pos:
            continue
        short = _short_or_error(name, f"header column {col + 1} is not a language code", f"{path}:1")
        if short in langs:
            raise CorpusError(f"{path}:1: language {short!r} appears in two columns")
        langs.append(short)
        lang_pos.append(col)
    if not langs:
        raise CorpusError(f"{path}:1: the header has no language column")
    ids: list[str] = []
    linenos: list[int] = []
    texts: dict[str, list[str]] = {lang: [] for lang in langs}
    first_seen: dict[str, int] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(header):
            raise CorpusError(
                f"{path}:{lineno}: expected {len(header)} tab-separated columns (as in the header), found {len(fields)}"
            )
        sid = fields[id_pos].strip() if id_pos is not None else str(lineno)
        if not sid:
            raise CorpusError(f"{path}:{lineno}: empty segment id")
        if sid in first_seen:
            raise CorpusError(
                f"{path}:{lineno}: duplicate segment id {sid!r} (first on line {first_seen[sid]})"
            )
        first_seen[sid] = lineno
        ids.append(sid)
        linenos.append(lineno)
        for lang, col in zip(langs, lang_pos):
            texts[lang].append(fields[col].strip())
    where = {lang: (lambda i: f"{path}:{linenos[i]}") for lang in langs}
    return _finish(langs, ids, texts, where, empty, str(path))


def read_jsonl(path: str | Path, empty: EmptyPolicy = "error") -> MultiWayCorpus:
    """Read JSON lines ``{"id": ..., "en": ..., "fr": ...}``; every line has the same languages.

    ``id`` is optional (the line number is used); blank lines are skipped. The key ``id``
    is always the segment id, so an Indonesian field must be called ``ind``.
    """
    path = Path(path)
    lines = _read_lines(path)
    langs: list[str] | None = None
    keys_first: list[str] = []
    ids: list[str] = []
    linenos: list[int] = []
    texts: dict[str, list[str]] = {}
    first_seen: dict[str, int] = {}
    first_line = 0
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, object_pairs_hook=_no_duplicate_keys)
        except _DuplicateKey as dup:
            raise CorpusError(f"{path}:{lineno}: key {dup.args[0]!r} appears twice in one object "
                              "(only one value could be kept)") from None
        except json.JSONDecodeError as err:
            raise CorpusError(f"{path}:{lineno}: malformed JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(obj, dict):
            raise CorpusError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        keys = [k for k in obj if k != "id"]
        if langs is None:
            first_line = lineno
            langs = []
            for k in keys:
                short = _short_or_error(k, "key is not a language code", f"{path}:{lineno}")
                if short in langs:
                    raise CorpusError(f"{path}:{lineno}: language {short!r} appears twice")
                langs.append(short)
            if not langs:
                raise CorpusError(f"{path}:{lineno}: no language fields (only 'id')")
            keys_first = keys
            texts = {lang: [] for lang in langs}
        elif set(keys) != set(keys_first):
            raise CorpusError(
                f"{path}:{lineno}: languages {sorted(keys)} differ from those on line {first_line} {sorted(keys_first)}"
            )
        raw_id = obj.get("id", lineno)
        if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool):
            raise CorpusError(f"{path}:{lineno}: segment id must be a string or integer, got {raw_id!r}")
        sid = str(raw_id).strip()
        if not sid:
            raise CorpusError(f"{path}:{lineno}: empty segment id")
        if sid in first_seen:
            raise CorpusError(
                f"{path}:{lineno}: duplicate segment id {sid!r} (first on line {first_seen[sid]})"
            )
        first_seen[sid] = lineno
        ids.append(sid)
        linenos.append(lineno)
        for key, lang in zip(keys_first, langs):
            value = obj[key]
            if not isinstance(value, str):
                raise CorpusError(
                    f"{path}:{lineno}: field {key!r} must be a string, got {type(value).__name__}"
                )
            texts[lang].append(value.strip())
    if langs is None:
        raise CorpusError(f"{path}: no segments (empty file)")
    where = {lang: (lambda i: f"{path}:{linenos[i]}") for lang in langs}
    return _finish(langs, ids, texts, where, empty, str(path))


def load_corpus(
    path: str | Path,
    split: str | None = None,
    languages: Sequence[str] | None = None,
    fmt: str = "auto",
    empty: EmptyPolicy = "error",
) -> MultiWayCorpus:
    """Read a corpus of any supported format; ``fmt="auto"`` decides from the path.

    ``path`` may also be a Hugging Face ``datasets.Dataset`` (:func:`read_dataset`), or a
    ``DatasetDict`` with ``split`` naming one of its splits.

    A directory is FLORES (``split`` required); ``*.tsv`` is TSV; ``*.jsonl``/``*.json``
    is JSONL. ``languages`` restricts (and orders) the languages for every format.
    """
    if not isinstance(path, (str, Path)) and not is_dataset(path) and hasattr(path, "keys"):
        if split not in path:  # a datasets.DatasetDict: one split of it
            raise CorpusError(f"dataset: no split {split!r} (splits: {', '.join(map(str, path.keys()))}); pass split=")
        path, split = path[split], None
    if is_dataset(path):  # a Hugging Face datasets.Dataset (see read_dataset)
        return read_dataset(path, languages, empty=empty)
    path = Path(path)
    if fmt not in ("auto", "flores", "tsv", "jsonl"):
        raise CorpusError(f"unknown corpus format {fmt!r} (expected auto, flores, tsv or jsonl)")
    if not path.exists():
        raise CorpusError(f"{path}: no such file or directory")
    if fmt == "auto":
        if path.is_dir():
            fmt = "flores"
        elif path.suffix.lower() == ".tsv":
            fmt = "tsv"
        elif path.suffix.lower() in (".jsonl", ".json"):
            fmt = "jsonl"
        else:
            raise CorpusError(
                f"{path}: cannot tell the corpus format from the name; name it *.tsv or *.jsonl, or set "
                f"--set data.format=tsv (or jsonl; Python: fmt='tsv')"
            )
    if fmt == "flores":
        if split is None:
            raise CorpusError(f"{path}: a FLORES directory needs split='dev' or split='devtest'")
        return read_flores(path, split, languages, empty=empty)
    if split is not None:
        raise CorpusError(f"{path}: split={split!r} only applies to FLORES directories")
    corpus = read_tsv(path, empty=empty) if fmt == "tsv" else read_jsonl(path, empty=empty)
    return corpus if languages is None else _subset_for(corpus, languages, path)


def _subset_for(corpus: MultiWayCorpus, languages: Sequence[str], path: Path) -> MultiWayCorpus:
    try:
        return corpus.subset(languages)
    except CorpusError as err:
        raise CorpusError(f"{path}: {err}") from None


# --------------------------------------------------------------------------- Hugging Face datasets


_PAIR_COLUMNS = ("src_lang", "tgt_lang", "src", "tgt")


def is_dataset(obj: Any) -> bool:
    """True for a ``datasets.Dataset``-like object (duck-typed: ``column_names`` and ``len``)."""
    return not isinstance(obj, (str, Path)) and isinstance(getattr(obj, "column_names", None), list) and hasattr(
        obj, "__len__")


def _column(dataset: Any, name: str) -> list[Any]:
    return list(dataset[name])


def read_dataset(
    dataset: Any,
    languages: Sequence[str] | None = None,
    id_column: str = "id",
    empty: EmptyPolicy = "error",
    source: str = "dataset",
) -> MultiWayCorpus:
    """Read a Hugging Face ``datasets.Dataset`` (duck-typed) into a :class:`MultiWayCorpus`.

    Three layouts are recognised:

    * one column per language, named by any code lslo knows (``en``, ``eng``, ``eng_Latn``), also
      with the ``sentence_`` prefix of ``facebook/flores`` (``sentence_eng_Latn``); other columns
      (URL, domain, ...) are skipped with a warning when ``languages`` is not given;
    * one row per segment and language, ``openlanguagedata/flores_plus`` style: ``id``,
      ``iso_639_3``, ``iso_15924``, ``text``;
    * rows ``{src_lang, tgt_lang, src, tgt}`` with an ``id`` column: the pairs of each segment id
      are joined into one multi-way segment (without ids they cannot be aligned; such rows can
      still be used as they are through ``lslo.hf.LSLoCollator``).

    ``languages`` selects (and orders) languages; a missing one is an error naming it. Segment ids
    come from ``id_column`` (row numbers, from 1, without it). Every problem is a one-line
    :class:`CorpusError` naming the column or row.
    """
    if not is_dataset(dataset):
        raise CorpusError(f"{source}: expected a datasets.Dataset (an object with column_names), "
                          f"got {type(dataset).__name__}")
    columns = list(dataset.column_names)
    if set(_PAIR_COLUMNS) <= set(columns):
        return _read_pair_rows(dataset, languages, id_column, empty, source)
    if {"iso_639_3", "iso_15924", "text"} <= set(columns):
        return _read_long_rows(dataset, languages, id_column, empty, source)
    return _read_wide(dataset, columns, languages, id_column, empty, source)


def _language_of_column(name: str) -> str | None:
    bare = name[len("sentence_"):] if name.startswith("sentence_") else name
    try:
        return to_short(bare)
    except UnknownLanguageError:
        return None


def _read_wide(dataset: Any, columns: list[str], languages: Sequence[str] | None, id_column: str,
               empty: EmptyPolicy, source: str) -> MultiWayCorpus:
    by_lang: dict[str, str] = {}
    skipped: list[str] = []
    for col in columns:
        if col == id_column:
            continue
        short = _language_of_column(col)
        if short is None:
            skipped.append(col)
        elif short in by_lang:
            raise CorpusError(f"{source}: columns {by_lang[short]!r} and {col!r} are both language {short!r}")
        else:
            by_lang[short] = col
    if languages is None:
        if not by_lang:
            raise CorpusError(f"{source}: no column is named by a language code (columns: {', '.join(columns)})")
        if skipped:
            warnings.warn(f"{source}: skipped {len(skipped)} column(s) that are not language codes: "
                          + " ".join(skipped), stacklevel=3)
        langs = list(by_lang)
    else:
        langs = []
        for code in languages:
            short = _short_or_error(code, "requested language", source)
            if short not in by_lang:
                clash = f"; column {id_column!r} holds segment ids, name this language's column by another code " \
                        f"(e.g. {to_flores200(short)})" if _language_of_column(id_column) == short else ""
                raise CorpusError(f"{source}: no column for language {code!r} (columns: {', '.join(columns)}){clash}")
            if short in langs:
                raise CorpusError(f"{source}: language {code!r} requested twice")
            langs.append(short)
    texts: dict[str, list[str]] = {}
    for lang in langs:
        values = _column(dataset, by_lang[lang])
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise CorpusError(f"{source} row {i}: column {by_lang[lang]!r} must be a string, got {type(v).__name__}")
        texts[lang] = [v.strip() for v in values]
    ids = _ids(dataset, id_column, len(dataset), source)
    where = {lang: (lambda i, c=by_lang[lang]: f"{source} row {i}, column {c!r}") for lang in langs}
    return _finish(langs, ids, texts, where, empty, source)


def _ids(dataset: Any, id_column: str, n: int, source: str) -> list[str]:
    if id_column not in dataset.column_names:
        return [str(i) for i in range(1, n + 1)]
    ids = []
    for i, v in enumerate(_column(dataset, id_column)):
        if not isinstance(v, (str, int)) or isinstance(v, bool) or not str(v).strip():
            raise CorpusError(f"{source} row {i}: column {id_column!r} must be a non-empty string or integer, got {v!r}")
        ids.append(str(v).strip())
    return ids


def _pivot(cells: list[tuple[int, str, str, str]], languages: Sequence[str] | None, empty: EmptyPolicy,
           source: str, what: str) -> MultiWayCorpus:
    """Join ``(row, segment id, language, text)`` cells into segments holding every language."""
    table: dict[str, dict[str, tuple[str, int]]] = {}
    for row, sid, lang, text in cells:
        seg = table.setdefault(sid, {})
        if lang in seg and seg[lang][0] != text:
            raise CorpusError(f"{source} row {row}: segment {sid!r} has two different {lang!r} texts "
                              f"(the other on row {seg[lang][1]})")
        seg.setdefault(lang, (text, row))
    present = list(dict.fromkeys(lang for _, _, lang, _ in cells))
    if languages is None:
        langs = present
    else:
        langs = [_short_or_error(code, "requested language", source) for code in languages]
        for code, short in zip(languages, langs):
            if short not in present:
                raise CorpusError(f"{source}: no {what} for language {code!r} (found: {' '.join(present)})")
    if not langs:
        raise CorpusError(f"{source}: no rows")
    ids = list(table)
    for sid in ids:
        for lang in langs:
            if lang not in table[sid]:
                raise CorpusError(f"{source}: segment {sid!r} has no {lang!r} text")
    texts = {lang: [table[sid][lang][0] for sid in ids] for lang in langs}
    where = {lang: (lambda i, lang=lang: f"{source} row {table[ids[i]][lang][1]}") for lang in langs}
    return _finish(langs, ids, texts, where, empty, source)


def _row_language(value: Any, row: int, column: str, source: str) -> str:
    if not isinstance(value, str):
        raise CorpusError(f"{source} row {row}: {column} must be a language code string, got {value!r}")
    return _short_or_error(value, column, f"{source} row {row}")


def _text(value: Any, row: int, column: str, source: str) -> str:
    if not isinstance(value, str):
        raise CorpusError(f"{source} row {row}: {column} must be a string, got {type(value).__name__}")
    return value.strip()


def _read_pair_rows(dataset: Any, languages: Sequence[str] | None, id_column: str, empty: EmptyPolicy,
                    source: str) -> MultiWayCorpus:
    if id_column not in dataset.column_names:
        raise CorpusError(f"{source}: rows of src_lang/tgt_lang/src/tgt need an {id_column!r} column to be joined "
                          "into multi-way segments (or use them as they are with lslo.hf.LSLoCollator)")
    cols = {c: _column(dataset, c) for c in _PAIR_COLUMNS}
    ids = _ids(dataset, id_column, len(dataset), source)
    cells: list[tuple[int, str, str, str]] = []
    for i, sid in enumerate(ids):
        for lang_col, text_col in (("src_lang", "src"), ("tgt_lang", "tgt")):
            lang = _row_language(cols[lang_col][i], i, lang_col, source)
            cells.append((i, sid, lang, _text(cols[text_col][i], i, text_col, source)))
    return _pivot(cells, languages, empty, source, "rows")


def _read_long_rows(dataset: Any, languages: Sequence[str] | None, id_column: str, empty: EmptyPolicy,
                    source: str) -> MultiWayCorpus:
    if id_column not in dataset.column_names:
        raise CorpusError(f"{source}: one row per language needs an {id_column!r} column naming each segment")
    iso3, script, text = (_column(dataset, c) for c in ("iso_639_3", "iso_15924", "text"))
    ids = _ids(dataset, id_column, len(dataset), source)
    cells = []
    for i, sid in enumerate(ids):
        code = f"{iso3[i]}_{script[i]}" if isinstance(iso3[i], str) and isinstance(script[i], str) else iso3[i]
        cells.append((i, sid, _row_language(code, i, "iso_639_3/iso_15924", source),
                      _text(text[i], i, "text", source)))
    return _pivot(cells, languages, empty, source, "rows")
