"""The configuration of a run (model, data, method, training, pruning, evaluation), from YAML.

One YAML file describes a whole experiment; ``--set key.sub=value`` overrides any
field from the command line. Defaults follow the paper's training setup (docs/concepts/method.md#training-details)
where it says something, and are marked as our choice where it does not.
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


def _f(default: Any, help: str):
    """A config field with its help text (``lslo config --defaults`` prints it next to the field)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class DataConfig:
    path: str = _f("", "the corpus: a FLORES-101/200 directory, a TSV or a JSONL file (relative: from the "
                       "config file's directory, else the current one)")
    format: str = _f("auto", "auto (from the path) | flores | tsv | jsonl")
    train_split: str = _f("dev", "FLORES split used for fine-tuning (the paper trains on dev)")
    valid_split: str | None = _f(None, "FLORES split for validation; null: hold out valid_ratio of the training "
                                       "segments by a hash of their ids")
    valid_ratio: float = _f(0.05, "share of the training segments held out for validation when valid_split is "
                                  "null, in [0, 1)")
    test_split: str = _f("devtest", "FLORES split that lslo evaluate scores")
    split_ratios: dict[str, float] | None = _f(None, "single-file corpora (TSV/JSONL): e.g. {train: 0.8, valid: "
                                                     "0.1, test: 0.1}, parts drawn by a hash of the segment ids")
    directions: list[str] | None = _f(None, "train only these directions, e.g. [en-fr, fr-en]; null: every src != "
                                            "tgt direction. evaluate, translate and serve then say when a "
                                            "direction was not trained")
    empty: str = _f("error", "an empty segment in any language: error | drop (drops it in every language and "
                             "says how many)")
    max_length: int = _f(256, "tokens per side; longer segments are truncated")
    max_train_segments: int | None = _f(None, "use at most this many training segments (small-data runs, smoke "
                                              "tests); null: all")
    train_subset_seed: int | None = _f(None, "which segments max_train_segments keeps: null = the first ones in "
                                             "corpus order; an integer = a fixed subset drawn by a hash of "
                                             "(seed, segment id), independent of the file's order")


@dataclass
class TrainConfig:
    epochs: int = _f(15, "passes over the training data (the paper: 15)")
    max_steps: int | None = _f(None, "stop after this many optimizer updates; null: run every epoch")
    max_tokens: int = _f(4000, "tokens per batch (padded, the longer side), batches mixing directions "
                               "(the paper: 4000)")
    update_freq: int = _f(4, "batches per optimizer update (the paper: 4)")
    epoch_size: int | None = _f(None, "examples (segment x direction) per epoch; null: segments x directions")
    temperature: float = _f(5.0, "temperature of the sampling over directions (1: proportional to data; the "
                                 "paper: 5)")
    lr: float = _f(3e-3, "peak learning rate (the paper: 3e-3 for LSLo on M2M-100 615M)")
    warmup_steps: int = _f(1000, "updates of linear warm-up before the inverse-sqrt decay (our choice: the paper "
                                 "does not state it)")
    warmup_init_lr: float = _f(1e-7, "learning rate at the first update of the warm-up")
    adam_betas: list[float] = _f([0.9, 0.98], "Adam's betas")
    adam_eps: float = _f(1e-8, "Adam's epsilon")
    weight_decay: float = _f(0.0, "Adam's weight decay")
    label_smoothing: float = _f(0.2, "label smoothing of the cross-entropy (the paper: 0.2)")
    predict_language_token: bool = _f(False, "train the target-language token as a label; false as fairseq and "
                                             "the paper (the token is forced, never predicted)")
    dropout: float = _f(0.1, "dropout of the base model during fine-tuning")
    clip_norm: float = _f(0.0, "clip the gradient norm to this; 0: no clipping")
    max_nonfinite_updates: int = _f(10, "an update whose loss or gradients are NaN/inf is skipped (weights "
                                        "untouched); this many in a row stop training with an error")
    precision: str = _f("auto", "auto (bf16 on a bf16-capable GPU, else fp32) | bf16 | fp16 | fp32")
    seed: int = _f(1, "seed of the initialisation, the sampler and dropout")
    save_every_steps: int = _f(0, "also checkpoint every this many updates; 0: at the end of each epoch only")
    valid_max_examples: int = _f(2000, "validation examples (segment x direction) scored after each epoch, "
                                       "spread evenly over the validation set")
    log_every_steps: int = _f(10, "a metrics.csv row every this many updates")
    tensorboard: bool = _f(True, "also log to RUN/tb when tensorboard is installed")


