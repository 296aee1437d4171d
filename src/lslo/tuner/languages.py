"""Language codes <-> model language tokens, and per-sentence encoding of mixed batches.

A single tokenizer call with one ``src_lang`` cannot encode a batch that mixes
languages, so lslo builds the sequences itself in the layout M2M-100, NLLB
(non-legacy) and mBART-50 share:

    source  = [src_token] pieces </s>
    labels  = [tgt_token] pieces </s>
    decoder = [decoder_start] + labels[:-1]          (teacher forcing)
    prompt  = [decoder_start, tgt_token]             (generation, one per sentence)

A language whose token is ``"none"`` (e.g. Marian) gets no language token; only
the routing tells its sentences apart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lslo.errors import LSLoError

NO_TOKEN = "none"


class LanguageError(LSLoError):
    """A language code cannot be mapped to a model token."""


def _flores200(code: str) -> str | None:
    try:
        from lslo.tuner.langcodes import to_flores200  # optional: the FLORES code table
    except Exception:  # pragma: no cover - the table is part of the package
        return None
    try:
        return to_flores200(code)
    except Exception:
        return None


def _has_token(tokenizer, token: str) -> bool:
    """True when ``token`` is one token of the tokenizer (vocab, added, or M2M-100 language tokens)."""
    try:
        idx = tokenizer.convert_tokens_to_ids(token)
    except Exception:
        return False
    if idx is None or (idx == tokenizer.unk_token_id and token != tokenizer.unk_token):
        return False
    try:
        return tokenizer.convert_ids_to_tokens(idx) == token
    except Exception:
        return False


def tokenizer_vocab_size(tokenizer) -> int:
    """Size a model's embedding must have for every id this tokenizer can produce."""
    ids = list(tokenizer.get_vocab().values()) + list(getattr(tokenizer, "lang_code_to_id", {}).values())
    return max(ids) + 1 + int(getattr(tokenizer, "num_madeup_words", 0) or 0)


def language_token(tokenizer, code: str, explicit: str | None = None) -> str | None:
    """The model token of language ``code`` (None when it is configured as ``none``)."""
    if explicit == NO_TOKEN:
        return None
    if explicit is not None:
        if not _has_token(tokenizer, explicit):
            raise LanguageError(f"language {code!r}: token {explicit!r} is not in the tokenizer's vocabulary")
        return explicit
    candidates = [f"__{code}__"]
    f200 = _flores200(code)
    if f200:
        candidates.append(f200)
    for cand in candidates:
        if _has_token(tokenizer, cand):
            return cand
    # The code itself only when it is a special/added token: "en" may well be an ordinary subword.
    specials = set(getattr(tokenizer, "added_tokens_encoder", {})) | set(getattr(tokenizer, "all_special_tokens", []))
    candidates.append(code)
    if code in specials and _has_token(tokenizer, code):
        return code
    mbart = sorted(t for t in tokenizer.get_vocab() if len(t) == 5 and t[2] == "_" and t.startswith(code + "_") and t[3:].isupper())
    if len(code) == 2 and mbart:
        return mbart[0]
    raise LanguageError(
        f"language {code!r}: the tokenizer has no language token (tried {', '.join(candidates)}); "
        f"set languages[].token explicitly, or token: none for models without language tokens"
    )


@dataclass
class LanguageTokens:
    """Resolved token ids of the configured languages for one tokenizer."""

    codes: list[str]
    token_ids: list[int | None]
    eos_id: int
    pad_id: int
    decoder_start_id: int

    @classmethod
    def from_tokenizer(cls, tokenizer, codes: Sequence[str], explicit: dict[str, str | None], decoder_start_id: int):
        ids: list[int | None] = []
        for code in codes:
            tok = language_token(tokenizer, code, explicit.get(code))
            ids.append(None if tok is None else int(tokenizer.convert_tokens_to_ids(tok)))
        if tokenizer.eos_token_id is None or tokenizer.pad_token_id is None:
            raise LanguageError("tokenizer: needs both an eos and a pad token")
        return cls(list(codes), ids, int(tokenizer.eos_token_id), int(tokenizer.pad_token_id), int(decoder_start_id))

    def index(self, code: str) -> int:
        try:
            return self.codes.index(code)
        except ValueError:
            raise LanguageError(f"language {code!r} is not configured; configured: {', '.join(self.codes)}") from None

    def token_id(self, code: str) -> int | None:
        return self.token_ids[self.index(code)]


