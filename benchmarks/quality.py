"""Quality benchmark on the offline testbed: the paper's comparison at mini scale.

    python benchmarks/quality.py [--data software|wesnoth|heldout] [--steps 300] [--segments 40]
                                 [--directions demo|all] [--out runs/quality]

Base: the pretrained 11.5M-parameter M2M-100-architecture model ``data/testbed/base``. Fine-tuning:
the dev split of a testbed set (``--data``, default the demo's: ``data/testbed/software``, UI text
of programs the base never saw; ``wesnoth``: fiction; ``heldout``: the base's own domain), all 132
directions mixed in every batch; scored on its devtest (by default the demo's fixed 36 directions,
4 per resource group, so every group weighs the same; ``--directions all`` scores all 132).

Every variant uses the demo's settings (``lslo.testbed.demo.demo_config``: the paper's positions,
routing rule, lr 3e-3, label smoothing 0.2, dropout 0.1, batch size, warm-up, the same number of
updates) unless its override says otherwise:

- ``none``: the base model as it is;
- ``full:lr=V``: full fine-tuning at learning rate V (tune over several);
- ``lora``: one LoRA shared by every language, at the LSLo positions, of rank = the sum of the
  LSLo ranks (the same number of trainable parameters as all of LSLo's adapters together);
- ``lslo``: LSLo with the paper's ranks 2/2/8, no pruning;
- ``lslo-scaled``: LSLo with the paper's ranks scaled to this base's d_model
  (rank x d_model / 1024, at least 1: 1/1/2 at d_model 256), no pruning;
- ``lslo+prune``: LSLo 2/2/8 with the paper's gradual pruning (cubic, 90% of B, layer-wise);
- ``lslo-uniform+prune``: the same with ranks 8/8/8, so that what each language keeps after
  the cross-language pruning is not decided by its starting rank (the "intrinsic subspace" test);
- ``lslo+prune+search``: the same with the routing that ``lslo search`` learns on this base
  (a search of a third of the updates, source- vs target-indexed per layer) instead of the
  paper's routing; the search's own time is reported.

Any variant takes ``:lr=V``. Prints one JSON document (and writes quality.json / quality.md in
--out): chrF++ and spBLEU (the base's own SentencePiece model, labelled) per resource group, the
trainable parameters per language as % of the base, time. A finished variant is reused on a rerun
if its settings are unchanged; if only the evaluation changed (segments, directions, beam), its
trained weights are reused and only the scoring runs again.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine  # noqa: E402

DEFAULT_VARIANTS = ("none,full:lr=1e-4,full:lr=3e-4,full:lr=1e-3,lora,lslo,lslo-scaled,lslo+prune,"
                    "lslo-uniform+prune,lslo+prune+search")
VARIANTS = {
    # name: (method, overrides)
    "full": ("full", {"train.lr": 3e-4}),
    "lora": ("lora", {"lora_rank": "sum", "pruning.enabled": False}),
    "lslo": ("lslo", {"pruning.enabled": False}),
    "lslo-scaled": ("lslo", {"pruning.enabled": False, "lslo.ranks": "scaled"}),
    "lslo+prune": ("lslo", {}),
    "lslo-uniform+prune": ("lslo", {"lslo.ranks": "uniform"}),
    "lslo+prune+search": ("lslo", {"routing": "search"}),
}


def _set(d: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


def scaled_ranks(ranks: dict[str, int], d_model: int) -> dict[str, int]:
    """The paper's ranks (for d_model 1024) scaled to another width: rank x d_model / 1024, >= 1."""
    return {lvl: max(1, round(r * d_model / 1024)) for lvl, r in ranks.items()}


def shared_rank(data: dict) -> int:
    """Rank of one shared LoRA with as many trainable parameters as all LSLo adapters together."""
    ranks = data["lslo"]["ranks"]
    return sum(ranks[x["level"]] for x in data["lslo"]["languages"])


