"""benchmarks/generation_memory.py at tiny size on the testbed base: both engines run in their own
processes, the allocation sampler sees the generation's memory, and lslo's cache reports its bytes
against what sizing it for the limit would cost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "data" / "testbed" / "base"
pytestmark = pytest.mark.skipif(not (BASE / "config.json").is_file(), reason="data/testbed/base is missing")


def test_generation_memory_side_by_side(tmp_path):
    out = tmp_path / "mem.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generation_memory.py"), "--base", str(BASE),
                        "--batch", "4", "--beam", "2", "--new-tokens", "40", "--threads", "1", "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text())
    res = doc["results"]
    assert set(res) == {"lslo", "transformers", "hf-base"}
    assert res["lslo"]["engine_used"][0] == "lslo" and res["transformers"]["engine_used"][0] == "transformers"
    assert all(row["allocated_bytes"] > 0 and row["peak_rss_mb"] > 0 for row in res.values())
    # the cache holds at most twice the positions decoded, far below the limit's 42 positions x rows
    lslo = res["lslo"]
    assert 0 < lslo["cache_bytes"] <= lslo["cache_bytes_if_sized_for_the_limit"]
    assert set(doc["ratios"]) == {"lslo/transformers", "lslo/hf-base"} and doc["machine"]["vendor"]


def test_heap_sampler_sees_an_allocation():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import time

    import torch
    from generation_memory import PeakSampler

    with PeakSampler() as s:
        x = torch.ones(64 * 2**20 // 4)  # 64 MiB
        x.add_(1)
        time.sleep(0.05)  # alive for many sampling periods
        del x
    assert s.peak - s.start >= 60 * 2**20
