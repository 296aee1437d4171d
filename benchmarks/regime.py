"""The paper's regime at mini scale: 15 epochs over a small multi-way set, with learning curves.

    python benchmarks/regime.py [--n 100] [--variants ...] [--epochs 15] [--out runs/regime]
                                [--json benchmarks/results/regime.json] [--threads 0]
    python benchmarks/regime.py --plots-only        # redraw the plots from the JSON

The paper (Cao et al., EMNLP 2024) fine-tunes M2M-100 615M on FLORES-101 dev (997 segments per language, all 132
directions) for 15 epochs, prunes from epoch 2 to epoch 12 and reports the epoch-15 checkpoint:
every target sentence is seen about 11 x 15 = 165 times. `benchmarks/quality.py` instead stops
after 0.06-0.19 of one epoch over the whole software dev split (the "short budget"). This
benchmark runs the paper's schedule on the testbed base:

- Data: ``--n`` segments per language of the software set's dev split, a fixed subset drawn by
  a hash of (seed 7, segment id) from what remains after the usual 5% validation hold-out (hash
  seed 0), so the validation segments are disjoint from the training ones and every N draws its
  subset the same way (a smaller N is not a prefix of a larger one's file order, but the same
  hash ranking: the N = 30 subset is inside the N = 100 one). All 132 directions, uniform.
- Schedule: ``--epochs`` 15 of every direction of every training segment (``epoch_size`` =
  N x 132), updates of 2,000 tokens (the short budget's size; the paper's 16k-token updates
  would leave 30 updates per epoch at N = 100), inverse-sqrt with a warm-up of 100 updates (the
  paper's warm-up of 1 update is a 615M-model choice; 100 is what the testbed config uses),
  label smoothing 0.2, dropout 0.1. Pruning by epoch as the paper: t1 = 2, t2 = 10 (epochs 2 to
  12), R = 0.9, cubic, layer-wise cross-language, B only.
- Variants (``--variants``, comma-separated, each optionally ``NAME:lr=V``; the names of
  ``benchmarks/quality.py``): ``none``; ``full`` (full fine-tuning); ``lora`` (one shared LoRA
  with LSLo's trainable-parameter count); ``lslo`` (2/2/8, no pruning); ``lslo+prune`` (2/2/8 +
  pruning); ``lslo-uniform+prune`` (8/8/8 + pruning, the intrinsic-subspace test).
- Scoring: the demo's 36 directions (4 per resource group) x 48 devtest segments, beam 2, of
  both checkpoints exactly as the trainer saved them: ``last`` (epoch 15, the paper's protocol)
  and ``best`` (lowest validation loss; with pruning, only epochs after the schedule ended
  count). After every epoch a hook also scores the first 16 of those 48 segments in the same 36
  directions (beam 2) and records the validation loss: the learning curves.

Every variant is its own resumable run in ``--out``: an interrupted run resumes from its last
checkpoint (``lslo train --resume``'s path), a variant whose result in ``--json`` was made by
the same settings is skipped, and ``--json`` is rewritten after each variant, so each finished
variant can be committed at once. Plots go to ``--plots``.
"""

from __future__ import annotations

import argparse
import copy
import fcntl
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine  # noqa: E402
from quality import _per_level, variant_config  # noqa: E402

SUBSET_SEED = 7
EPOCHS = 15
WARMUP = 100
MAX_TOKENS = 2000
BEAM = 2
TEST_SEGMENTS = 48
CURVE_SEGMENTS = 16
VALID_EXAMPLES = 2000
PRUNE = {"unit": "epoch", "start": 2, "duration": 10, "frequency": 1}
DEFAULT_VARIANTS = ("none,lslo+prune:lr=1e-2,full:lr=1e-3,full:lr=3e-4,lslo+prune:lr=3e-3,full:lr=1e-4,"
                    "lslo:lr=1e-2,lora:lr=1e-2,lslo-uniform+prune:lr=1e-2")
GROUP_ORDER = ["high->high", "high->medium", "high->low", "medium->high", "medium->medium", "medium->low",
               "low->high", "low->medium", "low->low", "all"]


