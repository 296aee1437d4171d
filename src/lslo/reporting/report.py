"""What survives pruning, per language, made visible.

The paper's central finding (Cao et al., EMNLP 2024; see
docs/concepts/method.md#gradual-pruning) is that each language fine-tunes inside a
small language-specific subspace, and that high-resource languages need a smaller
one than low-resource languages. This module turns ``sparsity_report`` (pruning.py)
and ``LSLoModel.parameter_report()`` into:

- ``build_report(model)``: the sparsity report with each language's resource level
  (and method / trainable totals) added, plus ``per_level`` means;
- ``plot_parameters_per_language``: a bar chart of surviving parameters per language
  as a percentage of the base model, coloured and ordered by resource level;
- ``plot_density_heatmap``: density per (layer, position): one "all languages" panel,
  one panel per level, then one small panel per language, on one colour scale;
- ``per_level_summary``: mean surviving parameters and effective rank per level;
- ``write_run_report(run_dir, model)``: ``report/parameters.png``, ``report/density.png``,
  ``report/sparsity.json`` and ``report/summary.md`` in a run directory.

Everything here reads masks only, so it works on any run: without pruning every
density is 1 and the bars show the configured ranks.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

__all__ = [
    "LEVEL_ORDER",
    "build_report",
    "per_level_summary",
    "plot_density_heatmap",
    "plot_parameters_per_language",
    "summary_markdown",
    "report_after_training",
    "write_run_report",
]

LEVEL_ORDER = ("high", "medium", "low")
POSITION_ORDER = ("q", "k", "v", "out", "fc1", "fc2", "cross_q", "cross_k", "cross_v", "cross_out")
SIDE_ORDER = ("encoder", "decoder")
LEVEL_COLORS = {"high": "#1f77b4", "medium": "#ff7f0e", "low": "#2ca02c", "shared": "#7f7f7f"}
_OTHER_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
REPORT_DIR = "report"


# --------------------------------------------------------------------------- data


def build_report(model: Any) -> dict[str, Any]:
    """``sparsity_report`` of a model's LSLo modules, each language carrying its level.

    Adds, per language: ``level`` and ``configured_rank`` (from ``parameter_report``);
    at the top level: ``method``, ``trainable_parameters``, ``trainable_percent`` and
    ``per_level`` (``per_level_summary``).
    """
    from lslo.pruning import find_lslo_modules, sparsity_report

    params = model.parameter_report()
    rep = sparsity_report(find_lslo_modules(model), params["base_parameters"])
    for code, row in rep["languages"].items():
        info = params["per_language"].get(code, {})
        row["level"] = info.get("level", "unknown")
        row["configured_rank"] = info.get("rank", row["rank"])
    rep["method"] = params["method"]
    rep["trainable_parameters"] = params["trainable_parameters"]
    rep["trainable_percent"] = params["trainable_percent"]
    rep["per_level"] = per_level_summary(rep)
    return rep


def _level_of(report: dict[str, Any], code: str, levels: dict[str, str] | None) -> str:
    if levels and code in levels:
        return str(levels[code])
    return str(report["languages"][code].get("level", "unknown"))


def _level_key(level: str) -> tuple[int, str]:
    return (LEVEL_ORDER.index(level), "") if level in LEVEL_ORDER else (len(LEVEL_ORDER), level)


def ordered_languages(report: dict[str, Any], levels: dict[str, str] | None = None) -> list[str]:
    """Languages ordered by level (high, medium, low, then others), report order within a level."""
    codes = list(report["languages"])
    return sorted(codes, key=lambda c: (_level_key(_level_of(report, c, levels)), codes.index(c)))


def _levels_present(report: dict[str, Any], levels: dict[str, str] | None) -> list[str]:
    found = {_level_of(report, c, levels) for c in report["languages"]}
    return sorted(found, key=_level_key)


def per_level_summary(report: dict[str, Any], levels: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Means over the languages of each level (levels ordered high, medium, low, then others).

    Per level: ``languages``, ``surviving_mean`` (parameters kept per language),
    ``percent_of_base_mean``, ``effective_rank_mean`` (mean over languages of their mean
    effective rank over modules), ``density_mean``, ``rank_mean`` and ``surviving_total``.
    ``levels`` overrides the levels stored in the report.
    """
    out: dict[str, dict[str, Any]] = {}
    for level in _levels_present(report, levels):
        codes = [c for c in report["languages"] if _level_of(report, c, levels) == level]
        rows = [report["languages"][c] for c in codes]

        def mean(key: str, rows: list[dict[str, Any]] = rows) -> float:
            return sum(float(r[key]) for r in rows) / len(rows)

        out[level] = {
            "languages": codes,
            "surviving_mean": mean("surviving"),
            "surviving_total": sum(int(r["surviving"]) for r in rows),
            "percent_of_base_mean": mean("percent_of_base"),
            "effective_rank_mean": mean("effective_rank_mean"),
            "density_mean": mean("density"),
            "rank_mean": mean("rank"),
        }
    return out


