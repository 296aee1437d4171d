"""The cubic pruning schedule (Zhu & Gupta 2017) and the pruning configuration."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

_UNITS = ("epoch", "step")


_GRANULARITIES = ("layer", "language", "global")


_MATRICES = ("B", "AB")


def cubic_ratio(t: float, start: float, duration: float, final: float) -> float:
    """Zhu & Gupta's cubic sparsity schedule: 0 before ``start``, ``final`` after ``start + duration``."""
    if t < start:
        return 0.0
    if duration <= 0 or t >= start + duration:
        return float(final)
    frac = (t - start) / duration
    return float(final) * (1.0 - (1.0 - frac) ** 3)


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

    enabled: bool = field(default=False, metadata={"help": "prune the adapters gradually (the paper: true)"})
    start: float = field(default=2, metadata={"help": "when pruning starts, in units (the paper: epoch 2)"})
    duration: float = field(default=10, metadata={
        "help": "how long the cubic schedule runs, in units; the final ratio holds after start + duration "
                "(the paper: 10 epochs, so 2 to 12); must fit in the training, or lslo says so"})
    final_ratio: float = field(default=0.9, metadata={"help": "fraction of the entries pruned at the end, in [0, 1)"})
    unit: str = field(default="epoch", metadata={"help": "epoch | step: what start, duration and frequency count"})
    frequency: float = field(default=1, metadata={"help": "prune every this many units"})
    granularity: str = field(default="layer", metadata={
        "help": "layer (the paper: per layer and position, across languages) | language | global"})
    matrices: str = field(default="B", metadata={"help": "B (the paper) | AB: which LoRA matrices are pruned"})
    structured: bool | float = field(default=False, metadata={
        "help": "false: entries (the paper); true: whole rank-one components; a number in (0, 1): both"})

    def __post_init__(self) -> None:
        self.validate()  # valid from the moment it exists

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
