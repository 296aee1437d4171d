"""Gradual magnitude pruning of LSLo adapters (Zhu & Gupta 2017 cubic schedule).

The paper (Cao et al., EMNLP 2024; docs/concepts/method.md#gradual-pruning) prunes the LSLo
weights during fine-tuning to find each language's *intrinsic subspace*:

    ratio(t) = R * (1 - (1 - (t - t1) / t2) ** 3)    t1 <= t <= t1 + t2
    ratio(t) = R                                      t > t1 + t2
    ratio(t) = 0                                      t < t1

Paper setting (``PruningConfig(enabled=True)`` reproduces it, every other field
is at the paper's value by default): t counted in epochs, t1 = 2, t2 = 10,
R = 0.9, prune once per epoch, only the B matrices, unstructured, layer-wise
cross-language pools.

Pools decide who competes for the surviving weights:

- ``layer`` (the paper's main mode): one pool per (side, layer) holding every
  position and ALL languages. Languages compete, so what each language keeps
  emerges from training.
- ``language``: one pool per language over all layers and both sides; every
  language keeps the same share.
- ``global``: one pool for everything.

Masks live in the modules' mask buffers (``param_masks()``, True = kept). The
forward reads the adapter parameters unmasked, so this module keeps pruned
entries exactly zero in the parameter data: ``Pruner.step`` zeros them when
masks change, and ``Pruner.attach(optimizer)`` masks gradients and zeros the
pruned entries of the parameters and of the optimizer state after every step.

Rank padding (component j >= r_l of language l) is never counted, never scored
and never "pruned": it is simply always zero and masked.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from lslo.pruning.modules import as_module_list, module_languages, module_name
from lslo.pruning.schedule import PruningConfig, cubic_ratio

__all__ = ["Pruner", "compact_component", "compact_module"]

_EPS = 1e-9


# --------------------------------------------------------------------------- schedule


# --------------------------------------------------------------------------- config


# --------------------------------------------------------------------------- module access


def _target_count(ratio: float, n: int) -> int:
    return min(n, int(round(ratio * n)))


# --------------------------------------------------------------------------- mask computation


def _k_smallest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask of the k smallest scores, ties broken by index: what a stable sort picks, in O(n)."""
    sel = torch.zeros_like(scores, dtype=torch.bool)
    if k <= 0:
        return sel
    thr = torch.kthvalue(scores.cpu() if scores.is_mps else scores, k).values.to(scores.device)
    sel = scores < thr
    need = k - int(sel.sum())
    if need > 0:
        sel[(scores == thr).nonzero().flatten()[:need]] = True
    return sel


def _prune_entries(pieces: list[tuple[torch.Tensor, torch.Tensor]], ratio: float) -> None:
    """Prune one pool of (weight view, mask view) pieces to exactly round(ratio * n) masked entries.

    Smallest |w| first; ties by position in the pool (module order, language, row-major).
    Entries already masked sort first, so they count toward the target and never come back.
    """
    if not pieces:
        return
    dev = pieces[0][0].device
    keep = torch.cat([m.reshape(-1).to(dev) for _, m in pieces])
    n = keep.numel()
    k = _target_count(ratio, n)
    if k <= n - int(keep.sum()):
        return
    scores = torch.cat([w.detach().reshape(-1).to(dev).float().abs() for w, _ in pieces])
    scores = torch.nan_to_num(scores, nan=math.inf).masked_fill(~keep, -1.0)
    keep &= ~_k_smallest(scores, k)
    off = 0
    for _, m in pieces:
        c = m.numel()
        m.copy_(keep[off : off + c].view(m.shape))
        off += c


