"""``lslo config --defaults``: every run-config field with its default and help, as YAML."""

from __future__ import annotations

import argparse


def cmd_config(args: argparse.Namespace) -> int:
    from lslo.training.config import reference_yaml

    print(reference_yaml(), end="")
    return 0


def add_parser(sub) -> None:
    """Register ``lslo config``."""
    c = sub.add_parser("config", help="print every config field with its default and help (annotated YAML)",
                       description="Print the run configuration reference: every field, its default and what "
                                   "it does, as YAML to start a config from.")
    c.add_argument("--defaults", action="store_true", help="the defaults (the only form for now; the default)")
    c.set_defaults(func=cmd_config)
