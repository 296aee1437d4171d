"""lslo: language-specific LoRA for multilingual NMT.

The public API, importable from the top level (loaded on first use, so ``import lslo`` is
cheap)::

    from lslo import LSLoConfig, LSLoModel, RunConfig, Trainer, load_run, evaluate_model

Layers, from the bottom up (each imports only those to its left; ``tests/test_architecture.py``):
``errors`` <- ``pruning`` <- ``tuner`` <- ``data`` <- ``training`` <- ``evaluation`` /
``reporting`` <- ``search`` / ``experiments`` / ``hf`` <- ``cli``; ``testbed`` (offline corpora, base
model, demo) is reached only from the CLI, benchmarks and tests.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "LSLoError": "lslo.errors",
    "LSLoConfig": "lslo.tuner",
    "LanguageSpec": "lslo.tuner",
    "LSLoModel": "lslo.tuner",
    "LSLoLinear": "lslo.tuner",
    "PruningConfig": "lslo.pruning",
    "Pruner": "lslo.pruning",
    "sparsity_report": "lslo.pruning",
    "MultiWayCorpus": "lslo.data",
    "load_corpus": "lslo.data",
    "RunConfig": "lslo.training",
    "Trainer": "lslo.training",
    "load_run": "lslo.training",
    "evaluate_model": "lslo.evaluation",
    "SpBleu": "lslo.evaluation",
    "export_peft": "lslo.tuner.peft_export",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lslo' has no attribute {name!r}")
