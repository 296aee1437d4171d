"""Quality benchmark on the offline demo data: no fine-tuning vs full fine-tuning vs one shared
LoRA vs LSLo vs LSLo with gradual pruning, same data, same update budget, same evaluation.

    python benchmarks/quality.py [--steps 1200] [--segments 40] [--directions demo|all] [--out runs/quality]

Every variant uses the demo's training settings (``lslo.testbed.demo.demo_config``: batch size, warmup,
label smoothing, LSLo ranks, learning rate, pruning schedule) unless its override says otherwise.

Prints one JSON document (and writes quality.json / quality.md in --out): chrF++ and spBLEU
(demo SentencePiece model) per resource group, trainable parameters (% of the base model), time.
Each variant is its own run directory; a finished variant is reused on a rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

VARIANTS = {
    # name: (method, overrides)
    # full fine-tuning at the demo's lr (3e-3): the best of 1e-4 / 3e-4 / 1e-3 / 3e-3 measured here
    "full": ("full", {}),
    # one LoRA for every language, of the largest per-language LSLo rank (the low-resource one)
    "lora": ("lora", {"lora_rank": None}),
    "lslo": ("lslo", {"pruning.enabled": False}),
    "lslo+prune": ("lslo", {}),
}


def _set(d: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None, help="optimizer updates (default: the demo's)")
    p.add_argument("--segments", type=int, default=40, help="test segments per direction")
    p.add_argument("--directions", choices=["demo", "all"], default="demo",
                   help="demo: 36 directions, 4 per resource group; all: 132")
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--variants", default="none,full,lora,lslo,lslo+prune",
                   help="comma-separated; NAME:lr=V runs variant NAME at learning rate V (e.g. full:lr=1e-3)")
    p.add_argument("--out", default="runs/quality")
    p.add_argument("--base", default=None, help="base model directory (default: data/demo/base)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    args = p.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads or max(1, os.cpu_count() or 1))

    from lslo.data.corpus import load_corpus
    from lslo.data.sampling import directions as all_directions
    from lslo.evaluation import SpBleu, evaluate_model, write_scores
    from lslo.testbed.demo import BASE, DEMO, STEPS, demo_config, demo_directions
    from lslo.training import Trainer, load_run
    from lslo.training.config import RunConfig

    args.steps = args.steps or STEPS
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((DEMO / "MANIFEST.json").read_text(encoding="utf-8"))
    codes = [x["code"] for x in manifest["languages"]]
    dirs = demo_directions(manifest["levels"]) if args.directions == "demo" else all_directions(codes)
    results: dict[str, dict] = {}
    for name in args.variants.split(","):
        run = out / name.replace("+", "_").replace(":", "_").replace("=", "")
        data = demo_config(run, args.steps, Path(args.base) if args.base else BASE)
        data["eval"]["beam"] = args.beam
        kind, _, lr = name.partition(":lr=")
        if kind not in VARIANTS and kind != "none":
            raise SystemExit(f"quality.py: error: --variants: unknown variant {kind!r}; "
                             f"expected none, {', '.join(VARIANTS)} (optionally NAME:lr=V)")
        method, overrides = VARIANTS.get(kind, ("lslo", {}))
        if lr:
            try:
                overrides = {**overrides, "train.lr": float(lr)}
            except ValueError:
                raise SystemExit(f"quality.py: error: --variants: {name!r}: lr must be a number") from None
        data["method"] = method
        for k, v in overrides.items():
            if k == "lora_rank" and v is None:
                v = max(data["lslo"]["ranks"].values())
            _set(data, k, v)
        if method == "full":
            data["pruning"]["enabled"] = False
        setting = {"config": data, "segments": args.segments, "directions": [list(d) for d in dirs]}
        if (run / "eval" / "scores.json").exists() and (run / "result.json").exists():
            done = json.loads((run / "result.json").read_text())
            if done.get("setting") == setting:  # reuse a finished variant only if nothing changed
                results[name] = done
                continue
        cfg = RunConfig.from_dict(data)
        test = load_corpus(cfg.data.path, "devtest", cfg.lslo.codes)
        spbleu = SpBleu.for_model(cfg.eval.spm_tokenizer, None, cfg.eval.spm_model)
        t0 = time.time()
        if name == "none":
            trainer = Trainer(cfg, run, quiet=True)
            run.mkdir(parents=True, exist_ok=True)
            trainer.setup()
            model, train_s = trainer.model.eval(), 0.0
            rep = {"trainable_percent": 0.0, "per_language": {}}
        else:
            res = Trainer(cfg, run).train()
            train_s = time.time() - t0
            _, model = load_run(run, "last", device="cpu")
            rep = model.parameter_report()
        t1 = time.time()
        scores = evaluate_model(model, test, dirs, beam=args.beam, batch_size=48, max_new_tokens=48,
                                spbleu=spbleu, max_segments=args.segments, quiet=True)
        write_scores(scores, run / "eval", name, codes=cfg.lslo.codes)
        results[name] = {
            "groups": scores["groups"], "signatures": scores["signatures"],
            "trainable_percent": rep["trainable_percent"],
            "per_level_percent": _per_level(rep),
            "train_seconds": round(train_s, 1), "eval_seconds": round(time.time() - t1, 1),
            "final_train_loss": None if name == "none" else res.last_train_loss,
            "setting": setting,
        }
        (run / "result.json").write_text(json.dumps(results[name], indent=2), encoding="utf-8")
        print(f"{name}: all chrF++ {scores['groups']['all']['chrf++']:.2f}", file=sys.stderr)
    doc = {"benchmark": "quality", "steps": args.steps, "segments_per_direction": args.segments,
           "directions": len(dirs), "beam": args.beam, "machine": {"cpus": os.cpu_count(),
           "torch": torch.__version__},
           "results": {k: {f: v for f, v in r.items() if f != "setting"} for k, r in results.items()}}
    (out / "quality.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    (out / "quality.md").write_text(markdown(doc), encoding="utf-8")
    print(json.dumps(doc, indent=2))
    print(markdown(doc), file=sys.stderr)
    return 0


def _per_level(rep: dict) -> dict:
    acc: dict[str, list[float]] = {}
    for row in rep.get("per_language", {}).values():
        acc.setdefault(row["level"], []).append(row["percent_of_base"])
    return {k: sum(v) / len(v) for k, v in acc.items()}


def markdown(doc: dict) -> str:
    res = doc["results"]
    first = next(iter(res.values()))
    groups = list(first["groups"])
    metrics = [m for m in ("spbleu", "chrf++") if m in first["signatures"]]
    head = "| variant | trainable % | " + " | ".join(f"{g} {m}" for m in metrics for g in groups) + " |"
    lines = [head, "|---|---:|" + "---:|" * (len(groups) * len(metrics))]
    for name, r in res.items():
        cells = " | ".join(f"{r['groups'][g][m]:.2f}" for m in metrics for g in groups)
        lines.append(f"| {name} | {r['trainable_percent']:.3f} | {cells} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
