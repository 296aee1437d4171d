"""Beam search and greedy search over an incremental decoder, with finished sentences leaving the batch.

The search follows transformers' ``generate`` (5.x) rule for rule, so that the translations are
the same token for token (tested against it):

- beam search keeps the top ``2 x beams`` continuations of each sentence, moves those that end
  (end-of-sentence, or the length limit) to the sentence's finished list with the length
  penalty ``score / generated_length ** length_penalty``, continues the best ``beams`` others,
  and applies transformers' early-stop rule (``early_stopping`` True, False or "never");
- greedy search takes the arg-max of the processed logits and pads finished rows.

What differs is the work per step, not the result: a sentence whose result can no longer
change (transformers' own test for it) leaves the batch at once, with its cache rows, instead of
being decoded until the longest sentence of the batch ends; the beams' rows are reordered in
the same gather that drops the finished sentences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

NEG = -1.0e9  # transformers' "impossible" score


@dataclass
class SearchSettings:
    """The generation settings the lean search implements (anything else goes to ``generate``)."""

    num_beams: int
    max_length: int
    eos_token_ids: list[int]
    pad_token_id: int | None
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    suppress_tokens: list[int] | None = None
    forced_eos_token_id: list[int] | None = None


def _process(logits: torch.Tensor, cur_len: int, s: SearchSettings, suppress: torch.Tensor | None) -> torch.Tensor:
    """transformers' logits processors for these settings, in its order (forced end, then suppress:
    ``_get_logits_processor`` appends ForcedEOSTokenLogitsProcessor before SuppressTokensLogitsProcessor),
    in place."""
    if s.forced_eos_token_id and cur_len == s.max_length - 1:
        logits.fill_(float("-inf"))
        logits[:, s.forced_eos_token_id] = 0.0
    if suppress is not None:
        logits.index_fill_(1, suppress, float("-inf"))
    return logits


def _fill_value(s: SearchSettings) -> int:
    # transformers: `pad_token_id or eos_token_id[0]` (a pad id of 0 falls through to the eos id)
    if not s.eos_token_ids:
        return -1
    return s.pad_token_id if s.pad_token_id else s.eos_token_ids[0]


def beam_search(stepper, prompt: torch.Tensor, s: SearchSettings,
                on_active: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor:
    """Beam search from ``prompt`` (sentences, P) with ``stepper`` (see :class:`M2M100Stepper`).

    ``on_active(ids)`` is told the original indices of the sentences still decoding whenever a
    sentence leaves (LSLo routes its rows by them). Returns (sentences, P + longest output)."""
    k, device = s.num_beams, prompt.device
    n_sent, plen = prompt.shape
    max_len = s.max_length
    eos = torch.tensor(s.eos_token_ids, device=device, dtype=torch.long)
    suppress = torch.tensor(s.suppress_tokens, device=device, dtype=torch.long) if s.suppress_tokens else None
    keep_k = max(2, 1 + len(s.eos_token_ids)) * k
    top_mask = torch.zeros(keep_k, dtype=torch.bool, device=device)
    top_mask[:k] = True
    fill = _fill_value(s)

    running = torch.full((n_sent, k, max_len), fill, dtype=torch.long, device=device)
    running[:, :, :plen] = prompt[:, None, :]
    finished = running.clone()
    running_scores = torch.zeros((n_sent, k), device=device)
    running_scores[:, 1:] = NEG
    finished_scores = torch.full((n_sent, k), NEG, device=device)
    finished_len = torch.zeros((n_sent, k), dtype=torch.long, device=device)  # generated tokens
    is_finished = torch.zeros((n_sent, k), dtype=torch.bool, device=device)
    open_ = torch.ones((n_sent, 1), dtype=torch.bool, device=device)  # early-stop heuristic not met
    active = torch.arange(n_sent, device=device)  # original index of each decoding sentence

    out = torch.full((n_sent, max_len), fill, dtype=torch.long, device=device)
    out_len = torch.zeros(n_sent, dtype=torch.long, device=device)

    def retire(rows: torch.Tensor) -> None:
        ids = active[rows]
        out[ids] = finished[rows, 0]
        out_len[ids] = finished_len[rows, 0]

    logits = stepper.start(prompt)
    cur_len = plen
    while True:
        b = active.shape[0]
        log_probs = torch.log_softmax(logits, dim=-1)
        log_probs = _process(log_probs, cur_len, s, suppress)
        vocab = log_probs.shape[-1]
        log_probs = log_probs.view(b, k, vocab).add_(running_scores[:, :, None]).view(b, k * vocab)
        topk_scores, topk_idx = torch.topk(log_probs, keep_k)
        parent = topk_idx // vocab
        tokens = topk_idx % vocab
        topk_seq = torch.take_along_dim(running, parent[:, :, None], dim=1)
        topk_seq[:, :, cur_len] = tokens
        topk_parent = parent
        hits = torch.isin(tokens, eos)
        if cur_len + 1 >= max_len:
            hits = torch.ones_like(hits)

        # the best `k` continuations that did not end keep running
        run_scores = topk_scores + hits.to(torch.float32) * NEG
        nxt = torch.topk(run_scores, k)[1]
        running = torch.take_along_dim(topk_seq, nxt[:, :, None], dim=1)
        running_scores = torch.take_along_dim(run_scores, nxt, dim=1)
        parent = torch.take_along_dim(topk_parent, nxt, dim=1)

        # the ended ones among the top `k` join the finished list if they beat its worst
        just = hits & top_mask[None, :]
        cand = topk_scores / ((cur_len + 1 - plen) ** s.length_penalty)
        full = torch.all(is_finished, dim=-1, keepdim=True) & (s.early_stopping is True)
        cand += full.to(torch.float32) * NEG
        cand += (~open_).to(torch.float32) * NEG
        cand += (~just) * NEG
        m_seq = torch.cat((finished, topk_seq), dim=1)
        m_scores = torch.cat((finished_scores, cand), dim=1)
        m_len = torch.cat((finished_len, torch.full_like(tokens, cur_len + 1 - plen)), dim=1)
        m_fin = torch.cat((is_finished, just), dim=1)
        best = torch.topk(m_scores, k)[1]
        finished = torch.take_along_dim(m_seq, best[:, :, None], dim=1)
        finished_scores = torch.take_along_dim(m_scores, best, dim=1)
        finished_len = torch.take_along_dim(m_len, best, dim=1)
        is_finished = torch.take_along_dim(m_fin, best, dim=1)

        cur_len += 1
        # transformers' early-stop heuristic: can the best running beam still beat the worst finished one?
        if s.early_stopping == "never" and s.length_penalty > 0.0:
            hyp_len = max_len - plen
        else:
            hyp_len = cur_len - plen
        best_running = running_scores[:, :1] / (hyp_len ** s.length_penalty)
        worst = torch.where(is_finished, torch.min(finished_scores, dim=1, keepdim=True)[0], NEG)
        open_ = open_ & torch.any(best_running > worst, dim=-1, keepdim=True)

        done = ~open_[:, 0]
        if s.early_stopping is True:
            done = done | torch.all(is_finished, dim=-1)
        if bool(torch.all(hits)) or bool(done.all()):
            retire(torch.arange(b, device=device))
            break
        keep = None
        if bool(done.any()):
            retire(done.nonzero()[:, 0])
            keep = (~done).nonzero()[:, 0]
            running, running_scores, parent = running[keep], running_scores[keep], parent[keep]
            finished, finished_scores = finished[keep], finished_scores[keep]
            finished_len, is_finished, open_ = finished_len[keep], is_finished[keep], open_[keep]
            active = active[keep]
            if on_active is not None:
                on_active(active)
            rows = (keep[:, None] * k + parent).view(-1)
        else:
            rows = (torch.arange(b, device=device)[:, None] * k + parent).view(-1)
        stepper.select(rows, keep)
        logits = stepper.step(running[:, :, cur_len - 1].reshape(-1))

    width = plen + int(out_len.max())
    return out[:, :width]


def greedy_search(stepper, prompt: torch.Tensor, s: SearchSettings,
                  on_active: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor:
    """Greedy search (one beam) as transformers' ``generate`` does it; finished rows leave the batch."""
    device = prompt.device
    n_sent, plen = prompt.shape
    eos = torch.tensor(s.eos_token_ids, device=device, dtype=torch.long)
    suppress = torch.tensor(s.suppress_tokens, device=device, dtype=torch.long) if s.suppress_tokens else None
    pad = s.pad_token_id if s.pad_token_id is not None else (s.eos_token_ids[0] if s.eos_token_ids else 0)
    out = torch.full((n_sent, s.max_length), pad, dtype=torch.long, device=device)
    out[:, :plen] = prompt
    active = torch.arange(n_sent, device=device)
    logits = stepper.start(prompt)
    cur_len, longest = plen, plen
    while True:
        tokens = torch.argmax(_process(logits, cur_len, s, suppress), dim=-1)
        out[active, cur_len] = tokens
        cur_len += 1
        longest = cur_len
        ended = torch.isin(tokens, eos) if s.eos_token_ids else torch.zeros_like(tokens, dtype=torch.bool)
        if cur_len >= s.max_length or bool(ended.all()):
            break
        keep = None
        if bool(ended.any()):
            keep = (~ended).nonzero()[:, 0]
            tokens, active = tokens[keep], active[keep]
            if on_active is not None:
                on_active(active)
            stepper.select(keep, keep)
        logits = stepper.step(tokens)
    return out[:, :longest]
