"""``lslo sweep``: the paper's rank and position sweeps."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``lslo sweep CONFIG --ranks ... --positions ... --out DIR``."""
    p = subparsers.add_parser(
        "sweep", help="ablations: train + evaluate every rank setting x position set, one table",
        description=DESCRIPTION,
    )
    add_arguments(p)
    return p


DESCRIPTION = ("Train and evaluate variants of a run config (ranks per level x adapted positions), each in "
                "its own run directory under --out; finished variants are skipped on a rerun.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="run config YAML")
    p.add_argument("--ranks", default="2/2/8",
                   help="comma-separated HIGH/MEDIUM/LOW rank settings, e.g. 2/2/8,8/8/8,2/2/2 (default 2/2/8)")
    p.add_argument("--positions", default="all",
                   help="comma-separated position sets: all, attention, ffn, config or e.g. q+v+fc1 (default all)")
    p.add_argument("--design", default="grid", choices=["grid", "axes"],
                   help="grid: every rank setting with every position set; axes: vary one at a time")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field for every variant (repeatable)")
    p.add_argument("--out", required=True, help="sweep directory (one run directory per variant)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"], help="weights to evaluate")
    p.add_argument("--overwrite", action="store_true", help="retrain variants whose directory holds another config")
    p.add_argument("--no-report", action="store_true", help="skip RUN/report/ (plots of what survived)")
    p.add_argument("--list", action="store_true", help="only list the variants")
    p.add_argument("--device", help="cpu | cuda (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or progress lines")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from lslo.cli.outputs import protect_from_config
    from lslo.experiments.sweep import make_variants, run_sweep, split_list

    if not args.list:
        protect_from_config(args.config, args.out, "--out", list(args.set or []))

    variants = make_variants(split_list(args.ranks), split_list(args.positions), args.design)
    if args.list:
        for v in variants:
            print(f"{v.name}\tranks={v.ranks or 'config'}\tencoder={v.encoder_positions or 'config'}\t"
                  f"decoder={v.decoder_positions or 'config'}")
        return 0

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"lslo sweep: {msg}", file=sys.stderr, flush=True)

    result = run_sweep(
        args.config, split_list(args.ranks), split_list(args.positions), args.out, overrides=args.set,
        design=args.design, checkpoint=args.checkpoint, device=args.device, quiet=args.quiet,
        report=not args.no_report, overwrite=args.overwrite, log=log,
    )
    print(result["table"], end="")
    if result["interrupted"]:
        print(f"stopped; rerun the same command to continue ({len(result['pending'])} variant(s) left)")
    else:
        print(f"wrote {Path(args.out) / 'sweep.md'} and sweep.json")
    return 0