def variant_config(name: str, run: Path, steps: int, base: Path, beam: int,
                   dataset: str | None = None) -> tuple[dict, bool]:
    """(run config dict, whether the routing comes from a search) for variant ``name``."""
    from lslo.testbed.demo import DATASETS, DEFAULT_DATA, demo_config

    kind, _, lr = name.partition(":lr=")
    if kind not in VARIANTS and kind != "none":
        raise SystemExit(f"quality.py: error: --variants: unknown variant {kind!r}; "
                         f"expected none, {', '.join(VARIANTS)} (optionally NAME:lr=V)")
    data = demo_config(run, steps, base, data=DATASETS[dataset or DEFAULT_DATA][0])
    data["eval"]["beam"] = beam
    method, overrides = VARIANTS.get(kind, ("lslo", {}))
    overrides = dict(overrides)
    if lr:
        try:
            overrides["train.lr"] = float(lr)
        except ValueError:
            raise SystemExit(f"quality.py: error: --variants: {name!r}: lr must be a number") from None
    data["method"] = method
    search = overrides.pop("routing", None) == "search"
    for k, v in overrides.items():
        if k == "lora_rank" and v == "sum":
            v = shared_rank(data)
        elif k == "lslo.ranks" and v == "uniform":  # every language starts with the low-resource rank
            v = dict.fromkeys(data["lslo"]["ranks"], max(data["lslo"]["ranks"].values()))
        elif k == "lslo.ranks" and v == "scaled":
            d_model = json.loads((Path(base) / "config.json").read_text(encoding="utf-8"))["d_model"]
            v = scaled_ranks(data["lslo"]["ranks"], d_model)
        _set(data, k, v)
    if method == "full":
        data["pruning"]["enabled"] = False
    return data, search


def training_key(setting: dict) -> dict:
    """What decides a variant's trained weights: its config without the evaluation settings and,
    for a variant whose routing comes from a search, without the routing (the search's output,
    itself decided by the rest)."""
    cfg = copy.deepcopy(setting["config"])
    cfg.pop("eval", None)
    if setting.get("search"):
        for key in ("encoder_routing", "decoder_routing"):
            cfg.get("lslo", {}).pop(key, None)
    return {"config": cfg, "search": bool(setting.get("search"))}


