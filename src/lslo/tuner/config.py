"""Typed configuration of language-specific LoRA (LSLo), with YAML load/save.

Defaults reproduce the paper's final setting (docs/concepts/method.md#routing):
encoder q/k/v/fc1/fc2 and
decoder self q/k/v, cross q/k/v, fc1/fc2 adapted; ranks high=2, medium=2, low=8;
no alpha/r scaling; upper quarter of encoder layers and all decoder layers
target-indexed, the rest source-indexed. Every validation error is a
``ConfigError`` whose one-line message names the offending field.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lslo.errors import LSLoError

LEVELS = ("high", "medium", "low")
ROUTES = ("source", "target")
ENCODER_POSITIONS = ("q", "k", "v", "out", "fc1", "fc2")
DECODER_POSITIONS = ("q", "k", "v", "out", "cross_q", "cross_k", "cross_v", "cross_out", "fc1", "fc2")

# Module-name suffixes of each position inside a BART-family layer
# (M2M-100, NLLB, MBart, Marian, BART all share these names).
BART_MODULE_NAMES = {
    "q": "self_attn.q_proj",
    "k": "self_attn.k_proj",
    "v": "self_attn.v_proj",
    "out": "self_attn.out_proj",
    "cross_q": "encoder_attn.q_proj",
    "cross_k": "encoder_attn.k_proj",
    "cross_v": "encoder_attn.v_proj",
    "cross_out": "encoder_attn.out_proj",
    "fc1": "fc1",
    "fc2": "fc2",
}


class ConfigError(LSLoError):
    """A configuration field is missing, unknown or out of range."""


@dataclass
class LanguageSpec:
    """One language: our code, its resource level, an optional explicit rank and model token."""

    code: str
    level: str = "high"
    rank: int | None = None
    token: str | None = None  # model language token; None = derived from the tokenizer

    def validate(self, where: str) -> None:
        if not isinstance(self.code, str) or not self.code.strip():
            raise ConfigError(f"{where}.code: expected a non-empty string, got {self.code!r}")
        if self.level not in LEVELS:
            raise ConfigError(f"{where}.level: expected one of {'/'.join(LEVELS)}, got {self.level!r}")
        if self.rank is not None and (not _is_int(self.rank) or self.rank < 1):
            raise ConfigError(f"{where}.rank: expected an integer >= 1, got {self.rank!r}")
        if self.token is not None and (not isinstance(self.token, str) or not self.token):
            raise ConfigError(f"{where}.token: expected a non-empty string, got {self.token!r}")


def _short_code(code: str) -> str:
    """A known language's short code (what corpus readers give), else the code as written."""
    from lslo.tuner.langcodes import UnknownLanguageError, to_short

    try:
        return to_short(code)
    except UnknownLanguageError:
        return code


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass
class LSLoConfig:
    """What is adapted, how, and how each layer is routed."""

    languages: list[LanguageSpec] = field(default_factory=list, metadata={
        "help": "the languages, each with its resource level and optionally an explicit rank and model token"})
    ranks: dict[str, int] = field(default_factory=lambda: {"high": 2, "medium": 2, "low": 8}, metadata={
        "help": "rank per resource level (paper: high 2, medium 2, low 8)"})
    alpha: float | None = field(default=None, metadata={
        "help": "s_l = alpha / r_l when set; null reproduces the paper's unscaled update (s_l = 1)"})
    dropout: float = field(default=0.0, metadata={"help": "dropout on the adapter input, in [0, 1)"})
    encoder_positions: list[str] = field(default_factory=lambda: ["q", "k", "v", "fc1", "fc2"], metadata={
        "help": f"adapted positions of every encoder layer, some of {', '.join(ENCODER_POSITIONS)}"})
    decoder_positions: list[str] = field(
        default_factory=lambda: ["q", "k", "v", "cross_q", "cross_k", "cross_v", "fc1", "fc2"], metadata={
            "help": f"adapted positions of every decoder layer, some of {', '.join(DECODER_POSITIONS)}"})
    encoder_routing: Any = field(default=None, metadata={
        "help": "per-layer routing: null (the paper's default for the model's depth), a list of "
                "source/target (one per layer), or {source: [layers], target: [layers]} (0-based)"})
    decoder_routing: Any = field(default=None, metadata={"help": "as encoder_routing (default: all target)"})
    module_names: dict[str, str] | None = field(default=None, metadata={
        "help": "position -> module-name suffix inside a layer; null = the BART-family names"})
    init: str = field(default="kaiming", metadata={
        "help": "kaiming (paper: A kaiming-uniform a=sqrt(5), B zero) or gaussian"})
    shared_rank: int | None = field(default=None, metadata={
        "help": "baseline 'one shared LoRA': one adapter of this rank for every language (null: LSLo)"})

    def __post_init__(self) -> None:
        # A config is valid from the moment it exists (an empty language list is the one
        # state allowed to wait: RunConfig fills it in from YAML before validating).
        if self.languages:
            self.validate()

    # ---------------------------------------------------------------- derived
    @property
    def codes(self) -> list[str]:
        return [lang.code for lang in self.languages]

    def rank_of(self, code: str) -> int:
        spec = self.language(code)
        return spec.rank if spec.rank is not None else int(self.ranks[spec.level])

    def language(self, code: str) -> LanguageSpec:
        for lang in self.languages:
            if lang.code == code:
                return lang
        raise ConfigError(f"languages: unknown language {code!r}; configured: {', '.join(self.codes)}")

    def scale_of(self, code: str) -> float:
        return 1.0 if self.alpha is None else float(self.alpha) / self.rank_of(code)

    def position_names(self) -> dict[str, str]:
        return dict(BART_MODULE_NAMES if self.module_names is None else self.module_names)

    # ------------------------------------------------------------ validation
    def validate(self) -> LSLoConfig:
        if not isinstance(self.languages, list) or not self.languages:
            raise ConfigError("languages: expected a non-empty list of languages")
        seen: set[str] = set()
        for i, lang in enumerate(self.languages):
            lang.validate(f"languages[{i}]")
            if lang.code in seen:
                raise ConfigError(f"languages[{i}].code: duplicate language {lang.code!r}")
            seen.add(lang.code)
        if not isinstance(self.ranks, dict):
            raise ConfigError(f"ranks: expected a mapping level -> rank, got {self.ranks!r}")
        for level, r in self.ranks.items():
            if level not in LEVELS:
                raise ConfigError(f"ranks.{level}: unknown level; expected one of {'/'.join(LEVELS)}")
            if not _is_int(r) or r < 1:
                raise ConfigError(f"ranks.{level}: expected an integer >= 1, got {r!r}")
        for i, lang in enumerate(self.languages):
            if lang.rank is None and lang.level not in self.ranks:
                raise ConfigError(f"ranks.{lang.level}: missing (needed by languages[{i}] {lang.code!r})")
        if self.alpha is not None and (isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or self.alpha <= 0):
            raise ConfigError(f"alpha: expected a positive number or null, got {self.alpha!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout: expected a number in [0, 1), got {self.dropout!r}")
        names = self.position_names()
        for fname, allowed in (("encoder_positions", ENCODER_POSITIONS), ("decoder_positions", DECODER_POSITIONS)):
            value = getattr(self, fname)
            if not isinstance(value, list):
                raise ConfigError(f"{fname}: expected a list of positions, got {value!r}")
            for p in value:
                if p not in allowed:
                    raise ConfigError(f"{fname}: unknown position {p!r}; expected some of {', '.join(allowed)}")
                if p not in names:
                    raise ConfigError(f"module_names: no module name for position {p!r} (used in {fname})")
            if len(set(value)) != len(value):
                raise ConfigError(f"{fname}: duplicate positions in {value!r}")
        if self.init not in ("kaiming", "gaussian"):
            raise ConfigError(f"init: expected 'kaiming' or 'gaussian', got {self.init!r}")
        if self.shared_rank is not None and (not _is_int(self.shared_rank) or self.shared_rank < 1):
            raise ConfigError(f"shared_rank: expected an integer >= 1 or null, got {self.shared_rank!r}")
        for fname in ("encoder_routing", "decoder_routing"):
            _check_routing_shape(fname, getattr(self, fname))
        return self

    def resolve_routing(self, n_encoder: int, n_decoder: int) -> tuple[list[str], list[str]]:
        """Per-layer routes for a model of the given depth (errors name the field)."""
        n_target = int(n_encoder * 0.25 + 0.5)  # top quarter, rounded half up (12 -> 3)
        enc_default = ["source"] * (n_encoder - n_target) + ["target"] * n_target
        enc = _resolve_routing("encoder_routing", self.encoder_routing, n_encoder, enc_default)
        dec = _resolve_routing("decoder_routing", self.decoder_routing, n_decoder, ["target"] * n_decoder)
        return enc, dec

    # ------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["languages"] = [{k: v for k, v in lang.items() if v is not None} for lang in d["languages"]]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "lslo") -> LSLoConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(f"{where}.{key}: unknown field; expected one of {', '.join(sorted(known))}")
        kwargs = dict(data)
        langs = kwargs.get("languages", [])
        if not isinstance(langs, list):
            raise ConfigError(f"{where}.languages: expected a list, got {type(langs).__name__}")
        parsed = []
        lang_fields = {f.name for f in dataclasses.fields(LanguageSpec)}
        for i, item in enumerate(langs):
            if isinstance(item, str):
                item = {"code": item}
            if not isinstance(item, dict):
                raise ConfigError(f"{where}.languages[{i}]: expected a mapping or a code, got {item!r}")
            for key in item:
                if key not in lang_fields:
                    raise ConfigError(
                        f"{where}.languages[{i}].{key}: unknown field; expected one of {', '.join(sorted(lang_fields))}"
                    )
            if "code" not in item:
                raise ConfigError(f"{where}.languages[{i}].code: missing")
            if isinstance(item["code"], str) and item["code"].strip():  # eng / eng_Latn / __en__ -> en,
                item = {**item, "code": _short_code(item["code"].strip())}  # as corpora and the CLI name it
            parsed.append(LanguageSpec(**item))
        kwargs["languages"] = parsed
        try:
            return cls(**kwargs).validate()
        except ConfigError as e:
            raise ConfigError(f"{where}.{e}" if where else str(e)) from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> LSLoConfig:
        data = load_yaml(path)
        try:
            return cls.from_dict(data, where="")
        except ConfigError as e:
            raise ConfigError(f"{path}: {str(e).lstrip('.')}") from None