def _pieces(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    return tokenizer(list(texts), add_special_tokens=False)["input_ids"]


def _pad(seqs: list[list[int]], pad_id: int, pad_value_labels: bool = False) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    fill = -100 if pad_value_labels else pad_id
    return torch.tensor([s + [fill] * (width - len(s)) for s in seqs], dtype=torch.long)


def encode_batch(
    tokenizer,
    tokens: LanguageTokens,
    src_texts: Sequence[str],
    src_langs: Sequence[str],
    tgt_langs: Sequence[str],
    tgt_texts: Sequence[str] | None = None,
    max_length: int | None = None,
) -> dict[str, torch.Tensor]:
    """Encode a mixed-direction batch: inputs, language indices and (optionally) labels."""
    if not (len(src_texts) == len(src_langs) == len(tgt_langs)):
        raise ValueError("encode_batch: src_texts, src_langs and tgt_langs must have the same length")
    if tgt_texts is not None and len(tgt_texts) != len(src_texts):
        raise ValueError("encode_batch: tgt_texts must have the same length as src_texts")
    tgt_pieces = _pieces(tokenizer, tgt_texts) if tgt_texts is not None else None
    return build_batch(tokens, _pieces(tokenizer, src_texts), src_langs, tgt_langs, tgt_pieces, max_length)


def _with_lang(pieces: list[int], lang: int | None, eos: int, max_length: int | None) -> list[int]:
    keep = (max_length - 1 - (lang is not None)) if max_length else None
    return ([lang] if lang is not None else []) + list(pieces[:keep]) + [eos]


def _lengths_mask(seqs: list[list[int]], width: int) -> torch.Tensor:
    # from lengths, not from the pad id
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, seq in enumerate(seqs):
        mask[i, : len(seq)] = 1
    return mask


def build_batch(
    tokens: LanguageTokens,
    src_pieces: Sequence[Sequence[int]],
    src_langs: Sequence[str],
    tgt_langs: Sequence[str],
    tgt_pieces: Sequence[Sequence[int]] | None = None,
    max_length: int | None = None,
    label_language_token: bool = False,
) -> dict[str, torch.Tensor]:
    """Build model inputs from already tokenized pieces (no special tokens).

    Args:
        label_language_token: keep the target-language token as a prediction target. Off by
            default, as in fairseq (the paper's toolkit): the token is forced as the decoder's
            first input at generation, so predicting it is a trivial target that only dilutes
            the loss; its label is -100. Languages without a token (``token: none``) have no
            such label to drop.

    Returns:
        ``input_ids``/``attention_mask`` (N, S), ``src_lang``/``tgt_lang`` (N,), and with
        ``tgt_pieces`` ``labels``/``decoder_input_ids``/``decoder_attention_mask`` (N, T).
    """
    src_idx = [tokens.index(code) for code in src_langs]
    tgt_idx = [tokens.index(code) for code in tgt_langs]
    inputs = [_with_lang(p, tokens.token_ids[li], tokens.eos_id, max_length) for p, li in zip(src_pieces, src_idx)]
    input_ids = _pad(inputs, tokens.pad_id)
    batch = {
        "input_ids": input_ids,
        "attention_mask": _lengths_mask(inputs, input_ids.shape[1]),
        "src_lang": torch.tensor(src_idx, dtype=torch.long),
        "tgt_lang": torch.tensor(tgt_idx, dtype=torch.long),
    }
    if tgt_pieces is not None:
        labels = [_with_lang(p, tokens.token_ids[li], tokens.eos_id, max_length) for p, li in zip(tgt_pieces, tgt_idx)]
        dec_in = [[tokens.decoder_start_id] + lab[:-1] for lab in labels]
        batch["labels"] = _pad(labels, tokens.pad_id, pad_value_labels=True)
        if not label_language_token:
            has_token = torch.tensor([tokens.token_ids[li] is not None for li in tgt_idx], dtype=torch.bool)
            batch["labels"][has_token, 0] = -100
        batch["decoder_input_ids"] = _pad(dec_in, tokens.pad_id)
        batch["decoder_attention_mask"] = _lengths_mask(dec_in, batch["decoder_input_ids"].shape[1])
    return batch


_LANG_TOKEN = re.compile(r"__[a-z]{2,3}(?:_[A-Za-z]+)?__|[a-z]{3}_[A-Z][a-z]{3}|[a-z]{2}_[A-Z]{2}")


def language_token_ids(tokenizer, tokens: LanguageTokens | None = None) -> list[int]:
    """Ids of every language token a tokenizer knows (M2M-100 ``__fr__``, NLLB ``fra_Latn``,
    mBART-50 ``fr_XX``) plus the configured ones: generation forbids them after the prompt, so a
    raw language token never lands in a hypothesis."""
    ids = {i for i in (tokens.token_ids if tokens else []) if i is not None}
    specials = set(getattr(tokenizer, "added_tokens_encoder", {}) or {})
    vocab = tokenizer.get_vocab()
    for tok in specials | {t for t in vocab if t.startswith("__") or "_" in t[2:4]}:
        if _LANG_TOKEN.fullmatch(tok) and tok in vocab:
            ids.add(int(vocab[tok]))
    for i in getattr(tokenizer, "lang_code_to_id", {}).values():
        ids.add(int(i))
    return sorted(ids)


def generation_prompt(tokens: LanguageTokens, tgt_idx: torch.Tensor) -> torch.Tensor:
    """Per-sentence decoder prompt [decoder_start, tgt_token] (a single forced BOS cannot mix targets)."""
    rows = []
    for li in tgt_idx.tolist():
        lang = tokens.token_ids[li]
        rows.append([tokens.decoder_start_id] + ([lang] if lang is not None else []))
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise LanguageError("generation: a batch cannot mix languages with and without language tokens")
    return torch.tensor(rows, dtype=torch.long)
