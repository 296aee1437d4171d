"""Reports of a run: what each language kept after pruning, as plots and tables.

Reporting reads runs; training never imports it (the CLI hands the trainer
:func:`report_after_training` as a finish hook).
"""

from lslo.reporting.report import (
    LEVEL_ORDER,
    build_report,
    per_level_summary,
    plot_density_heatmap,
    plot_parameters_per_language,
    report_after_training,
    summary_markdown,
    write_run_report,
)

__all__ = [
    "LEVEL_ORDER",
    "build_report",
    "per_level_summary",
    "plot_density_heatmap",
    "plot_parameters_per_language",
    "report_after_training",
    "summary_markdown",
    "write_run_report",
]