def regime_config(name: str, run: Path, base: Path, n: int, epochs: int, prune: dict | None = None,
                  valid_examples: int = VALID_EXAMPLES) -> dict:
    """The run config of variant ``name`` in the regime (quality.py's variant, regime schedule)."""
    data, search = variant_config(name, run, 1000, base, BEAM)
    if search:
        raise SystemExit(f"regime.py: error: --variants: {name!r}: a searched routing is not part of the regime")
    data["data"].update({"max_train_segments": n, "train_subset_seed": SUBSET_SEED})
    data["train"].update({"epochs": epochs, "max_steps": None, "epoch_size": None, "max_tokens": MAX_TOKENS,
                          "warmup_steps": WARMUP, "valid_max_examples": valid_examples, "save_every_steps": 100,
                          "log_every_steps": 25})
    data["pruning"].update(prune or PRUNE)
    return data


def run_name(name: str, n: int) -> str:
    return f"n{n}-" + name.replace("+", "_").replace(":", "_").replace("=", "")


class CurveHook:
    """After every epoch: chrF++/spBLEU on the curve sample and the validation loss, to RUN/curve.json."""

    def __init__(self, run: Path, test, directions, spbleu, segments: int, beam: int) -> None:
        self.path = run / "curve.json"
        self.test, self.directions, self.spbleu = test, directions, spbleu
        self.segments, self.beam = segments, beam
        self.seconds = 0.0

    def load(self) -> dict[str, dict]:
        return json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}

    def __call__(self, trainer) -> None:
        from lslo.evaluation import evaluate_model

        t0 = time.time()
        scores = evaluate_model(trainer.model, self.test, self.directions, beam=self.beam, batch_size=48,
                                max_new_tokens=64, spbleu=self.spbleu, max_segments=self.segments, quiet=True)
        curve = {k: v for k, v in self.load().items() if int(k) < trainer.epoch}  # a redone epoch replaces its point
        curve[str(trainer.epoch)] = {
            "step": trainer.step, "valid_loss": trainer.last_valid, "train_loss": trainer.last_loss,
            "prune_ratio": trainer.pruner.current_ratio if trainer.pruner else None,
            "chrf++": scores["groups"]["all"]["chrf++"], "spbleu": scores["groups"]["all"].get("spbleu"),
            "groups": {g: {m: v for m, v in row.items() if m in ("chrf++", "spbleu")}
                       for g, row in scores["groups"].items()},
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(curve, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)
        self.seconds += time.time() - t0


def _same_config(run: Path, data: dict) -> bool:
    """The run directory holds a run of exactly this config (so it may be resumed)."""
    from lslo.training.config import RunConfig

    saved = run / "config.yaml"
    if not saved.is_file() or not (run / "checkpoints" / "last").is_dir():
        return False
    def norm(cfg: RunConfig) -> dict:
        d = cfg.absolute_paths().to_dict()
        d.pop("output_dir")
        d.pop("written_paths", None)
        return d

    try:
        return norm(RunConfig.load(saved)) == norm(RunConfig.from_dict(copy.deepcopy(data)))
    except Exception:
        return False


def score(model, test, dirs, spbleu, segments: int) -> dict:
    from lslo.evaluation import evaluate_model

    s = evaluate_model(model, test, dirs, beam=BEAM, batch_size=48, max_new_tokens=64, spbleu=spbleu,
                       max_segments=segments, quiet=True)
    return {"groups": s["groups"], "signatures": s["signatures"]}


def run_variant(name: str, n: int, args, base: Path, dirs, test, spbleu) -> dict:
    from lslo.reporting.report import build_report, write_run_report
    from lslo.training import Trainer, load_run
    from lslo.training.config import RunConfig

    run = Path(args.out) / run_name(name, n)
    data = regime_config(name, run, base, n, args.epochs, args.prune, args.valid_examples)
    cfg = RunConfig.from_dict(copy.deepcopy(data))
    result: dict = {"variant": name, "n": n, "method": cfg.method, "lr": cfg.train.lr,
                    "ranks": dict(cfg.lslo.ranks) if cfg.method == "lslo" else None,
                    "lora_rank": cfg.lora_rank if cfg.method == "lora" else None,
                    "pruning": cfg.pruning.final_ratio if cfg.pruning.enabled else None}
    if name == "none":
        run.mkdir(parents=True, exist_ok=True)
        trainer = Trainer(cfg, run, quiet=True)
        trainer.setup()
        model = trainer.model.eval()
        result["checkpoints"] = {"base": {**score(model, test, dirs, spbleu, args.segments),
                                          "trainable_percent": 0.0}}
        result["curve_sample"] = score(model, test, dirs, spbleu, args.curve_segments)["groups"]
        result["valid_loss"] = trainer.validate()  # the base's loss on the validation set the runs use
        result["valid_segments"] = len(trainer.splits["valid"])
        result["train_seconds"] = 0.0
        return result
    hook = CurveHook(run, test, dirs, spbleu, args.curve_segments, BEAM)
    resume = _same_config(run, data)
    if not resume:
        hook.path.unlink(missing_ok=True)
    print(f"regime.py: {run.name}: {'resuming' if resume else 'training'} ({args.epochs} epochs)",
          file=sys.stderr, flush=True)
    t0 = time.time()
    trainer = Trainer(cfg, run, quiet=not args.progress, epoch_hooks=[hook])
    res = trainer.train(resume=resume, stop_after_steps=getattr(args, "stop_after_steps", None))
    elapsed = time.time() - t0
    timing = json.loads((run / "timing.json").read_text()) if (resume and (run / "timing.json").is_file()) else {}
    timing = {"train_seconds": timing.get("train_seconds", 0.0) + elapsed - hook.seconds,
              "curve_seconds": timing.get("curve_seconds", 0.0) + hook.seconds}
    (run / "timing.json").write_text(json.dumps(timing), encoding="utf-8")  # an interrupted part's minutes count
    if res.interrupted:
        raise KeyboardInterrupt
    result.update({k: round(v, 1) for k, v in timing.items()})
    result.update({"updates": res.steps, "epochs": res.epochs, "best_valid_loss": res.best_valid_loss,
                   "final_train_loss": res.last_train_loss, "examples_per_epoch": trainer.sampler.epoch_size,
                   "updates_per_epoch": len(trainer.sampler),
                   "train_segments": len(trainer.splits["train"]), "valid_segments": len(trainer.splits["valid"])})
    result["checkpoints"] = {}
    for ckpt in ("last", "best"):
        _, model = load_run(run, ckpt, device="cpu")
        if model.loaded_checkpoint != ckpt:
            result["checkpoints"][ckpt] = None  # no best: no finite validation loss after pruning ended
            continue
        rep = model.parameter_report()
        entry = {**score(model, test, dirs, spbleu, args.segments), "trainable_percent": rep["trainable_percent"],
                 "per_level_percent": _per_level(rep) if cfg.method == "lslo" else None}
        if ckpt == "best":
            entry["epoch"] = _best_epoch(run)
        if cfg.method == "lslo" and ckpt == "last":
            write_run_report(run, model)
            full = build_report(model)
            entry["per_language"] = {c: {"level": row["level"], "percent_of_base": row["percent_of_base"],
                                         "surviving": row["surviving"], "density": row["density"],
                                         "surviving_B": row["surviving_B"], "density_B": row["density_B"],
                                         "effective_rank_mean": row["effective_rank_mean"]}
                                     for c, row in full.get("languages", {}).items()}
        result["checkpoints"][ckpt] = entry
    result["curve"] = hook.load()
    return result


def _best_epoch(run: Path) -> int | None:
    """The epoch whose validation loss the best checkpoint holds (metrics.csv: the lowest valid
    loss among epochs the trainer could save as best)."""
    import csv

    import yaml

    cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    pr = cfg["pruning"]
    first = pr["start"] + pr["duration"] if pr["enabled"] else 0
    with (run / "metrics.csv").open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["kind"] == "valid" and r["loss"] and int(r["epoch"]) >= first]
    return int(min(rows, key=lambda r: float(r["loss"]))["epoch"]) if rows else None


