"""The adapted layers pruning works on, found in a model and checked."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class LSLoModule(Protocol):
    """What pruning and reporting need of an adapted layer (``LSLoLinear`` and the search's
    dual-routing layer both are one), whatever its storage layout: ``ranks`` (L,) and, for
    language l, writable views ``A_of(l)`` / ``mask_A_of(l)`` (r_l, d_in) and ``B_of(l)`` /
    ``mask_B_of(l)`` (d_out, r_l); ``param_masks()`` pairs each adapter parameter with the
    name of its same-shape bool mask buffer (True = kept)."""

    ranks: torch.Tensor

    def A_of(self, lang: int) -> torch.Tensor: ...

    def B_of(self, lang: int) -> torch.Tensor: ...

    def mask_A_of(self, lang: int) -> torch.Tensor: ...

    def mask_B_of(self, lang: int) -> torch.Tensor: ...

    def param_masks(self) -> tuple[tuple[torch.Tensor, str], ...]: ...


def is_lslo(m: Any) -> bool:
    """True for a module that satisfies :class:`LSLoModule`."""
    return isinstance(m, nn.Module) and isinstance(m, LSLoModule)


def find_lslo_modules(model: nn.Module) -> list[nn.Module]:
    """All LSLo-like submodules (duck-typed, see :class:`LSLoModule`), in module order."""
    return [m for m in model.modules() if is_lslo(m)]


def as_module_list(modules: nn.Module | Iterable[nn.Module]) -> list[nn.Module]:
    if isinstance(modules, nn.Module):
        mods = [modules] if is_lslo(modules) else find_lslo_modules(modules)
    else:
        mods = list(modules)
    for m in mods:
        if not is_lslo(m):
            raise TypeError(
                f"{type(m).__name__} is not an LSLo module (needs ranks, A_of, B_of, mask_A_of, mask_B_of, "
                "param_masks)"
            )
        if m.ranks.dim() != 1 or (m.ranks.numel() and int(m.ranks.min()) < 0):
            raise ValueError(f"{module_name(m)}: ranks must be (L,) with r_l >= 0")
        for lang, r in enumerate(m.ranks.tolist()):
            a, b, ma, mb = m.A_of(lang), m.B_of(lang), m.mask_A_of(lang), m.mask_B_of(lang)
            if a.shape[0] != r or b.dim() != 2 or b.shape[1] != r:
                raise ValueError(
                    f"{module_name(m)}: language {lang}: A {tuple(a.shape)} and B {tuple(b.shape)} do not have rank {r}"
                )
            if ma.shape != a.shape or mb.shape != b.shape:
                raise ValueError(f"{module_name(m)}: masks must have the shapes of A and B")
            if ma.dtype != torch.bool or mb.dtype != torch.bool:
                raise ValueError(f"{module_name(m)}: masks must be bool tensors")
    return mods


def module_name(m: nn.Module) -> str:
    return str(getattr(m, "name", type(m).__name__))


def module_languages(m: nn.Module) -> tuple[str, ...]:
    langs = getattr(m, "languages", None)
    return tuple(langs) if langs is not None else tuple(str(i) for i in range(m.ranks.shape[0]))


def position_key(m: nn.Module) -> str:
    return f"{getattr(m, 'side', '?')}.{getattr(m, 'layer', '?')}.{getattr(m, 'position', module_name(m))}"
