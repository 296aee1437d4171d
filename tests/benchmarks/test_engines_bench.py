"""benchmarks/engines.py end to end at tiny scale: lslo (MKL and oneDNN), its transformers path and CTranslate2 (converted by
its own converter from the testbed base) on the same mixed-direction segments, in separate processes."""

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


def test_engines_side_by_side_under_both_stopping_rules(tmp_path):
    out = tmp_path / "engines.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "engines.py"), "--segments", "4", "--beam", "2",
                        "--repeats", "1", "--max-new-tokens", "10", "--threads", "1", "--engines",
                        "lslo,lslo-onednn,lslo-hf,ct2-float32", "--work-dir", str(tmp_path / "w"),
                        "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text())
    slow, fast = doc["rules"]["false"]["results"], doc["rules"]["true"]["results"]
    lslo_side = {"lslo", "lslo-onednn", "lslo-hf"}
    # CTranslate2 has one stopping rule (early_stopping=True): it is compared there only
    assert set(slow) == lslo_side and set(fast) == lslo_side | {"ct2-float32"}
    for res in (slow, fast):
        # LSLo adapters at their zero init leave the base's output exactly, and lslo's search follows
        # transformers' generate under either rule: identical translations
        assert res["lslo-hf"]["identical_to_lslo"] == 1.0
        assert res["lslo-onednn"]["identical_to_lslo"] >= 0.5
        assert all(row["segments_per_s"] > 0 and row["peak_rss_mb"] > 0 and 0 <= row["chrf++"] <= 100
                   for row in res.values())
        # the work is counted: lslo drops finished sentences' rows, transformers' generate keeps them
        assert 0 < res["lslo"]["decoder_row_steps"] <= res["lslo-hf"]["decoder_row_steps"]
    assert fast["ct2-float32"]["decoder_row_steps"] is None and fast["ct2-float32"]["generated_tokens"] > 0
    assert fast["lslo"]["decoder_row_steps"] <= slow["lslo"]["decoder_row_steps"]
    assert fast["ct2-float32"]["identical_to_lslo"] >= 0.5  # the converted model translates like the base
    assert set(doc["rules"]["true"]["speed_ratios"]) == {f"lslo/{e}" for e in fast if e != "lslo"}
    assert "int8_chrf_change" not in doc["rules"]["false"]  # no int8 engine ran
    assert set(doc["rule_effect"]) == lslo_side and doc["rule_effect"]["lslo"]["row_steps_ratio"] <= 1.0
    m = doc["machine"]
    assert m["vendor"] and m["processor"] and isinstance(m["isa"], list) and m["gemm"]["library"]
    assert m["ctranslate2"]["library"] in ("MKL", "oneDNN")
    vocab = json.loads((tmp_path / "w" / "testbed" / "ct2" / "shared_vocabulary.json").read_text())
    assert vocab.index("__de__") == 16016  # the id the base's tokenizer gives it


def test_unknown_engine_is_a_one_line_error():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "engines.py"), "--engines", "lslo,vllm"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "--engines" in r.stderr.strip().splitlines()[-1]
