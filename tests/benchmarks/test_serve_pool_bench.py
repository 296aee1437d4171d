"""benchmarks/serve_pool.py at tiny size: lslo serve's service against a pool of CTranslate2
translators of merged directions, behind the same HTTP front, each side in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("ctranslate2")
pytestmark = pytest.mark.skipif(not (ROOT / "data" / "testbed" / "base" / "config.json").is_file(),
                                reason="data/testbed/base is missing")


def test_lslo_against_a_ctranslate2_pool(tmp_path):
    out = tmp_path / "pool.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "serve_pool.py"), "--directions", "2",
                        "--clients", "2", "--requests", "6", "--max-new-tokens", "8", "--beam", "2", "--threads", "1",
                        "--work-dir", str(tmp_path / "w"), "--json", str(out)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    run = json.loads(out.read_text())["runs"]["2"]
    assert run["lslo"]["models_loaded"] == 1 and run["ct2-pool"]["models_loaded"] == 2
    for name in ("lslo", "ct2-pool"):
        (row,) = run[name]["results"]
        assert row["errors"] == 0 and row["requests"] == 6 and row["segments_per_s"] > 0
        assert run[name]["peak_rss_mb"] > 0
    # each merged direction is the LSLo model's function: most translations agree across the sides
    assert run["ratios"]["identical@2"] >= 0.5
    assert set(run["ratios"]) == {"memory_lslo/pool", "throughput_lslo/pool@2", "identical@2"}
    assert len([p for p in (tmp_path / "w" / "k2").iterdir() if p.name.startswith("ct2-")]) == 2


def test_bad_counts_are_one_line():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "serve_pool.py"), "--clients", "2,4",
                        "--requests", "6"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "--requests needs one count per --clients value" in r.stderr.strip().splitlines()[-1]