class YamlLoader(yaml.SafeLoader):
    """YAML 1.1's SafeLoader, but ``1e-3`` is a float (as in YAML 1.2 and every other reader):
    PyYAML wants ``1.0e-3`` and would hand ``lr: 1e-3`` over as the string '1e-3'."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"""),
    list("-+0123456789"),
)


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load`` with :class:`YamlLoader` (``1e-3`` is a float)."""
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 - a SafeLoader subclass


def load_yaml(path: str | Path) -> Any:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        return parse_yaml(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{line} invalid YAML ({getattr(e, 'problem', e)})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None


def _check_routing_shape(fname: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for i, r in enumerate(value):
            if r not in ROUTES:
                raise ConfigError(f"{fname}[{i}]: expected 'source' or 'target', got {r!r}")
        return
    if isinstance(value, dict):
        for key, layers in value.items():
            if key not in ROUTES:
                raise ConfigError(f"{fname}.{key}: expected keys 'source'/'target', got {key!r}")
            if not isinstance(layers, list) or not all(_is_int(x) for x in layers):
                raise ConfigError(f"{fname}.{key}: expected a list of 0-based layer indices, got {layers!r}")
        return
    raise ConfigError(f"{fname}: expected null, a list of 'source'/'target' or {{source: [...], target: [...]}}, got {value!r}")


def _resolve_routing(fname: str, value: Any, n_layers: int, default: list[str]) -> list[str]:
    if value is None:
        return list(default)
    if isinstance(value, list):
        if len(value) != n_layers:
            raise ConfigError(f"{fname}: has {len(value)} entries but the model has {n_layers} layers")
        return list(value)
    routes = list(default)
    assigned: dict[int, str] = {}
    for key, layers in value.items():
        for layer in layers:
            if not 0 <= layer < n_layers:
                raise ConfigError(
                    f"{fname}.{key}: layer {layer} out of range (the model has {n_layers} layers: 0-{n_layers - 1})"
                )
            if layer in assigned and assigned[layer] != key:
                raise ConfigError(f"{fname}: layer {layer} is both source- and target-indexed")
            assigned[layer] = key
            routes[layer] = key
    return routes
