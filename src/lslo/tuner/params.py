"""How many parameters a model trains, in total and per language (kept, non-padding entries)."""

from __future__ import annotations

from typing import Any

from torch import nn

from lslo.tuner.layer import SHARED


def base_parameter_count(model: nn.Module) -> int:
    """Parameters of the base model, adapters excluded."""
    adapter = {id(p) for p in model.adapter_parameters()}
    return sum(p.numel() for p in model.base.parameters() if id(p) not in adapter)


def parameter_report(model: nn.Module) -> dict[str, Any]:
    """Trainable (kept, non-padding) adapter parameters in total and per language."""
    codes = [SHARED] if model.shared else model.config.codes
    per_lang = dict.fromkeys(codes, 0)
    for m in model.lslo_modules().values():
        kept = m.kept_per_language()
        for i, code in enumerate(codes):
            per_lang[code] += int(kept[i])
    base = model.base_parameter_count()
    adapters = sum(per_lang.values())
    full = sum(p.numel() for p in model.base.parameters() if p.requires_grad and p.dim() > 0) - sum(
        p.numel() for p in model.adapter_parameters()
    )
    total = adapters + full  # full fine-tuning trains the base itself
    def level(c: str) -> str:
        return "shared" if c == SHARED else model.config.language(c).level
    def rank(c: str) -> int:
        return int(model.config.shared_rank) if c == SHARED else model.config.rank_of(c)
    return {
        "method": "full" if full else ("lora" if model.shared else "lslo"),
        "base_parameters": base,
        "trainable_parameters": total,
        "trainable_percent": 100.0 * total / base,
        "per_language": {
            c: {"level": level(c), "rank": rank(c), "parameters": n, "percent_of_base": 100.0 * n / base}
            for c, n in per_lang.items()
        },
    }
