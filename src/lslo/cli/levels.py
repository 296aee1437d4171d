"""``lslo levels``: resource levels from data counts or from scores."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``lslo levels CONFIG (--counts ... | --scores ...) [--split | --thresholds] [--out NEW.yaml]``."""
    p = subparsers.add_parser(
        "levels", help="assign resource levels from data amounts or base-model chrF++", description=DESCRIPTION
    )
    add_arguments(p)
    return p


DESCRIPTION = ("Rank languages by data amount or by the base model's chrF++ (mean over directions into and "
                "out of each language) and cut them into high/medium/low.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="run config YAML whose lslo.languages get the levels")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--counts", metavar="FILE|en=N,...", help="amount of data per language (JSON/YAML or inline)")
    src.add_argument("--scores", metavar="SCORES", help="scores.json (or its directory) of "
                                                        "'lslo evaluate RUN --checkpoint none'")
    p.add_argument("--metric", default="chrf++", choices=["chrf++", "spbleu"], help="with --scores (default chrf++)")
    cut = p.add_mutually_exclusive_group()
    cut.add_argument("--split", default="1/3,1/3,1/3", help="shares of languages high,medium,low (default thirds)")
    cut.add_argument("--thresholds", metavar="HIGH_MIN,MEDIUM_MIN", help="cut by value instead of by share")
    p.add_argument("--out", help="write the config with the levels here (default: only print them)")
    p.set_defaults(func=cmd_levels)


def cmd_levels(args: argparse.Namespace) -> int:
    import yaml

    from lslo.experiments.levels import (
        apply_levels,
        check_values,
        language_scores,
        levels_from_counts,
        levels_from_scores,
        parse_split,
        read_counts,
        tie_notes,
    )
    from lslo.tuner.config import ConfigError, LSLoConfig, load_yaml

    data = load_yaml(args.config) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{args.config}: expected a mapping at the top level")
    lslo = data.get("lslo") or {}
    configured = [x if isinstance(x, str) else x.get("code") for x in (lslo.get("languages") or [])]
    thresholds = None
    if args.thresholds:
        try:
            thresholds = [float(x) for x in args.thresholds.split(",")]
        except ValueError:
            raise ConfigError(f"--thresholds {args.thresholds!r}: expected two numbers HIGH_MIN,MEDIUM_MIN") from None
    split = parse_split(args.split)
    try:
        if args.counts:
            values = check_values(read_counts(args.counts), "counts")
            label = "amount"
            if configured:
                missing = [c for c in configured if c not in values]
                if missing:
                    raise ConfigError(f"--counts: no amount for configured language(s) {', '.join(missing)}")
                values = {c: values[c] for c in configured}
            levels = levels_from_counts(values, split, thresholds)
        else:
            values = language_scores(args.scores, args.metric, configured or None)
            label = f"base {args.metric}"
            levels = levels_from_scores(values, split, thresholds)
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(str(e)) from None
    for note in tie_notes(values, levels):
        print(f"lslo levels: warning: {note}", file=sys.stderr)
    print(f"{'language':<10}{label:>14}  level")
    for code, level in levels.items():
        print(f"{code:<10}{values[code]:>14.2f}  {level}")
    new = apply_levels(data, levels)
    LSLoConfig.from_dict(new["lslo"], where="lslo")  # the result must be a valid config
    if args.out:
        from lslo.cli.outputs import check_output_file
        from lslo.training.config import resolve_paths

        model = resolve_paths({"model": data.get("model")}, Path(args.config).resolve().parent).get("model")
        check_output_file(args.out, "--out", {"the base model": model} if isinstance(model, str) and model else None)
        Path(args.out).write_text(yaml.safe_dump(new, sort_keys=False, allow_unicode=True), encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