def _prune_components(
    pieces: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]], ratio: float
) -> None:
    """Prune one pool of rank-one components (A row j with B column j) to round(ratio * n) dead ones.

    A component is dead when its A row or its B column keeps no entry; dead ones count toward the
    target. Score: ||A_l[j]|| * ||B_l[:, j]|| over kept entries; ties by position in the pool.
    """
    if not pieces:
        return
    dev = pieces[0][0].device
    alive_parts, score_parts = [], []
    for a, b, ma, mb in pieces:
        alive_parts.append((ma.any(dim=1) & mb.any(dim=0)).to(dev))
        na = (a.detach().float() * ma).norm(dim=1)
        nb = (b.detach().float() * mb).norm(dim=0)
        score_parts.append((na * nb).to(dev))
    alive = torch.cat(alive_parts)
    n = alive.numel()
    k = _target_count(ratio, n)
    if k <= n - int(alive.sum()):
        return
    scores = torch.cat(score_parts).masked_fill(~alive, -1.0)
    order = torch.sort(scores, stable=True).indices
    alive[order[:k]] = False
    off = 0
    for _, _, ma, mb in pieces:
        c = ma.shape[0]
        dead = ~alive[off : off + c].to(ma.device)
        ma.masked_fill_(dead[:, None], False)
        mb.masked_fill_(dead[None, :], False)
        off += c


# --------------------------------------------------------------------------- pruner