def learn_routing(data: dict, run: Path, steps: int) -> tuple[dict, float]:
    """``lslo search`` on the variant's config (a third of its updates, no pruning); returns the
    learned encoder/decoder routing and the search's seconds."""
    import yaml

    from lslo.search import run_search

    cfg = copy.deepcopy(data)
    cfg["pruning"]["enabled"] = False
    search_steps = max(1, steps // 3)
    cfg["search"] = {"output_dir": str(run / "search"),
                     "train": {"max_steps": search_steps, "epoch_size": search_steps * 100,
                               "warmup_steps": max(1, search_steps // 10)}}
    run.mkdir(parents=True, exist_ok=True)
    path = run / "search_config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    t0 = time.time()
    result = run_search(path, overwrite=True, quiet=True)
    routing = {"encoder_routing": result["encoder_routing"], "decoder_routing": result["decoder_routing"]}
    return routing, time.time() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None, help="optimizer updates per variant (default: the demo's)")
    p.add_argument("--segments", type=int, default=40, help="test segments per direction")
    p.add_argument("--directions", choices=["demo", "all"], default="demo",
                   help="demo: 36 directions, 4 per resource group; all: 132")
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--variants", default=DEFAULT_VARIANTS,
                   help="comma-separated; NAME:lr=V runs variant NAME at learning rate V (e.g. full:lr=1e-3)")
    p.add_argument("--data", choices=["software", "wesnoth", "heldout"], default="software",
                   help="fine-tuning/test set: software (near domain, the demo's), wesnoth (far domain) or "
                        "heldout (the base's own domain)")
    p.add_argument("--out", default="runs/quality")
    p.add_argument("--base", default=None, help="base model directory (default: data/testbed/base)")
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
    from lslo.reporting.report import write_run_report
    from lslo.testbed.demo import BASE, STEPS, demo_directions, manifest
    from lslo.training import Trainer, load_run
    from lslo.training.config import RunConfig

    args.steps = args.steps or STEPS
    base = Path(args.base) if args.base else BASE
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    man = manifest()
    codes = [x["code"] for x in man["languages"]]
    dirs = demo_directions(man["levels"]) if args.directions == "demo" else all_directions(codes)
    names = [n for n in args.variants.split(",") if n]
    for name in names:  # every name checked before the first (long) variant runs
        variant_config(name, out / "check", args.steps, base, args.beam, args.data)
    results: dict[str, dict] = {}
    for name in names:
        run = out / name.replace("+", "_").replace(":", "_").replace("=", "")
        data, search = variant_config(name, run, args.steps, base, args.beam, args.data)
        setting = {"config": copy.deepcopy(data), "search": search, "segments": args.segments, "beam": args.beam,
                   "directions": [list(d) for d in dirs]}
        done = None
        if (run / "eval" / "scores.json").exists() and (run / "result.json").exists():
            done = json.loads((run / "result.json").read_text())
            if done.get("setting") == setting:  # reuse a finished variant only if nothing changed
                results[name] = done
                continue
        # the same training but another evaluation (segments, directions, beam): reuse the weights
        reuse = done is not None and "setting" in done and training_key(done["setting"]) == training_key(setting)
        search_s = None
        if reuse:
            search_s = done.get("search_seconds")
            if search:  # the routing the search learned then
                for key in ("encoder_routing", "decoder_routing"):
                    data["lslo"][key] = done["setting"]["config"]["lslo"][key]
        elif search:
            routing, search_s = learn_routing(data, run, args.steps)
            data["lslo"].update(routing)
        if search:
            setting["config"]["lslo"].update({k: data["lslo"][k] for k in ("encoder_routing", "decoder_routing")})
        cfg = RunConfig.from_dict(data)
        test = load_corpus(cfg.data.path, "devtest", cfg.lslo.codes)
        spbleu = SpBleu.for_model(cfg.eval.spm_tokenizer, None, cfg.eval.spm_model)
        t0 = time.time()
        if name == "none":
            trainer = Trainer(cfg, run, quiet=True)
            run.mkdir(parents=True, exist_ok=True)
            trainer.setup()
            model, train_s, res = trainer.model.eval(), 0.0, None
            rep = {"trainable_percent": 0.0, "per_language": {}}
        else:
            if reuse:
                res, train_s = None, done["train_seconds"]
            else:
                res = Trainer(cfg, run, quiet=True).train()
                train_s = time.time() - t0
                if res.interrupted:  # a signal stopped it early: never report a truncated run as a result
                    print(f"quality.py: {name}: training interrupted after {res.steps} of {cfg.train.max_steps} "
                          f"updates; nothing recorded for it (rerun to train it again)", file=sys.stderr)
                    return 130
            _, model = load_run(run, "last", device="cpu")
            rep = model.parameter_report()
            if cfg.method == "lslo":  # RUN/report/: what each language keeps, plots
                write_run_report(run, model)
        t1 = time.time()
        scores = evaluate_model(model, test, dirs, beam=args.beam, batch_size=48, max_new_tokens=64,
                                spbleu=spbleu, max_segments=args.segments, quiet=True)
        write_scores(scores, run / "eval", name, codes=cfg.lslo.codes)
        results[name] = {
            "groups": scores["groups"], "signatures": scores["signatures"],
            "trainable_percent": rep["trainable_percent"],
            "per_level_percent": _per_level(rep) if cfg.method == "lslo" else None,
            "ranks": None if cfg.method != "lslo" else dict(cfg.lslo.ranks),
            "lora_rank": cfg.lora_rank if cfg.method == "lora" else None,
            "lr": cfg.train.lr,
            "pruning": cfg.pruning.final_ratio if cfg.pruning.enabled and cfg.method == "lslo" else None,
            "routing": None if cfg.method != "lslo" else {"encoder": data["lslo"]["encoder_routing"],
                                                          "decoder": data["lslo"]["decoder_routing"]},
            "train_seconds": round(train_s, 1), "eval_seconds": round(time.time() - t1, 1),
            "search_seconds": None if search_s is None else round(search_s, 1),
            "final_train_loss": (done or {}).get("final_train_loss") if res is None else res.last_train_loss,
            "setting": setting,
        }
        (run / "result.json").write_text(json.dumps(results[name], indent=2), encoding="utf-8")
        print(f"{name}: all chrF++ {scores['groups']['all']['chrf++']:.2f} "
              f"(train {train_s:.0f}s, eval {time.time() - t1:.0f}s)", file=sys.stderr, flush=True)
    doc = {"benchmark": "quality", "base": str(base), "data": f"data/testbed/{args.data} (dev -> devtest)",
           "steps": args.steps, "segments_per_direction": args.segments, "directions": len(dirs),
           "beam": args.beam, "machine": machine(threads=torch.get_num_threads()),
           "command": "python benchmarks/quality.py " + " ".join(sys.argv[1:]),
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
    return {k: round(sum(v) / len(v), 4) for k, v in acc.items()}


def markdown(doc: dict) -> str:
    res = doc["results"]
    first = next(iter(res.values()))
    groups = list(first["groups"])
    metrics = [m for m in ("chrf++", "spbleu") if m in first["signatures"]]
    head = ("| variant | trainable % (per language h/m/l) | "
            + " | ".join(f"{g} {m}" for m in metrics for g in groups) + " |")
    lines = [head, "|---|---:|" + "---:|" * (len(groups) * len(metrics))]
    for name, r in res.items():
        pl = r.get("per_level_percent") or {}
        levels = [k for k in ("high", "medium", "low") if k in pl]
        share = f"{r['trainable_percent']:.2f}"
        if levels:
            share += f" ({'/'.join(f'{pl[k]:.2f}' for k in levels)})"
        cells = " | ".join(f"{r['groups'][g][m]:.2f}" for m in metrics for g in groups)
        lines.append(f"| {name} | {share} | {cells} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
