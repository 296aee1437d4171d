"""Gradual magnitude pruning of LSLo adapters (Zhu & Gupta 2017 cubic schedule).

The paper (Cao et al., EMNLP 2024, section 5 of SPEC.md) prunes the LSLo
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

Masks live in the modules' ``mask_A``/``mask_B`` buffers (True = kept). The
forward reads ``lora_A``/``lora_B`` unmasked, so this module keeps pruned
entries exactly zero in the parameter data: ``Pruner.step`` zeros them when
masks change, and ``Pruner.attach(optimizer)`` masks gradients and zeros the
pruned entries of the parameters and of the optimizer state after every step.

Rank padding (component j >= r_l of language l) is never counted, never scored
and never "pruned": it is simply always zero and masked.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

__all__ = [
    "PruningConfig",
    "Pruner",
    "compact_component",
    "compact_module",
    "cubic_ratio",
    "find_lslo_modules",
    "format_sparsity_report",
    "sparsity_report",
]

_UNITS = ("epoch", "step")
_GRANULARITIES = ("layer", "language", "global")
_MATRICES = ("B", "AB")
_EPS = 1e-9


# --------------------------------------------------------------------------- schedule


def cubic_ratio(t: float, start: float, duration: float, final: float) -> float:
    """Zhu & Gupta's cubic sparsity schedule: 0 before ``start``, ``final`` after ``start + duration``."""
    if t < start:
        return 0.0
    if duration <= 0 or t >= start + duration:
        return float(final)
    frac = (t - start) / duration
    return float(final) * (1.0 - (1.0 - frac) ** 3)


# --------------------------------------------------------------------------- config


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass
class PruningConfig:
    """Gradual pruning settings. Defaults are the paper's setting except ``enabled``.

    ``unit="epoch"``: ``t`` passed to ``Pruner.step`` is the number of completed
    epochs (fractions allowed); ``unit="step"``: the number of optimizer steps
    (then choose start/duration/frequency in steps, e.g. 2000/10000/100).

    ``structured``: False = unstructured entries (the paper). True = prune whole
    rank-one components (row j of A_l with column j of B_l, scored by
    ||A_l[j]|| * ||B_l[:, j]||) with the schedule, ``final_ratio`` being the
    fraction of components. A number s in (0, 1) = both: components to a final
    fraction s and entries to ``final_ratio``, on the same schedule shape.
    Components always clear both A and B, whatever ``matrices`` says.
    """

    enabled: bool = False
    start: float = 2
    duration: float = 10
    final_ratio: float = 0.9
    unit: str = "epoch"
    frequency: float = 1
    granularity: str = "layer"
    matrices: str = "B"
    structured: bool | float = False

    def validate(self) -> PruningConfig:
        def bad(field: str, expected: str, got: Any) -> ValueError:
            return ValueError(f"pruning.{field}: expected {expected}, got {got!r}")

        if not isinstance(self.enabled, bool):
            raise bad("enabled", "true or false", self.enabled)
        if not _is_number(self.start) or self.start < 0:
            raise bad("start", "a number >= 0", self.start)
        if not _is_number(self.duration) or self.duration < 0:
            raise bad("duration", "a number >= 0", self.duration)
        if not _is_number(self.final_ratio) or not 0 <= self.final_ratio < 1:
            raise bad("final_ratio", "a number in [0, 1)", self.final_ratio)
        if self.unit not in _UNITS:
            raise bad("unit", "one of " + ", ".join(repr(u) for u in _UNITS), self.unit)
        if not _is_number(self.frequency) or self.frequency <= 0:
            raise bad("frequency", "a number > 0", self.frequency)
        if self.unit == "step" and float(self.frequency) != int(self.frequency):
            raise bad("frequency", "a whole number of steps when unit is 'step'", self.frequency)
        if self.granularity not in _GRANULARITIES:
            raise bad("granularity", "one of " + ", ".join(repr(g) for g in _GRANULARITIES), self.granularity)
        if self.matrices not in _MATRICES:
            raise bad("matrices", "one of " + ", ".join(repr(m) for m in _MATRICES), self.matrices)
        s = self.structured
        if not isinstance(s, bool) and not (_is_number(s) and 0 < s < 1):
            raise bad("structured", "true, false or a component ratio in (0, 1)", s)
        return self

    @property
    def entry_final_ratio(self) -> float:
        """Final fraction of pruned entries (0 when only components are pruned)."""
        return 0.0 if self.structured is True else float(self.final_ratio)

    @property
    def component_final_ratio(self) -> float:
        """Final fraction of pruned rank-one components (0 when unstructured)."""
        if self.structured is True:
            return float(self.final_ratio)
        if self.structured is False:
            return 0.0
        return float(self.structured)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PruningConfig:
        data = dict(data or {})
        known = [f.name for f in fields(cls)]
        for key in data:
            if key not in known:
                raise ValueError(f"pruning.{key}: unknown field (known: {', '.join(known)})")
        return cls(**data).validate()