def _parse_position_key(key: str) -> tuple[str, str, str]:
    """'encoder.3.fc1' -> ('encoder', '3', 'fc1'); modules without side/layer keep what they have."""
    parts = key.split(".", 2)
    if len(parts) < 3:
        return "?", "?", key
    return parts[0], parts[1], parts[2]


def _layer_sort(layer: str) -> tuple[int, int, str]:
    return (0, int(layer), "") if layer.lstrip("-").isdigit() else (1, 0, layer)


def density_grid(
    report: dict[str, Any], code: str | None = None
) -> tuple[list[str], list[str], list[list[float]]]:
    """(row labels, column positions, rows x columns densities; NaN = not adapted).

    ``code=None``: pooled over all languages (``report["positions"]``); else that
    language's ``density_by_position``. Rows: encoder layers then decoder layers, over
    every (side, layer) in the report so all panels share one layout.
    """
    keys = [_parse_position_key(k) for k in report["positions"]]
    sides = sorted({s for s, _, _ in keys}, key=lambda s: (SIDE_ORDER.index(s) if s in SIDE_ORDER else 9, s))
    rows = [(s, layer) for s in sides for layer in sorted({lay for s2, lay, _ in keys if s2 == s}, key=_layer_sort)]
    present = {p for _, _, p in keys}
    cols = [p for p in POSITION_ORDER if p in present] + sorted(present - set(POSITION_ORDER))
    source = report["positions"] if code is None else report["languages"][code]["density_by_position"]
    values = {_parse_position_key(k): float(v) for k, v in source.items()}
    grid = [[values.get((s, layer, p), math.nan) for p in cols] for s, layer in rows]
    labels = [f"{'enc' if s == 'encoder' else 'dec' if s == 'decoder' else s} {layer}" for s, layer in rows]
    return labels, cols, grid


# --------------------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colors(level_list: list[str]) -> dict[str, str]:
    out, k = {}, 0
    for level in level_list:
        if level in LEVEL_COLORS:
            out[level] = LEVEL_COLORS[level]
        else:
            out[level] = _OTHER_COLORS[k % len(_OTHER_COLORS)]
            k += 1
    return out


def _require_languages(report: dict[str, Any]) -> None:
    if not report.get("languages"):
        raise ValueError("report: no adapter languages (method 'full' trains no adapters)")


