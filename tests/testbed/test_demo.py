"""`python -m lslo.testbed.demo` end to end on the committed demo data and base (a few updates only)."""

from __future__ import annotations

import json

import pytest

from lslo.testbed import demo

pytestmark = pytest.mark.skipif(not (demo.BASE / "config.json").is_file(), reason="data/demo/base is not built")


def test_directions_cover_every_group_and_language_three_times():
    levels = json.loads((demo.DEMO / "MANIFEST.json").read_text(encoding="utf-8"))["levels"]
    dirs = demo.demo_directions(levels)
    assert len(dirs) == len(set(dirs)) == 36 and all(s != t for s, t in dirs)
    for code in [c for v in levels.values() for c in v]:
        assert sum(s == code for s, _ in dirs) == 3 and sum(t == code for _, t in dirs) == 3


def test_config_carries_the_options(tmp_path):
    from lslo.training.config import RunConfig

    cfg = RunConfig.from_dict(demo.demo_config(tmp_path, 50, lr=1e-3, ranks=(3, 4, 5), prune_ratio=0.5,
                                               max_tokens=700))
    assert cfg.lslo.ranks == {"high": 3, "medium": 4, "low": 5}
    assert (cfg.train.lr, cfg.train.max_tokens, cfg.train.max_steps) == (1e-3, 700, 50)
    assert cfg.pruning.enabled and cfg.pruning.final_ratio == 0.5
    # the pruning schedule ends before the last updates, so the adapters recover at the final ratio
    assert cfg.pruning.start + cfg.pruning.duration < 50


def test_demo_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = demo.main(["--out", str(out), "--steps", "4", "--segments", "2", "--threads", "1", "--ranks", "2,2,4",
                    "--max-tokens", "400"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "## Base vs LSLo" in text and "| all | 36 |" in text
    summary = json.loads((out / "demo_summary.json").read_text(encoding="utf-8"))
    assert summary["steps"] == 4 and len(summary["directions"]) == 36
    for side in ("base", "lslo"):
        assert summary[side]["all"]["directions"] == 36
        assert 0 <= summary[side]["all"]["chrf++"] <= 100
    per_lang = summary["parameters"]["per_language"]
    assert len(per_lang) == 12
    assert {row["rank"] for row in per_lang.values() if row["level"] == "low"} == {4}
    assert (out / "eval-base" / "scores.json").is_file() and (out / "eval-last" / "scores.json").is_file()


def test_bad_ranks_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit, match="--ranks expects three positive integers"):
        demo.main(["--out", str(tmp_path / "x"), "--ranks", "2,2"])


@pytest.mark.parametrize("args, field", [(["--lr", "-1"], "train.lr"),
                                         (["--prune-ratio", "1.5"], "pruning.final_ratio")])
def test_bad_option_is_a_one_line_error_and_keeps_the_last_run(tmp_path, capsys, args, field):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "keep.txt").write_text("last run", encoding="utf-8")
    assert demo.main(["--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"lslo demo: error: {field}:")
    assert (out / "keep.txt").is_file()


@pytest.mark.parametrize("opt", ["--steps", "--segments", "--max-tokens"])
def test_counts_below_one_are_a_one_line_error(tmp_path, opt):
    with pytest.raises(SystemExit, match=f"{opt} expects an integer >= 1, got 0"):
        demo.main(["--out", str(tmp_path / "x"), opt, "0"])
