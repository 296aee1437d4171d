"""The LSLo linear layer: a frozen ``nn.Linear`` plus one LoRA pair per language.

    h = W0 x + s_l * B_l A_l x,   l = the language this sentence is routed to

All languages' pairs are packed without padding: ``lora_A`` (R, d_in) holds every
language's A rows one after another and ``lora_BT`` (R, d_out) its B columns (B
transposed), R = sum of the ranks r_l; language l owns rows ``offset_l .. offset_l + r_l``
(``A_of(l)`` (r_l, d_in) and ``B_of(l)`` (d_out, r_l) are views). So parameters, gradients
and optimizer state cost exactly the unpadded sum, whatever the mix of ranks.

Routing gathers each sentence's r_max component rows by index (``comp_index``: a language
of lower rank points its extra slots at row 0 and ``comp_mult`` multiplies them by 0) and
applies them with batched matmuls (``routed_lora``): no Python loop over languages and no
host sync, so the cost does not grow with the number of languages. A custom autograd
function keeps only x and the small (N, T, r_max) intermediate for backward (not the
gathered per-sentence copies of A and B) and regathers in backward, so a training step
holds as much memory as one shared LoRA. Beam-expanded rows of one sentence share one
gathered pair.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SHARED = "shared"  # the single adapter of the shared-LoRA baseline


def set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


class Router:
    """Per-sentence language indices shared by every LSLo layer of one model.

    Layers ask for the source or target index of each row of their input. A row
    count that is a multiple of the batch size is a beam/sample expansion done by
    ``generate`` (``repeat_interleave``), so sentence i owns rows i*k .. i*k+k-1.
    """

    MEMO_BYTES = 256 << 20  # the most the layers' gathered rows (:meth:`memo`) may hold at once

    def __init__(self) -> None:
        self.src: torch.Tensor | None = None
        self.tgt: torch.Tensor | None = None
        self._expanded: dict[tuple[str, int, torch.device], torch.Tensor] = {}
        self._groups: dict[tuple[str, int, torch.device], tuple[torch.Tensor, int]] = {}
        self._memo: dict[tuple, tuple[tuple, tuple, int]] = {}
        self._memo_bytes = 0
        self.memo_limit = self.MEMO_BYTES

    def set(self, src: torch.Tensor | None, tgt: torch.Tensor | None) -> None:
        self.src, self.tgt = src, tgt
        self._expanded = {}
        self._groups = {}
        self._memo, self._memo_bytes = {}, 0

    def memo(self, key: tuple, version: tuple, build) -> tuple:
        """``build()``'s tensors, kept while this routing stands and ``version`` is unchanged.

        A decoding calls every layer once per step with the same sentences: each layer's gathered
        per-sentence adapter rows are built once per routing (``set`` drops them, and a sentence
        leaving the batch is a new routing) instead of once per step. At most ``memo_limit`` bytes
        are kept; beyond that ``build()`` runs every time."""
        hit = self._memo.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = build()
        size = sum(t.numel() * t.element_size() for t in value)
        if hit is not None:
            self._memo_bytes -= hit[2]
            del self._memo[key]
        if self._memo_bytes + size <= self.memo_limit:
            self._memo[key] = (version, value, size)
            self._memo_bytes += size
        return value

    def clear(self) -> None:
        self.set(None, None)

    def index(self, route: str, n_rows: int, device: torch.device) -> torch.Tensor:
        ids = self.src if route == "source" else self.tgt
        if ids is None:
            raise RuntimeError(
                "LSLo layer called without languages: pass src_lang/tgt_lang to the LSLoModel "
                "forward/generate, or wrap the call in `with model.route(src, tgt):`"
            )
        key = (route, n_rows, device)
        cached = self._expanded.get(key)
        if cached is not None:
            return cached
        n = ids.shape[0]
        if n_rows == n:
            out = ids
        elif n > 0 and n_rows % n == 0:
            out = ids.repeat_interleave(n_rows // n)
        else:
            raise RuntimeError(f"LSLo routing: input has {n_rows} rows but the batch has {n} sentences")
        out = out.to(device)
        self._expanded[key] = out
        return out

    def groups(self, route: str, n_rows: int, device: torch.device) -> tuple[torch.Tensor, int]:
        """Per-sentence indices and the expansion k (rows i*k .. i*k+k-1 belong to sentence i)."""
        key = (route, n_rows, device)
        cached = self._groups.get(key)
        if cached is not None:
            return cached
        ids = self.src if route == "source" else self.tgt
        if ids is None or n_rows == ids.shape[0] or ids.shape[0] == 0 or n_rows % ids.shape[0]:
            out = self.index(route, n_rows, device), 1  # index() raises the right errors
        else:
            out = self.index(route, ids.shape[0], device), n_rows // ids.shape[0]
        self._groups[key] = out
        return out


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The autocast dtype of x's device when autocast is on there, else x's own dtype."""
    dev = x.device.type
    try:
        if torch.is_autocast_enabled(dev):
            return torch.get_autocast_dtype(dev)
    except TypeError:  # torch < 2.4: no per-device query
        if dev == "cuda" and torch.is_autocast_enabled():
            return torch.get_autocast_gpu_dtype()
        if dev == "cpu" and torch.is_autocast_cpu_enabled():
            return torch.get_autocast_cpu_dtype()
    return x.dtype


