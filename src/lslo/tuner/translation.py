"""Translate lists that mix directions: length-sorted batches, one mixed-direction beam search each."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lslo.tuner.languages import build_batch, generation_prompt


@torch.no_grad()
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
    out: list[str] = [""] * len(texts)
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
            for i, text in zip(chunk, decoded):
                out[i] = text.strip()
    finally:
        model.train(was_training)
    return out
