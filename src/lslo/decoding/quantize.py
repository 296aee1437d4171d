"""int8 linear layers for CPU inference: one scale per weight row and one per token.

``quantize_int8(model)`` replaces every float32 ``nn.Linear`` of the model (the base's
projections, also those inside LSLo layers, and the output projection) by :class:`Int8Linear`:

- the weight is stored in int8 with one scale per output row (``max |w_row| / 127``, symmetric);
- each call quantises its input with one scale per token (row), symmetric, 8 bits;
- the product runs in int8 with int32 accumulation (``torch._int_mm``), then is scaled back to
  float32 per row and per column, and the bias is added in float32.

This is CTranslate2's int8 scheme. torch's ``quantize_dynamic`` keeps one scale per weight tensor
and one per call for all its tokens, at 7 bits; it changes many more translations (measured in
``benchmarks/engines.py``). LSLo's adapter weights are plain parameters, not ``nn.Linear``
modules, so they stay in float32 and keep their routing. An option, never the default.
"""

from __future__ import annotations

import torch
from torch import nn

from lslo.decoding.gemm import PackedLinear
from lslo.errors import LSLoError

QUANTIZE = ("none", "int8")


class QuantizeError(LSLoError):
    """A model that cannot be quantised here (a GPU device, or no float32 linear layers)."""


class Int8Linear(nn.Module):
    """A linear layer on int8 weights (a scale per output row) and int8 inputs (a scale per token)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        w = linear.weight.detach().float()
        scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight_int8", torch.round(w / scale[:, None]).to(torch.int8).t().contiguous())
        self.register_buffer("weight_scale", scale)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().float(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, shape[-1]).float()
        # few ops per call: at decoding's small shapes each op's dispatch costs as much as its work
        scale = torch.linalg.vector_norm(rows, float("inf"), dim=1, keepdim=True).clamp_(min=1e-12)
        q = (rows * (127.0 / scale)).round_().to(torch.int8)
        y = torch._int_mm(q, self.weight_int8).float().mul_(scale.div_(127.0))
        y = y.mul_(self.weight_scale) if self.bias is None else torch.addcmul(self.bias, y, self.weight_scale)
        return y.view(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def _swap(module: nn.Module) -> int:
    n = 0
    for name, child in module.named_children():
        if type(child) in (nn.Linear, PackedLinear):
            setattr(module, name, Int8Linear(child))
            n += 1
        else:
            n += _swap(child)
    return n


def quantize_int8(model: nn.Module) -> int:
    """Replace ``model``'s ``nn.Linear`` layers by :class:`Int8Linear` in place; returns how many.

    CPU only (``torch._int_mm`` on int8 is used here as a CPU kernel); the model is put in float32
    first."""
    params = list(model.parameters())
    if params and params[0].device.type != "cpu":
        raise QuantizeError(f"--quantize int8 runs on the CPU; the model is on {params[0].device}")
    if not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise QuantizeError("--quantize int8: the model has no nn.Linear layer to quantise")
    model.float()
    return _swap(model)
