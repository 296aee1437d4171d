"""benchmarks/quality.py end to end with 2 updates: variants, per-variant lr, reuse only if unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not (ROOT / "data" / "demo" / "base" / "config.json").is_file(),
                                reason="data/demo/base is not built")


def _run(out: Path, variants: str, steps: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--steps", str(steps), "--segments", "1",
         "--beam", "1", "--threads", "1", "--variants", variants, "--out", str(out)],
        capture_output=True, text=True, timeout=600)


def test_quality_benchmark_runs_and_reuses_only_unchanged_variants(tmp_path):
    out = tmp_path / "q"
    r = _run(out, "none,full:lr=1e-3,lslo+prune")
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    assert list(doc["results"]) == ["none", "full:lr=1e-3", "lslo+prune"]
    assert doc["directions"] == 36 and doc["steps"] == 2
    assert doc["results"]["none"]["trainable_percent"] == 0
    assert doc["results"]["full:lr=1e-3"]["trainable_percent"] == pytest.approx(100)
    assert 0 < doc["results"]["lslo+prune"]["trainable_percent"]
    assert all("setting" not in v for v in doc["results"].values())
    cfg = (out / "full_lr1e-3" / "config.yaml").read_text(encoding="utf-8")
    assert "lr: 0.001" in cfg
    # a rerun with the same settings reuses every finished variant (no training: no "all chrF++" lines)
    r = _run(out, "none,full:lr=1e-3")
    assert r.returncode == 0 and "all chrF++" not in r.stderr
    # a changed setting (more updates) retrains
    r = _run(out, "full:lr=1e-3", steps=3)
    assert r.returncode == 0 and "full:lr=1e-3: all chrF++" in r.stderr
    assert json.loads(r.stdout)["steps"] == 3


def test_unknown_variant_is_a_one_line_error(tmp_path):
    r = _run(tmp_path / "q", "nonsense")
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].startswith("quality.py: error: --variants: unknown variant 'nonsense'")
