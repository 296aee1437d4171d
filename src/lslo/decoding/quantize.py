"""Dynamic int8 quantisation of a model's frozen linear layers for CPU inference.

``quantize_int8(model)`` replaces every ``nn.Linear`` of the model (the base's projections, also
those inside LSLo layers, and the output projection) by torch's dynamically quantised linear:
int8 weights (one scale per tensor), activations quantised per call. LSLo's adapter weights are
plain parameters, not ``nn.Linear`` modules, so they stay in float32 and keep their routing.
Measured on the testbed base (``benchmarks/engines.py``): see the README's engine table for its
speed and chrF++ against float32; it is an option, never the default.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lslo.errors import LSLoError

QUANTIZE = ("none", "int8")


class QuantizeError(LSLoError):
    """A model that cannot be quantised here (a GPU device, or no float32 linear layers)."""


def quantize_int8(model: nn.Module) -> int:
    """Quantise ``model``'s ``nn.Linear`` layers to dynamic int8 in place; returns how many.

    CPU only (torch's dynamic quantised kernels are CPU kernels); the model is put in float32
    first, since the kernels take float32 activations."""
    params = list(model.parameters())
    if params and params[0].device.type != "cpu":
        raise QuantizeError(f"--quantize int8 runs on the CPU; the model is on {params[0].device}")
    linears = sum(isinstance(m, nn.Linear) for m in model.modules())
    if not linears:
        raise QuantizeError("--quantize int8: the model has no nn.Linear layer to quantise")
    model.float()
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)
    return linears