class Pruner:
    """Gradual magnitude pruning of a set of LSLo modules.

    Typical loop::

        pruner = Pruner(model, cfg)          # model or a list of LSLo modules
        pruner.attach(optimizer)             # masked grads + zeroed optimizer state
        for epoch in range(1, n_epochs + 1):
            for batch in ...: loss.backward(); optimizer.step()
            pruner.step(epoch)               # unit="epoch": t = completed epochs

    With ``unit="step"`` call ``pruner.step(optimizer_steps)`` after each optimizer step.
    """

    def __init__(self, modules: nn.Module | Iterable[nn.Module], config: PruningConfig) -> None:
        self.config = config.validate()
        self.modules: list[nn.Module] = as_module_list(modules)
        names = [module_name(m) for m in self.modules]
        self._keys = names if len(set(names)) == len(names) else [f"{i}:{n}" for i, n in enumerate(names)]
        self.last_time: float | None = None  # schedule point of the last mask update
        self.ratio = 0.0  # highest entry ratio applied so far
        self.component_ratio = 0.0  # highest component ratio applied so far
        self._optimizers: list[torch.optim.Optimizer] = []
        self._handles: list[Any] = []
        self._param_masks: dict[int, tuple[nn.Module, str]] = {}
        for m in self.modules:
            for p, mask_name in m.param_masks():
                self._param_masks[id(p)] = (m, mask_name)

    # ---- schedule

    def ratio_at(self, t: float) -> float:
        """The schedule at t: fraction of entries pruned (of components when ``structured`` is True)."""
        if not self.config.enabled:
            return 0.0
        c = self.config
        return cubic_ratio(t, c.start, c.duration, c.final_ratio)

    def _ratios_at(self, t: float) -> tuple[float, float]:
        """(entry ratio, component ratio) at t."""
        if not self.config.enabled:
            return 0.0, 0.0
        c = self.config
        return (
            cubic_ratio(t, c.start, c.duration, c.entry_final_ratio),
            cubic_ratio(t, c.start, c.duration, c.component_final_ratio),
        )

    def schedule_point(self, t: float) -> float | None:
        """The last pruning point <= t: start + k * frequency, capped at start + duration; None before start."""
        c = self.config
        if t < c.start:
            return None
        end = c.start + c.duration
        if t >= end:
            return float(end)
        k = math.floor((t - c.start) / c.frequency + _EPS)
        return float(min(end, c.start + k * c.frequency))

    def time_from_steps(self, optimizer_steps: int, steps_per_epoch: int | None = None) -> float:
        """Convert an optimizer step count to this config's unit."""
        if self.config.unit == "step":
            return float(optimizer_steps)
        if not steps_per_epoch:
            raise ValueError("pruning.unit is 'epoch': steps_per_epoch is needed to convert steps")
        return optimizer_steps / steps_per_epoch

    def step(self, t: float) -> float:
        """Update masks if a pruning point was reached since the last update; return the ratio in effect.

        The ratio used is the schedule's value at that pruning point (``schedule_point``), so the
        result does not depend on how often ``step`` is called.
        """
        if not self.config.enabled:
            return 0.0
        p = self.schedule_point(t)
        if p is not None and (self.last_time is None or p > self.last_time + _EPS):
            self.last_time = p
            self.prune_to(*self._ratios_at(p))
        return self.current_ratio

    @property
    def current_ratio(self) -> float:
        """``ratio_at`` of the last pruning point (0 before the first)."""
        return 0.0 if self.last_time is None else self.ratio_at(self.last_time)

    # ---- masks

    def _groups(self) -> dict[Any, list[tuple[nn.Module, int]]]:
        g = self.config.granularity
        groups: dict[Any, list[tuple[nn.Module, int]]] = {}
        for m in self.modules:
            for lang_idx, code in enumerate(module_languages(m)):
                if g == "layer":
                    key: Any = (str(getattr(m, "side", "")), int(getattr(m, "layer", 0)))
                elif g == "language":
                    key = code
                else:
                    key = "all"
                groups.setdefault(key, []).append((m, lang_idx))
        return groups

    @torch.no_grad()
    def prune_to(self, ratio: float, component_ratio: float = 0.0) -> None:
        """Prune every pool to at least ``ratio`` of entries / ``component_ratio`` of components, then zero.

        Monotone: masks only lose entries; a lower ratio than before changes nothing.
        ``matrices="AB"`` prunes A and B in separate pools: B A = (cB)(A/c), so their
        magnitudes are not comparable under one threshold.
        """
        for members in self._groups().values():
            if component_ratio > 0:
                comps = []
                for m, lang in members:
                    r = int(m.ranks[lang])
                    if r:
                        comps.append((m.A_of(lang), m.B_of(lang), m.mask_A_of(lang), m.mask_B_of(lang)))
                _prune_components(comps, component_ratio)
            if ratio > 0:
                for mat in self.config.matrices:
                    pieces = []
                    for m, lang in members:
                        r = int(m.ranks[lang])
                        if not r:
                            continue
                        if mat == "A":
                            pieces.append((m.A_of(lang), m.mask_A_of(lang)))
                        else:
                            pieces.append((m.B_of(lang), m.mask_B_of(lang)))
                    _prune_entries(pieces, ratio)
        self.ratio = max(self.ratio, float(ratio))
        self.component_ratio = max(self.component_ratio, float(component_ratio))
        self.apply_masks()

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Zero pruned (and padding) entries of the parameters and of attached optimizers' state."""
        for m in self.modules:
            for p, mask_name in m.param_masks():
                p.data.masked_fill_(~getattr(m, mask_name), 0)
        for opt in self._optimizers:
            self._zero_state(opt)

    @torch.no_grad()
    def _zero_state(self, optimizer: torch.optim.Optimizer) -> None:
        for group in optimizer.param_groups:
            for p in group["params"]:
                entry = self._param_masks.get(id(p))
                if entry is None:
                    continue
                mask = getattr(entry[0], entry[1])
                p.data.masked_fill_(~mask, 0)
                for v in optimizer.state.get(p, {}).values():
                    if torch.is_tensor(v) and v.shape == p.shape:
                        v.masked_fill_(~mask, 0)

    def pool_sparsity(self) -> dict[str, float]:
        """Fraction of masked valid entries per pool (key ``"<pool>/<matrix>"``), for logging."""
        out: dict[str, float] = {}
        for key, members in self._groups().items():
            name = ".".join(str(k) for k in key) if isinstance(key, tuple) else str(key)
            for mat in ("A", "B"):
                n = kept = 0
                for m, lang in members:
                    mk = m.mask_A_of(lang) if mat == "A" else m.mask_B_of(lang)
                    n += mk.numel()
                    kept += int(mk.sum())
                out[f"{name}/{mat}"] = 1.0 - kept / n if n else 0.0
        return out

    # ---- optimizer integration

    def attach(self, optimizer: torch.optim.Optimizer) -> list[Any]:
        """Mask gradients of the adapter parameters and zero pruned entries (params and same-shape optimizer
        state such as Adam's exp_avg/exp_avg_sq) after every ``optimizer.step()``."""
        if not self._handles:
            for m in self.modules:
                for p, mname in m.param_masks():
                    if p.requires_grad:
                        self._handles.append(p.register_hook(_grad_masker(m, mname)))
        if optimizer not in self._optimizers:
            self._optimizers.append(optimizer)
            self._handles.append(
                optimizer.register_step_post_hook(lambda opt, args, kwargs: self._zero_state(opt))
            )
            self._zero_state(optimizer)
        return self._handles

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles, self._optimizers = [], []

    # ---- checkpointing

    def state_dict(self, include_masks: bool = True) -> dict[str, Any]:
        """Schedule position and config; masks too (they also live in the modules' buffers)."""
        state: dict[str, Any] = {
            "version": 1,
            "last_time": self.last_time,
            "ratio": self.ratio,
            "component_ratio": self.component_ratio,
            "config": self.config.to_dict(),
        }
        if include_masks:
            state["masks"] = {
                k: {name: getattr(m, name).detach().cpu().clone() for _, name in m.param_masks()}
                for k, m in zip(self._keys, self.modules)
            }
        return state

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("config") is not None and state["config"] != self.config.to_dict():
            warnings.warn(
                "Pruner.load_state_dict: the saved pruning config differs from the current one", stacklevel=2
            )
        self.last_time = state.get("last_time")
        self.ratio = float(state.get("ratio", 0.0))
        self.component_ratio = float(state.get("component_ratio", 0.0))
        masks = state.get("masks")
        if masks is not None:
            missing = [k for k in self._keys if k not in masks]
            if missing:
                raise KeyError(
                    f"Pruner.load_state_dict: no masks for {missing[:3]}{'...' if len(missing) > 3 else ''}"
                )
            for k, m in zip(self._keys, self.modules):
                saved = masks[k]
                upgrade = getattr(m, "masks_from_saved", None)
                if upgrade is not None:  # e.g. masks saved with lslo 0.1's padded layout
                    saved = upgrade(saved)
                for _, b in m.param_masks():
                    if b not in saved:
                        raise KeyError(f"Pruner.load_state_dict: no {b} for {k} (saved: {', '.join(sorted(saved))})")
                    src, dst = saved[b], getattr(m, b)
                    if src.shape != dst.shape:
                        raise ValueError(
                            f"Pruner.load_state_dict: {k}.{b} has shape {tuple(src.shape)}, expected {tuple(dst.shape)}"
                        )
                    dst.copy_(src.to(dst.device))
        self.apply_masks()


