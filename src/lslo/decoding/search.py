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


@dataclass
class _Beams:
    """Beam search's state for the sentences still decoding (row i is sentence ``active[i]``):
    ``k`` running hypotheses and the ``k`` best finished ones per sentence, with their scores."""

    running: torch.Tensor  # (b, k, max_len) token ids
    running_scores: torch.Tensor  # (b, k) summed log-probabilities
    finished: torch.Tensor  # (b, k, max_len)
    finished_scores: torch.Tensor  # (b, k) length-penalised
    finished_len: torch.Tensor  # (b, k) generated tokens
    is_finished: torch.Tensor  # (b, k) slot holds a hypothesis
    open_: torch.Tensor  # (b, 1) transformers' early-stop heuristic not met yet
    active: torch.Tensor  # (b,) original sentence index
    parent: torch.Tensor | None = None  # (b, k) the beam each running hypothesis continues

    @classmethod
    def start(cls, prompt: torch.Tensor, k: int, max_len: int, fill: int) -> _Beams:
        n_sent, plen = prompt.shape
        device = prompt.device
        running = torch.full((n_sent, k, max_len), fill, dtype=torch.long, device=device)
        running[:, :, :plen] = prompt[:, None, :]
        scores = torch.zeros((n_sent, k), device=device)
        scores[:, 1:] = NEG
        return cls(running=running, running_scores=scores, finished=running.clone(),
                   finished_scores=torch.full((n_sent, k), NEG, device=device),
                   finished_len=torch.zeros((n_sent, k), dtype=torch.long, device=device),
                   is_finished=torch.zeros((n_sent, k), dtype=torch.bool, device=device),
                   open_=torch.ones((n_sent, 1), dtype=torch.bool, device=device),
                   active=torch.arange(n_sent, device=device))

    def keep(self, rows: torch.Tensor) -> None:
        """Keep these sentences (rows), in this order."""
        for name in ("running", "running_scores", "parent", "finished", "finished_scores", "finished_len",
                     "is_finished", "open_", "active"):
            setattr(self, name, getattr(self, name)[rows])


def _expand(st: _Beams, log_probs: torch.Tensor, keep_k: int, cur_len: int, eos: torch.Tensor, max_len: int):
    """The top ``keep_k`` continuations of each sentence over its beams: scores, sequences, parent
    beams, tokens, and which of them end (an end token, or the length limit)."""
    b, k = st.running_scores.shape
    vocab = log_probs.shape[-1]
    log_probs = log_probs.view(b, k, vocab).add_(st.running_scores[:, :, None]).view(b, k * vocab)
    scores, idx = torch.topk(log_probs, keep_k)
    parent, tokens = idx // vocab, idx % vocab
    seq = torch.take_along_dim(st.running, parent[:, :, None], dim=1)
    seq[:, :, cur_len] = tokens
    hits = torch.ones_like(tokens, dtype=torch.bool) if cur_len + 1 >= max_len else torch.isin(tokens, eos)
    return scores, seq, parent, tokens, hits


def _advance(st: _Beams, scores, seq, parent, hits) -> None:
    """The best ``k`` continuations that did not end keep running."""
    k = st.running_scores.shape[1]
    run_scores = scores + hits.to(torch.float32) * NEG
    nxt = torch.topk(run_scores, k)[1]
    st.running = torch.take_along_dim(seq, nxt[:, :, None], dim=1)
    st.running_scores = torch.take_along_dim(run_scores, nxt, dim=1)
    st.parent = torch.take_along_dim(parent, nxt, dim=1)


def _collect(st: _Beams, scores, seq, tokens, hits, top_mask, generated: int, s: SearchSettings) -> None:
    """The ended ones among the top ``k`` join the finished list if they beat its worst (with the
    length penalty over ``generated`` tokens); under ``early_stopping=True`` a full list takes none."""
    k = st.running_scores.shape[1]
    just = hits & top_mask[None, :]
    cand = scores / (generated ** s.length_penalty)
    full = torch.all(st.is_finished, dim=-1, keepdim=True) & (s.early_stopping is True)
    cand += full.to(torch.float32) * NEG
    cand += (~st.open_).to(torch.float32) * NEG
    cand += (~just) * NEG
    m_seq = torch.cat((st.finished, seq), dim=1)
    m_scores = torch.cat((st.finished_scores, cand), dim=1)
    m_len = torch.cat((st.finished_len, torch.full_like(tokens, generated)), dim=1)
    m_fin = torch.cat((st.is_finished, just), dim=1)
    best = torch.topk(m_scores, k)[1]
    st.finished = torch.take_along_dim(m_seq, best[:, :, None], dim=1)
    st.finished_scores = torch.take_along_dim(m_scores, best, dim=1)
    st.finished_len = torch.take_along_dim(m_len, best, dim=1)
    st.is_finished = torch.take_along_dim(m_fin, best, dim=1)


def _done(st: _Beams, generated: int, most: int, s: SearchSettings) -> torch.Tensor:
    """transformers' early-stop test per sentence: can the best running beam still beat the worst
    finished one (at ``generated`` tokens, or at the most, ``most``, under "never")? Under
    ``early_stopping=True`` a sentence is also done once its finished list is full."""
    hyp_len = most if s.early_stopping == "never" and s.length_penalty > 0.0 else generated
    best_running = st.running_scores[:, :1] / (hyp_len ** s.length_penalty)
    worst = torch.where(st.is_finished, torch.min(st.finished_scores, dim=1, keepdim=True)[0], NEG)
    st.open_ = st.open_ & torch.any(best_running > worst, dim=-1, keepdim=True)
    done = ~st.open_[:, 0]
    if s.early_stopping is True:
        done = done | torch.all(st.is_finished, dim=-1)
    return done


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
    st = _Beams.start(prompt, k, max_len, fill)
    out = torch.full((n_sent, max_len), fill, dtype=torch.long, device=device)
    out_len = torch.zeros(n_sent, dtype=torch.long, device=device)

    def retire(rows: torch.Tensor) -> None:
        ids = st.active[rows]
        out[ids] = st.finished[rows, 0]
        out_len[ids] = st.finished_len[rows, 0]

    logits = stepper.start(prompt)
    cur_len = plen
    while True:
        b = st.active.shape[0]
        log_probs = _process(torch.log_softmax(logits, dim=-1), cur_len, s, suppress)
        scores, seq, parent, tokens, hits = _expand(st, log_probs, keep_k, cur_len, eos, max_len)
        _advance(st, scores, seq, parent, hits)
        _collect(st, scores, seq, tokens, hits, top_mask, cur_len + 1 - plen, s)
        cur_len += 1
        done = _done(st, cur_len - plen, max_len - plen, s)
        if bool(torch.all(hits)) or bool(done.all()):
            retire(torch.arange(b, device=device))
            break
        keep = None
        if bool(done.any()):
            retire(done.nonzero()[:, 0])
            keep = (~done).nonzero()[:, 0]
            st.keep(keep)
            if on_active is not None:
                on_active(st.active)
            rows = (keep[:, None] * k + st.parent).view(-1)
        else:
            rows = (torch.arange(b, device=device)[:, None] * k + st.parent).view(-1)
        stepper.select(rows, keep)
        logits = stepper.step(st.running[:, :, cur_len - 1].reshape(-1))

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
