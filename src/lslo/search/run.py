"""Architecture learning for routing (the paper's weight learning): learn, per layer, whether LSLo is source- or target-indexed.

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
import json
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from lslo.search.config import (
    RESULT_YAML,
    ROUTING_YAML,
    WEIGHTS_JSON,
    WEIGHTS_PNG,
    SearchConfig,
    load_search_config,
)
from lslo.search.decision import plot_routing_weights
from lslo.search.model import SearchModel
from lslo.training import RunError, Trainer
from lslo.training.config import RunConfig
from lslo.tuner.config import ConfigError

# --------------------------------------------------------------------------- config


# --------------------------------------------------------------------------- layer


# --------------------------------------------------------------------------- model


# --------------------------------------------------------------------------- decisions


# --------------------------------------------------------------------------- plot


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
    tag = "(the paper's architecture learning)"
    header = f"# Routing learned by `lslo search` {tag}: per layer, the side with the larger mixing weight.\n"
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
        header.replace(tag, f"{tag}, written into the input config")
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


