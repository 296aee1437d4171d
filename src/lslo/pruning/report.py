"""What survived pruning: per-language parameters, density and effective rank."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lslo.pruning.modules import as_module_list, module_languages, position_key


def sparsity_report(modules: nn.Module | Sequence[nn.Module], base_param_count: int) -> dict[str, Any]:
    """Per-language surviving parameters, share of the base model and effective rank (plain dict).

    ``languages[code]``: surviving (kept valid entries of A and B), total (valid entries),
    density, surviving_B / total_B / density_B (the same for B alone: what B-only pruning
    decides per language), percent_of_base, compact_params (r'(d_in + d_out) summed: what a compacted
    adapter stores densely), effective_rank_mean/min (components whose A row and B column both
    keep an entry, over modules), rank (max r_l), density_by_position ("side.layer.position").
    ``positions``: density per position over all languages. ``total``: sums over languages.
    """
    mods = as_module_list(modules)
    langs: dict[str, dict[str, Any]] = {}
    positions: dict[str, list[int]] = {}
    with torch.no_grad():
        for m in mods:
            key = position_key(m)
            for lang, code in enumerate(module_languages(m)):
                r = int(m.ranks[lang])
                ma, mb = m.mask_A_of(lang), m.mask_B_of(lang)
                d_in, d_out = ma.shape[1], mb.shape[0]
                kept_b = int(mb.sum())
                kept = int(ma.sum()) + kept_b
                total = ma.numel() + mb.numel()
                eff = int((ma.any(dim=1) & mb.any(dim=0)).sum()) if r else 0
                s = langs.setdefault(
                    code, {"surviving": 0, "total": 0, "surviving_B": 0, "total_B": 0, "compact_params": 0,
                           "ranks": [], "eff": [], "pos": {}}
                )
                s["surviving"] += kept
                s["total"] += total
                s["surviving_B"] += kept_b
                s["total_B"] += mb.numel()
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
            "surviving_B": s["surviving_B"],
            "total_B": s["total_B"],
            "density_B": density(s["surviving_B"], s["total_B"]),
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
