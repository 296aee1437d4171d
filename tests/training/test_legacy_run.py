"""A run directory written by lslo 0.1 (before the package was reorganised) still loads,
evaluates to the same scores and translations, and reports the same parameters.

``tests/fixtures/run_v0_1`` was made with the flat-layout lslo (commit f946cda): a tiny
M2M-100 base, a FLORES-101-layout corpus, and an LSLo run with gradual pruning; ``eval/``
holds that version's ``lslo evaluate`` output and ``info.json`` its ``lslo info --json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run_v0_1"


def test_old_run_evaluates_to_the_same_scores(tmp_path, monkeypatch, capsys):
    from lslo.cli.main import main

    work = tmp_path / "fx"
    shutil.copytree(FIXTURE, work)
    monkeypatch.chdir(work)  # the run's config holds paths relative to its folder
    assert main(["evaluate", "run", "--quiet", "--out", "new-eval"]) == 0
    old = json.loads((work / "eval" / "scores.json").read_text())
    new = json.loads((work / "new-eval" / "scores.json").read_text())
    assert new["directions"] == old["directions"]
    assert new["groups"] == old["groups"]
    for hyp in sorted((work / "eval" / "hyps").iterdir()):
        assert (work / "new-eval" / "hyps" / hyp.name).read_text() == hyp.read_text(), hyp.name
    capsys.readouterr()
    assert main(["info", "run", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    ref = json.loads((work / "info.json").read_text())
    assert info["parameters"] == ref["parameters"]
    # every field the old version reported is unchanged; fields added since (B's own density) are extra
    assert _common(info["sparsity"], ref["sparsity"]) == ref["sparsity"]
    en = info["sparsity"]["languages"]["en"]
    assert en["density_B"] == en["surviving_B"] / en["total_B"] and en["total_B"] < en["total"]


def _common(new, old):
    """``new`` restricted to the keys ``old`` has, recursively (a missing key stays missing)."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: _common(new[k], old[k]) for k in old if k in new}
    return new
