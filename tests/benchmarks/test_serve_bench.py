"""benchmarks/serve.py end to end at tiny scale: every mode, ratios, PEFT agreement and a short soak."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from conftest import write_run_config

ROOT = Path(__file__).resolve().parents[2]


def load_bench():
    spec = importlib.util.spec_from_file_location("serve_bench", ROOT / "benchmarks" / "serve.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_serve_benchmark_runs_every_mode_and_peft_computes_the_same_translations(m2m_dir, flores_dir, tmp_path,
                                                                                  capsys):
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, tmp_path / "run", langs=("en", "fr", "ha"))
    out = tmp_path / "serve.json"
    bench = load_bench()
    assert bench.main(["--config", str(cfg), "--clients", "1,4", "--modes", ",".join(bench.MODES), "--requests", "3,8", "--segments", "6",
                       "--beam", "2", "--max-new-tokens", "5", "--adapter-std", "0.3", "--threads", "1",
                       "--soak-minutes", "0.05", "--soak-clients", "2", "--soak-serve-args", "MALLOC_ARENA_MAX=2 --trim-interval 0.5",
                       "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["model"]["directions"] == 6
    got = {(r["mode"], r["clients"]): r for r in doc["results"]}
    assert set(got) == {(m, c) for m in bench.MODES for c in (1, 4)}
    assert all(r["errors"] == 0 and r["requests"] == (3 if c == 1 else 8) for (_, c), r in got.items())
    # one request per batch: a request's two sentences (conftest's segments), one per beam search
    assert got[("single", 4)]["mean_batch_segments"] == 2.0
    assert got[("direction", 4)]["mean_batch_directions"] == 1.0
    assert set(doc["ratios"]) == {f"mixed/{m}@{c}" for m in bench.MODES[1:] for c in (1, 4)}
    # one PEFT LoRA per direction, exported from the LSLo model, with or without lslo's beam cache,
    # and lslo with transformers' cache: the same translations
    named = [m for m in bench.MODES[1:] if m != "mixed-auto"]
    assert {k: v for k, v in doc["agreement_with_mixed"].items() if not k.startswith("mixed-auto")} == \
        {f"{m}@{c}": 1.0 for m in named for c in (1, 4)}
    # auto: detection among en, fr, ha (the detector has no Hausa, so Hausa requests are misread)
    for c in (1, 4):
        acc = got[("mixed-auto", c)]["detection_accuracy"]
        assert 0.0 <= acc <= 1.0 and doc["agreement_with_mixed"][f"mixed-auto@{c}"] >= acc - 1e-9
    soak = doc["soak"]
    assert soak["requests"] > 0 and soak["errors"] == 0 and soak["sigterm_exit_code"] == 0
    assert soak["rss_end_mb"] > 50 and soak["serve_args"] == ["--trim-interval", "0.5"]
    assert soak["env"] == {"MALLOC_ARENA_MAX": "2"}


def test_soak_args_split_leading_environment_variables():
    bench = load_bench()
    assert bench.split_env(["A_B=1", "X=", "--trim-interval", "1", "Y=2"]) == (
        {"A_B": "1", "X": ""}, ["--trim-interval", "1", "Y=2"])
    assert bench.split_env(["--x", "A=1"]) == ({}, ["--x", "A=1"])
    assert bench.split_env([]) == ({}, [])
