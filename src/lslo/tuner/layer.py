"""The LSLo linear layer: a frozen ``nn.Linear`` plus one LoRA pair per language.

    h = W0 x + s_l * B_l A_l x,   l = the language this sentence is routed to

All languages' pairs are stacked into two parameters, padded to the largest rank:
``lora_A`` (L, r_max, d_in) and ``lora_B`` (L, d_out, r_max). Padding entries
(component j >= r_l) are zero and stay zero: they receive no gradient because
the matching entries of the other matrix are zero, and ``mask_A``/``mask_B`` mark
them as not kept. Routing gathers each sentence's pair by index and applies it
with batched matmuls (``routed_lora``), so there is no Python loop over languages
and no host sync: the cost does not grow with the number of languages. A custom
autograd function keeps only x and the small (N, T, r) intermediate for backward
(not the gathered per-sentence copies of A and B) and regathers in backward, so a
training step holds as much memory as one shared LoRA. Beam-expanded rows of one
sentence share one gathered pair.
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

    def __init__(self) -> None:
        self.src: torch.Tensor | None = None
        self.tgt: torch.Tensor | None = None
        self._expanded: dict[tuple[str, int, torch.device], torch.Tensor] = {}
        self._groups: dict[tuple[str, int, torch.device], tuple[torch.Tensor, int]] = {}

    def set(self, src: torch.Tensor | None, tgt: torch.Tensor | None) -> None:
        self.src, self.tgt = src, tgt
        self._expanded = {}
        self._groups = {}

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


def _gather(w: torch.Tensor, idx: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``w[idx]`` in ``dtype``, casting whichever of the table or the gathered copy is smaller."""
    if w.dtype == dtype:
        return w.index_select(0, idx)
    if w.shape[0] < idx.shape[0]:
        return w.to(dtype).index_select(0, idx)
    return w.index_select(0, idx).to(dtype)


