"""The ``lslo`` command line: ``main`` plus one module per command."""

from lslo.cli.main import main

__all__ = ["main"]
