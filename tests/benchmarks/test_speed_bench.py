"""benchmarks/speed.py (what `make bench` runs) end to end at its --quick size: every phase runs
(training variants, memory, generation on transformers' path and lslo's lean search with LSLo
routing) and the report carries its ratios and the machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_speed_quick_runs_every_phase():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--quick", "--threads", "1"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    assert doc["check"]["fast_vs_reference_loss_abs_diff"] < 1e-4 < doc["check"]["lslo_vs_base_loss_abs_diff"]
    assert set(doc["generation_ms"]["median"]) == {"gen_lslo", "gen_base", "gen_merged", "gen_lean_lslo",
                                                   "gen_lean_base"}
    assert set(doc["ratios"]) >= {"lslo/peft_lora", "gen_lean_unmerged/base", "mem lslo/shared_lora"}
    assert all(v["value"] > 0 for v in doc["ratios"].values())
    assert doc["memory"]["step_peak_bytes"]["lslo"] > 0 and doc["machine"]["vendor"]
