"""The search model: every adapted position a ``DualLSLoLinear``, one logit vector per layer (or position)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lslo.search.config import MIXING_WEIGHTS, SearchConfig
from lslo.search.decision import routing_decision
from lslo.search.layer import DualLSLoLinear
from lslo.training import RunError
from lslo.tuner.config import DECODER_POSITIONS, ENCODER_POSITIONS, ConfigError, LSLoConfig
from lslo.tuner.layer import LSLoLinear
from lslo.tuner.model import SHARED, LSLoModel
from lslo.tuner.serialization import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    load_adapter_state,
    read_adapter_config,
    read_adapter_state,
)


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
            kept = m.kept_per_language()
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

    def load_adapters(self, directory: str | Path, languages: Sequence[str] | None = None) -> None:
        """A search checkpoint (adapters + mixing weights), or, for ``init_from``, the adapters of a
        plain LSLo run: each of its layers fills the side (source/target) it was routed by there;
        the other side and the mixing weights keep their initial values."""
        from safetensors.torch import load_file

        path = Path(directory) / MIXING_WEIGHTS
        if not path.is_file() and (Path(directory) / ADAPTER_CONFIG).is_file():
            self._load_plain_adapters(Path(directory), languages)
            return
        super().load_adapters(directory, languages)
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

    def _load_plain_adapters(self, directory: Path, languages: Sequence[str] | None) -> None:
        meta = read_adapter_config(directory)
        routes = {"encoder": meta.get("encoder_routing"), "decoder": meta.get("decoder_routing")}
        if not all(isinstance(r, list) for r in routes.values()):
            raise RunError(f"{directory / ADAPTER_CONFIG}: no per-layer routing recorded")
        state = read_adapter_state(directory)
        renamed, targets = {}, set()
        for dual in self.dual_modules().values():
            route = routes[dual.side][dual.layer]
            inner = f"{dual.name}.{route}"
            targets.add(inner)
            prefix = f"{dual.name}."
            for key, value in state.items():
                rest = key[len(prefix):] if key.startswith(prefix) else None
                if rest is not None and rest.count(".") == 1:  # <code>.<tensor>
                    renamed[f"{inner}.{rest}"] = value
        load_adapter_state(self, renamed, directory / ADAPTER_WEIGHTS, languages, modules=targets)
