"""MkDocs hook: publish the benchmark plots from ``benchmarks/results/plots`` under ``results/plots``.

The plots are written by the benchmark scripts next to their JSON; the results pages embed them
from there, so the site never holds a second, possibly stale, copy.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
PLOTS = ROOT / "benchmarks" / "results" / "plots"


def on_files(files, config):
    for png in sorted(PLOTS.glob("*.png")):
        files.append(File.generated(config, f"results/plots/{png.name}", abs_src_path=str(png)))
    return files
