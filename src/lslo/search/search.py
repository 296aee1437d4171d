"""Architecture learning for routing (SPEC 4): learn, per layer, whether LSLo is source- or target-indexed.

Every adapted linear map gets BOTH a source-indexed and a target-indexed LSLo (optionally a third,
shared LoRA that every language uses), and their updates are mixed by learnable softmax weights:

    h = W0 x + sum_c w_c * B_{c,l_c} A_{c,l_c} x,   w = softmax(logits / temperature),
    c in {source, target(, shared)},  l_source = source language, l_target = target language

One logit vector per (side, layer), shared by all positions (q/k/v/cross/fc1/fc2) of the layer, or one
per (side, layer, position) with ``per_position``. Logits start at 0 (equal mix). After a short
fine-tuning run (the run config's budget, optionally overridden by ``search.train``) each layer keeps
the side with the larger weight. ``lslo search CONFIG`` writes into the search directory:

    routing.yaml           an ``lslo:`` fragment with encoder_routing / decoder_routing
    search_result.yaml     the input run config with that routing, ready for ``lslo train``
    routing_weights.json   the learned weights per layer (and per position), winners, decisions
    routing_weights.png    the weights per layer, encoder and decoder, as stacked bars

plus what every training run writes (config.yaml of the search phase, metrics.csv, checkpoints).

The search config is an ordinary run config with an extra ``search:`` section (all optional)::

    search:
      per_position: false     # one mixing weight per position instead of per layer
      include_shared: false   # a third choice: one shared LoRA for all languages
      shared_rank: null       # its rank (default: the largest language rank)
      temperature: 1.0        # softmax temperature of the mixing weights
      logit_lr: null          # learning rate of the mixing logits (default: train.lr)
      output_dir: null        # the search directory (default: <output_dir>-search)
      train: {max_steps: 500} # overrides of the train section for the search phase only

``search_result.yaml`` keeps the input's ``train`` section and ``output_dir`` (the search-only overrides
are dropped), so one file describes both the search and the final run.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from lslo.training import RunError, Trainer
from lslo.training.config import RunConfig, apply_override
from lslo.tuner.config import DECODER_POSITIONS, ENCODER_POSITIONS, ConfigError, LSLoConfig, load_yaml
from lslo.tuner.layer import LSLoLinear, Router, WrapsLinear
from lslo.tuner.model import SHARED, LSLoModel

SOURCE, TARGET = "source", "target"
ROUTING_YAML = "routing.yaml"
RESULT_YAML = "search_result.yaml"
WEIGHTS_JSON = "routing_weights.json"
WEIGHTS_PNG = "routing_weights.png"
MIXING_WEIGHTS = "mixing.safetensors"

__all__ = [
    "DualLSLoLinear",
    "SearchConfig",
    "SearchModel",
    "SearchTrainer",
    "decide",
    "load_search_config",
    "plot_routing_weights",
    "routing_decision",
    "run_search",
]


# --------------------------------------------------------------------------- config
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
        cfg = cls(**data)
        if cfg.train is None:
            cfg.train = {}
        return cfg.validate()

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
    for item in overrides or []:
        apply_override(data, item)
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


# --------------------------------------------------------------------------- layer
class DualLSLoLinear(WrapsLinear):
    """A frozen linear map with a source-indexed and a target-indexed LSLo (and optionally a shared
    LoRA), whose updates are mixed by ``softmax(logits / temperature)``.

    The adapters are ordinary ``LSLoLinear`` modules sharing this module's frozen ``base`` (so
    pruning, saving and reporting find them); only their ``_delta`` is used, and ``base(x)`` is
    added once. ``logits`` (one entry per choice) may be shared with the other positions of a layer.
    """

    def __init__(
        self,
        base: nn.Linear,
        ranks: list[int],
        scales: list[float],
        languages: tuple[str, ...],
        router: Router,
        logits: nn.Parameter,
        *,
        side: str,
        layer: int,
        position: str,
        name: str,
        choices: tuple[str, ...] = (SOURCE, TARGET),
        shared_rank: int | None = None,
        shared_scale: float = 1.0,
        temperature: float = 1.0,
        dropout: float = 0.0,
        init: str = "kaiming",
    ) -> None:
        super().__init__()
        if tuple(choices[:2]) != (SOURCE, TARGET) or not set(choices[2:]) <= {SHARED} or len(choices) > 3:
            raise ValueError(f"choices must be (source, target) or (source, target, shared), got {choices!r}")
        if logits.shape != (len(choices),):
            raise ValueError(f"logits must have shape ({len(choices)},), got {tuple(logits.shape)}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.router = router
        self.choices = tuple(choices)
        self.side, self.layer, self.position, self.name = side, layer, position, name
        self.temperature = float(temperature)
        self.logits = logits
        adapters = {}
        for choice in self.choices:
            if choice == SHARED:
                r = int(shared_rank if shared_rank is not None else max(ranks))
                langs, rk, sc, routing = (SHARED,), [r], [float(shared_scale)], SOURCE
            else:
                langs, rk, sc, routing = tuple(languages), list(ranks), list(scales), choice
            adapters[choice] = LSLoLinear(
                base, rk, sc, langs, router, routing=routing, side=side, layer=layer, position=position,
                name=f"{name}.{choice}", dropout=dropout, init=init,
            )
        self.adapters = nn.ModuleDict(adapters)

    def mixing_weights(self) -> torch.Tensor:
        """softmax(logits / temperature), float32, one entry per choice."""
        return torch.softmax(self.logits.float() / self.temperature, dim=-1)

    def _indices(self, choice: str, n_rows: int, device: torch.device) -> torch.Tensor:
        """One language index per sentence (beam rows of a sentence are contiguous and share it)."""
        route = SOURCE if choice == SHARED else choice
        groups = getattr(self.router, "groups", None)
        if groups is not None:
            idx, _ = groups(route, n_rows, device)
        else:
            idx = self.router.index(route, n_rows, device)
        return torch.zeros_like(idx) if choice == SHARED else idx

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        w = self.mixing_weights()
        mix = None
        for i, choice in enumerate(self.choices):
            idx = self._indices(choice, x.shape[0], x.device)
            h = x.reshape(idx.shape[0], -1, self.in_features)
            d = self.adapters[choice]._delta(h, idx)
            term = w[i].to(d.dtype) * d
            mix = term if mix is None else mix + term
        return out + mix.reshape(out.shape).to(out.dtype)

    def extra_repr(self) -> str:
        return f"{self.name}, mixing {'/'.join(self.choices)}"


# --------------------------------------------------------------------------- model
def _logit_key(side: str, layer: int, position: str | None) -> str:
    return f"{side}.{layer}" if position is None else f"{side}.{layer}.{position}"


class SearchModel(LSLoModel):
    """An LSLoModel whose adapted layers are ``DualLSLoLinear``: forward / generate / translate,
    tokens, ``lslo_modules`` (the inner adapters, named ``<module>.<choice>``) and the pruning code
    work as for LSLoModel. The mixing logits are trainable parameters (``mixing_parameters``)."""

    def __init__(self, base: nn.Module, config: LSLoConfig, tokenizer: Any = None,
                 search: SearchConfig | None = None) -> None:
        search = (search or SearchConfig()).validate()
        if config.shared_rank is not None:
            raise ConfigError("lslo.shared_rank: architecture search needs language-specific adapters (set it to null)")
        object.__setattr__(self, "_search_cfg", search)  # read by _inject during LSLoModel.__init__
        object.__setattr__(self, "_mixing", {})
        super().__init__(base, config, tokenizer)
        self.search = search

    def _inject(self, n_enc: int, n_dec: int) -> None:
        # Let LSLoModel find and check the positions (same matching and errors), then replace each
        # LSLoLinear by a DualLSLoLinear around the same frozen base.
        super()._inject(n_enc, n_dec)
        cfg, search = self.config, self._search_cfg
        codes = tuple(cfg.codes)
        ranks = [cfg.rank_of(c) for c in codes]
        scales = [cfg.scale_of(c) for c in codes]
        shared_rank = search.shared_rank if search.shared_rank is not None else max(ranks)
        shared_scale = 1.0 if cfg.alpha is None else float(cfg.alpha) / shared_rank
        n_choices = len(search.choices)
        from lslo.tuner.layer import set_submodule

        olds = [(name, m) for name, m in self.base.named_modules() if isinstance(m, LSLoLinear)]
        for name, old in olds:
            key = _logit_key(old.side, old.layer, old.position if search.per_position else None)
            if key not in self._mixing:
                self._mixing[key] = nn.Parameter(torch.zeros(n_choices, device=old.base.weight.device))
            dual = DualLSLoLinear(
                old.base, ranks, scales, codes, self.router, self._mixing[key],
                side=old.side, layer=old.layer, position=old.position, name=old.name,
                choices=search.choices, shared_rank=shared_rank, shared_scale=shared_scale,
                temperature=search.temperature, dropout=cfg.dropout, init=cfg.init,
            )
            set_submodule(self.base, name, dual)

    # ---------------------------------------------------------------- access
    def dual_modules(self) -> dict[str, DualLSLoLinear]:
        return {m.name: m for m in self.base.modules() if isinstance(m, DualLSLoLinear)}

    def mixing_parameters(self) -> list[nn.Parameter]:
        return list(self._mixing.values())

    def mixing_logits(self) -> dict[str, torch.Tensor]:
        """Key ``side.layer`` (or ``side.layer.position`` with per_position) -> logits."""
        return {k: p.detach() for k, p in self._mixing.items()}

    def base_parameter_count(self) -> int:
        skip = {id(p) for p in self.adapter_parameters()} | {id(p) for p in self.mixing_parameters()}
        return sum(p.numel() for p in self.base.parameters() if id(p) not in skip)

    def parameter_report(self) -> dict[str, Any]:
        codes = list(self.config.codes) + ([SHARED] if SHARED in self.search.choices else [])
        per_lang = dict.fromkeys(codes, 0)
        for m in self.lslo_modules().values():
            kept = m.mask_A.sum(dim=(1, 2)) + m.mask_B.sum(dim=(1, 2))
            for i, code in enumerate(m.languages):
                per_lang[code] += int(kept[i])
        base = self.base_parameter_count()
        mixing = sum(p.numel() for p in self.mixing_parameters())
        total = sum(per_lang.values()) + mixing
        shared_rank = self.search.shared_rank or max(self.config.rank_of(c) for c in self.config.codes)

        def row(c: str) -> dict[str, Any]:
            level = "shared" if c == SHARED else self.config.language(c).level
            rank = shared_rank if c == SHARED else self.config.rank_of(c)
            return {"level": level, "rank": rank, "parameters": per_lang[c], "percent_of_base": 100.0 * per_lang[c] / base}

        return {
            "method": "search",
            "base_parameters": base,
            "trainable_parameters": total,
            "trainable_percent": 100.0 * total / base,
            "mixing_parameters": mixing,
            "per_language": {c: row(c) for c in codes},
        }

    # ------------------------------------------------------------ save / load
    def save_adapters(self, directory: str | Path) -> Path:
        from safetensors.torch import save_file

        out = super().save_adapters(directory)
        save_file({k: v.detach().float().contiguous().cpu() for k, v in self._mixing.items()},
                  str(out / MIXING_WEIGHTS), metadata={"format": "lslo-search", "version": "1"})
        return out

    def load_adapters(self, directory: str | Path) -> None:
        from safetensors.torch import load_file

        super().load_adapters(directory)
        path = Path(directory) / MIXING_WEIGHTS
        if not path.is_file():
            raise RunError(f"{path}: no mixing weights (not a search checkpoint?)")
        state = load_file(str(path))
        if set(state) != set(self._mixing):
            raise RunError(f"{path}: mixing weights do not match this search model")
        with torch.no_grad():
            for k, p in self._mixing.items():
                p.copy_(state[k].to(p.dtype))

    # ----------------------------------------------------------------- result
    def routing_weights(self) -> dict[str, Any]:
        """The learned weights and the routing decision (see ``routing_decision``)."""
        search = self.search
        raw: dict[str, dict[int, dict[str, dict[str, float]]]] = {"encoder": {}, "decoder": {}}
        order = {"encoder": ENCODER_POSITIONS, "decoder": DECODER_POSITIONS}
        duals = sorted(self.dual_modules().values(), key=lambda m: (m.layer, order[m.side].index(m.position)))
        for m in duals:  # positions in the canonical order q, k, v, out, cross_*, fc1, fc2
            w = m.mixing_weights().detach().cpu().tolist()
            raw[m.side].setdefault(m.layer, {})[m.position] = dict(zip(search.choices, w))
        return routing_decision(
            raw, search.choices, defaults={"encoder": self.encoder_routing, "decoder": self.decoder_routing},
            per_position=search.per_position, temperature=search.temperature,
            logits={k: v.cpu().tolist() for k, v in self.mixing_logits().items()},
        )


# --------------------------------------------------------------------------- decisions
def decide(weights: dict[str, float], default: str | None = None) -> str:
    """The choice with the largest weight; an exact tie goes to ``default`` when it is among the tied."""
    best = max(weights.values())
    tied = [c for c, w in weights.items() if w == best]
    return default if default in tied else tied[0]


def _route_of(weights: dict[str, float], default: str) -> str:
    """source/target for the training config: the larger of the two (a shared winner maps to the closer)."""
    return decide({SOURCE: weights[SOURCE], TARGET: weights[TARGET]}, default)


def routing_decision(
    raw: dict[str, dict[int, dict[str, dict[str, float]]]],
    choices: tuple[str, ...],
    defaults: dict[str, list[str]],
    per_position: bool,
    temperature: float = 1.0,
    logits: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    """Per-layer (and per-position) winners and the source/target routing for ``lslo train``.

    ``raw[side][layer][position]`` = {choice: weight}. Without per_position every position of a layer
    carries the same weights. The layer's weights are the mean over its positions (with per_position:
    summed weights decide the layer; the per-position majority is reported too). The layer's
    ``winner`` may be ``shared``; its ``route`` is then the larger of source/target. Exact ties go to
    the default routing of the config (the paper's setting).
    """
    out: dict[str, Any] = {"choices": list(choices), "per_position": per_position, "temperature": temperature}
    per_pos_routing: dict[str, dict[str, list[str]]] = {}
    for side in ("encoder", "decoder"):
        layers = []
        routes = []
        positions_seen: list[str] = []
        for layer in sorted(raw[side]):
            by_pos = raw[side][layer]
            default = defaults[side][layer]
            mean = {c: sum(w[c] for w in by_pos.values()) / len(by_pos) for c in choices}
            winner = decide(mean, default)
            route = _route_of(mean, default)
            entry: dict[str, Any] = {"layer": layer, "weights": mean, "winner": winner, "route": route}
            if winner == SHARED:
                entry["shared_won"] = True
            if per_position:
                pos_entries = {}
                for pos, w in by_pos.items():
                    if pos not in positions_seen:
                        positions_seen.append(pos)
                    pos_entries[pos] = {"weights": w, "winner": decide(w, default), "route": _route_of(w, default)}
                votes = Counter(e["winner"] for e in pos_entries.values())
                entry["majority"] = decide({c: float(votes.get(c, 0)) for c in choices}, winner)
                entry["positions"] = pos_entries
            layers.append(entry)
            routes.append(route)
        out[side] = layers
        out[f"{side}_routing"] = routes
        if per_position:
            per_pos_routing[side] = {
                pos: [e["positions"][pos]["winner"] if pos in e["positions"] else None for e in layers]
                for pos in positions_seen
            }
    out["shared_won"] = {
        side: [e["layer"] for e in out[side] if e["winner"] == SHARED] for side in ("encoder", "decoder")
    }
    if per_position:
        out["per_position_routing"] = per_pos_routing
    if logits is not None:
        out["logits"] = logits
    return out


# --------------------------------------------------------------------------- plot
_COLORS = {SOURCE: "#4C72B0", TARGET: "#DD8452", SHARED: "#8C8C8C"}


def plot_routing_weights(result: dict[str, Any], path: str | Path) -> Path:
    """Stacked bars of the mixing weights: encoder and decoder, per layer (per layer x position)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    choices = result["choices"]
    per_pos = result["per_position"]
    sides = [s for s in ("encoder", "decoder") if result[s]]
    fig, axes = plt.subplots(len(sides), 1, figsize=(10, 2.8 * len(sides)), squeeze=False)
    for ax, side in zip(axes[:, 0], sides):
        labels, bars, edges = [], [], []
        for e in result[side]:
            if per_pos:
                for pos, p in e["positions"].items():
                    labels.append(f"{e['layer'] + 1}.{pos}")
                    bars.append(p["weights"])
                edges.append(len(labels))
            else:
                labels.append(str(e["layer"] + 1))
                bars.append(e["weights"])
        x = list(range(len(labels)))
        bottom = [0.0] * len(labels)
        for c in choices:
            h = [b[c] for b in bars]
            ax.bar(x, h, bottom=bottom, color=_COLORS[c], label=c, width=0.85)
            bottom = [b + v for b, v in zip(bottom, h)]
        ax.axhline(0.5, color="k", lw=0.6, ls="--")
        for edge in edges[:-1]:
            ax.axvline(edge - 0.5, color="k", lw=0.4)
        ax.set_xticks(x, labels, rotation=90 if per_pos else 0, fontsize=6 if per_pos else 9)
        ax.set_ylim(0, 1)
        ax.set_xlim(-0.5, len(labels) - 0.5)
        routes = "".join(r[0].upper() for r in result[f"{side}_routing"])
        ax.set_title(f"{side}: learned mixing weights per layer{' x position' if per_pos else ''}  (routing {routes})",
                     fontsize=10)
        ax.set_ylabel("weight")
        ax.set_xlabel("layer" + (".position" if per_pos else ""))
    axes[0, 0].legend(loc="upper right", fontsize=8, ncol=len(choices))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


# --------------------------------------------------------------------------- training
class SearchTrainer(Trainer):
    """The ordinary training loop on a ``SearchModel``; mixing logits may get their own learning rate."""

    def __init__(self, cfg: RunConfig, run_dir: str | Path, search: SearchConfig, **kwargs) -> None:
        super().__init__(cfg, run_dir, **kwargs)
        self.search = search

    def make_model(self, base, tokenizer) -> SearchModel:
        if self.cfg.method != "lslo":
            raise ConfigError(f"method: search learns the routing of LSLo; expected 'lslo', got {self.cfg.method!r}")
        return SearchModel(base, self.cfg.lslo, tokenizer, search=self.search)

    def param_groups(self, params: list[nn.Parameter]) -> list[dict[str, Any]]:
        """With ``search.logit_lr``: the mixing logits in a second group with their own rate
        (same parameters, same order as the Trainer's single group)."""
        if self.search.logit_lr is None:
            return super().param_groups(params)
        mix = {id(p) for p in self.model.mixing_parameters()}
        return [
            {"params": [p for p in params if id(p) not in mix]},
            {"params": [p for p in params if id(p) in mix], "lr": float(self.search.logit_lr)},
        ]


def write_results(result: dict[str, Any], run_data: dict[str, Any], search: SearchConfig, out: Path) -> dict[str, Path]:
    """routing.yaml, search_result.yaml, routing_weights.json and routing_weights.png in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    routing = {"encoder_routing": result["encoder_routing"], "decoder_routing": result["decoder_routing"]}
    header = "# Routing learned by `lslo search` (SPEC 4): per layer, the side with the larger mixing weight.\n"
    shared = result["shared_won"]
    if shared["encoder"] or shared["decoder"]:
        header += (f"# The shared LoRA won encoder layers {shared['encoder']} / decoder layers {shared['decoder']}"
                   " (0-based); they take the larger of source/target here (see routing_weights.json).\n")
    paths = {"routing": out / ROUTING_YAML, "result": out / RESULT_YAML, "json": out / WEIGHTS_JSON,
             "png": out / WEIGHTS_PNG}
    paths["routing"].write_text(header + yaml.safe_dump({"lslo": routing}, sort_keys=False, default_flow_style=None),
                                encoding="utf-8")
    final = copy.deepcopy(run_data)
    final.setdefault("lslo", {})
    final["lslo"] = dict(final["lslo"] or {}, **routing)
    RunConfig.from_dict(copy.deepcopy(final))  # what `lslo train` will accept
    paths["result"].write_text(
        header.replace("(SPEC 4)", "(SPEC 4), written into the input config")
        + yaml.safe_dump(final, sort_keys=False, allow_unicode=True, default_flow_style=None),
        encoding="utf-8",
    )
    body = dict(result, search=search.to_dict())
    paths["json"].write_text(json.dumps(body, indent=2), encoding="utf-8")
    plot_routing_weights(result, paths["png"])
    return paths


def run_search(config: str | Path, overrides: list[str] | None = None, *, output_dir: str | None = None,
               overwrite: bool = False, device: str | None = None, quiet: bool = False,
               stop_after_steps: int | None = None) -> dict[str, Any]:
    """Train the search model for the configured budget and write the routing files; returns the result."""
    cfg, search, run_data = load_search_config(config, overrides)
    run_dir = Path(output_dir or search.output_dir or f"{str(run_data.get('output_dir', cfg.output_dir)).rstrip('/')}-search")
    if (run_dir / "checkpoints").exists() and not overwrite:
        raise RunError(f"{run_dir}: already holds a run; use --overwrite or another --output-dir")
    if run_dir.resolve() == Path(cfg.output_dir).resolve():
        raise RunError(f"{run_dir}: the search directory must differ from output_dir (where search_result.yaml trains)")
    phase = copy.deepcopy(cfg)
    phase.output_dir = str(run_dir)
    trainer = SearchTrainer(phase, run_dir, search, device=device, quiet=quiet)
    train = trainer.train(stop_after_steps=stop_after_steps)
    result = trainer.model.routing_weights()
    result["steps"], result["epochs"] = train.steps, train.epochs
    result["first_train_loss"], result["last_train_loss"] = train.first_train_loss, train.last_train_loss
    if getattr(trainer, "is_main", True):
        paths = write_results(result, run_data, search, run_dir)
        result["files"] = {k: str(v) for k, v in paths.items()}
    result["run_dir"] = str(run_dir)
    return result


# --------------------------------------------------------------------------- CLI


