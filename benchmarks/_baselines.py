"""Baselines for benchmarks/speed.py: a plain shared LoRA, PEFT LoRA, saved-tensor accounting."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.nn import functional as F


class SharedLoRALinear(nn.Module):
    """One LoRA pair for every sentence: h = W0 x + s * B A x (the textbook implementation)."""

    def __init__(self, base: nn.Linear, rank: int, scale: float = 1.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        dev = base.weight.device
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=dev))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=dev))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scale = scale
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.linear(F.linear(self.dropout(x), self.lora_A), self.lora_B)
        return self.base(x) + (h * self.scale if self.scale != 1.0 else h)


def inject_shared_lora(model: nn.Module, names: Iterable[str], rank: int) -> list[nn.Parameter]:
    """Replace each named nn.Linear by a SharedLoRALinear; freeze everything else."""
    for p in model.parameters():
        p.requires_grad_(False)
    params: list[nn.Parameter] = []
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        wrapped = SharedLoRALinear(getattr(parent, child), rank)
        setattr(parent, child, wrapped)
        params += [wrapped.lora_A, wrapped.lora_B]
    return params


def peft_lora(model: nn.Module, names: Iterable[str], rank: int):
    """PEFT LoRA (rank r, alpha r: scale 1, no dropout) on exactly these module names."""
    from peft import LoraConfig, get_peft_model

    pattern = "^(?:" + "|".join(re.escape(n) for n in names) + ")$"
    cfg = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules=pattern, bias="none")
    peft_model = get_peft_model(model, cfg)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    return peft_model, params


def saved_tensor_bytes(fn: Callable[[], torch.Tensor], exclude: Iterable[torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Run fn; return its result and the bytes of unique storages autograd saved for backward.

    Storages of ``exclude`` (parameters and buffers: they exist anyway) are not counted; a
    storage saved by several nodes counts once. This is the activation memory a training
    step holds at the end of the forward pass, which is where its peak is.
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        ptr = s.data_ptr()
        if ptr not in skip:
            seen[ptr] = max(seen.get(ptr, 0), s.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(seen.values())


def cpu_peak_bytes(fn: Callable[[], object]) -> int:
    """Peak of host memory allocated by torch while fn runs, above what was allocated before.

    Uses the profiler's allocator events (``profile_memory=True``): each carries the running total
    of bytes allocated since profiling started, so the maximum is the step's peak on top of what
    already existed (weights, optimizer state). The CPU counterpart of ``torch.cuda.max_memory_allocated``.
    """
    import json
    import os
    import tempfile

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path, encoding="utf-8") as f:
            events = json.load(f)["traceEvents"]
    finally:
        os.unlink(path)
    mem = [e["args"] for e in events if e.get("name") == "[memory]" and e.get("args", {}).get("Device Type", 0) == 0]
    if not mem:
        return 0
    mem.sort(key=lambda a: a.get("Ev Idx", 0))
    # the running total also counts blocks allocated in earlier profiled regions and still alive
    start = mem[0]["Total Allocated"] - mem[0]["Bytes"]
    return max(0, max(a["Total Allocated"] for a in mem) - start)