# --------------------------------------------------------------------------- module access


def _is_lslo(m: Any) -> bool:
    return all(hasattr(m, a) for a in ("lora_A", "lora_B", "mask_A", "mask_B", "ranks"))


def find_lslo_modules(model: nn.Module) -> list[nn.Module]:
    """All LSLo-like submodules (duck-typed: lora_A, lora_B, mask_A, mask_B, ranks), in module order."""
    return [m for m in model.modules() if _is_lslo(m)]


def _as_module_list(modules: nn.Module | Iterable[nn.Module]) -> list[nn.Module]:
    if isinstance(modules, nn.Module):
        mods = [modules] if _is_lslo(modules) else find_lslo_modules(modules)
    else:
        mods = list(modules)
    for m in mods:
        if not _is_lslo(m):
            raise TypeError(
                f"{type(m).__name__} is not an LSLo module (needs lora_A, lora_B, mask_A, mask_B, ranks)"
            )
        L, r_max, _ = m.lora_A.shape
        if m.lora_B.shape[0] != L or m.lora_B.shape[2] != r_max:
            raise ValueError(
                f"{_name(m)}: lora_A {tuple(m.lora_A.shape)} and lora_B {tuple(m.lora_B.shape)} disagree"
            )
        if m.mask_A.shape != m.lora_A.shape or m.mask_B.shape != m.lora_B.shape:
            raise ValueError(f"{_name(m)}: masks must have the shapes of lora_A/lora_B")
        if m.mask_A.dtype != torch.bool or m.mask_B.dtype != torch.bool:
            raise ValueError(f"{_name(m)}: masks must be bool tensors")
        if m.ranks.shape != (L,) or int(m.ranks.max()) > r_max or int(m.ranks.min()) < 0:
            raise ValueError(f"{_name(m)}: ranks must be (L,) with 0 <= r_l <= r_max")
    return mods


def _name(m: nn.Module) -> str:
    return str(getattr(m, "name", type(m).__name__))


def _languages(m: nn.Module) -> tuple[str, ...]:
    langs = getattr(m, "languages", None)
    return tuple(langs) if langs is not None else tuple(str(i) for i in range(m.lora_A.shape[0]))


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
        self.modules: list[nn.Module] = _as_module_list(modules)
        names = [_name(m) for m in self.modules]
        self._keys = names if len(set(names)) == len(names) else [f"{i}:{n}" for i, n in enumerate(names)]
        self.last_time: float | None = None  # schedule point of the last mask update
        self.ratio = 0.0  # highest entry ratio applied so far
        self.component_ratio = 0.0  # highest component ratio applied so far
        self._optimizers: list[torch.optim.Optimizer] = []
        self._handles: list[Any] = []
        self._param_masks: dict[int, tuple[nn.Module, str]] = {}
        for m in self.modules:
            self._param_masks[id(m.lora_A)] = (m, "mask_A")
            self._param_masks[id(m.lora_B)] = (m, "mask_B")

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
            for lang_idx, code in enumerate(_languages(m)):
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
                        comps.append(
                            (
                                m.lora_A[lang, :r, :],
                                m.lora_B[lang, :, :r],
                                m.mask_A[lang, :r, :],
                                m.mask_B[lang, :, :r],
                            )
                        )
                _prune_components(comps, component_ratio)
            if ratio > 0:
                for mat in self.config.matrices:
                    pieces = []
                    for m, lang in members:
                        r = int(m.ranks[lang])
                        if not r:
                            continue
                        if mat == "A":
                            pieces.append((m.lora_A[lang, :r, :], m.mask_A[lang, :r, :]))
                        else:
                            pieces.append((m.lora_B[lang, :, :r], m.mask_B[lang, :, :r]))
                    _prune_entries(pieces, ratio)
        self.ratio = max(self.ratio, float(ratio))
        self.component_ratio = max(self.component_ratio, float(component_ratio))
        self.apply_masks()

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Zero pruned (and padding) entries of the parameters and of attached optimizers' state."""
        for m in self.modules:
            m.lora_A.data.masked_fill_(~m.mask_A, 0)
            m.lora_B.data.masked_fill_(~m.mask_B, 0)
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
                    r = int(m.ranks[lang])
                    mk = m.mask_A[lang, :r, :] if mat == "A" else m.mask_B[lang, :, :r]
                    n += mk.numel()
                    kept += int(mk.sum())
                out[f"{name}/{mat}"] = 1.0 - kept / n if n else 0.0
        return out

    # ---- optimizer integration

    def attach(self, optimizer: torch.optim.Optimizer) -> list[Any]:
        """Mask gradients of lora_A/lora_B and zero pruned entries (params and same-shape optimizer
        state such as Adam's exp_avg/exp_avg_sq) after every ``optimizer.step()``."""
        if not self._handles:
            for m in self.modules:
                for pname, mname in (("lora_A", "mask_A"), ("lora_B", "mask_B")):
                    p = getattr(m, pname)
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
                k: {"mask_A": m.mask_A.detach().cpu().clone(), "mask_B": m.mask_B.detach().cpu().clone()}
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
                for b in ("mask_A", "mask_B"):
                    src, dst = masks[k][b], getattr(m, b)
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
    for lang, code in enumerate(_languages(module)):
        r = int(module.ranks[lang])
        out[code] = compact_component(
            module.lora_A[lang, :r],
            module.lora_B[lang, :, :r],
            module.mask_A[lang, :r],
            module.mask_B[lang, :, :r],
        )
    return out


