"""`benchmarks/speed.py --full-shape` at reduced width: both architectures through lslo train/evaluate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_full_shape_benchmark_runs_both_architectures_through_the_cli(tmp_path):
    out = tmp_path / "full.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--full-shape", "--reduced",
                        "--steps", "2", "--segments", "1", "--beam", "2", "--threads", "1", "--json", str(out)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert set(doc["results"]) == {"m2m100_418M", "nllb_200_distilled_600M"}
    assert doc["reduced"] is True
    for entry in doc["results"].values():
        assert entry["config"]["vocab_size"] == 4000 and entry["config"]["encoder_layers"] == 1
        lslo, lora = entry["train_lslo"], entry["train_lora"]
        assert lslo["updates"] == lora["updates"] == 2 and entry["finite_losses"]
        assert lslo["trainable_parameters"] > lora["trainable_parameters"] > 0
        assert lslo["prune_ratio"][-1] == 0.9  # pruning ran during the updates
        assert entry["evaluate_lslo"]["directions"] == entry["evaluate_base"]["directions"] == 6
        assert lslo["peak_rss_bytes"] > 0 and set(entry["ratios"]) >= {
            "peak RSS: lslo train / shared-LoRA train", "peak RSS: lslo train / frozen base (evaluate)"}