def setting_of(name: str, n: int, args, base: Path, dirs) -> dict:
    data = regime_config(name, Path("RUN"), base, n, args.epochs, args.prune, args.valid_examples)
    data.pop("output_dir")
    return {"config": data, "segments": args.segments, "curve_segments": args.curve_segments, "beam": BEAM,
            "directions": [list(d) for d in dirs]}


def load_doc(path: Path) -> dict:
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"benchmark": "regime", "results": {}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100, help="training segments per language (the main point: 100)")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help="comma-separated NAME[:lr=V]")
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--segments", type=int, default=TEST_SEGMENTS, help="devtest segments per direction (final)")
    p.add_argument("--curve-segments", type=int, default=CURVE_SEGMENTS, help="devtest segments per direction "
                   "scored after every epoch")
    p.add_argument("--out", default=str(ROOT / "runs" / "regime"))
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "regime.json"))
    p.add_argument("--plots", default=str(ROOT / "benchmarks" / "results" / "plots"))
    p.add_argument("--base", default=None)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--prune", default=f"{PRUNE['start']},{PRUNE['duration']}",
                   help="pruning start,duration in epochs (the paper: 2,10; tests: shorter)")
    p.add_argument("--valid-examples", type=int, default=VALID_EXAMPLES,
                   help="validation examples (segment x direction) per epoch")
    p.add_argument("--progress", action="store_true", help="show the training progress bar")
    p.add_argument("--plots-only", action="store_true")
    p.add_argument("--stop-after-steps", type=int, default=None, help=argparse.SUPPRESS)  # tests: an interruption
    args = p.parse_args()
    for opt in ("n", "epochs", "segments", "curve_segments"):
        if getattr(args, opt) < 1:
            raise SystemExit(f"regime.py: error: --{opt.replace('_', '-')} expects an integer >= 1")
    try:
        start, duration = (float(x) for x in args.prune.split(","))
    except ValueError:
        raise SystemExit(f"regime.py: error: --prune expects 'start,duration' in epochs, got {args.prune!r}") from None
    args.prune = {**PRUNE, "start": int(start) if start.is_integer() else start,
                  "duration": int(duration) if duration.is_integer() else duration}
    path = Path(args.json)
    if args.plots_only:
        for out in make_plots(load_doc(path), Path(args.plots)):
            print(out)
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads or max(1, os.cpu_count() or 1))
    from lslo.data.corpus import load_corpus
    from lslo.evaluation import SpBleu
    from lslo.testbed.demo import BASE, DATA, demo_directions, manifest
    from lslo.training.config import RunConfig

    base = Path(args.base) if args.base else BASE
    man = manifest()
    dirs = demo_directions(man["levels"])
    names = [x for x in args.variants.split(",") if x]
    for name in names:  # every name checked before the first (long) variant
        RunConfig.from_dict(regime_config(name, Path(args.out) / "check", base, args.n, args.epochs, args.prune,
                                          args.valid_examples))
    codes = [x["code"] for x in man["languages"]]
    test = load_corpus(DATA, "devtest", codes)
    spbleu = SpBleu.for_model("auto", None, str(base / "sentencepiece.bpe.model"))
    for name in names:
        doc = load_doc(path)
        key = f"n={args.n}/{name}"
        setting = setting_of(name, args.n, args, base, dirs)
        old = doc["results"].get(key)
        if old is not None and old.get("setting") == setting:
            print(f"regime.py: {key}: unchanged, kept", file=sys.stderr)
            continue
        try:
            result = run_variant(name, args.n, args, base, dirs, test, spbleu)
        except KeyboardInterrupt:
            print(f"regime.py: {key}: interrupted; rerun to resume it", file=sys.stderr)
            return 130
        result["setting"] = setting
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_suffix(".lock"), "w")  # noqa: SIM115 -- held until the JSON is replaced
        fcntl.flock(lock, fcntl.LOCK_EX)  # two workers may share one JSON (one variant list each)
        doc = load_doc(path)  # another process may have added variants meanwhile
        doc.update({"base": str(base.relative_to(ROOT)) if base.is_relative_to(ROOT) else str(base),
                    "data": "data/testbed/software (dev subset -> devtest)",
                    "protocol": {"epochs": args.epochs, "max_tokens": MAX_TOKENS, "warmup_steps": WARMUP,
                                 "subset_seed": SUBSET_SEED, "pruning": args.prune, "beam": BEAM,
                                 "segments_per_direction": args.segments, "curve_segments": args.curve_segments,
                                 "directions": len(dirs)}})
        doc["short_budget"] = short_budget(base)
        result["machine"] = machine(threads=torch.get_num_threads())
        result["command"] = "python benchmarks/regime.py " + " ".join(sys.argv[1:])
        doc["results"][key] = result
        doc.get("partial", {}).pop(key, None)  # a finished run replaces its stopped probe
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        os.replace(tmp, path)
        lock.close()
        last = (result["checkpoints"].get("last") or result["checkpoints"].get("base"))["groups"]["all"]
        print(f"regime.py: {key}: last all chrF++ {last['chrf++']:.2f} "
              f"(train {result['train_seconds']:.0f}s)", file=sys.stderr, flush=True)
    doc = load_doc(path)
    try:
        make_plots(doc, Path(args.plots))
    except Exception as e:  # a plot never costs a result
        print(f"regime.py: plots not drawn ({type(e).__name__}: {e})", file=sys.stderr)
    print(markdown(doc))
    print(markdown(doc, "spbleu"))
    print(kept_markdown(doc))
    print(goal_markdown(doc))
    return 0


