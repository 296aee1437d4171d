"""An incremental decoder for M2M-100-architecture models (M2M-100, NLLB dense) that beam search drives.

What it does differently from ``M2M100ForConditionalGeneration.forward`` under ``generate``:

- the self-attention keys/values live in buffers (a key and a value buffer per layer and one
  spare that a beam reorder gathers into: no ``torch.cat`` or allocation per step, no cache
  objects), sized for 32 positions and doubled when the output grows past them;
- the cross-attention keys/values are computed once per *sentence* from the encoder output and
  shared by its beams: the k beams' queries of a sentence attend as one (k, head dim) block, so
  nothing is repeated or copied per beam;
- rows leave the batch when their sentence is finished (:meth:`select`), so a long sentence no
  longer makes the whole batch run to its length;
- no masks, cache classes or output records are built per step.

The modules themselves are the model's own (LayerNorms, embeddings, projections, which may be
LSLo layers routed per row), called in the same order with the same attention kernel
(``scaled_dot_product_attention``), so the logits equal the model's forward (the tests compare
them, and the translations, with transformers' ``generate``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lslo.decoding.quantize import Int8Linear

CACHE_CHUNK = 32  # decoder positions the self-attention cache holds at first (then doubled as needed)


def is_m2m100(model: nn.Module) -> bool:
    """True for a Hugging Face M2M-100-architecture seq2seq model (M2M-100 or dense NLLB)."""
    config = getattr(model, "config", None)
    inner = getattr(model, "model", None)
    return (getattr(config, "model_type", None) == "m2m_100" and hasattr(model, "lm_head")
            and hasattr(inner, "encoder") and hasattr(inner, "decoder"))


class Padder:
    """The real tokens of a padded batch (CTranslate2's padder): :meth:`pack` keeps the real
    positions of a (B, L, d) tensor as (N, d) rows, :meth:`pad` puts (N, d) rows back, zeros at
    the padding. Every token-wise op of the encoder (LayerNorms, projections, feed-forward) runs on
    the N real rows; only attention sees the padded layout."""

    def __init__(self, attention_mask: torch.Tensor | None, batch: int, length: int) -> None:
        self.batch, self.length = batch, length
        real = None if attention_mask is None else attention_mask.bool()
        self.idx = None if real is None or bool(real.all()) else real.reshape(-1).nonzero()[:, 0]
        # attention's key mask; None without padding, where transformers passes none either
        self.mask = None if self.idx is None else real[:, None, None, :]

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        return flat if self.idx is None else flat.index_select(0, self.idx)

    def pad(self, rows: torch.Tensor) -> torch.Tensor:
        if self.idx is None:
            return rows.view(self.batch, self.length, rows.shape[-1])
        out = rows.new_zeros(self.batch * self.length, rows.shape[-1])
        return out.index_copy_(0, self.idx, rows).view(self.batch, self.length, rows.shape[-1])


def _plain(linear: nn.Module) -> bool:
    """A linear map of each row on its own (no routing by sentence): it may run on the real-token rows."""
    return isinstance(linear, (nn.Linear, Int8Linear))


def _padded_for(linears, rows: torch.Tensor, padder: Padder) -> torch.Tensor | None:
    """``rows`` in the padded layout when one of ``linears`` needs it, computed once for all of them."""
    return None if all(_plain(m) for m in linears) else padder.pad(rows)


def _heads(linears, rows: torch.Tensor, padder: Padder, heads: int, head_dim: int, padded: torch.Tensor | None):
    """Each projection of the real-token rows, padded and split into heads: (B, heads, L, head dim)."""
    return tuple(padder.pad(_token_linear(m, rows, padder, padded))
                 .view(padder.batch, padder.length, heads, head_dim).transpose(1, 2) for m in linears)


def _token_linear(linear: nn.Module, rows: torch.Tensor, padder: Padder, padded: torch.Tensor | None = None):
    """``linear`` on the real-token rows (N, d_in). A plain linear runs on those rows; an adapter
    layer (``adapter_delta``, routed per sentence) runs its base there and adds its update computed
    on the padded (B, L, d_in) layout (``padded``, when the caller has it); any other module runs
    on the padded layout, so it sees the shapes it was written for."""
    if _plain(linear):
        return linear(rows)
    if hasattr(linear, "adapter_delta") and hasattr(linear, "base"):
        out = linear.base(rows)
        delta = linear.adapter_delta(padder.pad(rows) if padded is None else padded)
        return out if delta is None else out.add_(padder.pack(delta))
    return padder.pack(linear(padder.pad(rows) if padded is None else padded))


def encode(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None):
    """The encoder's output as real-token rows (N, d) and their :class:`Padder`; equal, position by
    position, to ``model.model.encoder(...)`` (the tests compare them), with the padding left out of
    every token-wise op."""
    encoder = model.model.encoder
    batch, length = input_ids.shape
    padder = Padder(attention_mask, batch, length)
    x = encoder.embed_tokens(input_ids)
    x = x + encoder.embed_positions(input_ids, x).to(x.device)
    rows = padder.pack(x)
    for layer in encoder.layers:
        rows = _encoder_layer(layer, rows, padder)
    return encoder.layer_norm(rows), padder


def _encoder_layer(layer: nn.Module, rows: torch.Tensor, padder: Padder) -> torch.Tensor:
    """One M2M-100 encoder layer (pre-LayerNorm) on the real-token rows."""
    att = layer.self_attn
    h = layer.self_attn_layer_norm(rows)
    projs = (att.q_proj, att.k_proj, att.v_proj)
    q, k, v = _heads(projs, h, padder, att.num_heads, att.head_dim, _padded_for(projs, h, padder))
    a = F.scaled_dot_product_attention(q, k, v, attn_mask=padder.mask, scale=att.scaling)
    a = a.transpose(1, 2).reshape(padder.batch, padder.length, -1)
    rows = rows + _token_linear(att.out_proj, padder.pack(a), padder, a)
    h = layer.final_layer_norm(rows)
    return rows + _token_linear(layer.fc2, layer.activation_fn(_token_linear(layer.fc1, h, padder)), padder)


class M2M100Stepper:
    """Encoder once, then one decoder position per :meth:`step` for ``rows`` = sentences x beams.

    Row ``s * beams + j`` is beam j of active sentence s; :meth:`select` keeps (and reorders) rows
    and, with them, sentences.
    """

    def __init__(self, model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                 beams: int, max_length: int) -> None:
        self.model = model
        self.decoder = model.model.decoder
        self.layers = list(self.decoder.layers)
        # each layer's modules, looked up once (nn.Module attribute lookups cost ~1 us each, per step)
        self._plan = [(layer.self_attn_layer_norm, layer.self_attn.q_proj, layer.self_attn.k_proj,
                       layer.self_attn.v_proj, layer.self_attn.out_proj, layer.self_attn.scaling,
                       layer.encoder_attn_layer_norm, layer.encoder_attn.q_proj, layer.encoder_attn.out_proj,
                       layer.encoder_attn.scaling, layer.final_layer_norm, layer.fc1, layer.activation_fn, layer.fc2)
                      for layer in self.layers]
        self.beams = beams
        first = self.layers[0].self_attn
        self.heads, self.head_dim = first.num_heads, first.head_dim
        enc, padder = encode(model, input_ids, attention_mask)
        batch = input_ids.shape[0]
        self.dim = enc.shape[-1]
        self.cross_mask: torch.Tensor | None = padder.mask
        projs = [(layer.encoder_attn.k_proj, layer.encoder_attn.v_proj) for layer in self.layers]
        enc_pad = _padded_for([m for pair in projs for m in pair], enc, padder)  # once for every layer
        self.cross: list[tuple[torch.Tensor, torch.Tensor]] = [
            _heads(pair, enc, padder, self.heads, self.head_dim, enc_pad) for pair in projs]
        self.max_length = max_length
        # self-attention keys/values, time-major: (capacity, rows, heads, head dim) views of flat
        # buffers, one key and one value buffer per layer plus one spare; a step writes position t in
        # place, a beam reorder gathers each buffer's rows into the spare, which takes its place (no
        # allocation per step), and attention reads a (rows, heads, t, head dim) view. The buffers
        # hold ``capacity`` positions, CACHE_CHUNK at first, doubled when the output needs more (up
        # to max_length): the memory follows the output, not the length limit.
        self.rows = batch
        self.max_rows = batch * beams
        self.capacity = min(max_length, CACHE_CHUNK)
        size = self.capacity * self.max_rows * self.heads * self.head_dim
        self._buffers = [[enc.new_empty(size), enc.new_empty(size)] for _ in self.layers]
        self._spare = enc.new_empty(size)
        self.length = 0  # decoder positions in the self-attention cache

    def _cache(self, i: int, which: int) -> torch.Tensor:
        n = self.capacity * self.rows * self.heads * self.head_dim
        return self._buffers[i][which][:n].view(self.capacity, self.rows, self.heads, self.head_dim)

    def _reserve(self, end: int) -> None:
        """Grow the buffers to hold ``end`` positions: the cached positions are the flat buffers'
        prefix (time-major), so growing copies that prefix into a buffer twice as long."""
        if end <= self.capacity:
            return
        cap = min(max(end, 2 * self.capacity), max(self.max_length, end))
        used = self.length * self.rows * self.heads * self.head_dim
        size = cap * self.max_rows * self.heads * self.head_dim
        for bufs in self._buffers:
            for which in (0, 1):
                grown = bufs[which].new_empty(size)
                grown[:used] = bufs[which][:used]
                bufs[which] = grown
        self._spare = self._spare.new_empty(size)
        self.capacity = cap

    @property
    def cache_bytes(self) -> int:
        """Bytes allocated for the self-attention cache (key, value and spare buffers)."""
        return sum(b.numel() * b.element_size() for bufs in self._buffers for b in bufs) + \
            self._spare.numel() * self._spare.element_size()

    # --------------------------------------------------------------------------------- one step
    def _positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """Sinusoidal positions of ``tokens`` (rows, T) that follow ``self.length`` cached ones."""
        return self.decoder.embed_positions(tokens, None, self.length)

    def _forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits of the last position for ``tokens`` (rows, T) appended at ``self.length``."""
        rows, width = tokens.shape
        heads, hd = self.heads, self.head_dim
        x = self.decoder.embed_tokens(tokens)
        x = x + self._positions(tokens).to(x.device)
        start, end = self.length, self.length + width
        self._reserve(end)
        sentences = self.cross[0][0].shape[0]
        k = rows // sentences  # beams per sentence in this call
        for i, ((ln1, q_proj, k_proj, v_proj, o_proj, scaling, ln2, cq_proj, co_proj, cscaling, ln3, fc1, act, fc2),
                (xk, xv)) in enumerate(zip(self._plan, self.cross)):
            ck, cv = self._cache(i, 0), self._cache(i, 1)
            h = ln1(x)
            q = q_proj(h).view(rows, width, heads, hd).transpose(1, 2)
            ck[start:end] = k_proj(h).view(rows, width, heads, hd).transpose(0, 1)
            cv[start:end] = v_proj(h).view(rows, width, heads, hd).transpose(0, 1)
            a = F.scaled_dot_product_attention(q, ck[:end].permute(1, 2, 0, 3), cv[:end].permute(1, 2, 0, 3),
                                               is_causal=width > 1, scale=scaling)
            x.add_(o_proj(a.transpose(1, 2).reshape(rows, width, self.dim)))  # residuals in place: x is ours

            h = ln2(x)
            q = cq_proj(h).view(sentences, k * width, heads, hd).transpose(1, 2)
            a = F.scaled_dot_product_attention(q, xk, xv, attn_mask=self.cross_mask, scale=cscaling)
            x.add_(co_proj(a.transpose(1, 2).reshape(rows, width, self.dim)))

            x.add_(fc2(act(fc1(ln3(x)))))
        x = self.decoder.layer_norm(x[:, -1:])
        self.length = end
        return self.model.lm_head(x)[:, 0].float()

    def start(self, prompt: torch.Tensor) -> torch.Tensor:
        """Run the decoder prompt (sentences, P) once per sentence; logits (sentences * beams, vocab).

        Every beam of a sentence starts from the same prompt, so the prompt is decoded once per
        sentence and its cache and logits are repeated per beam."""
        logits = self._forward(prompt)
        if self.beams > 1:
            rows = torch.arange(prompt.shape[0], device=prompt.device).repeat_interleave(self.beams)
            self._gather(rows)
            logits = logits.index_select(0, rows)
        return logits

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (rows, vocab) after appending one token (rows,) per row."""
        return self._forward(tokens[:, None])

    def _gather(self, rows: torch.Tensor) -> None:
        """Rows ``rows`` of the self-attention cache become the cache, in that order."""
        n, width = self.length, self.heads * self.head_dim
        # one gather over (position, row) pairs of the flat (positions x rows, width) prefix: a dim-0
        # index_select of contiguous rows runs about twice as fast as a dim-1 one over (positions, rows)
        flat = (torch.arange(n, device=rows.device)[:, None] * self.rows + rows[None, :]).view(-1)
        for bufs in self._buffers:
            for which in (0, 1):
                src = bufs[which][:n * self.rows * width].view(-1, width)
                torch.index_select(src, 0, flat, out=self._spare[:flat.shape[0] * width].view(-1, width))
                bufs[which], self._spare = self._spare, bufs[which]
        self.rows = rows.shape[0]

    def select(self, rows: torch.Tensor, sentences: torch.Tensor | None) -> None:
        """Keep ``rows`` of the self-attention cache, in that order (beam reorder); with
        ``sentences``, keep those sentences' cross-attention keys/values (finished ones leave)."""
        self._gather(rows)
        if sentences is not None:
            self.cross = [(k.index_select(0, sentences), v.index_select(0, sentences)) for k, v in self.cross]
            if self.cross_mask is not None:
                self.cross_mask = self.cross_mask.index_select(0, sentences)