def _grad_masker(module: nn.Module, mask_name: str):
    def hook(grad: torch.Tensor) -> torch.Tensor:
        return grad.masked_fill(~getattr(module, mask_name), 0)

    return hook


# --------------------------------------------------------------------------- reporting and compaction


def compact_component(
    A_l: torch.Tensor,
    B_l: torch.Tensor,
    mask_A_l: torch.Tensor | None = None,
    mask_B_l: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Drop dead rank-one components of one language's pair.

    A_l (r, d_in), B_l (d_out, r). Component j is dead when its masked A row or masked B column
    keeps no entry. Returns (A' (r', d_in), B' (d_out, r'), kept indices) with B' A' equal to the
    masked B_l A_l: the dropped terms are exactly zero.
    """
    mask_A_l = torch.ones_like(A_l, dtype=torch.bool) if mask_A_l is None else mask_A_l.bool()
    mask_B_l = torch.ones_like(B_l, dtype=torch.bool) if mask_B_l is None else mask_B_l.bool()
    a = A_l.detach().masked_fill(~mask_A_l, 0)
    b = B_l.detach().masked_fill(~mask_B_l, 0)
    alive = mask_A_l.any(dim=1) & mask_B_l.any(dim=0)
    kept = alive.nonzero().flatten()
    return a[kept].clone(), b[:, kept].clone(), kept


def compact_module(module: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``compact_component`` for every language of one LSLo module (padding dropped too)."""
    out = {}
    for lang, code in enumerate(module_languages(module)):
        out[code] = compact_component(module.A_of(lang), module.B_of(lang), module.mask_A_of(lang),
                                      module.mask_B_of(lang))
    return out