def short_budget(base: Path) -> dict | None:
    """The short-budget point of benchmarks/quality.py (1,000 updates over the whole dev split) for
    the data-size plot: its full fine-tuning (lr 1e-3) and LSLo + pruning, all-directions chrF++, and
    the fraction of an epoch its updates cover (counted with the same sampler and batch size)."""
    path = ROOT / "benchmarks" / "results" / "quality_1000.json"
    if not path.is_file():
        return None
    q = json.loads(path.read_text(encoding="utf-8"))
    res = q["results"]
    if "full:lr=1e-3" not in res or "lslo+prune" not in res:
        return None
    from lslo.training import Trainer
    from lslo.training.config import RunConfig

    data = regime_config("lslo+prune", Path("RUN"), base, 1, 1)
    data["data"]["max_train_segments"] = None
    trainer = Trainer(RunConfig.from_dict(data), Path("RUN"), quiet=True)
    trainer.tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(str(base))
    trainer._setup_data()
    per_epoch = len(trainer.sampler)
    return {"source": "benchmarks/results/quality_1000.json", "train_segments": len(trainer.splits["train"]),
            "updates": q["steps"], "updates_per_epoch": per_epoch, "epochs": round(q["steps"] / per_epoch, 3),
            "full": res["full:lr=1e-3"]["groups"]["all"]["chrf++"],
            "lslo+prune": res["lslo+prune"]["groups"]["all"]["chrf++"]}


