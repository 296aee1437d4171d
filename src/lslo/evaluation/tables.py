"""Score tables: markdown per group, direction heatmaps, and the files ``lslo evaluate`` writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch


def group_order(name: str) -> tuple[int, int]:
    if name == "all":
        return (9, 9)
    order = {"high": 0, "medium": 1, "low": 2}
    a, b = name.split("->")
    return (order.get(a, 5), order.get(b, 5))


def markdown_table(scores: dict[str, Any], title: str = "") -> str:
    metrics = [m for m in ("spbleu", "chrf++") if m in scores["signatures"]]
    lines = [f"### {title}"] if title else []
    lines += ["| group | directions | " + " | ".join(metrics) + " |", "|---|---:|" + "---:|" * len(metrics)]
    for g, row in scores["groups"].items():
        lines.append(f"| {g} | {row['directions']} | " + " | ".join(f"{row[m]:.2f}" for m in metrics) + " |")
    lines.append("")
    for m in metrics:
        lines.append(f"- {m}: `{scores['signatures'][m]}`")
    return "\n".join(lines) + "\n"


def heatmap(scores: dict[str, Any], path: Path, metric: str | None = None, codes: list[str] | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = metric or ("spbleu" if "spbleu" in scores["signatures"] else "chrf++")
    rows = scores["directions"].values()
    codes = codes or sorted({r["src"] for r in rows} | {r["tgt"] for r in rows})
    grid = torch.full((len(codes), len(codes)), float("nan"))
    for r in rows:
        grid[codes.index(r["src"]), codes.index(r["tgt"])] = r[metric]
    fig, ax = plt.subplots(figsize=(1 + 0.55 * len(codes), 0.8 + 0.5 * len(codes)))
    im = ax.imshow(grid.numpy(), cmap="viridis")
    ax.set_xticks(range(len(codes)), codes)
    ax.set_yticks(range(len(codes)), codes)
    ax.set_xlabel("target")
    ax.set_ylabel("source")
    for i in range(len(codes)):
        for j in range(len(codes)):
            if not torch.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=7, color="w")
    fig.colorbar(im, ax=ax, label=metric)
    ax.set_title(f"{metric} per direction")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_scores(scores: dict[str, Any], out_dir: Path, title: str = "", codes: list[str] | None = None) -> None:
    """scores.json, scores.md, heatmap.png and hyps/<src>-<tgt>.txt."""
    out_dir.mkdir(parents=True, exist_ok=True)
    hyp_dir = out_dir / "hyps"
    hyp_dir.mkdir(exist_ok=True)
    for name, lines in scores["hypotheses"].items():
        (hyp_dir / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    body = {k: v for k, v in scores.items() if k != "hypotheses"}
    (out_dir / "scores.json").write_text(json.dumps(body, indent=2, ensure_ascii=False), encoding="utf-8")
    (out_dir / "scores.md").write_text(markdown_table(scores, title), encoding="utf-8")
    heatmap(scores, out_dir / "heatmap.png", codes=codes)
