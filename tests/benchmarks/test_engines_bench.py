"""benchmarks/engines.py end to end at tiny scale: lslo, the plain base and CTranslate2 (converted by
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


def test_engines_side_by_side(tmp_path):
    out = tmp_path / "engines.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "engines.py"), "--segments", "4", "--beam", "2",
                        "--repeats", "1", "--max-new-tokens", "10", "--threads", "1", "--engines",
                        "lslo,lslo-int8,lslo-hf,hf-base,ct2-float32", "--work-dir", str(tmp_path / "w"), "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text())
    res = doc["results"]
    assert set(res) == {"lslo", "lslo-int8", "lslo-hf", "hf-base", "ct2-float32"} and doc["settings"]["segments"] == 4
    # LSLo adapters at their zero init leave the base's output exactly: identical translations
    assert res["hf-base"]["identical_to_lslo"] == 1.0 and res["lslo-hf"]["identical_to_lslo"] == 1.0
    # the converted model keeps the language tokens (the 100 __xx__ of the testbed tokenizer) and translates
    # like the base: float32 CTranslate2 agrees with lslo on most segments
    assert res["ct2-float32"]["identical_to_lslo"] >= 0.5
    assert all(row["segments_per_s"] > 0 and row["peak_rss_mb"] > 0 and 0 <= row["chrf++"] <= 100
               for row in res.values())
    assert set(doc["speed_ratios"]) == {"lslo/lslo-int8", "lslo/lslo-hf", "lslo/hf-base", "lslo/ct2-float32"}
    assert set(doc["int8_chrf_change"]) == {"lslo-int8-lslo"}
    vocab = json.loads((tmp_path / "w" / "testbed" / "ct2" / "shared_vocabulary.json").read_text())
    assert vocab.index("__de__") == 16016  # the id the base's tokenizer gives it


def test_unknown_engine_is_a_one_line_error():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "engines.py"), "--engines", "lslo,vllm"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "--engines" in r.stderr.strip().splitlines()[-1]