# --------------------------------------------------------------------------- reporting
def markdown(doc: dict, metric: str = "chrf++") -> str:
    """One row per (N, variant, checkpoint): ``metric`` (chrF++ or spBLEU) by resource group, the
    all-directions chrF++ and spBLEU, trainable % per language, training minutes (the README's table)."""
    short = {"high": "H", "medium": "M", "low": "L"}
    groups = [g for g in GROUP_ORDER if g != "all"]
    heads = ["→".join(short[x] for x in g.split("->")) for g in groups]
    alls_head = [f"**all** {label}" if m == metric else f"all {label}" for m, label in METRIC_LABELS.items()]
    head = ("| N | variant | checkpoint | trainable % per language (H/M/L) | " + " | ".join(heads) + " | "
            + " | ".join(alls_head) + " | train min |")
    lines = [head, "|---:|---|---|---|" + "---:|" * len(groups) + "---:|---:|---:|"]
    for r in sorted(doc["results"].values(), key=_row_order):
        for ckpt, e in r["checkpoints"].items():
            if e is None:
                continue
            pl = e.get("per_level_percent") or {}
            share = f"{e['trainable_percent']:.2f}"
            if pl:
                share = "/".join(f"{pl[k]:.2f}" for k in ("high", "medium", "low") if k in pl)
            label = ckpt + (f" (epoch {e['epoch']})" if e.get("epoch") else "")
            cells = " | ".join(f"{e['groups'][g].get(metric, float('nan')):.2f}" if g in e["groups"] else ""
                               for g in groups)
            a = e["groups"]["all"]
            alls = [f"**{a.get(m, float('nan')):.2f}**" if m == metric else f"{a.get(m, float('nan')):.2f}"
                    for m in METRIC_LABELS]
            lines.append(f"| {r['n']} | {r['variant']} | {label} | {share} | {cells} | {' | '.join(alls)} | "
                         f"{r.get('train_seconds', 0) / 60:.0f} |")
    return "\n".join(lines) + "\n"


LOW_TARGETS = ["high->low", "medium->low", "low->low"]
METRIC_LABELS = {"chrf++": "chrF++", "spbleu": "spBLEU"}