def _scaled(t: torch.Tensor, scale: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor:
    """t (N, T, r) times scale[idx[n]] per row, in place; None means every scale is 1."""
    if scale is not None:
        t.mul_(scale.index_select(0, idx).to(t.dtype)[:, None, None])
    return t


class _RoutedLoRA(torch.autograd.Function):
    """``out[n] = s[idx[n]] * x[n] @ A[idx[n]].T @ B[idx[n]].T`` for x (N, T, d_in).

    Plain autograd through ``A[idx]`` would keep the gathered per-row copies of A and B
    (N * r * (d_in + d_out) elements) alive until backward. This function keeps only
    x (in the compute dtype: the same tensor a LoRA's ``lora_A`` linear keeps), the
    small (N, T, r) intermediate and idx; backward gathers again and accumulates the
    weight gradients per language with ``index_add_``. Parameters stay in their own
    dtype (fp32); the computation runs in ``dtype`` (the autocast dtype under autocast)
    and the weight gradients come back in the parameters' dtype.
    """

    @staticmethod
    def forward(ctx, x, lora_A, lora_B, idx, scale, dtype):
        xc = x if x.dtype == dtype else x.to(dtype)
        xa = _scaled(torch.bmm(xc, _gather(lora_A, idx, dtype).transpose(1, 2)), scale, idx)  # (N, T, r)
        out = torch.bmm(xa, _gather(lora_B, idx, dtype).transpose(1, 2))  # (N, T, d_out)
        ctx.save_for_backward(xc, xa, idx, lora_A, lora_B, scale)
        ctx.x_dtype = x.dtype
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        xc, xa, idx, lora_A, lora_B, scale = ctx.saved_tensors
        need_x, need_A, need_B = ctx.needs_input_grad[:3]
        dtype = xa.dtype
        g = grad_out if grad_out.dtype == dtype else grad_out.to(dtype)
        grad_x = grad_A = grad_B = None
        if need_B:
            # per-row (d_out, r) products, summed per language in the parameter dtype
            g_b = torch.bmm(g.transpose(1, 2), xa)
            grad_B = torch.zeros_like(lora_B).index_add_(0, idx, g_b.to(lora_B.dtype))
            del g_b
        if need_x or need_A:
            g_xa = _scaled(torch.bmm(g, _gather(lora_B, idx, dtype)), scale, idx)  # (N, T, r)
            if need_A:
                g_a = torch.bmm(g_xa.transpose(1, 2), xc)
                grad_A = torch.zeros_like(lora_A).index_add_(0, idx, g_a.to(lora_A.dtype))
                del g_a
            if need_x:
                grad_x = torch.bmm(g_xa, _gather(lora_A, idx, dtype))
                if grad_x.dtype != ctx.x_dtype:
                    grad_x = grad_x.to(ctx.x_dtype)
        return grad_x, grad_A, grad_B, None, None, None


def routed_lora(
    x: torch.Tensor,
    lora_A: torch.Tensor,
    lora_B: torch.Tensor,
    idx: torch.Tensor,
    scale: torch.Tensor | None,
    dtype: torch.dtype | None = None,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-row LoRA update: row n of x (N, T, d_in) uses pair idx[n]; returns (N, T, d_out) in ``dtype``.

    ``lora_A`` (L, r, d_in), ``lora_B`` (L, d_out, r), ``scale`` (L,) or None (all 1), ``idx`` (N,)
    long. No Python loop over languages and no host synchronisation. With ``out`` (N, T, d_out)
    and no autograd needed, the update is added to ``out`` in place and ``out`` is returned.
    """
    dtype = x.dtype if dtype is None else dtype
    if torch.is_grad_enabled() and (x.requires_grad or lora_A.requires_grad or lora_B.requires_grad):
        delta = _RoutedLoRA.apply(x, lora_A, lora_B, idx, scale, dtype)
        return delta if out is None else out + delta
    xc = x if x.dtype == dtype else x.to(dtype)
    xa = _scaled(torch.bmm(xc, _gather(lora_A, idx, dtype).transpose(1, 2)), scale, idx)
    b_t = _gather(lora_B, idx, dtype).transpose(1, 2)
    if out is not None and out.dtype == dtype:
        return out.baddbmm_(xa, b_t)
    delta = torch.bmm(xa, b_t)
    return delta if out is None else out + delta


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
    """A frozen linear map with per-language low-rank updates, hard-routed per row."""

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
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.languages = tuple(languages)
        self.router = router
        self.routing, self.side, self.layer, self.position, self.name = routing, side, layer, position, name
        n_lang, r_max = len(ranks), max(ranks)
        d_in, d_out = base.in_features, base.out_features
        dev = base.weight.device
        self.lora_A = nn.Parameter(torch.zeros(n_lang, r_max, d_in, device=dev, dtype=torch.float32))
        self.lora_B = nn.Parameter(torch.zeros(n_lang, d_out, r_max, device=dev, dtype=torch.float32))
        self.register_buffer("ranks", torch.tensor(ranks, dtype=torch.long, device=dev))
        self.register_buffer("scale", torch.tensor(scales, dtype=torch.float32, device=dev))
        valid = torch.arange(r_max, device=dev)[None, :] < self.ranks[:, None]  # (L, r_max)
        self.register_buffer("mask_A", valid[:, :, None].expand(n_lang, r_max, d_in).clone())
        self.register_buffer("mask_B", valid[:, None, :].expand(n_lang, d_out, r_max).clone())
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self._scale_key: tuple[int, int] | None = None
        self._unit_scale = False
        self.reset_parameters(init)

    def reset_parameters(self, init: str = "kaiming") -> None:
        with torch.no_grad():
            for lang, r in enumerate(self.ranks.tolist()):
                a = torch.empty(r, self.in_features, device=self.lora_A.device)
                if init == "kaiming":
                    nn.init.kaiming_uniform_(a, a=math.sqrt(5))  # as nn.Linear / the paper
                else:
                    nn.init.normal_(a, std=1.0 / r)
                self.lora_A[lang].zero_()
                self.lora_A[lang, :r] = a
            self.lora_B.zero_()

    def valid_A(self) -> torch.Tensor:
        r_max = self.lora_A.shape[1]
        valid = torch.arange(r_max, device=self.ranks.device)[None, :] < self.ranks[:, None]
        return valid[:, :, None].expand_as(self.lora_A)

    def valid_B(self) -> torch.Tensor:
        r_max = self.lora_A.shape[1]
        valid = torch.arange(r_max, device=self.ranks.device)[None, :] < self.ranks[:, None]
        return valid[:, None, :].expand_as(self.lora_B)

    def delta_weight(self, lang: int) -> torch.Tensor:
        """s_l * B_l A_l as a (d_out, d_in) matrix (used by merge and tests)."""
        return self.scale[lang] * (self.lora_B[lang] @ self.lora_A[lang])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        # Rows of one sentence (beam/sample expansion) are contiguous, so a (B*k, T, d) input is
        # viewed as (B, k*T, d): one gathered pair per sentence instead of one per row.
        ids, _ = self.router.groups(self.routing, x.shape[0], x.device)
        n = ids.shape[0]
        drop = self.dropout
        h = (x if type(drop) is nn.Identity else drop(x)).reshape(n, -1, x.shape[-1])
        scale, dtype = self._scale_or_none(), _compute_dtype(h)
        if out.is_contiguous():  # accumulate into the base output (in place when no autograd is needed)
            o = out.view(n, -1, out.shape[-1])
            return routed_lora(h, self.lora_A, self.lora_B, ids, scale, dtype, out=o).view_as(out)
        return out + routed_lora(h, self.lora_A, self.lora_B, ids, scale, dtype).view_as(out)

    def _scale_or_none(self) -> torch.Tensor | None:
        """``scale``, or None when every scale is 1 (the paper's setting) so no multiply is needed.

        Re-checked whenever the buffer is replaced or modified in place (its version changes).
        """
        scale = self.scale
        try:
            key = (scale.data_ptr(), scale._version)
        except RuntimeError:  # inference tensors (and tracing) have no version counter: always scale
            return scale
        if self._scale_key != key:
            self._unit_scale = bool((scale == 1).all())
            self._scale_key = key
        return None if self._unit_scale else scale

    def _delta(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The update for x with one language index per row of x (N rows), as (N, -1, d_out)."""
        h = self.dropout(x).reshape(x.shape[0], -1, self.in_features)
        return routed_lora(h, self.lora_A, self.lora_B, idx, self.scale, _compute_dtype(h))

    def forward_reference(self, x: torch.Tensor) -> torch.Tensor:
        """Loop-over-languages implementation kept for tests and benchmarks."""
        out = self.base(x)
        idx = self.router.index(self.routing, x.shape[0], x.device)
        h = self.dropout(x)
        out = out.clone()
        for lang, r in enumerate(self.ranks.tolist()):
            rows = idx == lang
            if not bool(rows.any()):
                continue
            a = self.lora_A[lang, :r]
            b = self.lora_B[lang, :, :r]
            out[rows] = out[rows] + self.scale[lang] * ((h[rows] @ a.T) @ b.T).to(out.dtype)
        return out

    def extra_repr(self) -> str:
        ranks = ",".join(f"{lang}:{r}" for lang, r in zip(self.languages, self.ranks.tolist()))
        return f"{self.name}, {self.routing}-indexed, ranks=[{ranks}]"
