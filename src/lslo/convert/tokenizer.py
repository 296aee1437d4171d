"""The tokenizer of a converted model: SentencePiece pieces mapped to fairseq's dictionary ids.

When the languages are exactly M2M-100's 100, in its order, right after the dictionary (the
original M2M-100 checkpoints), it is transformers' own ``M2M100Tokenizer``. For any other list
(M2M-124 of the FLORES-101 baselines, a model of your own) it is a ``MarianTokenizer``, the
tokenizer class of transformers that maps SentencePiece pieces through a ``vocab.json`` of any
order, with the ``__xx__`` tokens as special tokens. lslo builds its sequences itself
(``[__src__] pieces </s>``), so both give the ids fairseq gives; the class is recorded in
``tokenizer_config.json``, and ``AutoTokenizer`` loads either.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

from lslo.convert.checkpoint import CheckpointError
from lslo.convert.dictionary import FairseqVocab, lang_token

# MarianTokenizer's own punctuation normaliser is never applied when it tokenizes; it only warns
SACREMOSES = "Recommended: pip install sacremoses."


def _m2m100_layout(vocab: FairseqVocab) -> int | None:
    """The number of dictionary entries before the language tokens when the layout is M2M-100's."""
    from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES

    if vocab.languages != list(FAIRSEQ_LANGUAGE_CODES["m2m100"]):
        return None
    toks = [lang_token(c) for c in vocab.languages]
    n = vocab.symbols.index(toks[0]) if toks[0] in vocab.symbols else -1
    rest = vocab.symbols[n + len(toks):]
    if n < 0 or vocab.symbols[n:n + len(toks)] != toks or not all(s.startswith("madeupword") for s in rest):
        return None
    if any(s in toks for s in vocab.symbols[:n]):
        return None
    return n


def write_tokenizer(out: Path, vocab: FairseqVocab, spm_path: Path) -> str:
    """Save the tokenizer into ``out``, check every id against ``vocab``; returns its class name."""
    from transformers import AutoTokenizer, M2M100Tokenizer, MarianTokenizer

    if not Path(spm_path).is_file():
        raise CheckpointError(f"{spm_path}: no such SentencePiece model")
    specials = [lang_token(c) for c in vocab.languages]
    n = _m2m100_layout(vocab)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=SACREMOSES)
        if n is not None:
            (out / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(vocab.symbols[:n])},
                                                       ensure_ascii=False), encoding="utf-8")
            shutil.copyfile(spm_path, out / "sentencepiece.bpe.model")
            tok = M2M100Tokenizer(vocab_file=str(out / "vocab.json"), spm_file=str(out / "sentencepiece.bpe.model"),
                                  num_madeup_words=len(vocab.symbols) - n - len(specials),
                                  extra_special_tokens=specials)
        else:
            (out / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(vocab.symbols)},
                                                       ensure_ascii=False), encoding="utf-8")
            for name in ("source.spm", "target.spm"):
                shutil.copyfile(spm_path, out / name)
            tok = MarianTokenizer(source_spm=str(out / "source.spm"), target_spm=str(out / "target.spm"),
                                  vocab=str(out / "vocab.json"), extra_special_tokens=specials,
                                  model_max_length=1024)
        tok.save_pretrained(str(out))
        loaded = AutoTokenizer.from_pretrained(str(out))
    check_ids(loaded, vocab)
    return type(tok).__name__


def check_ids(tok, vocab: FairseqVocab) -> None:
    """Every symbol, language token included, has fairseq's id in the saved tokenizer."""
    # a repeated symbol encodes to its last id; M2M100Tokenizer has no strings for the made-up words
    # (ids no text produces), it only counts them
    last = {s: i for i, s in enumerate(vocab.symbols)}
    if type(tok).__name__ == "M2M100Tokenizer":
        last = {s: i for s, i in last.items() if not s.startswith("madeupword")}
    ids = tok.convert_tokens_to_ids(list(last))
    wrong = [(s, i, j) for (s, i), j in zip(last.items(), ids) if i != j]
    if wrong:
        s, i, j = wrong[0]
        raise CheckpointError(f"tokenizer: {s!r} has id {j}, fairseq's dictionary says {i} "
                              f"({len(wrong)} symbols differ)")
    special = set(tok.all_special_tokens)
    missing = [lang_token(c) for c in vocab.languages if lang_token(c) not in special]
    if missing:
        raise CheckpointError(f"tokenizer: language token {missing[0]} is not a special token")