def goal_markdown(doc: dict) -> str:
    """The issue's goal, per N and checkpoint: the validation-chosen LSLo 2/2/8 + pruning (the lr
    with the lowest best validation loss) minus full fine-tuning, chrF++ and spBLEU on all
    directions and the low-resource target groups. Against two full fine-tunings: the
    validation-chosen one (the protocol's choice) and, as a bound, the one whose all-directions
    chrF++ at that checkpoint is highest (chosen on devtest: no user could pick it that way)."""
    res = doc.get("results", {})
    lines = ["| N | checkpoint | LSLo + pruning | full fine-tuning | metric | all | H→L | M→L | L→L | goal met |",
             "|---:|---|---|---|---|---:|---:|---:|---:|---|"]
    for n in sorted({r["n"] for r in res.values()}):
        lslo, chosen = _pick(res, n, "lslo", True), _pick(res, n, "full", False)
        if not (lslo and chosen):
            continue
        fulls = [r for r in res.values() if r["n"] == n and r["method"] == "full"]
        for ckpt in ("last", "best"):
            a = lslo["checkpoints"].get(ckpt)
            scored = [r for r in fulls if r["checkpoints"].get(ckpt)]
            if not (a and scored):
                continue
            oracle = max(scored, key=lambda r: r["checkpoints"][ckpt]["groups"]["all"]["chrf++"])
            for full, how in ((chosen, "validation-chosen"), (oracle, "devtest-best (bound)")):
                b = full["checkpoints"].get(ckpt)
                if b is None or (how != "validation-chosen" and full is chosen):
                    continue
                for metric, mlabel in METRIC_LABELS.items():
                    d = [a["groups"][g][metric] - b["groups"][g][metric] for g in ["all", *LOW_TARGETS]]
                    met = "yes" if d[0] >= 0 and min(d[1:]) >= 0 else "no"
                    la = lslo["variant"] + (f" (epoch {a['epoch']})" if a.get("epoch") else "")
                    fb = full["variant"] + (f" (epoch {b['epoch']})" if b.get("epoch") else "") + f", {how}"
                    lines.append(f"| {n} | {ckpt} | {la} | {fb} | {mlabel} | "
                                 + " | ".join(f"{x:+.2f}" for x in d) + f" | {met} |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""


KIND_ORDER = ["none", "full", "lora", "lslo", "lslo+prune", "lslo-uniform+prune"]


def _kind(variant: str) -> str:
    """The variant name without its ``:lr=V`` (``lslo+prune:lr=1e-3`` -> ``lslo+prune``)."""
    return variant.partition(":lr=")[0]


def _ranks(r: dict) -> str:
    """A result's LSLo start ranks as ``H/M/L`` (``2/2/8``)."""
    return "/".join(str((r.get("ranks") or {}).get(k, "")) for k in ("high", "medium", "low"))


def _row_order(r: dict) -> tuple:
    """Tables list N, then the base, full fine-tuning, LoRA, LSLo, LSLo + pruning, 8/8/8, each by lr."""
    kind = _kind(r["variant"])
    return (r["n"], KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER), r.get("lr") or 0.0)


