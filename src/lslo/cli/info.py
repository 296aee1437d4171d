"""``lslo info`` and ``lslo merge``."""

from __future__ import annotations

import argparse
import json


def cmd_info(args: argparse.Namespace) -> int:
    from lslo.pruning import find_lslo_modules, format_sparsity_report, sparsity_report
    from lslo.training import load_run

    cfg, model = load_run(args.run, checkpoint=args.checkpoint, device="cpu")
    rep = model.parameter_report()
    sp = sparsity_report(find_lslo_modules(model), rep["base_parameters"]) if model.lslo_modules() else None
    if args.json:
        print(json.dumps({"config": cfg.to_dict(), "checkpoint": model.loaded_checkpoint, "parameters": rep,
                          "sparsity": sp}, indent=2, default=str))
        return 0
    used = model.loaded_checkpoint
    label = used if used == args.checkpoint else f"{used} (the run has no '{args.checkpoint}' checkpoint)"
    print(f"run: {args.run}   checkpoint: {label}   method: {cfg.method}   model: {cfg.model}")
    print(f"languages: {', '.join(f'{c} ({cfg.lslo.language(c).level})' for c in cfg.lslo.codes)}")
    print(f"encoder routing: {' '.join(r[0].upper() for r in model.encoder_routing)}   "
          f"decoder routing: {' '.join(r[0].upper() for r in model.decoder_routing)}   (S=source, T=target)")
    print(f"positions: encoder {cfg.lslo.encoder_positions}  decoder {cfg.lslo.decoder_positions}")
    print(f"base parameters: {rep['base_parameters']:,}   trainable: {rep['trainable_parameters']:,} "
          f"({rep['trainable_percent']:.3f}%)")
    print(f"{'language':<10}{'level':<8}{'rank':>5}{'parameters':>14}{'% of base':>11}")
    for code, row in rep["per_language"].items():
        print(f"{code:<10}{row['level']:<8}{row['rank']:>5}{row['parameters']:>14,}{row['percent_of_base']:>10.3f}%")
    if sp is not None:
        print()
        print(format_sparsity_report(sp))
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    import sys

    from lslo.cli.outputs import check_output_dir, replace_dir, run_direction
    from lslo.training import load_run
    from lslo.training.config import RunConfig

    cfg = RunConfig.load(run_config_path(args.run))
    out = check_output_dir(args.out, "--out", overwrite=args.overwrite,
                           protected={"the run's base model": cfg.model, "the run directory": args.run})
    src, tgt = run_direction(cfg, args.src, args.tgt, allow_same=args.allow_same_language, what="merge",
                             warn=lambda m: print(f"lslo merge: warning: {m}", file=sys.stderr))
    _, model = load_run(args.run, checkpoint=args.checkpoint, device="cpu")
    replace_dir(out, lambda tmp: model.save_merged(src, tgt, tmp))
    print(f"wrote {out}: a plain model for {src}->{tgt} from checkpoint '{model.loaded_checkpoint}' "
          "(AutoModelForSeq2SeqLM.from_pretrained)")
    return 0


def run_config_path(run: str):
    from pathlib import Path

    from lslo.training import RunError

    path = Path(run) / "config.yaml"
    if not path.is_file():
        raise RunError(f"{run}: not a run directory (no config.yaml)")
    return path


def add_parser(sub) -> None:
    """Register ``lslo info`` and ``lslo merge``."""
    i = sub.add_parser("info", help="config, trainable parameters per language, sparsity",
                       description="Show what a run trains: parameters per language and what survived pruning.")
    i.add_argument("run")
    i.add_argument("--checkpoint", default="best", choices=["best", "last", "none"])
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=cmd_info)

    m = sub.add_parser("merge", help="fold one direction into a plain Hugging Face model directory",
                       description="Write a model for one direction that loads without lslo.")
    m.add_argument("run")
    m.add_argument("--src", required=True)
    m.add_argument("--tgt", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--checkpoint", default="best", choices=["best", "last"])
    m.add_argument("--overwrite", action="store_true", help="replace a non-empty --out directory as a whole")
    m.add_argument("--allow-same-language", action="store_true", help="merge a direction whose source is its target")
    m.set_defaults(func=cmd_merge)