@dataclass
class EvalConfig:
    beam: int = _f(5, "beam size of evaluate, translate and serve")
    max_new_tokens: int = _f(200, "longest translation, in tokens")
    batch_size: int = _f(32, "sentences per beam-search batch")
    length_penalty: float = _f(1.0, "beam search's length penalty")
    engine: str = _f("lslo", "generation: lslo (lean beam search for M2M-100/NLLB, the same translations as "
                             "transformers' generate, faster; other models use transformers') | transformers")
    quantize: str = _f("none", "none | int8: int8 linear layers on the CPU, a scale per weight row and per token "
                               "(LSLo adapters stay float32; 4x smaller weights, slightly different translations)")
    gemm: str = _f("auto", "matrix library of the float32 linear layers on the CPU: auto (MKL on Intel, oneDNN "
                           "with pre-packed weights elsewhere, as CTranslate2 chooses) | reference (torch's own, "
                           "token-identical to transformers' generate) | onednn")
    early_stopping: bool = _f(False, "beam search's stopping rule: false (transformers' default: a sentence goes on "
                                     "while a running beam could still win) | true (a sentence stops once it has "
                                     "beam finished hypotheses: CTranslate2's and fairseq's rule, fewer steps)")
    spm_model: str | None = _f(None, "SentencePiece model for spBLEU when sacrebleu's flores model is not on "
                                     "disk (the signature names it)")
    spm_tokenizer: str = _f("auto", "sacrebleu's model when present locally: auto (flores200 for NLLB, flores101 "
                                    "for M2M-100) | flores101 | flores200")
    directions: list[str] | None = _f(None, "directions evaluate scores by default; null: the trained ones "
                                            "(data.directions), else all")
    max_segments: int | None = _f(None, "score the first N test segments of every direction; null: all")


# Input paths of a config: relative ones are read against the config file's directory first, then
# the current directory (what worked before configs carried their own base); a run stores them
# absolute, with the paths as written in ``written_paths``.
PATH_FIELDS = ("model", "tokenizer", "data.path", "eval.spm_model", "init_from")


def resolve_paths(data: dict[str, Any], base_dir: str | Path | None = None) -> dict[str, Any]:
    """Make the input paths of a config mapping absolute, in place; returns ``data``.

    A relative path is looked up in ``base_dir`` (the config file's directory), then in the
    current directory; the first that exists is used. A path found in neither (a hub id, or a
    file still to come) stays as written, so its error names what the user wrote. An absolute path
    that no longer exists (a run directory moved to another machine) falls back to the path as
    written, looked up the same way. ``written_paths`` records what was written."""
    if not isinstance(data, dict):
        return data
    written = data.get("written_paths")
    written = dict(written) if isinstance(written, dict) else {}
    for dotted in PATH_FIELDS:
        *parents, leaf = dotted.split(".")
        node: Any = data
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or not isinstance(node.get(leaf), str) or not node[leaf]:
            continue
        value = node[leaf]
        path = Path(value).expanduser()
        if path.is_absolute():
            if path.exists():
                continue
            original = written.get(dotted)
            if not original or Path(original).is_absolute():
                continue
            path = Path(original)
        cands = ([Path(base_dir) / path] if base_dir is not None else []) + [Path.cwd() / path]
        found = next((c for c in cands if c.exists()), None)
        if found is not None:
            written.setdefault(dotted, value)
            node[leaf] = str(found.resolve())
    if written:
        data["written_paths"] = written
    return data


