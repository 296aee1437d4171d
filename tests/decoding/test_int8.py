"""int8 linears (``lslo.decoding.quantize``): a scale per weight row and per token, so a row's error
stays within its own scale's rounding, whatever the other rows hold."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lslo.decoding.quantize import Int8Linear, quantize_int8


def test_int8_weights_keep_one_scale_per_row():
    torch.manual_seed(0)
    lin = nn.Linear(32, 6)
    with torch.no_grad():
        lin.weight[0] *= 1000  # a loud row must not cost the quiet ones their precision
    q = Int8Linear(lin)
    assert q.weight_int8.dtype == torch.int8 and q.weight_int8.shape == (32, 6)
    back = (q.weight_int8.t().float() * q.weight_scale[:, None])
    err = (back - lin.weight).abs()
    # symmetric rounding: at most half a step of the row's own scale, and the largest entry is exact
    assert torch.all(err <= q.weight_scale[:, None] / 2 + 1e-6)
    assert torch.allclose(q.weight_scale, lin.weight.abs().amax(dim=1) / 127)
    assert torch.all(q.weight_int8.abs().amax(dim=0) == 127)


def test_int8_inputs_keep_one_scale_per_token():
    torch.manual_seed(0)
    lin = nn.Linear(64, 16)
    q = Int8Linear(lin)
    x = torch.randn(2, 3, 64)
    x[0, 0] *= 1e4  # one loud token in the batch
    with torch.no_grad():
        got, want = q(x), F.linear(x, lin.weight, lin.bias)
    assert got.shape == want.shape == (2, 3, 16)
    rel = (got - want).norm(dim=-1) / want.norm(dim=-1)
    # every token, quiet ones included, keeps about 1% accuracy: a per-tensor scale would have
    # rounded the quiet tokens to zero next to the loud one
    assert float(rel.max()) < 0.02, rel
    shared = x.abs().max() / 127
    assert float(((x[1] / shared).round() * shared - x[1]).abs().max()) > 0.1  # per tensor: quiet rows lost


def test_quantize_int8_swaps_every_linear_and_leaves_other_parameters():
    model = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.Sequential(nn.Linear(8, 4, bias=False)))
    assert quantize_int8(model) == 2
    assert isinstance(model[0], Int8Linear) and isinstance(model[2][0], Int8Linear)
    assert model[2][0].bias is None and type(model[1]) is nn.LayerNorm
    with torch.no_grad():
        assert model(torch.randn(5, 8)).shape == (5, 4)
    assert "in_features=8, out_features=4, bias=False" in repr(model[2][0])
