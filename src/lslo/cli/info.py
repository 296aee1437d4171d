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
        print(json.dumps({"config": cfg.to_dict(), "parameters": rep, "sparsity": sp}, indent=2, default=str))
        return 0
    print(f"run: {args.run}   method: {cfg.method}   model: {cfg.model}")
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
    from lslo.training import load_run

    _, model = load_run(args.run, checkpoint=args.checkpoint, device="cpu")
    out = model.save_merged(args.src, args.tgt, args.out)
    print(f"wrote {out}: a plain model for {args.src}->{args.tgt} (AutoModelForSeq2SeqLM.from_pretrained)")
    return 0


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
    m.set_defaults(func=cmd_merge)