@dataclass
class RunConfig:
    model: str = _f("", "the base model: a local Hugging Face model directory (relative: from the config file's "
                        "directory, else the current one)")
    tokenizer: str | None = _f(None, "tokenizer directory; null: the model's")
    output_dir: str = _f("runs/run", "the run directory `lslo train` writes (relative: from the current "
                                     "directory); --output-dir overrides it")
    method: str = _f("lslo", "lslo | lora (one shared LoRA) | full (full-parameter fine-tuning)")
    lora_rank: int = _f(8, "rank of the shared LoRA (method: lora)")
    lslo: LSLoConfig = field(default_factory=LSLoConfig, metadata={"help": "the adapters: languages, ranks, "
                                                                            "positions and routing"})
    init_from: str | None = _f(None, "start from another run's adapters (the languages it has), e.g. to add a "
                                     "language later")
    trainable_languages: list[str] | None = _f(None, "train only these languages' adapters; the others stay "
                                                     "bit-identical. null: all")
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "the corpus and its splits"})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"help": "optimisation"})
    pruning: PruningConfig = field(default_factory=PruningConfig, metadata={"help": "gradual magnitude pruning"})
    eval: EvalConfig = field(default_factory=EvalConfig, metadata={"help": "evaluate, translate and serve"})
    written_paths: dict[str, str] | None = _f(None, "written by lslo: the input paths as the user wrote them "
                                                    "(the fields hold them absolute)")

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
        from lslo.decoding.quantize import QUANTIZE
        from lslo.tuner.model import ENGINES

        if self.eval.quantize not in QUANTIZE:
            raise ConfigError(f"eval.quantize: expected {' or '.join(QUANTIZE)}, got {self.eval.quantize!r}")
        from lslo.decoding.gemm import GEMMS

        if self.eval.gemm not in GEMMS:
            raise ConfigError(f"eval.gemm: expected {' | '.join(GEMMS)}, got {self.eval.gemm!r}")
        if self.eval.engine not in ENGINES:
            raise ConfigError(f"eval.engine: expected {' or '.join(ENGINES)}, got {self.eval.engine!r}")
        if self.eval.spm_tokenizer not in ("auto", "flores101", "flores200"):
            raise ConfigError(f"eval.spm_tokenizer: expected auto, flores101 or flores200, got {self.eval.spm_tokenizer!r}")
        return self

    def absolute_paths(self) -> RunConfig:
        """Make relative input paths absolute against the current directory (a run made from a
        config mapping rather than a file); returns self."""
        data = resolve_paths(self.to_dict())
        self.model, self.tokenizer, self.init_from = data["model"], data["tokenizer"], data["init_from"]
        self.data.path, self.eval.spm_model = data["data"]["path"], data["eval"]["spm_model"]
        self.written_paths = data.get("written_paths")
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
        resolve_paths(data, Path(path).resolve().parent)  # the file's relative paths: from its directory
        for item in overrides or []:
            apply_override(data, item)
        resolve_paths(data)  # an override's relative path: from the current directory
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


def reference_yaml(width: int = 100) -> str:
    """Every config field with its default and help text, as YAML a user can start from
    (``lslo config --defaults``; the README's configuration reference is this text)."""
    import textwrap

    def value(v: Any) -> str:
        text = yaml.safe_dump(v, default_flow_style=True, sort_keys=False, allow_unicode=True, width=1000).strip()
        return text[:-4].strip() if text.endswith("\n...") else text.removesuffix("...").strip()

    def section(obj: Any, indent: str) -> list[str]:
        out: list[str] = []
        for f in dataclasses.fields(obj):
            help_text = f.metadata.get("help", "")
            for line in textwrap.wrap(help_text, width - len(indent) - 2):
                out.append(f"{indent}# {line}")
            v = getattr(obj, f.name)
            if dataclasses.is_dataclass(v):
                out.append(f"{indent}{f.name}:")
                out += section(v, indent + "  ")
            elif f.name == "languages" and v == []:
                out.append(f"{indent}{f.name}:  # e.g. (codes: en, eng or eng_Latn; level: high | medium | low)")
                out.append(f"{indent}  - {{code: en, level: high}}")
                out.append(f"{indent}  - {{code: wo, level: low, rank: 8}}")
            else:
                out.append(f"{indent}{f.name}: {value(v)}")
        return out

    head = ["# lslo run configuration: every field, its default and what it does (lslo config --defaults).",
            "# Relative input paths (model, tokenizer, data.path, eval.spm_model, init_from) are read from this",
            "# file's directory, else from the current one; output_dir is relative to the current directory."]
    return "\n".join(head + section(RunConfig(), "")) + "\n"
