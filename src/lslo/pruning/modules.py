"""The adapted layers pruning works on, found in a model and checked."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class LSLoModule(Protocol):
    """What pruning and reporting need of an adapted layer (``LSLoLinear`` and the search's
    dual-routing layer both are one). Shapes: ``lora_A``/``mask_A`` (L, r_max, d_in),
    ``lora_B``/``mask_B`` (L, d_out, r_max), ``ranks`` (L,) with r_l <= r_max."""

    lora_A: torch.Tensor
    lora_B: torch.Tensor
    mask_A: torch.Tensor
    mask_B: torch.Tensor
    ranks: torch.Tensor


def is_lslo(m: Any) -> bool:
    """True for a module that satisfies :class:`LSLoModule`."""
    return isinstance(m, LSLoModule)


def find_lslo_modules(model: nn.Module) -> list[nn.Module]:
    """All LSLo-like submodules (duck-typed: lora_A, lora_B, mask_A, mask_B, ranks), in module order."""
    return [m for m in model.modules() if is_lslo(m)]


def as_module_list(modules: nn.Module | Iterable[nn.Module]) -> list[nn.Module]:
    if isinstance(modules, nn.Module):
        mods = [modules] if is_lslo(modules) else find_lslo_modules(modules)
    else:
        mods = list(modules)
    for m in mods:
        if not is_lslo(m):
            raise TypeError(
                f"{type(m).__name__} is not an LSLo module (needs lora_A, lora_B, mask_A, mask_B, ranks)"
            )
        L, r_max, _ = m.lora_A.shape
        if m.lora_B.shape[0] != L or m.lora_B.shape[2] != r_max:
            raise ValueError(
                f"{module_name(m)}: lora_A {tuple(m.lora_A.shape)} and lora_B {tuple(m.lora_B.shape)} disagree"
            )
        if m.mask_A.shape != m.lora_A.shape or m.mask_B.shape != m.lora_B.shape:
            raise ValueError(f"{module_name(m)}: masks must have the shapes of lora_A/lora_B")
        if m.mask_A.dtype != torch.bool or m.mask_B.dtype != torch.bool:
            raise ValueError(f"{module_name(m)}: masks must be bool tensors")
        if m.ranks.shape != (L,) or int(m.ranks.max()) > r_max or int(m.ranks.min()) < 0:
            raise ValueError(f"{module_name(m)}: ranks must be (L,) with 0 <= r_l <= r_max")
    return mods


def module_name(m: nn.Module) -> str:
    return str(getattr(m, "name", type(m).__name__))


def module_languages(m: nn.Module) -> tuple[str, ...]:
    langs = getattr(m, "languages", None)
    return tuple(langs) if langs is not None else tuple(str(i) for i in range(m.lora_A.shape[0]))


def position_key(m: nn.Module) -> str:
    return f"{getattr(m, 'side', '?')}.{getattr(m, 'layer', '?')}.{getattr(m, 'position', module_name(m))}"
