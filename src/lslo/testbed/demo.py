"""`make demo`: the whole method offline, on real human translations, on 2 CPU cores.

Base model: the small M2M-100-architecture model in ``data/demo/base`` (pretrained by
``python -m lslo.testbed.demo_base`` on text that is not in the demo's dev/devtest segments).
Data: the 12-language kolibri + UDHR corpus in ``data/demo`` (FLORES-200 layout, read by the
normal FLORES reader). Steps: score the base model, fine-tune LSLo with gradual pruning on all
132 directions, score again, print a table by resource group and the parameters per language.

Honest labels: the demo evaluates a fixed subset of directions (4 per resource group), a
capped number of test segments and a smaller beam than the paper, and its spBLEU uses the
demo tokenizer's own SentencePiece model (not sacrebleu's flores101/200 model).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "data" / "demo"
BASE = DEMO / "base"


def demo_directions(levels: dict[str, list[str]]) -> list[tuple[str, str]]:
    """4 directions per (source level, target level) group; every language 3x as source and target."""
    order = ["high", "medium", "low"]
    out = []
    for a in order:
        for b in order:
            for i in range(4):
                src = levels[a][i]
                tgt = levels[b][(i + 1) % 4] if a == b else levels[b][i]
                out.append((src, tgt))
    return out


# Demo defaults (measured, see the README's demo section): the tiny d_model-128 base needs larger
# ranks than the paper's 2/2/8 on a d_model-1024 model; small batches give more updates per CPU
# second (step time scales with the tokens in a batch); pruning 70% of B keeps LSLo clearly above
# the base in this budget, the paper's 90% only just (``--prune-ratio 0.9``).
STEPS = 1200
LR = 3e-3
RANKS = (16, 16, 32)
MAX_TOKENS = 1250
PRUNE_RATIO = 0.7


def demo_config(out_dir: Path, steps: int = STEPS, base: Path = BASE, *, lr: float = LR, dropout: float = 0.0,
                beam: int = 2, ranks: tuple[int, int, int] = RANKS, prune_ratio: float = PRUNE_RATIO,
                max_tokens: int = MAX_TOKENS) -> dict:
    manifest = json.loads((DEMO / "MANIFEST.json").read_text(encoding="utf-8"))
    langs = [{"code": x["code"], "level": x["level"]} for x in manifest["languages"]]
    return {
        "model": str(base),
        "output_dir": str(out_dir),
        "method": "lslo",
        "lslo": {"languages": langs, "ranks": dict(zip(("high", "medium", "low"), ranks))},
        "data": {"path": str(DEMO / "flores200_dataset"), "train_split": "dev", "test_split": "devtest",
                 "valid_ratio": 0.05, "max_length": 64},
        "train": {"epochs": 1, "max_steps": steps, "epoch_size": steps * 120, "max_tokens": max_tokens,
                  "update_freq": 1, "lr": lr, "warmup_steps": max(1, steps // 10), "label_smoothing": 0.1,
                  "dropout": dropout, "seed": 1, "log_every_steps": 10, "valid_max_examples": 400,
                  "tensorboard": False},
        # step-wise cubic schedule over the middle of the run, to prune_ratio of B (the paper: 0.9)
        "pruning": {"enabled": True, "unit": "step", "start": steps // 5, "duration": (steps * 3) // 5,
                    "frequency": max(1, steps // 20), "final_ratio": prune_ratio, "granularity": "layer", "matrices": "B"},
        "eval": {"beam": beam, "max_new_tokens": 48, "batch_size": 48,
                 "spm_model": str(base / "sentencepiece.bpe.model")},
    }


def _ranks(text: str) -> tuple[int, int, int]:
    try:
        ranks = tuple(int(x) for x in text.split(","))
    except ValueError:
        ranks = ()
    if len(ranks) != 3 or min(ranks) < 1:
        raise SystemExit(f"lslo demo: error: --ranks expects three positive integers 'high,medium,low', got {text!r}")
    return ranks  # type: ignore[return-value]


def _table(base: dict, tuned: dict) -> str:
    metrics = [m for m in ("chrf++", "spbleu") if m in base["signatures"]]
    head = "| group | dirs | " + " | ".join(f"base {m} | LSLo {m} | Δ" for m in metrics) + " |"
    lines = [head, "|---|---:|" + "---:|---:|---:|" * len(metrics)]
    for g, row in base["groups"].items():
        t = tuned["groups"][g]
        cells = " | ".join(f"{row[m]:.2f} | {t[m]:.2f} | {t[m] - row[m]:+.2f}" for m in metrics)
        lines.append(f"| {g} | {row['directions']} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lslo.testbed.demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "runs" / "demo"), help="run directory")
    p.add_argument("--steps", type=int, default=STEPS, help="optimizer updates of LSLo fine-tuning")
    p.add_argument("--segments", type=int, default=24, help="test segments per evaluated direction")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    p.add_argument("--base", default=str(BASE), help="base model directory (default: data/demo/base)")
    p.add_argument("--lr", type=float, default=LR, help="peak learning rate of the fine-tuning")
    p.add_argument("--ranks", default=",".join(map(str, RANKS)),
                   help="LSLo ranks of high,medium,low-resource languages (the paper: 2,2,8)")
    p.add_argument("--max-tokens", type=int, default=MAX_TOKENS, help="tokens per training batch")
    p.add_argument("--prune-ratio", type=float, default=PRUNE_RATIO, help="final pruning ratio of B (the paper: 0.9)")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout during fine-tuning")
    p.add_argument("--beam", type=int, default=2, help="beam size of the evaluation")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    args = p.parse_args(argv)
    for opt in ("steps", "segments", "max_tokens"):
        if getattr(args, opt) < 1:
            raise SystemExit(f"lslo demo: error: --{opt.replace('_', '-')} expects an integer >= 1, "
                             f"got {getattr(args, opt)}")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads or max(1, os.cpu_count() or 1))

    from lslo.data.corpus import load_corpus
    from lslo.evaluation import SpBleu, evaluate_model, write_scores
    from lslo.training import Trainer
    from lslo.training.config import RunConfig

    base = Path(args.base)
    if not (base / "config.json").is_file():
        print(f"lslo demo: error: no base model in {base}; build it with: python -m lslo.testbed.demo_base --out {base}",
              file=sys.stderr)
        return 2
    t0 = time.time()
    out = Path(args.out)
    from lslo.tuner.config import ConfigError

    try:
        cfg = RunConfig.from_dict(demo_config(out, args.steps, base, lr=args.lr, dropout=args.dropout,
                                              beam=args.beam, ranks=_ranks(args.ranks),
                                              prune_ratio=args.prune_ratio, max_tokens=args.max_tokens))
    except ConfigError as e:  # e.g. --max-tokens 0, --prune-ratio 1.5: one line naming the field
        print(f"lslo demo: error: {e}", file=sys.stderr)
        return 2
    if out.exists():  # only once the options are valid: a typo must not delete the last run
        import shutil

        shutil.rmtree(out)
    manifest = json.loads((DEMO / "MANIFEST.json").read_text(encoding="utf-8"))
    dirs = demo_directions(manifest["levels"])
    test = load_corpus(cfg.data.path, "devtest", cfg.lslo.codes)
    spbleu = SpBleu.for_model(cfg.eval.spm_tokenizer, None, cfg.eval.spm_model)
    ev = dict(beam=cfg.eval.beam, batch_size=cfg.eval.batch_size, max_new_tokens=cfg.eval.max_new_tokens,
              spbleu=spbleu, max_segments=args.segments)
    print(f"lslo demo: 12 languages (high {manifest['levels']['high']}, medium {manifest['levels']['medium']}, "
          f"low {manifest['levels']['low']}); fine-tuning on all 132 directions of data/demo dev "
          f"({manifest['splits']['dev']['segments']} segments)")

    trainer = Trainer(cfg, out, device=args.device)
    trainer.run_dir.mkdir(parents=True, exist_ok=True)
    trainer.setup()
    print(f"[{time.time() - t0:5.0f}s] scoring the base model on {len(dirs)} directions x {args.segments} segments")
    base_scores = evaluate_model(trainer.model.eval(), test, dirs, **ev)
    write_scores(base_scores, out / "eval-base", "base model", codes=cfg.lslo.codes)

    print(f"[{time.time() - t0:5.0f}s] LSLo fine-tuning with gradual pruning: {args.steps} updates")
    result = Trainer(cfg, out, device=args.device).train()
    print(f"[{time.time() - t0:5.0f}s] training loss {result.first_train_loss:.3f} -> {result.last_train_loss:.3f}")

    from lslo.training import load_run

    _, model = load_run(out, "last", device=str(trainer.device))
    tuned = evaluate_model(model, test, dirs, **ev)
    write_scores(tuned, out / "eval-last", "LSLo (pruned)", codes=cfg.lslo.codes)
    rep = model.parameter_report()
    try:
        from lslo.reporting.report import write_run_report

        write_run_report(out, model)
    except ImportError:  # report module optional in this build
        pass

    print()
    print(f"## Base vs LSLo on data/demo devtest ({len(dirs)} directions x {args.segments} segments, "
          f"beam {cfg.eval.beam})")
    print(_table(base_scores, tuned))
    for m, sig in tuned["signatures"].items():
        print(f"- {m}: {sig}")
    print("  (spBLEU here uses the demo tokenizer's own SentencePiece model, not sacrebleu's flores model)")
    if tuned["groups"]["all"]["chrf++"] < base_scores["groups"]["all"]["chrf++"]:
        print("  Note: LSLo is below the base on average here. This tiny base memorises its pretraining "
              "strings; fine-tuning first breaks that memory and needs enough updates and rank to gain "
              "from new data (the defaults do; fewer updates or the paper's ranks 2/2/8 do not). See the "
              "README section 'The offline demo (make demo)' for what was measured.")
    print()
    print(f"## Trainable parameters after pruning (base model: {rep['base_parameters']:,})")
    print("| language | level | rank | parameters | % of base |")
    print("|---|---|---:|---:|---:|")
    for code, row in rep["per_language"].items():
        print(f"| {code} | {row['level']} | {row['rank']} | {row['parameters']:,} | {row['percent_of_base']:.3f}% |")
    summary = {"base": {g: r for g, r in base_scores["groups"].items()},
               "lslo": {g: r for g, r in tuned["groups"].items()},
               "parameters": rep, "seconds": round(time.time() - t0, 1), "steps": args.steps,
               "segments": args.segments, "directions": [f"{s}-{t}" for s, t in dirs]}
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"\nwrote {out} (scores, heatmaps, hypotheses, report/ plots) in {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
