"""benchmarks/quality.py end to end with 2 updates: variants, per-variant lr, matched shared LoRA,
scaled ranks, learned routing, reuse only if unchanged."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not (ROOT / "data" / "testbed" / "base" / "config.json").is_file(),
                                reason="data/testbed/base is missing")


def _module():
    spec = importlib.util.spec_from_file_location("quality_bench", ROOT / "benchmarks" / "quality.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(out: Path, variants: str, steps: int = 2, segments: int = 1) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--steps", str(steps), "--segments", str(segments),
         "--beam", "1", "--threads", "1", "--variants", variants, "--out", str(out)],
        capture_output=True, text=True, timeout=900)


def test_scaled_ranks_and_the_matched_shared_rank():
    q = _module()
    assert q.scaled_ranks({"high": 2, "medium": 2, "low": 8}, 256) == {"high": 1, "medium": 1, "low": 2}
    assert q.scaled_ranks({"high": 2, "medium": 2, "low": 8}, 1024) == {"high": 2, "medium": 2, "low": 8}
    data = {"lslo": {"ranks": {"high": 2, "medium": 2, "low": 8},
                     "languages": [{"code": c, "level": lvl} for c, lvl in
                                   [("a", "high"), ("b", "medium"), ("c", "low"), ("d", "low")]]}}
    assert q.shared_rank(data) == 2 + 2 + 8 + 8


def test_quality_benchmark_runs_and_reuses_only_unchanged_variants(tmp_path):
    out = tmp_path / "q"
    r = _run(out, "none,full:lr=1e-3,lora,lslo,lslo+prune+search")
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    res = doc["results"]
    assert list(res) == ["none", "full:lr=1e-3", "lora", "lslo", "lslo+prune+search"]
    assert doc["directions"] == 36 and doc["steps"] == 2
    assert res["none"]["trainable_percent"] == 0
    assert res["full:lr=1e-3"]["trainable_percent"] == pytest.approx(100) and res["full:lr=1e-3"]["lr"] == 1e-3
    # the shared LoRA has as many trainable parameters as all LSLo adapters together
    assert res["lora"]["lora_rank"] == 4 * 2 + 4 * 2 + 4 * 8
    assert res["lora"]["trainable_percent"] == pytest.approx(res["lslo"]["trainable_percent"])
    pl = res["lslo"]["per_level_percent"]
    assert pl["high"] == pl["medium"] and pl["low"] == pytest.approx(4 * pl["high"], rel=1e-3)  # rank 8 vs 2
    # the searched variant trains with the routing the search learned (one side per layer)
    srch = res["lslo+prune+search"]
    assert srch["search_seconds"] > 0 and len(srch["routing"]["encoder"]) == 4
    assert set(srch["routing"]["encoder"]) <= {"source", "target"}
    assert (out / "lslo_prune_search" / "search" / "routing_weights.json").is_file()
    assert srch["pruning"] == 0.9 and res["lslo"]["pruning"] is None
    assert all("setting" not in v for v in res.values())
    cfg = (out / "full_lr1e-3" / "config.yaml").read_text(encoding="utf-8")
    assert "lr: 0.001" in cfg
    assert "| lslo | " in (out / "quality.md").read_text(encoding="utf-8")
    # a rerun with the same settings reuses every finished variant (no training: no "all chrF++" lines)
    r = _run(out, "none,full:lr=1e-3")
    assert r.returncode == 0 and "all chrF++" not in r.stderr
    # another evaluation (more segments) scores again with the trained weights: no training, no search
    ckpts = {p: p.stat().st_mtime_ns for p in (out / "lslo_prune_search").rglob("*.safetensors")}
    assert ckpts
    r = _run(out, "lslo,lslo+prune+search", segments=2)
    assert r.returncode == 0, r.stderr[-2000:]
    again = json.loads(r.stdout)
    assert again["segments_per_direction"] == 2 and "lslo+prune+search: all chrF++" in r.stderr
    assert {p: p.stat().st_mtime_ns for p in ckpts} == ckpts  # not retrained
    for name in ("lslo", "lslo+prune+search"):
        assert again["results"][name]["train_seconds"] == res[name]["train_seconds"]
    assert again["results"]["lslo+prune+search"]["routing"] == srch["routing"]
    assert again["results"]["lslo+prune+search"]["search_seconds"] == srch["search_seconds"]
    # a changed setting (more updates) retrains
    r = _run(out, "full:lr=1e-3", steps=3)
    assert r.returncode == 0 and "full:lr=1e-3: all chrF++" in r.stderr
    assert json.loads(r.stdout)["steps"] == 3


def test_unknown_variant_is_a_one_line_error_before_any_training(tmp_path):
    r = _run(tmp_path / "q", "none,nonsense")
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].startswith("quality.py: error: --variants: unknown variant 'nonsense'")
    assert not (tmp_path / "q" / "none").exists()
