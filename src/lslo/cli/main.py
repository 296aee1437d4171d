"""The ``lslo`` command: train, evaluate, translate, info, merge, report, levels, sweep, search, export-peft, serve, config, convert.

Each command lives in its own module with an ``add_parser(subparsers)``; any
:class:`lslo.errors.LSLoError` (or a missing file) is printed as one line, exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings

from lslo.cli import config, convert, evaluate, export, info, levels, report, search, serve, sweep, train
from lslo.errors import LSLoError

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

COMMANDS = (train, evaluate, info, report, levels, sweep, search, export, serve, config, convert)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lslo", description="Language-specific LoRA for multilingual NMT.")
    p.add_argument("--version", action="version", version=f"lslo {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lslo")
    except PackageNotFoundError:  # run from a source tree without installing
        from lslo import __version__

        return __version__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    # MarianTokenizer (the tokenizer of converted fairseq models) warns about a normaliser it never applies
    warnings.filterwarnings("ignore", message="Recommended: pip install sacremoses")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars are noise next to ours
    hf_logging.set_verbosity_error()
    try:
        return args.func(args)
    except (LSLoError, FileNotFoundError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, FileNotFoundError) and e.filename and str(e.filename) not in msg:
            msg = environment_message(e)
        print(f"lslo: error: {msg}", file=sys.stderr)
        return 2
    except OSError as e:  # the environment: a full disk, a read-only or missing path, a file for a directory
        print(f"lslo: error: {environment_message(e)}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        from lslo.training.checkpoints import is_write_failure

        if not is_write_failure(e):
            raise
        print(f"lslo: error: writing failed ({str(e).strip().splitlines()[0][:120]}): the disk is probably full; "
              "free space and rerun (the last complete checkpoint is kept)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C during training, or Ctrl-C anywhere else
        print("lslo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lslo info RUN | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


ADVICE = {
    errno.ENOSPC: "no space left on the device: free space and rerun (the last complete checkpoint is kept)",
    errno.EDQUOT: "disk quota exceeded: free space and rerun",
    errno.EROFS: "read-only file system: choose a writable output directory",
    errno.EACCES: "permission denied: choose a path you can write, or fix its permissions",
    errno.EPERM: "operation not permitted: choose a path you can write",
    errno.ENOTDIR: "a path component is a file, not a directory: choose another path",
    errno.EISDIR: "is a directory, expected a file",
    errno.EEXIST: "already exists as a file: choose another path",
    errno.ENOENT: "no such file or directory",
    errno.ENAMETOOLONG: "file name too long",
}


def environment_message(e: OSError) -> str:
    """One line for an OSError: the path it concerns and what to do."""
    path = e.filename if e.filename is not None else ""
    what = ADVICE.get(e.errno or -1, e.strerror or type(e).__name__)
    return f"{path}: {what}" if path else what


if __name__ == "__main__":
    raise SystemExit(main())
