"""benchmarks/regime.py end to end at tiny scale: 2 epochs over 3 segments per language, the base
and LSLo + pruning, both checkpoints, the per-epoch curve, reuse only if unchanged, resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not (ROOT / "data" / "testbed" / "base" / "config.json").is_file(),
                                reason="data/testbed/base is missing")


def _run(tmp: Path, variants: str, epochs: int = 2, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "regime.py"), "--n", "3", "--epochs", str(epochs),
         "--segments", "1", "--curve-segments", "1", "--prune", "0,1", "--valid-examples", "24", "--threads", "1",
         "--variants", variants, "--out", str(tmp / "runs"), "--json", str(tmp / "regime.json"),
         "--plots", str(tmp / "plots"), *extra],
        capture_output=True, text=True, timeout=900)


def test_regime_benchmark_end_to_end(tmp_path):
    r = _run(tmp_path, "none,lslo+prune:lr=1e-2")
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads((tmp_path / "regime.json").read_text())
    assert doc["protocol"]["epochs"] == 2 and doc["protocol"]["pruning"]["start"] == 0
    base, lslo = doc["results"]["n=3/none"], doc["results"]["n=3/lslo+prune:lr=1e-2"]
    assert base["checkpoints"]["base"]["trainable_percent"] == 0
    assert set(base["curve_sample"]) >= {"all", "low->low"}
    assert base["valid_loss"] > 0  # the base's loss on the runs' validation set: the curves' reference
    # both checkpoints, as the trainer saved them; the subset is 3 segments, 132 directions
    assert lslo["train_segments"] == 3 and lslo["examples_per_epoch"] == 3 * 132 and lslo["epochs"] == 2
    last, best = lslo["checkpoints"]["last"], lslo["checkpoints"]["best"]
    assert best is not None and best["epoch"] in (1, 2)
    assert set(last["groups"]) == set(best["groups"]) and "spbleu" in last["groups"]["all"]
    # pruning ran to R = 0.9 of B: each language keeps a fraction of its rank-r adapter
    cfg = (tmp_path / "runs" / "n3-lslo_prune_lr1e-2" / "config.yaml").read_text()
    assert "train_subset_seed: 7" in cfg and "unit: epoch" in cfg
    per = last["per_language"]
    assert len(per) == 12 and all(0 < row["density"] < 0.6 for row in per.values())
    # B alone (the pruned matrix): layer-wise across languages, 10% of B's entries survive in all
    kept_b = sum(row["surviving_B"] for row in per.values())
    assert kept_b / sum(row["surviving_B"] / row["density_B"] for row in per.values()) == pytest.approx(0.1, abs=0.01)
    assert last["per_level_percent"]["low"] > last["per_level_percent"]["high"]  # rank 8 vs 2
    # one curve point per epoch: validation loss and chrF++, the pruning ratio at that epoch
    curve = lslo["curve"]
    assert sorted(curve) == ["1", "2"]
    assert all(curve[e]["valid_loss"] > 0 and 0 <= curve[e]["chrf++"] <= 100 for e in curve)
    assert curve["2"]["prune_ratio"] == pytest.approx(0.9)
    assert lslo["curve_seconds"] > 0 and lslo["train_seconds"] > 0
    assert (tmp_path / "plots" / "regime_curves_n3.png").is_file()
    assert (tmp_path / "plots" / "regime_kept.png").is_file()
    assert "| 3 | lslo+prune:lr=1e-2 | last |" in r.stdout
    # the kept-parameters table: start ranks, then kept % by level (low starts at rank 8: keeps more)
    row = next(x for x in r.stdout.splitlines() if x.startswith("| 3 | lslo+prune:lr=1e-2 | 2/2/8 |"))
    kept = [float(c.split()[0]) for c in row.strip("|").split("|")[3:6]]
    assert kept[2] > kept[0] > 0 and kept[0] == pytest.approx(last["per_level_percent"]["high"], abs=1e-3)
    # a rerun with the same settings keeps both (no training); a changed setting trains again
    again = _run(tmp_path, "none,lslo+prune:lr=1e-2")
    assert again.returncode == 0 and again.stderr.count("unchanged, kept") == 2
    longer = _run(tmp_path, "lslo+prune:lr=1e-2", epochs=3)
    assert longer.returncode == 0, longer.stderr[-2000:]
    doc = json.loads((tmp_path / "regime.json").read_text())
    assert sorted(doc["results"]["n=3/lslo+prune:lr=1e-2"]["curve"]) == ["1", "2", "3"]


def test_interrupted_variant_resumes_and_counts_both_parts(tmp_path):
    # an interruption (SIGTERM's path: stop at an update boundary, checkpoint) records no result,
    # keeps the run's minutes so far, and the next call resumes it instead of training again
    cut = _run(tmp_path, "lslo+prune:lr=1e-2", 2, "--stop-after-steps", "3")
    assert cut.returncode == 130 and "interrupted; rerun to resume it" in cut.stderr, cut.stderr[-2000:]
    assert not (tmp_path / "regime.json").exists()
    run = tmp_path / "runs" / "n3-lslo_prune_lr1e-2"
    first = json.loads((run / "timing.json").read_text())["train_seconds"]
    assert first > 0
    again = _run(tmp_path, "lslo+prune:lr=1e-2")
    assert again.returncode == 0 and "n3-lslo_prune_lr1e-2: resuming" in again.stderr, again.stderr[-2000:]
    res = json.loads((tmp_path / "regime.json").read_text())["results"]["n=3/lslo+prune:lr=1e-2"]
    assert res["epochs"] == 2 and sorted(res["curve"]) == ["1", "2"]
    assert res["train_seconds"] > first  # both parts' minutes


def test_bad_variant_and_prune_are_one_line_errors(tmp_path):
    r = _run(tmp_path, "none,nonsense")
    assert r.returncode != 0 and "unknown variant 'nonsense'" in r.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "regime.json").exists()
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "regime.py"), "--prune", "x"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and r.stderr.strip().splitlines()[-1].startswith("regime.py: error: --prune")


def _fake(variant: str, method: str, lr: float, valid: float, chrf: float, pruning: float | None = None) -> dict:
    groups = {g: {"chrf++": chrf, "spbleu": chrf / 4} for g in ("all", "high->low", "medium->low", "low->low")}
    groups["low->low"] = {"chrf++": chrf - 1, "spbleu": chrf / 4}
    ck = {"groups": groups, "trainable_percent": 1.0}
    return {"variant": variant, "n": 100, "method": method, "lr": lr, "pruning": pruning, "ranks": None,
            "best_valid_loss": valid, "checkpoints": {"last": ck, "best": {**ck, "epoch": 3}}}


def test_goal_table_compares_the_validation_chosen_variants():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import regime

    doc = {"results": {
        "a": _fake("full:lr=1e-4", "full", 1e-4, 3.9, 30.0),  # best chrF++, but not chosen: higher valid loss
        "b": _fake("full:lr=3e-5", "full", 3e-5, 3.7, 20.0),
        "c": _fake("lslo+prune:lr=1e-3", "lslo", 1e-3, 3.8, 21.0, pruning=0.9),
        "d": _fake("lslo+prune:lr=1e-2", "lslo", 1e-2, 4.5, 10.0, pruning=0.9),
    }}
    rows = [x for x in regime.goal_markdown(doc).splitlines() if x.startswith("| 100 |")]
    assert len(rows) == 8  # last/best x chrF++/spBLEU x (validation-chosen full, devtest-best full)
    last_chrf = rows[0].split(" | ")
    assert last_chrf[2:5] == ["lslo+prune:lr=1e-3", "full:lr=3e-5, validation-chosen", "chrF++"]
    assert last_chrf[5:9] == ["+1.00", "+1.00", "+1.00", "+1.00"] and rows[0].endswith("yes |")
    bound = rows[2].split(" | ")  # the bound: the full lr that scores best on devtest, shown, never chosen
    assert bound[3] == "full:lr=1e-4, devtest-best (bound)" and bound[5] == "-9.00" and rows[2].endswith("no |")
    doc["results"]["c"]["checkpoints"]["last"]["groups"]["low->low"]["chrf++"] = 18.0  # one low group behind
    assert regime.goal_markdown(doc).splitlines()[2].endswith("no |")
    assert regime.markdown(doc).splitlines()[2].startswith("| 100 | full:lr=3e-5 |")  # rows by family, then lr
