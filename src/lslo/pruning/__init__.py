"""Gradual magnitude pruning of LSLo adapters: schedule, masks and pruner, what survived.

The paper (Cao et al., EMNLP 2024) prunes the LSLo weights during fine-tuning with the cubic
schedule of Zhu & Gupta (2017) to find each language's intrinsic subspace; see
:mod:`lslo.pruning.pruner` for the pools and how masks are kept exact.
"""

from lslo.pruning.modules import LSLoModule, find_lslo_modules
from lslo.pruning.pruner import Pruner, compact_component, compact_module
from lslo.pruning.report import format_sparsity_report, sparsity_report
from lslo.pruning.schedule import PruningConfig, cubic_ratio

__all__ = [
    "LSLoModule",
    "Pruner",
    "PruningConfig",
    "compact_component",
    "compact_module",
    "cubic_ratio",
    "find_lslo_modules",
    "format_sparsity_report",
    "sparsity_report",
]