def _pos_key(m: nn.Module) -> str:
    return f"{getattr(m, 'side', '?')}.{getattr(m, 'layer', '?')}.{getattr(m, 'position', _name(m))}"


def sparsity_report(modules: nn.Module | Sequence[nn.Module], base_param_count: int) -> dict[str, Any]:
    """Per-language surviving parameters, share of the base model and effective rank (plain dict).

    ``languages[code]``: surviving (kept valid entries of A and B), total (valid entries),
    density, percent_of_base, compact_params (r'(d_in + d_out) summed: what a compacted
    adapter stores densely), effective_rank_mean/min (components whose A row and B column both
    keep an entry, over modules), rank (max r_l), density_by_position ("side.layer.position").
    ``positions``: density per position over all languages. ``total``: sums over languages.
    """
    mods = _as_module_list(modules)
    langs: dict[str, dict[str, Any]] = {}
    positions: dict[str, list[int]] = {}
    with torch.no_grad():
        for m in mods:
            key = _pos_key(m)
            d_in, d_out = m.lora_A.shape[2], m.lora_B.shape[1]
            for lang, code in enumerate(_languages(m)):
                r = int(m.ranks[lang])
                ma, mb = m.mask_A[lang, :r, :], m.mask_B[lang, :, :r]
                kept = int(ma.sum()) + int(mb.sum())
                total = ma.numel() + mb.numel()
                eff = int((ma.any(dim=1) & mb.any(dim=0)).sum()) if r else 0
                s = langs.setdefault(
                    code, {"surviving": 0, "total": 0, "compact_params": 0, "ranks": [], "eff": [], "pos": {}}
                )
                s["surviving"] += kept
                s["total"] += total
                s["compact_params"] += eff * (d_in + d_out)
                s["ranks"].append(r)
                s["eff"].append(eff)
                pk = s["pos"].setdefault(key, [0, 0])
                pk[0] += kept
                pk[1] += total
                pa = positions.setdefault(key, [0, 0])
                pa[0] += kept
                pa[1] += total

    def density(kept: int, total: int) -> float:
        return kept / total if total else 0.0

    def pct(n: int) -> float:
        return 100.0 * n / base_param_count if base_param_count else float("nan")

    out_langs = {}
    for code, s in langs.items():
        out_langs[code] = {
            "surviving": s["surviving"],
            "total": s["total"],
            "density": density(s["surviving"], s["total"]),
            "percent_of_base": pct(s["surviving"]),
            "compact_params": s["compact_params"],
            "effective_rank_mean": sum(s["eff"]) / len(s["eff"]) if s["eff"] else 0.0,
            "effective_rank_min": min(s["eff"]) if s["eff"] else 0,
            "rank": max(s["ranks"]) if s["ranks"] else 0,
            "modules": len(s["eff"]),
            "density_by_position": {k: density(*v) for k, v in s["pos"].items()},
        }
    surv = sum(v["surviving"] for v in out_langs.values())
    tot = sum(v["total"] for v in out_langs.values())
    return {
        "base_param_count": int(base_param_count),
        "languages": out_langs,
        "positions": {k: density(*v) for k, v in positions.items()},
        "total": {
            "surviving": surv,
            "total": tot,
            "density": density(surv, tot),
            "percent_of_base": pct(surv),
            "compact_params": sum(v["compact_params"] for v in out_langs.values()),
        },
    }


def format_sparsity_report(report: dict[str, Any]) -> str:
    """A fixed-width table of ``sparsity_report`` for logs."""
    lines = [
        f"{'lang':<10}{'surviving':>12}{'total':>12}{'density':>9}{'% base':>9}{'eff.rank':>10}{'rank':>6}"
    ]
    for code, s in report["languages"].items():
        lines.append(
            f"{code:<10}{s['surviving']:>12}{s['total']:>12}{s['density']:>9.3f}{s['percent_of_base']:>9.3f}"
            f"{s['effective_rank_mean']:>10.2f}{s['rank']:>6}"
        )
    t = report["total"]
    lines.append(
        f"{'total':<10}{t['surviving']:>12}{t['total']:>12}{t['density']:>9.3f}{t['percent_of_base']:>9.3f}"
    )
    return "\n".join(lines)