def plot_parameters_per_language(
    report: dict[str, Any], path: str | Path, levels: dict[str, str] | None = None, title: str | None = None
) -> Path:
    """Bar chart: surviving parameters per language as % of the base model, by resource level.

    Bars are ordered high, medium, low and coloured by level; a dashed line over each
    level's bars marks the level mean; each bar is labelled with its value.
    """
    _require_languages(report)
    plt = _plt()
    path = Path(path)
    codes = ordered_languages(report, levels)
    lvl = [_level_of(report, c, levels) for c in codes]
    present = _levels_present(report, levels)
    colors = _colors(present)
    vals = [float(report["languages"][c]["percent_of_base"]) for c in codes]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 + 0.6 * len(codes)), 4.2))
    bars = ax.bar(range(len(codes)), vals, color=[colors[x] for x in lvl], edgecolor="black", linewidth=0.4)
    top = max(vals) if vals and max(vals) > 0 else 1.0
    for b, v in zip(bars, vals):
        ax.text(b.get_x() + b.get_width() / 2, b.get_height() + 0.01 * top, _fmt_pct(v),
                ha="center", va="bottom", fontsize=7, rotation=90 if len(codes) > 8 else 0)
    for level in present:
        idx = [i for i, x in enumerate(lvl) if x == level]
        m = sum(vals[i] for i in idx) / len(idx)
        ax.hlines(m, min(idx) - 0.45, max(idx) + 0.45, colors=colors[level], linestyles="dashed", linewidth=1.2)
    ax.set_xticks(range(len(codes)), codes)
    ax.set_ylabel("surviving parameters (% of base model)")
    ax.set_ylim(0, top * 1.25)
    ax.set_xlim(-0.6, len(codes) - 0.4)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[level]) for level in present]
    ax.legend(handles, [f"{level} resource" if level in LEVEL_ORDER else level for level in present],
              title="level (dashed: mean)", fontsize=8, title_fontsize=8, loc="upper left")
    total = report.get("total", {})
    ax.set_title(title or (f"What each language keeps (all languages: {_fmt_pct(total.get('percent_of_base', 0))}"
                           f" of the base model, density {total.get('density', 0):.2f})"), fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _fmt_pct(v: float) -> str:
    return f"{v:.2f}%" if v >= 0.1 else f"{v:.3f}%"


def plot_density_heatmap(
    report: dict[str, Any],
    path: str | Path,
    levels: dict[str, str] | None = None,
    per_language: bool = True,
    max_columns: int = 6,
) -> Path:
    """Density (kept / valid entries) per layer (rows) and position (columns).

    First row of panels: all languages pooled, then the mean over the languages of
    each level. With ``per_language``, one small panel per language follows (ordered
    by level, ``max_columns`` per row). One colour scale 0..1 for every panel; grey =
    position not adapted on that side (e.g. cross-attention in the encoder).
    """
    _require_languages(report)
    plt = _plt()
    import matplotlib.colors as mcolors
    import numpy as np

    path = Path(path)
    labels, cols, _ = density_grid(report)
    present = _levels_present(report, levels)
    summary = per_level_summary(report, levels)
    panels: list[tuple[str, np.ndarray]] = [("all languages (pooled)", np.array(density_grid(report)[2]))]
    for level in present:
        codes = summary[level]["languages"]
        stack = np.array([density_grid(report, c)[2] for c in codes])
        with warnings.catch_warnings():  # all-NaN cells (position not adapted) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(stack, axis=0)
        panels.append((f"{level}: mean of {', '.join(codes)}", mean))
    n_top = len(panels)
    lang_panels = []
    if per_language:
        for c in ordered_languages(report, levels):
            lang_panels.append((f"{c} ({_level_of(report, c, levels)})", np.array(density_grid(report, c)[2])))
    ncols = max(n_top, min(max_columns, len(lang_panels)) if lang_panels else 0)
    n_lang_rows = math.ceil(len(lang_panels) / ncols) if lang_panels else 0
    nrows = 1 + n_lang_rows
    pw = 0.9 + 0.32 * len(cols)
    ph = 1.0 + 0.2 * len(labels)
    fig = plt.figure(figsize=(pw * ncols + 1.2, ph * nrows + 0.4))
    gs = fig.add_gridspec(nrows, ncols)
    cmap = plt.get_cmap("viridis").with_extremes(bad="#d9d9d9")
    norm = mcolors.Normalize(vmin=0.0, vmax=1.0)
    im = None
    placed = [(0, j, p) for j, p in enumerate(panels)]
    placed += [(1 + i // ncols, i % ncols, p) for i, p in enumerate(lang_panels)]
    for r, c, (name, grid) in placed:
        ax = fig.add_subplot(gs[r, c])
        im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
        ax.set_title(name, fontsize=8 if r == 0 else 7)
        ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=6)
        if c == 0:
            ax.set_yticks(range(len(labels)), labels, fontsize=6)
        else:
            ax.set_yticks([])
        n_enc = sum(1 for x in labels if x.startswith("enc "))
        if 0 < n_enc < len(labels):
            ax.axhline(n_enc - 0.5, color="white", linewidth=1.2)
        if r == 0 and len(labels) * len(cols) <= 64:
            for i in range(len(labels)):
                for j in range(len(cols)):
                    if not np.isnan(grid[i, j]):
                        ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=5,
                                color="white" if grid[i, j] < 0.6 else "black")
    fig.suptitle("Density of the LSLo weights after pruning (kept / trainable entries)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.93, 0.97))
    cax = fig.add_axes((0.945, 0.15, 0.015, 0.7))
    fig.colorbar(im, cax=cax, label="density")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- files


def summary_markdown(report: dict[str, Any], title: str = "", levels: dict[str, str] | None = None) -> str:
    """Markdown: one row per language (level order), totals, then a per-level table."""
    lines = [f"# {title}" if title else "# What survived pruning", ""]
    if "method" in report:
        lines.append(
            f"method: {report['method']} · base model: {report['base_param_count']:,} parameters · "
            f"trainable (kept): {report.get('trainable_parameters', 0):,} "
            f"({report.get('trainable_percent', 0.0):.4f}% of base)"
        )
        lines.append("")
    if not report.get("languages"):
        lines.append("No adapter parameters (method 'full' trains the base model itself).")
        return "\n".join(lines) + "\n"
    lines += [
        "| language | level | rank | effective rank (mean) | effective rank (min) | surviving params "
        "| % of base | density |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for code in ordered_languages(report, levels):
        r = report["languages"][code]
        lines.append(
            f"| {code} | {_level_of(report, code, levels)} | {r['rank']} | {r['effective_rank_mean']:.2f} "
            f"| {r['effective_rank_min']} | {r['surviving']:,} | {r['percent_of_base']:.4f} | {r['density']:.3f} |"
        )
    t = report["total"]
    lines.append(f"| **all** | | | | | {t['surviving']:,} | {t['percent_of_base']:.4f} | {t['density']:.3f} |")
    lines += [
        "",
        "## Per resource level (means over the level's languages)",
        "",
        "| level | languages | surviving params | % of base | effective rank | density |",
        "|---|---|---:|---:|---:|---:|",
    ]
    summary = per_level_summary(report, levels)
    for level, s in summary.items():
        lines.append(
            f"| {level} | {' '.join(s['languages'])} | {s['surviving_mean']:,.1f} | {s['percent_of_base_mean']:.4f} "
            f"| {s['effective_rank_mean']:.2f} | {s['density_mean']:.3f} |"
        )
    if t["total"] and t["density"] >= 1.0:
        lines += ["", "Nothing was pruned (every density is 1.000): the parameters above are the configured ranks, "
                      "not what pruning kept. Was pruning enabled, and did its schedule (pruning.start + "
                      "pruning.duration) fit in the training?"]
    elif "high" in summary and "low" in summary:
        hi, lo = summary["high"]["percent_of_base_mean"], summary["low"]["percent_of_base_mean"]
        verdict = "less than" if hi < lo else ("more than" if hi > lo else "as much as")
        ratio = f" (low / high = {lo / hi:.2f}x)" if hi > 0 else ""
        lines += ["", f"High-resource languages keep {hi:.4f}% of the base model on average, {verdict} "
                      f"low-resource languages ({lo:.4f}%){ratio}."]
    return "\n".join(lines) + "\n"


def write_run_report(
    run_dir: str | Path, model: Any, levels: dict[str, str] | None = None, per_language: bool = True
) -> dict[str, Path | None]:
    """Write ``RUN/report/{parameters.png, density.png, sparsity.json, summary.md}``.

    Returns the written paths (the PNGs are None when the model has no adapters).
    """
    out = Path(run_dir) / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(model)
    if levels:
        for code, row in report["languages"].items():
            row["level"] = levels.get(code, row["level"])
        report["per_level"] = per_level_summary(report)
    paths: dict[str, Path | None] = {"parameters": None, "density": None}
    if report["languages"]:
        paths["parameters"] = plot_parameters_per_language(report, out / "parameters.png")
        paths["density"] = plot_density_heatmap(report, out / "density.png", per_language=per_language)
    paths["sparsity"] = out / "sparsity.json"
    paths["sparsity"].write_text(json.dumps(report, indent=2), encoding="utf-8")
    paths["summary"] = out / "summary.md"
    paths["summary"].write_text(summary_markdown(report, f"What survived: {Path(run_dir).name}"), encoding="utf-8")
    return paths


# --------------------------------------------------------------------------- CLI


def report_after_training(trainer: Any) -> None:
    """A :class:`lslo.training.Trainer` finish hook: ``RUN/report/`` for runs that pruned
    (what survived, per language); any run can get one later with ``lslo report RUN``."""
    if getattr(trainer, "pruner", None) is not None:
        write_run_report(trainer.run_dir, trainer.model)
