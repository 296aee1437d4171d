"""benchmarks/generation.py end to end at tiny scale: both caches timed, the same translations."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from conftest import write_run_config

ROOT = Path(__file__).resolve().parents[2]


def test_generation_benchmark_times_both_caches_and_finds_identical_translations(m2m_dir, flores_dir, tmp_path):
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, tmp_path / "run", langs=("en", "fr", "ha"))
    spec = importlib.util.spec_from_file_location("generation_bench", ROOT / "benchmarks" / "generation.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "g.json"
    assert bench.main(["--config", str(cfg), "--segments", "8", "--beams", "1,3", "--max-new-tokens", "6",
                       "--max-tokens", "64", "--repeats", "1", "--threads", "1", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [r["beams"] for r in doc["results"]] == [1, 3]
    for r in doc["results"]:
        assert r["identical_translations"] is True
        assert r["lslo_cache_s"] > 0 and r["transformers_cache_s"] > 0 and r["speedup"] > 0
    assert doc["settings"]["segments"] == 8 and doc["settings"]["directions"] <= 6


@pytest.mark.parametrize("engine", ["lslo", "transformers"])
def test_generation_profile_labels_every_region(tmp_path, engine):
    import json
    import subprocess
    import sys

    out = tmp_path / "p.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "profile_generation.py"), "--segments", "3",
                        "--max-new-tokens", "6", "--beam", "2", "--threads", "1", "--engine", engine,
                        "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text())
    reg = doc["regions"]
    assert doc["decoder_calls"] >= 2  # one decoder forward per generated step
    assert doc["settings"]["engine"] == engine
    assert reg["decoder"]["seconds"] > 0 and reg["lm head"]["seconds"] > 0
    for name in ("encoder", "decoder", "lm head", "logits processors", "cache reorder"):
        assert "calls" in reg[name], name
    for name in ("encoder", "decoder", "  of which lslo adapters", "lm head", "logits processors", "cache reorder"):
        assert reg[name]["seconds"] >= 0 and reg[name].get("calls", 1) > 0, name  # reached and labelled
    assert reg["  of which lslo adapters"]["seconds"] < reg["decoder"]["seconds"] + reg["encoder"]["seconds"]
    assert all(0 <= v["share_of_wall"] <= 1.5 for v in reg.values())
