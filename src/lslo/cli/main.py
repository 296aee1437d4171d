"""The ``lslo`` command: train, evaluate, translate, info, merge, report, levels, sweep, search, export-peft, serve.

Each command lives in its own module with an ``add_parser(subparsers)``; any
:class:`lslo.errors.LSLoError` (or a missing file) is printed as one line, exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from lslo.cli import evaluate, export, info, levels, report, search, serve, sweep, train
from lslo.errors import LSLoError

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

COMMANDS = (train, evaluate, info, report, levels, sweep, search, export, serve)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lslo", description="Language-specific LoRA for multilingual NMT.")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars are noise next to ours
    hf_logging.set_verbosity_error()
    try:
        return args.func(args)
    except (LSLoError, FileNotFoundError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"lslo: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C during training, or Ctrl-C anywhere else
        print("lslo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lslo info RUN | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