def kept_markdown(doc: dict) -> str:
    """What each language keeps after pruning (the last checkpoint of every pruned LSLo variant),
    as the paper's table: % of the base's parameters by resource level (mean, and the range over the
    level's languages) and the density of B, the pruned matrix (surviving / initial entries of B;
    A is never pruned), by level: mean (min-max)."""
    rows = sorted((r for r in doc.get("results", {}).values()
                   if r.get("pruning") and (r["checkpoints"].get("last") or {}).get("per_language")), key=_row_order)
    if not rows:
        return ""
    lines = ["| N | variant | start ranks H/M/L | kept % of base H | M | L | B kept % H | M | L |",
             "|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        pl = r["checkpoints"]["last"]["per_language"]
        by: dict[str, list[dict]] = {}
        for row in pl.values():
            by.setdefault(row["level"], []).append(row)
        kept, dens = [], []
        for lvl in ("high", "medium", "low"):
            xs = [x["percent_of_base"] for x in by.get(lvl, [])]
            ds = [100 * x["density_B"] for x in by.get(lvl, []) if "density_B" in x]
            kept.append(f"{sum(xs) / len(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})" if xs else "")
            dens.append(f"{sum(ds) / len(ds):.2f} ({min(ds):.2f}-{max(ds):.2f})" if ds else "n/a")
        lines.append(f"| {r['n']} | {r['variant']} | {_ranks(r)} | " + " | ".join(kept) + " | " + " | ".join(dens) + " |")
    return "\n".join(lines) + "\n"


def make_plots(doc: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = doc.get("results", {})
    made: list[Path] = []
    out.mkdir(parents=True, exist_ok=True)
    for n in sorted({r["n"] for r in res.values()}):
        runs = {r["variant"]: r for r in res.values() if r["n"] == n}
        curves = {v: r for v, r in runs.items() if r.get("curve")}
        if not curves:
            continue
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
        for v, r in sorted(curves.items(), key=lambda kv: _row_order(kv[1])):
            ep = sorted(int(k) for k in r["curve"])
            style = _curve_style(r, list(curves.values()), plt)
            ax.plot(ep, [r["curve"][str(e)]["chrf++"] for e in ep], marker="o", ms=3, label=v, **style)
            vl = [(e, r["curve"][str(e)]["valid_loss"]) for e in ep if r["curve"][str(e)]["valid_loss"] is not None]
            ax2.plot([e for e, _ in vl], [x for _, x in vl], marker="o", ms=3, label=v, **style)
        for key, part in doc.get("partial", {}).items():  # stopped runs: their epochs, dashed, labelled
            if part["n"] != n or key in res:
                continue
            ep = sorted(int(k) for k in part["curve"])
            label = f"{part['variant']} (stopped after epoch {ep[-1]})"
            color = plt.get_cmap(FAMILY_COLORS.get(_kind(part["variant"]), "Greys"))(0.35)
            ax.plot(ep, [part["curve"][str(e)]["chrf++"] for e in ep], ls=":", marker="x", label=label, color=color)
            ax2.plot(ep, [part["curve"][str(e)]["valid_loss"] for e in ep], ls=":", marker="x", label=label,
                     color=color)
        base = runs.get("none") or next((r for r in res.values() if r["variant"] == "none"), None)
        if base and base.get("curve_sample"):
            ax.axhline(base["curve_sample"]["all"]["chrf++"], color="black", ls="--", lw=1, label="base (none)")
        if base and base.get("valid_loss") is not None:
            ax2.axhline(base["valid_loss"], color="black", ls="--", lw=1, label="base (none)")
        pr = doc.get("protocol", {}).get("pruning", PRUNE)
        for a in (ax, ax2):
            a.axvspan(pr["start"], pr["start"] + pr["duration"], color="grey", alpha=0.12, lw=0)
            a.set_xlabel("epoch (shaded: pruning runs)")
            a.grid(alpha=0.3)
        ax.set_ylabel(f"chrF++ (36 directions x {doc.get('protocol', {}).get('curve_segments', '?')} devtest, beam 2)")
        ax2.set_ylabel("validation loss")
        ax.set_title(f"Learning curves, N = {n} segments per language", fontsize=10)
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = out / f"regime_curves_n{n}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)
    # data-size curve: all-directions chrF++ of the two compared families' best-by-validation variant
    # (full fine-tuning, LSLo + pruning), by N, at both checkpoints (last: solid; best by validation: dashed)
    fams: dict[tuple[str, str], dict[int, float]] = {}
    lrs: dict[tuple[str, str, int], float | None] = {}  # each point's lr: the validation choice may differ by N
    for r in res.values():
        if r["checkpoints"].get("last") is None or not (r["method"] == "full" or (r["method"] == "lslo" and r.get("pruning"))):
            continue
        fam = "full fine-tuning" if r["method"] == "full" else "LSLo + pruning"
        if _pick(res, r["n"], r["method"], bool(r.get("pruning"))) is not r:
            continue
        for ckpt in ("last", "best"):
            if r["checkpoints"].get(ckpt):
                fams.setdefault((fam, ckpt), {})[r["n"]] = r["checkpoints"][ckpt]["groups"]["all"]["chrf++"]
                lrs[(fam, ckpt, r["n"])] = r.get("lr")
    short = doc.get("short_budget")
    if fams and (any(len(v) > 1 for v in fams.values()) or short):
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        colors = {"full fine-tuning": "#d62728", "LSLo + pruning": "#2ca02c"}
        for (fam, ckpt), pts in sorted(fams.items()):
            xs = sorted(pts)
            ax.plot(xs, [pts[x] for x in xs], marker="o" if ckpt == "last" else "D", ls="-" if ckpt == "last" else "--",
                    mfc=None if ckpt == "last" else "none",
                    label=f"{fam}, {'last (epoch 15)' if ckpt == 'last' else 'best by validation'}",
                    color=colors.get(fam))
            if ckpt == "last":
                for x in xs:
                    if lrs.get((fam, ckpt, x)):
                        ax.annotate(f"lr {lrs[(fam, ckpt, x)]:.0e}", (x, pts[x]), textcoords="offset points",
                                    xytext=(6, -12 if fam.startswith("full") else 5), fontsize=7,
                                    color=colors.get(fam))
        if short:
            for fam, key in (("full fine-tuning", "full"), ("LSLo + pruning", "lslo+prune")):
                ax.scatter([short["train_segments"]], [short[key]], marker="s", facecolors="none",
                           edgecolors=colors[fam], s=60,
                           label=f"{fam}: short budget ({short['updates']} updates = {short['epochs']:.2f} epoch)")
        base = next((r for r in res.values() if r["variant"] == "none"), None)
        if base:
            ax.axhline(base["checkpoints"]["base"]["groups"]["all"]["chrf++"], color="black", ls="--", lw=1,
                       label="base")
        ax.set_xscale("log")
        ax.set_xlabel("training segments per language")
        ax.set_ylabel("all-directions chrF++ (15 epochs unless marked)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        p = out / "regime_data_size.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)
    kept = [(k, r) for k, r in res.items() if r.get("pruning") and (r["checkpoints"].get("last") or {}).get("per_language")]
    if kept:
        cols = min(3, len(kept))
        rows = -(-len(kept) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
        for ax in axes.flat[len(kept):]:
            ax.set_visible(False)
        colors = {"high": "#1f77b4", "medium": "#ff7f0e", "low": "#2ca02c"}
        for ax, (k, r) in zip(axes.flat, kept):
            pl = r["checkpoints"]["last"]["per_language"]
            order = sorted(pl, key=lambda c: (["high", "medium", "low"].index(pl[c]["level"]), c))
            b_only = all("density_B" in pl[c] for c in order)  # B, the pruned matrix (A is never pruned)
            vals = [100 * pl[c]["density_B"] if b_only else pl[c]["percent_of_base"] for c in order]
            ax.bar(order, vals, color=[colors[pl[c]["level"]] for c in order])
            if b_only:  # the differences between languages are a few % of B: zoom in, say so
                lo, hi = min(vals), max(vals)
                ax.set_ylim(max(0.0, lo - (hi - lo) - 0.5), hi + (hi - lo) + 0.5)
            ax.set_title(f"{k} (ranks {_ranks(r)}): kept after pruning", fontsize=9)
            ax.set_ylabel("% of B's entries kept (y zoomed)" if b_only else "% of base parameters")
            ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        p = out / "regime_kept.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)
    return made


FAMILY_COLORS = {"full": "Reds", "lora": "Purples", "lslo": "Blues", "lslo+prune": "Greens",
                 "lslo-uniform+prune": "Oranges"}


def _curve_style(r: dict, runs: list[dict], plt) -> dict:
    """One colour family per method (full: red, LoRA: purple, LSLo: blue, LSLo + pruning: green,
    8/8/8 + pruning: orange), darker for a lower learning rate."""
    kind = _kind(r["variant"])
    lrs = sorted({x.get("lr") or 0.0 for x in runs if _kind(x["variant"]) == kind})
    i = lrs.index(r.get("lr") or 0.0)
    shade = 0.9 - 0.45 * (i / max(1, len(lrs) - 1)) if len(lrs) > 1 else 0.75
    return {"color": plt.get_cmap(FAMILY_COLORS.get(kind, "Greys"))(shade)}


def _pick(res: dict, n: int, method: str, pruned: bool) -> dict | None:
    """The variant of a method family at N with the lowest best validation loss (lr chosen on validation)."""
    cands = [r for r in res.values() if r["n"] == n and r["method"] == method and bool(r.get("pruning")) == pruned
             and r.get("best_valid_loss") is not None and not (r.get("ranks") or {}).get("high", 0) > 2]
    return min(cands, key=lambda r: r["best_valid_loss"]) if cands else None


if __name__ == "__main__":
    raise SystemExit(main())
