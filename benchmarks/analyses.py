"""The paper's analyses at mini scale, as plots: rank sweep by resource level, attention vs FFN
positions, what each language keeps after pruning, and the learned routing weights.

    python benchmarks/analyses.py [--quality runs/quality] [--out runs/analyses] [--steps 600]
        [--segments 24] [--beam 2] [--ranks 2/2/8,2/2/2,8/8/8] [--positions all,attention,ffn]
        [--plots benchmarks/results/plots] [--json benchmarks/results/analyses.json]

- Rank and position ablations: ``lslo sweep`` (``--design axes``: every rank setting at the
  paper's positions, every position set at the first rank setting) on the demo's settings
  (``lslo.testbed.demo.demo_config``: the testbed base fine-tuned on the software set's dev split, same updates),
  without pruning, scored on the demo's 36 directions of devtest (4 per resource group).
- What survives pruning and the learned routing come from ``benchmarks/quality.py``'s runs in
  ``--quality`` (``lslo+prune``, ``lslo-uniform+prune`` and ``lslo+prune+search``): run it first.

Writes the PNGs to --plots and one JSON (printed too) with every number the plots show.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

GROUP_ORDER = ["high->high", "high->medium", "high->low", "medium->high", "medium->medium", "medium->low",
               "low->high", "low->medium", "low->low", "all"]


def plot_groups(series: dict[str, dict[str, float]], path: Path, title: str, ylabel: str = "chrF++") -> Path:
    """Grouped bars: one group of bars per direction group, one bar per series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [g for g in GROUP_ORDER if all(g in s for s in series.values())]
    n = len(series)
    width = 0.8 / max(n, 1)
    fig, ax = plt.subplots(figsize=(10, 4))
    for k, (name, vals) in enumerate(series.items()):
        xs = [i + (k - (n - 1) / 2) * width for i in range(len(groups))]
        ax.bar(xs, [vals[g] for g in groups], width, label=name, edgecolor="black", linewidth=0.3)
    ax.set_xticks(range(len(groups)), [g.replace("->", "→") for g in groups], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    lo = min(v[g] for v in series.values() for g in groups)
    hi = max(v[g] for v in series.values() for g in groups)
    ax.set_ylim(max(0.0, lo - 5), hi + 0.3 * (hi - max(0.0, lo - 5)) + 1)  # room for the legend
    ax.legend(fontsize=8, ncol=min(n, 3), loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep_config(path: Path, run_root: Path, steps: int, segments: int, beam: int) -> Path:
    import yaml

    from lslo.testbed.demo import demo_config, demo_directions, manifest

    data = demo_config(run_root / "unused", steps)
    data["pruning"]["enabled"] = False
    data["eval"].update({"beam": beam, "max_segments": segments,
                         "directions": [f"{s}-{t}" for s, t in demo_directions(manifest()["levels"])]})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def kept_per_language(run: Path) -> dict | None:
    f = run / "report" / "sparsity.json"
    if not f.is_file():
        return None
    rep = json.loads(f.read_text(encoding="utf-8"))
    return {"per_language": {c: {"level": r["level"], "rank": r["configured_rank"],
                                 "percent_of_base": round(r["percent_of_base"], 4)}
                             for c, r in rep["languages"].items()},
            "per_level": rep.get("per_level")}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quality", default="runs/quality", help="benchmarks/quality.py's --out")
    p.add_argument("--out", default="runs/analyses", help="sweep directory")
    p.add_argument("--steps", type=int, default=None, help="updates per sweep variant (default: the demo's)")
    p.add_argument("--segments", type=int, default=24)
    p.add_argument("--beam", type=int, default=2)
    p.add_argument("--ranks", default="2/2/8,2/2/2,8/8/8")
    p.add_argument("--positions", default="all,attention,ffn")
    p.add_argument("--plots", default="benchmarks/results/plots")
    p.add_argument("--json", default=None, help="also write the JSON here")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-sweep", action="store_true",
                   help="only the pruning and routing plots from --quality (no training here)")
    args = p.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads or max(1, os.cpu_count() or 1))

    from lslo.experiments.sweep import run_sweep, split_list
    from lslo.testbed.demo import STEPS

    steps = args.steps or STEPS
    out, plots, quality = Path(args.out), Path(args.plots), Path(args.quality)
    rows: list[dict] = []
    if not args.no_sweep:
        cfg = sweep_config(out / "sweep_config.yaml", out, steps, args.segments, args.beam)
        rows = run_sweep(cfg, split_list(args.ranks), split_list(args.positions), out, design="axes",
                         checkpoint="last", quiet=True, report=False,
                         log=lambda m: print(m, file=sys.stderr, flush=True))["variants"]
    first_pos = split_list(args.positions)[0]
    first_rank = split_list(args.ranks)[0]
    def share(r: dict) -> str:  # surviving parameters per language, % of the base, high/medium/low
        return "/".join(f"{v['percent_of_base_mean']:.2f}" for v in r["per_level"].values())

    by_rank = {f"ranks {r['ranks']} ({share(r)}% per language)": {g: v["chrf++"] for g, v in r["groups"].items()}
               for r in rows if r["positions"] == first_pos}
    by_pos = {f"{r['positions']} ({r['trainable_percent']:.2f}% trainable)":
              {g: v["chrf++"] for g, v in r["groups"].items()} for r in rows if r["ranks"] == first_rank}
    files = {}
    if rows:
        files["rank_sweep"] = str(plot_groups(by_rank, plots / "rank_sweep.png",
                                              f"LSLo ranks high/medium/low ({steps} updates, no pruning): chrF++ "
                                              f"by direction group (per-language parameters % of base)"))
        files["positions"] = str(plot_groups(by_pos, plots / "positions.png",
                                             f"LSLo at ranks {first_rank}: all positions vs attention vs FFN, "
                                             "chrF++ by direction group"))
    plots.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": "analyses", "steps": steps, "segments_per_direction": args.segments, "beam": args.beam,
           "sweep": [{k: r.get(k) for k in ("variant", "ranks", "positions", "trainable_percent", "per_level",
                                            "groups")} for r in rows],
           "signatures": rows[0]["signatures"] if rows else None}
    for name, run in (("kept_after_pruning", quality / "lslo_prune"),
                      ("kept_after_pruning_uniform_ranks", quality / "lslo-uniform_prune")):
        kept = kept_per_language(run)
        doc[name] = kept
        png = run / "report" / "parameters.png"
        if png.is_file():
            files[name] = str(shutil.copyfile(png, plots / f"{name}.png"))
    search = quality / "lslo_prune_search" / "search"
    if (search / "routing_weights.json").is_file():
        doc["routing_weights"] = json.loads((search / "routing_weights.json").read_text(encoding="utf-8"))
        files["routing_weights"] = str(shutil.copyfile(search / "routing_weights.png", plots / "routing_weights.png"))
    doc["files"] = files
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
