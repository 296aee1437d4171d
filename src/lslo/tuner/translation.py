"""Translate lists that mix directions: length-sorted batches, one mixed-direction beam search each."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lslo.tuner.languages import build_batch, generation_prompt


def translate(
    model: nn.Module,
    texts: Sequence[str],
    src_langs: Sequence[str],
    tgt_langs: Sequence[str],
    batch_size: int = 32,
    max_tokens: int | None = None,
    **generate_kwargs,
) -> list[str]:
    """Translate a list that may mix directions; results come back in input order.

    Inputs are sorted by length and cut into batches of at most ``batch_size`` sentences
    and, when given, ``max_tokens`` padded source tokens; every batch may mix directions.
    """
    return [best[0] for best in _translate(model, texts, src_langs, tgt_langs, batch_size, max_tokens, 1,
                                           generate_kwargs)]


def translate_n_best(
    model: nn.Module,
    texts: Sequence[str],
    src_langs: Sequence[str],
    tgt_langs: Sequence[str],
    n: int,
    batch_size: int = 32,
    max_tokens: int | None = None,
    **generate_kwargs,
) -> list[list[str]]:
    """The ``n`` best finished hypotheses of the beam for each text, best first (as :func:`translate`,
    with ``num_return_sequences=n``; the beam is widened to ``n`` when it is narrower)."""
    if n < 1:
        raise ValueError(f"translate_n_best: n must be >= 1, got {n}")
    generate_kwargs = dict(generate_kwargs)
    generate_kwargs["num_beams"] = max(n, generate_kwargs.get("num_beams", 5))
    if n > 1:
        generate_kwargs["num_return_sequences"] = n
    return _translate(model, texts, src_langs, tgt_langs, batch_size, max_tokens, n, generate_kwargs)


@torch.no_grad()
def _translate(model: nn.Module, texts: Sequence[str], src_langs: Sequence[str], tgt_langs: Sequence[str],
               batch_size: int, max_tokens: int | None, n: int, generate_kwargs: dict) -> list[list[str]]:
    tokens = model.language_tokens()
    if not (len(texts) == len(src_langs) == len(tgt_langs)):
        raise ValueError("translate: texts, src_langs and tgt_langs must have the same length")
    # any accepted code form (eng, eng_Latn, __en__) names the configured language
    resolve = getattr(model, "resolve_language", None)
    if resolve is not None:
        known = {c: resolve(c) for c in set(src_langs) | set(tgt_langs)}
        src_langs, tgt_langs = [known[c] for c in src_langs], [known[c] for c in tgt_langs]
    for code in set(src_langs) | set(tgt_langs):
        tokens.index(code)  # unknown language: a clear error before any work
    pieces = model.tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
    order = sorted(range(len(texts)), key=lambda i: (-len(pieces[i]), i))
    batches: list[list[int]] = []
    for i in order:
        if batches:
            cur = batches[-1]
            width = len(pieces[cur[0]]) + 2  # sorted: the first is the longest
            fits = len(cur) < batch_size and (max_tokens is None or (len(cur) + 1) * width <= max_tokens)
            if fits:
                cur.append(i)
                continue
        batches.append([i])
    out: list[list[str]] = [[""] * n for _ in texts]
    device = next(model.base.parameters()).device
    was_training = model.training
    model.eval()
    try:
        for chunk in batches:
            batch = build_batch(
                tokens, [pieces[i] for i in chunk], [src_langs[i] for i in chunk], [tgt_langs[i] for i in chunk]
            )
            gen = model.generate(
                batch["input_ids"].to(device), batch["attention_mask"].to(device),
                batch["src_lang"], batch["tgt_lang"], **generate_kwargs,
            )
            n_prompt = generation_prompt(tokens, batch["tgt_lang"]).shape[1]
            decoded = model.tokenizer.batch_decode(gen[:, n_prompt:], skip_special_tokens=True)
            for k, i in enumerate(chunk):  # with n > 1, rows k*n .. k*n+n-1 are text k's hypotheses
                out[i] = [text.strip() for text in decoded[k * n:(k + 1) * n]]
    finally:
        model.train(was_training)
    return out
