"""benchmarks/analyses.py end to end with 2 updates: the rank/position sweep and its plots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not (ROOT / "data" / "testbed" / "base" / "config.json").is_file(),
                                reason="data/testbed/base is missing")


def test_analyses_sweep_ranks_and_positions_and_plot_them(tmp_path):
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "analyses.py"), "--steps", "2", "--segments", "1", "--beam", "1",
         "--threads", "1", "--ranks", "2/2/8,2/2/2", "--positions", "all,ffn", "--out", str(tmp_path / "an"),
         "--quality", str(tmp_path / "no-quality-runs"), "--plots", str(tmp_path / "plots")],
        capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    rows = {x["variant"]: x for x in doc["sweep"]}
    assert list(rows) == ["r2-2-8_all", "r2-2-2_all", "r2-2-8_ffn"]  # axes design
    assert rows["r2-2-2_all"]["trainable_percent"] < rows["r2-2-8_all"]["trainable_percent"]
    assert rows["r2-2-8_ffn"]["trainable_percent"] < rows["r2-2-8_all"]["trainable_percent"]
    assert all(x["groups"]["all"]["directions"] == 36 for x in rows.values())
    for name in ("rank_sweep", "positions"):
        png = Path(doc["files"][name])
        assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    # without benchmarks/quality.py's runs there is nothing to show of pruning or routing, and it says so
    assert doc["kept_after_pruning"] is None and "routing_weights" not in doc["files"]