def _gather_rows(w: torch.Tensor, comp: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Rows ``w[comp]`` (N, r, d) of the packed table w (R, d) in ``dtype``, casting whichever of
    the table or the gathered copy is smaller."""
    flat = comp.reshape(-1)
    if w.dtype == dtype:
        rows = w.index_select(0, flat)
    elif w.shape[0] < flat.shape[0]:
        rows = w.to(dtype).index_select(0, flat)
    else:
        rows = w.index_select(0, flat).to(dtype)
    return rows.view(comp.shape[0], comp.shape[1], w.shape[1])


def _times(t: torch.Tensor, mult: torch.Tensor | None) -> torch.Tensor:
    """t (N, T, r) times mult (N, r) per row and component, in place; None means all ones."""
    if mult is not None:
        t.mul_(mult.to(t.dtype)[:, None, :])
    return t


class _RoutedLoRA(torch.autograd.Function):
    """``out[n] = ((x[n] @ A[comp[n]].T) * mult[n]) @ B^T[comp[n]]`` for x (N, T, d_in).

    ``A`` (R, d_in) and ``BT`` (R, d_out) are the packed component rows; ``comp`` (N, r)
    names each row's r components and ``mult`` (N, r) carries the language's scale (0 for
    the slots of a language whose rank is below r). Plain autograd through ``A[comp]`` would
    keep the gathered per-row copies of A and B (N * r * (d_in + d_out) elements) alive until
    backward. This function keeps only x (in the compute dtype: the same tensor a LoRA's
    ``lora_A`` linear keeps), the small (N, T, r) intermediate and the indices; backward
    gathers again and accumulates the weight gradients per component with ``index_add_``.
    Parameters stay in their own dtype (fp32); the computation runs in ``dtype`` (the
    autocast dtype under autocast) and the weight gradients come back in the parameters' dtype.
    """

    @staticmethod
    def forward(ctx, x, lora_A, lora_BT, comp, mult, dtype):
        xc = x if x.dtype == dtype else x.to(dtype)
        xa = _times(torch.bmm(xc, _gather_rows(lora_A, comp, dtype).transpose(1, 2)), mult)  # (N, T, r)
        out = torch.bmm(xa, _gather_rows(lora_BT, comp, dtype))  # (N, T, d_out)
        ctx.save_for_backward(xc, xa, comp, mult, lora_A, lora_BT)
        ctx.x_dtype = x.dtype
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        xc, xa, comp, mult, lora_A, lora_BT = ctx.saved_tensors
        need_x, need_A, need_B = ctx.needs_input_grad[:3]
        dtype = xa.dtype
        g = grad_out if grad_out.dtype == dtype else grad_out.to(dtype)
        flat = comp.reshape(-1)
        grad_x = grad_A = grad_B = None
        if need_B:
            # per-row (r, d_out) products, summed per component in the parameter dtype
            g_b = torch.bmm(xa.transpose(1, 2), g)
            grad_B = torch.zeros_like(lora_BT).index_add_(0, flat, g_b.reshape(-1, g_b.shape[2]).to(lora_BT.dtype))
            del g_b
        if need_x or need_A:
            g_xa = _times(torch.bmm(g, _gather_rows(lora_BT, comp, dtype).transpose(1, 2)), mult)  # (N, T, r)
            if need_A:
                g_a = torch.bmm(g_xa.transpose(1, 2), xc)
                grad_A = torch.zeros_like(lora_A).index_add_(0, flat, g_a.reshape(-1, g_a.shape[2]).to(lora_A.dtype))
                del g_a
            if need_x:
                grad_x = torch.bmm(g_xa, _gather_rows(lora_A, comp, dtype))
                if grad_x.dtype != ctx.x_dtype:
                    grad_x = grad_x.to(ctx.x_dtype)
        return grad_x, grad_A, grad_B, None, None, None


def routed_lora(
    x: torch.Tensor,
    lora_A: torch.Tensor,
    lora_BT: torch.Tensor,
    comp: torch.Tensor,
    mult: torch.Tensor | None,
    dtype: torch.dtype | None = None,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-row LoRA update: row n of x (N, T, d_in) uses components comp[n]; returns (N, T, d_out).

    ``lora_A`` (R, d_in) and ``lora_BT`` (R, d_out) are packed component rows, ``comp`` (N, r)
    long, ``mult`` (N, r) (scale per row, 0 for unused slots) or None (all 1). No Python loop
    over languages and no host synchronisation. With ``out`` (N, T, d_out) and no autograd
    needed, the update is added to ``out`` in place and ``out`` is returned.
    """
    dtype = x.dtype if dtype is None else dtype
    if needs_autograd(x, lora_A, lora_BT):
        delta = _RoutedLoRA.apply(x, lora_A, lora_BT, comp, mult, dtype)
        return delta if out is None else out + delta
    xc = x if x.dtype == dtype else x.to(dtype)
    xa = _times(torch.bmm(xc, _gather_rows(lora_A, comp, dtype).transpose(1, 2)), mult)
    b_rows = _gather_rows(lora_BT, comp, dtype)
    if out is not None and out.dtype == dtype:
        return out.baddbmm_(xa, b_rows)
    delta = torch.bmm(xa, b_rows)
    return delta if out is None else out + delta


def needs_autograd(x: torch.Tensor, lora_A: torch.Tensor, lora_BT: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and (x.requires_grad or lora_A.requires_grad or lora_BT.requires_grad)


def apply_rows(x: torch.Tensor, a_rows: torch.Tensor, b_rows: torch.Tensor, dtype: torch.dtype, *,
               out: torch.Tensor | None = None) -> torch.Tensor:
    """The LoRA update without autograd from gathered rows: A rows (N, r, d_in) and B^T rows
    (N, r, d_out) with the scales already applied to them (:meth:`LSLoLinear._rows_for`)."""
    xc = x if x.dtype == dtype else x.to(dtype)
    xa = torch.bmm(xc, a_rows.transpose(1, 2))
    if out is not None and out.dtype == dtype:
        return out.baddbmm_(xa, b_rows)
    delta = torch.bmm(xa, b_rows)
    return delta if out is None else out + delta


def packed_layout(ranks: list[int]) -> tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor]:
    """(offsets, comp_index (L, r_max), comp_valid (L, r_max), comp_lang (R,)) of packed ranks."""
    offsets, pos = [], 0
    for r in ranks:
        offsets.append(pos)
        pos += r
    r_max = max(ranks, default=0)
    index = torch.zeros(len(ranks), r_max, dtype=torch.long)
    valid = torch.zeros(len(ranks), r_max, dtype=torch.bool)
    for lang, (off, r) in enumerate(zip(offsets, ranks)):
        index[lang, :r] = torch.arange(off, off + r)
        valid[lang, :r] = True
    comp_lang = torch.repeat_interleave(torch.arange(len(ranks)), torch.tensor(ranks, dtype=torch.long))
    return offsets, index, valid, comp_lang


def pack_padded(t: torch.Tensor, ranks: list[int], kind: str) -> torch.Tensor:
    """A padded per-language stack (lslo <= 0.1 layout) as packed rows.

    ``kind="A"``: (L, r_max, d_in) -> (R, d_in); ``kind="B"``: (L, d_out, r_max) -> (R, d_out).
    Used to resume checkpoints (masks, optimizer state) written with the padded layout.
    """
    if kind == "A":
        return torch.cat([t[lang, :r] for lang, r in enumerate(ranks)], 0)
    return torch.cat([t[lang, :, :r].transpose(0, 1) for lang, r in enumerate(ranks)], 0)


class WrapsLinear(nn.Module):
    """A module standing in for the ``nn.Linear`` it wraps (``self.base``): HF code reads
    ``in_features``, ``out_features`` and ``.weight.dtype`` / ``.device`` of what it calls."""

    base: nn.Linear

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> torch.Tensor:  # some HF code reads .weight.dtype / .device
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias


class LSLoLinear(WrapsLinear):
    """A frozen linear map with per-language low-rank updates, hard-routed per row.

    Storage is packed (see the module docstring): ``lora_A`` (R, d_in), ``lora_BT`` (R, d_out)
    and the pruning masks ``mask_A`` / ``mask_BT`` of the same shapes; ``A_of(l)``,
    ``B_of(l)``, ``mask_A_of(l)``, ``mask_B_of(l)`` are language l's (r_l, d_in) / (d_out, r_l)
    views, writable in place.
    """

    def __init__(
        self,
        base: nn.Linear,
        ranks: list[int],
        scales: list[float],
        languages: tuple[str, ...],
        router: Router,
        *,
        routing: str,
        side: str,
        layer: int,
        position: str,
        name: str,
        dropout: float = 0.0,
        init: str = "kaiming",
    ) -> None:
        super().__init__()
        if routing not in ("source", "target"):
            raise ValueError(f"routing must be 'source' or 'target', got {routing!r}")
        if any(r < 0 for r in ranks):
            raise ValueError(f"ranks must be >= 0, got {ranks}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.languages = tuple(languages)
        self.router = router
        self.routing, self.side, self.layer, self.position, self.name = routing, side, layer, position, name
        ranks = [int(r) for r in ranks]
        d_in, d_out = base.in_features, base.out_features
        dev = base.weight.device
        offsets, index, valid, comp_lang = packed_layout(ranks)
        total = sum(ranks)
        self._rows = [slice(off, off + r) for off, r in zip(offsets, ranks)]
        self._rank_list = ranks  # host copy: no device read (and works on the meta device)
        self.lora_A = nn.Parameter(torch.zeros(total, d_in, device=dev, dtype=torch.float32))
        self.lora_BT = nn.Parameter(torch.zeros(total, d_out, device=dev, dtype=torch.float32))
        self.register_buffer("ranks", torch.tensor(ranks, dtype=torch.long, device=dev))
        self.register_buffer("scale", torch.tensor(scales, dtype=torch.float32, device=dev))
        self.register_buffer("mask_A", torch.ones(total, d_in, dtype=torch.bool, device=dev))
        self.register_buffer("mask_BT", torch.ones(total, d_out, dtype=torch.bool, device=dev))
        self.register_buffer("comp_index", index.to(dev), persistent=False)
        self.register_buffer("comp_valid", valid.to(dev), persistent=False)
        self.register_buffer("comp_lang", comp_lang.to(dev), persistent=False)
        self._padded = bool(not valid.all())
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self._mult_key: tuple[int, int] | None = None
        self._mult: torch.Tensor | None = None
        self.reset_parameters(init)

    # ------------------------------------------------------------- per-language views
    def rows(self, lang: int) -> slice:
        """Language ``lang``'s rows of the packed tables."""
        return self._rows[lang]

    def A_of(self, lang: int) -> torch.Tensor:
        return self.lora_A[self._rows[lang]]

    def B_of(self, lang: int) -> torch.Tensor:
        return self.lora_BT[self._rows[lang]].T

    def mask_A_of(self, lang: int) -> torch.Tensor:
        return self.mask_A[self._rows[lang]]

    def mask_B_of(self, lang: int) -> torch.Tensor:
        return self.mask_BT[self._rows[lang]].T

    def param_masks(self) -> tuple[tuple[nn.Parameter, str], ...]:
        """(parameter, name of its same-shape mask buffer) pairs."""
        return (self.lora_A, "mask_A"), (self.lora_BT, "mask_BT")

    def masks_from_saved(self, saved: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Saved masks in this layout: lslo 0.1's padded ``mask_A`` / ``mask_B`` are packed."""
        if "mask_BT" in saved or "mask_B" not in saved:
            return saved
        ranks = self.ranks.tolist()
        return {"mask_A": pack_padded(saved["mask_A"], ranks, "A"), "mask_BT": pack_padded(saved["mask_B"], ranks, "B")}

    def packed_from_padded(self, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """A tensor shaped like parameter ``p`` in lslo 0.1's padded layout (e.g. Adam state), packed."""
        if t.dim() != 3:
            return t
        return pack_padded(t, self.ranks.tolist(), "A" if p is self.lora_A else "B")

    def kept_per_language(self) -> torch.Tensor:
        """(L,) kept entries of A and B per language."""
        per_row = self.mask_A.sum(dim=1) + self.mask_BT.sum(dim=1)
        return torch.zeros(len(self.languages), dtype=torch.long, device=per_row.device).index_add_(
            0, self.comp_lang, per_row)

    def reset_parameters(self, init: str = "kaiming") -> None:
        with torch.no_grad():
            for lang, r in enumerate(self._rank_list):
                if r == 0:
                    continue
                a = torch.empty(r, self.in_features, device=self.lora_A.device)
                if init == "kaiming":
                    nn.init.kaiming_uniform_(a, a=math.sqrt(5))  # as nn.Linear / the paper
                else:
                    nn.init.normal_(a, std=1.0 / max(r, 1))
                self.lora_A[self._rows[lang]] = a
            self.lora_BT.zero_()

    def delta_weight(self, lang: int) -> torch.Tensor:
        """s_l * B_l A_l as a (d_out, d_in) matrix (used by merge and tests)."""
        return self.scale[lang] * (self.B_of(lang) @ self.A_of(lang))

    # ------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.lora_A.shape[0] == 0:  # every rank is 0
            return out
        ids, h, dtype = self._routed(x)
        n = ids.shape[0]
        o = out.view(n, -1, out.shape[-1]) if out.is_contiguous() else None  # accumulate in place
        if not needs_autograd(h, self.lora_A, self.lora_BT):
            a_rows, b_rows = self._rows_for(ids, dtype)
            delta = apply_rows(h, a_rows, b_rows, dtype, out=o)
            return delta.view_as(out) if o is not None else out + delta.view_as(out)
        comp = self.comp_index.index_select(0, ids)
        mult = self._mult_or_none()
        mult = None if mult is None else mult.index_select(0, ids)
        if o is not None:
            return routed_lora(h, self.lora_A, self.lora_BT, comp, mult, dtype, out=o).view_as(out)
        return out + routed_lora(h, self.lora_A, self.lora_BT, comp, mult, dtype).view_as(out)

    def adapter_delta(self, x: torch.Tensor) -> torch.Tensor | None:
        """The adapters' update for ``x`` without autograd, routed as :meth:`forward` routes it,
        shaped like ``self.base(x)``; None when every rank is 0. ``base(x) + adapter_delta(x)``
        equals ``forward(x)`` bit for bit, so a caller may run the base on other rows (lslo's
        encoder runs it on the real tokens only, without the padding) and add the update."""
        if self.lora_A.shape[0] == 0:
            return None
        ids, h, dtype = self._routed(x)
        a_rows, b_rows = self._rows_for(ids, dtype)
        return apply_rows(h, a_rows, b_rows, dtype).view(*x.shape[:-1], self.out_features)

    def _routed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.dtype]:
        """The sentences' language ids, x (after dropout) as (sentences, rows per sentence, d_in),
        and the compute dtype. Rows of one sentence (beam/sample expansion) are contiguous, so a
        (B*k, T, d) input is viewed as (B, k*T, d): one gathered pair per sentence, not per row."""
        ids, _ = self.router.groups(self.routing, x.shape[0], x.device)
        drop = self.dropout
        h = (x if type(drop) is nn.Identity else drop(x)).reshape(ids.shape[0], -1, x.shape[-1])
        return ids, h, _compute_dtype(h)

    def _rows_for(self, ids: torch.Tensor, dtype: torch.dtype):
        """The sentences' gathered A rows and B^T rows, the B^T rows times their scales (``ids``:
        one language per sentence), memoised by the router while its routing and these tensors are
        unchanged. Scaling B instead of the (N, T, r) product saves a multiply per call; it rounds
        differently from the autograd path, within float32 rounding (tested)."""
        def build():
            comp = self.comp_index.index_select(0, ids)
            b_rows = _gather_rows(self.lora_BT, comp, dtype)
            mult = self._mult_or_none()
            if mult is not None:
                b_rows = b_rows * mult.index_select(0, ids).to(dtype)[:, :, None]
            return _gather_rows(self.lora_A, comp, dtype), b_rows

        a, bt, scale = self.lora_A, self.lora_BT, self.scale
        try:
            version = (a._version, bt._version, scale._version, a.data_ptr(), bt.data_ptr(), scale.data_ptr())
        except RuntimeError:  # inference tensors have no version counter: nothing is kept
            return build()
        return self.router.memo((id(self), id(ids), dtype), version, build)

    def _mult_table(self) -> torch.Tensor:
        """(L, r_max): the language's scale on its own slots, 0 on the slots beyond its rank."""
        return self.scale[:, None] * self.comp_valid.to(self.scale.dtype)

    def _mult_or_none(self) -> torch.Tensor | None:
        """``_mult_table()``, or None when it is all ones (equal ranks, every scale 1: the paper's
        high/medium setting) so no multiply is needed. Re-checked whenever the scale buffer is
        replaced or modified in place (its version changes)."""
        scale = self.scale
        try:
            key = (scale.data_ptr(), scale._version)
        except RuntimeError:  # inference tensors (and tracing) have no version counter: always scale
            return self._mult_table()
        if self._mult_key != key:
            unit = not self._padded and bool((scale == 1).all())
            self._mult = None if unit else self._mult_table()
            self._mult_key = key
        return self._mult

    def _delta(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The update for x with one language index per row of x (N rows), as (N, -1, d_out)."""
        h = self.dropout(x).reshape(x.shape[0], -1, self.in_features)
        if self.lora_A.shape[0] == 0:
            return h.new_zeros(h.shape[0], h.shape[1], self.out_features)
        return routed_lora(h, self.lora_A, self.lora_BT, self.comp_index.index_select(0, idx),
                           self._mult_table().index_select(0, idx), _compute_dtype(h))

    def forward_reference(self, x: torch.Tensor) -> torch.Tensor:
        """Loop-over-languages implementation kept for tests and benchmarks."""
        out = self.base(x)
        idx = self.router.index(self.routing, x.shape[0], x.device)
        h = self.dropout(x)
        out = out.clone()
        for lang, r in enumerate(self.ranks.tolist()):
            rows = idx == lang
            if not r or not bool(rows.any()):
                continue
            a, b = self.A_of(lang), self.B_of(lang)
            out[rows] = out[rows] + self.scale[lang] * ((h[rows] @ a.T) @ b.T).to(out.dtype)
        return out

    def extra_repr(self) -> str:
        ranks = ",".join(f"{lang}:{r}" for lang, r in zip(self.languages, self.ranks.tolist()))
        return f"{self.name}, {self.routing}-indexed, ranks=[{ranks}]"
