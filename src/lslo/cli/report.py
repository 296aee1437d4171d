"""``lslo report``: what each language kept after pruning, as plots and tables."""

from __future__ import annotations

from typing import Any


def add_parser(subparsers: Any) -> Any:
    """``lslo report RUN [--checkpoint best|last|none]``."""
    p = subparsers.add_parser(
        "report", help="plots and tables of what each language keeps after pruning",
        description="Write RUN/report/: parameters.png, density.png, sparsity.json, summary.md.",
    )
    p.add_argument("run", help="run directory")
    p.add_argument("--checkpoint", default="best", choices=["best", "last", "none"])
    p.add_argument("--no-per-language", action="store_true", help="density heatmap: summary panels only")
    p.set_defaults(func=cmd_report)
    return p


def cmd_report(args: Any) -> int:
    from lslo.reporting.report import write_run_report
    from lslo.training import load_run

    _, model = load_run(args.run, checkpoint=args.checkpoint, device="cpu")
    paths = write_run_report(args.run, model, per_language=not args.no_per_language)
    print(paths["summary"].read_text(encoding="utf-8"))
    print("wrote " + ", ".join(str(p) for p in paths.values() if p is not None))
    return 0
