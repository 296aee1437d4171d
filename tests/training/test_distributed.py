"""Data-parallel training: 2 CPU processes (gloo) equal one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys

import torch
from conftest import write_run_config

from lslo.cli.main import main
from lslo.tuner.storage import load_state as load_file


def test_two_processes_equal_one(m2m_dir, flores_dir, tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    # dropout 0: the two processes draw different dropout masks than one process would
    c1 = write_run_config(tmp_path / "c1.yaml", m2m_dir, flores_dir, single, epochs=1, dropout=0.0, update_freq=4)
    c2 = write_run_config(tmp_path / "c2.yaml", m2m_dir, flores_dir, multi, epochs=1, dropout=0.0, update_freq=4)
    assert main(["train", str(c1), "--quiet"]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
         "-m", "lslo", "train", str(c2), "--quiet", "--device", "cpu"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    a = load_file(single / "checkpoints" / "last" / "adapters.safetensors")
    b = load_file(multi / "checkpoints" / "last" / "adapters.safetensors")
    assert a.keys() == b.keys()
    moved = max(float(a[k].abs().max()) for k in a if k.endswith("lora_B"))
    assert moved > 1e-3  # training did change the adapters
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=0)
    # only rank 0 writes: one metrics row per update (no duplicates), same as the single run
    rows1 = (single / "metrics.csv").read_text().splitlines()
    rows2 = (multi / "metrics.csv").read_text().splitlines()
    assert len(rows1) == len(rows2)
    assert [r.split(",")[:3] for r in rows1] == [r.split(",")[:3] for r in rows2]
    assert proc.stdout.count('"run_dir"') == 1
