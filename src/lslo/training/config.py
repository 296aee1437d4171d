"""The configuration of a run (model, data, method, training, pruning, evaluation), from YAML.

One YAML file describes a whole experiment; ``--set key.sub=value`` overrides any
field from the command line. Defaults follow the paper (SPEC 6) where it says
something, and are marked as our choice where it does not.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lslo.pruning import PruningConfig
from lslo.tuner.config import ConfigError, LSLoConfig, load_yaml, parse_yaml

METHODS = ("lslo", "lora", "full")


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _build(cls, data: Any, where: str):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = _fields(cls)
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown field; expected one of {', '.join(sorted(known))}")
    obj = cls(**data)
    for f in dataclasses.fields(cls):
        _check_type(f"{where}.{f.name}", getattr(obj, f.name), f.default if f.default is not dataclasses.MISSING else None)
    return obj


def _check_type(where: str, value: Any, default: Any) -> None:
    if default is None or value is None:
        return
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
    elif isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {value!r}")


@dataclass
class DataConfig:
    path: str = ""  # FLORES-101/200 directory, a TSV or a JSONL file
    format: str = "auto"  # auto | flores | tsv | jsonl
    train_split: str = "dev"  # FLORES split used for fine-tuning (the paper trains on dev)
    valid_split: str | None = None  # None: hold out valid_ratio of the training segments by id
    valid_ratio: float = 0.05
    test_split: str = "devtest"
    split_ratios: dict[str, float] | None = None  # single-file corpora: e.g. {train: 0.8, valid: 0.1, test: 0.1}
    directions: list[str] | None = None  # None: all src != tgt directions
    empty: str = "error"  # error | drop (drops the segment in all languages and says how many)
    max_length: int = 256  # tokens per side, longer segments are truncated
    max_train_segments: int | None = None  # cap on training segments (demos, smoke tests, small-data runs)
    # which segments max_train_segments keeps: None = the first ones in corpus order; an integer =
    # a fixed subset drawn by a hash of (seed, segment id), independent of the file's order
    train_subset_seed: int | None = None


@dataclass
class TrainConfig:
    epochs: int = 15
    max_steps: int | None = None  # optimizer updates; stops early when reached
    max_tokens: int = 4000
    update_freq: int = 4
    epoch_size: int | None = None  # examples per epoch; None = segments x directions
    temperature: float = 5.0
    lr: float = 3e-3
    warmup_steps: int = 1000  # our choice: the paper does not state it
    warmup_init_lr: float = 1e-7
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    label_smoothing: float = 0.2
    # fairseq (the paper): the target-language token is forced, never predicted (no label)
    predict_language_token: bool = False
    dropout: float = 0.1
    clip_norm: float = 0.0  # 0 = no clipping
    # an update whose loss or gradients are NaN/inf is skipped (weights untouched, as fairseq and
    # HF's scaler do); this many in a row stop training with an error
    max_nonfinite_updates: int = 10
    precision: str = "auto"  # auto (bf16 on a bf16-capable GPU, else fp32) | bf16 | fp16 | fp32
    seed: int = 1
    save_every_steps: int = 0  # 0: checkpoint at the end of each epoch only
    valid_max_examples: int = 2000
    log_every_steps: int = 10
    tensorboard: bool = True


@dataclass
class EvalConfig:
    beam: int = 5
    max_new_tokens: int = 200
    batch_size: int = 32
    length_penalty: float = 1.0
    spm_model: str | None = None  # SentencePiece model for spBLEU when sacrebleu's flores model is absent
    # auto | flores101 | flores200: sacrebleu's model, used when present locally; auto = flores200
    # for NLLB, flores101 for M2M-100 and the paper configs
    spm_tokenizer: str = "auto"
    directions: list[str] | None = None
    max_segments: int | None = None  # evaluate on the first N test segments of every direction


@dataclass
class RunConfig:
    model: str = ""
    tokenizer: str | None = None
    output_dir: str = "runs/run"
    method: str = "lslo"  # lslo | lora (one shared LoRA) | full (full-parameter fine-tuning)
    lora_rank: int = 8  # rank of the shared LoRA (method: lora)
    lslo: LSLoConfig = field(default_factory=LSLoConfig)
    # Start from another run's adapters (languages it has), e.g. to add a language later.
    init_from: str | None = None
    # Only these languages' adapters are trained; the others stay bit-identical. None = all.
    trainable_languages: list[str] | None = None
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> RunConfig:
        if not self.model:
            raise ConfigError("model: required (a local Hugging Face model directory)")
        if self.method not in METHODS:
            raise ConfigError(f"method: expected one of {'/'.join(METHODS)}, got {self.method!r}")
        if not self.data.path:
            raise ConfigError("data.path: required (a FLORES directory, a TSV or a JSONL file)")
        if self.data.empty not in ("error", "drop"):
            raise ConfigError(f"data.empty: expected 'error' or 'drop', got {self.data.empty!r}")
        if not 0 <= self.data.valid_ratio < 1:
            raise ConfigError(f"data.valid_ratio: expected a number in [0, 1), got {self.data.valid_ratio!r}")
        if len(self.lslo.codes) < 2:
            raise ConfigError(f"lslo.languages: needs at least two languages (every direction has a source and a "
                              f"target), got {self.lslo.codes}")
        t = self.train
        for name in ("max_tokens", "update_freq", "epochs", "max_nonfinite_updates", "valid_max_examples",
                     "log_every_steps"):
            if getattr(t, name) < 1:
                raise ConfigError(f"train.{name}: expected an integer >= 1, got {getattr(t, name)!r}")
        for name in ("warmup_steps", "save_every_steps"):
            if getattr(t, name) < 0:
                raise ConfigError(f"train.{name}: expected an integer >= 0, got {getattr(t, name)!r}")
        if t.max_steps is not None and (isinstance(t.max_steps, bool) or not isinstance(t.max_steps, int)
                                        or t.max_steps < 1):
            raise ConfigError(f"train.max_steps: expected an integer >= 1 or null, got {t.max_steps!r}")
        if not 0 <= t.dropout < 1:
            raise ConfigError(f"train.dropout: expected a number in [0, 1), got {t.dropout!r}")
        if t.temperature <= 0:
            raise ConfigError(f"train.temperature: expected a positive number (1 = proportional), got {t.temperature!r}")
        for name in ("warmup_init_lr", "weight_decay", "clip_norm"):
            if getattr(t, name) < 0:
                raise ConfigError(f"train.{name}: expected a number >= 0, got {getattr(t, name)!r}")
        if t.adam_eps <= 0:
            raise ConfigError(f"train.adam_eps: expected a positive number, got {t.adam_eps!r}")
        if self.data.max_length < 4:
            raise ConfigError(f"data.max_length: expected an integer >= 4, got {self.data.max_length!r}")
        if self.data.max_train_segments is not None and self.data.max_train_segments < 1:
            raise ConfigError(f"data.max_train_segments: expected an integer >= 1 or null, got "
                              f"{self.data.max_train_segments!r}")
        seed = self.data.train_subset_seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigError(f"data.train_subset_seed: expected an integer or null, got {seed!r}")
        e = self.eval
        for name in ("batch_size", "max_new_tokens"):
            if getattr(e, name) < 1:
                raise ConfigError(f"eval.{name}: expected an integer >= 1, got {getattr(e, name)!r}")
        if e.max_segments is not None and e.max_segments < 1:
            raise ConfigError(f"eval.max_segments: expected an integer >= 1 or null, got {e.max_segments!r}")
        if t.lr <= 0:
            raise ConfigError(f"train.lr: expected a positive number, got {t.lr!r}")
        if not 0 <= t.label_smoothing < 1:
            raise ConfigError(f"train.label_smoothing: expected a number in [0, 1), got {t.label_smoothing!r}")
        if t.precision not in ("auto", "bf16", "fp16", "fp32"):
            raise ConfigError(f"train.precision: expected auto/bf16/fp16/fp32, got {t.precision!r}")
        if len(t.adam_betas) != 2:
            raise ConfigError(f"train.adam_betas: expected two numbers, got {t.adam_betas!r}")
        if self.lora_rank < 1:
            raise ConfigError(f"lora_rank: expected an integer >= 1, got {self.lora_rank!r}")
        if self.trainable_languages is not None:
            for code in self.trainable_languages:
                if code not in self.lslo.codes:
                    raise ConfigError(f"trainable_languages: {code!r} is not in lslo.languages")
            if self.method != "lslo":
                raise ConfigError("trainable_languages: only with method: lslo (per-language adapters)")
            if self.pruning.enabled:
                raise ConfigError("trainable_languages: pruning pools languages together; disable pruning.enabled")
        if self.eval.beam < 1:
            raise ConfigError(f"eval.beam: expected an integer >= 1, got {self.eval.beam!r}")
        if self.eval.spm_tokenizer not in ("auto", "flores101", "flores200"):
            raise ConfigError(f"eval.spm_tokenizer: expected auto, flores101 or flores200, got {self.eval.spm_tokenizer!r}")
        return self

    def adapter_config(self) -> LSLoConfig:
        """The LSLo config the chosen method injects (shared LoRA / no adapters for the baselines)."""
        data = self.lslo.to_dict()
        if self.method == "lora":
            data["shared_rank"] = self.lora_rank
        elif self.method == "full":
            data["encoder_positions"], data["decoder_positions"] = [], []
        return LSLoConfig.from_dict(data, where="lslo")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["lslo"] = self.lslo.to_dict()
        d["pruning"] = self.pruning.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: Any) -> RunConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"config: expected a mapping at the top level, got {type(data).__name__}")
        known = _fields(cls)
        for key in data:
            if key not in known:
                raise ConfigError(f"{key}: unknown field; expected one of {', '.join(sorted(known))}")
        kw = {k: v for k, v in data.items() if k not in ("lslo", "data", "train", "pruning", "eval")}
        cfg = _build(cls, {}, "config")
        for k, v in kw.items():
            setattr(cfg, k, v)
            _check_type(k, v, getattr(cls, k, None) if not isinstance(getattr(cls, k, None), property) else None)
        cfg.lslo = LSLoConfig.from_dict(data.get("lslo") or {}, where="lslo")
        cfg.data = _build(DataConfig, data.get("data"), "data")
        cfg.train = _build(TrainConfig, data.get("train"), "train")
        cfg.eval = _build(EvalConfig, data.get("eval"), "eval")
        try:
            cfg.pruning = PruningConfig.from_dict(data.get("pruning")).validate()
        except ValueError as e:
            raise ConfigError(str(e)) from None
        return cfg.validate()

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | None = None) -> RunConfig:
        data = load_yaml(path)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of sections (model, lslo, data, ...) at the top, "
                              f"got a {type(data).__name__}")
        for item in overrides or []:
            apply_override(data, item)
        try:
            return cls.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``key.sub=value`` override (value parsed as YAML) to a config mapping."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value (e.g. train.lr=0.001)")
    key, _, raw = item.partition("=")
    try:
        value = parse_yaml(raw)
    except yaml.YAMLError:
        raise ConfigError(f"--set {item!r}: value is not valid YAML") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--set {item!r}: the config is a {type(data).__name__}, not a mapping of sections")
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {item!r}: expected a dotted key like train.lr")
    node = data
    for part in parts[:-1]:
        if node.get(part) is None:
            node[part] = {}
        if not isinstance(node[part], dict):
            raise ConfigError(f"--set {item!r}: {part} is not a mapping")
        node = node[part]
    node[parts[-1]] = value
