"""The ``search:`` section of a run config, and the names of the files a search writes."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lslo.training.config import RunConfig, apply_override, resolve_paths
from lslo.tuner.config import ConfigError, load_yaml
from lslo.tuner.model import SHARED

SOURCE = "source"
TARGET = "target"
ROUTING_YAML = "routing.yaml"
RESULT_YAML = "search_result.yaml"
WEIGHTS_JSON = "routing_weights.json"
WEIGHTS_PNG = "routing_weights.png"
MIXING_WEIGHTS = "mixing.safetensors"


@dataclass
class SearchConfig:
    per_position: bool = False
    include_shared: bool = False
    shared_rank: int | None = None
    temperature: float = 1.0
    logit_lr: float | None = None
    output_dir: str | None = None
    train: dict[str, Any] = field(default_factory=dict)

    @property
    def choices(self) -> tuple[str, ...]:
        return (SOURCE, TARGET, SHARED) if self.include_shared else (SOURCE, TARGET)

    def __post_init__(self) -> None:
        self.validate()  # valid from the moment it exists

    def validate(self) -> SearchConfig:
        for name in ("per_position", "include_shared"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"search.{name}: expected true/false, got {getattr(self, name)!r}")
        r = self.shared_rank
        if r is not None and (isinstance(r, bool) or not isinstance(r, int) or r < 1):
            raise ConfigError(f"search.shared_rank: expected an integer >= 1 or null, got {r!r}")
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or t <= 0:
            raise ConfigError(f"search.temperature: expected a positive number, got {t!r}")
        lr = self.logit_lr
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0):
            raise ConfigError(f"search.logit_lr: expected a positive number or null, got {lr!r}")
        if self.output_dir is not None and not isinstance(self.output_dir, str):
            raise ConfigError(f"search.output_dir: expected a string, got {self.output_dir!r}")
        if not isinstance(self.train, dict):
            raise ConfigError(f"search.train: expected a mapping of train fields, got {self.train!r}")
        return self

    @classmethod
    def from_dict(cls, data: Any) -> SearchConfig:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"search: expected a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(f"search.{key}: unknown field; expected one of {', '.join(sorted(known))}")
        data = dict(data)
        if data.get("train", {}) is None:  # `train:` with no value in YAML: no overrides
            data["train"] = {}
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_search_config(
    path: str | Path, overrides: list[str] | None = None
) -> tuple[RunConfig, SearchConfig, dict[str, Any]]:
    """(run config of the search phase, search options, the run config data without ``search``).

    ``--set`` overrides apply to the whole file (``search.*`` included). The search phase uses the
    ``train`` section updated by ``search.train``; the returned data (the base of
    ``search_result.yaml``) keeps the original ``train`` section. Both are validated here.
    """
    data = load_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    resolve_paths(data, Path(path).resolve().parent)  # relative paths: from the config file's directory
    for item in overrides or []:
        apply_override(data, item)
    resolve_paths(data)
    try:
        search = SearchConfig.from_dict(data.pop("search", None))
        final = RunConfig.from_dict(copy.deepcopy(data))  # what `lslo train search_result.yaml` will see
        if final.method != "lslo":
            raise ConfigError(f"method: search learns the routing of LSLo; expected 'lslo', got {final.method!r}")
        phase = copy.deepcopy(data)
        train = dict(phase.get("train") or {})
        train.update(search.train)
        phase["train"] = train
        try:
            cfg = RunConfig.from_dict(phase)
        except ConfigError as e:
            raise ConfigError(f"search.{e}" if str(e).startswith("train.") else str(e)) from None
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return cfg, search, data
