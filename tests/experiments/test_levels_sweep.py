"""levels.py (automatic resource levels) and sweep.py (rank x position ablations)."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import write_run_config

from lslo.cli import main as lslo_main
from lslo.experiments.levels import (
    apply_levels,
    language_scores,
    levels_from_counts,
    levels_from_scores,
    parse_split,
)
from lslo.experiments.sweep import make_variants, parse_positions, parse_ranks, sweep_table
from lslo.tuner.config import ConfigError


def levels_main(argv):
    return lslo_main(["levels", *argv])


def sweep_main(argv):
    return lslo_main(["sweep", *argv])


# --------------------------------------------------------------------------- levels


def test_levels_from_counts_thirds_and_ties():
    counts = {"wo": 10, "en": 1000, "oc": 20, "fr": 900, "zh": 300, "sd": 30}
    lv = levels_from_counts(counts)
    assert lv == {"en": "high", "fr": "high", "zh": "medium", "sd": "medium", "oc": "low", "wo": "low"}
    assert list(lv) == ["en", "fr", "zh", "sd", "oc", "wo"]  # ranking order
    # 12 languages -> 4/4/4; equal amounts are ranked by code, whatever the dict order
    codes = ["en", "fr", "it", "de", "nl", "zh", "ja", "ko", "oc", "or", "sd", "wo"]
    same = {c: 5 for c in reversed(codes)}
    lv = levels_from_counts(same)
    ranked = sorted(codes)
    assert [c for c in ranked[:4]] == [c for c, v in lv.items() if v == "high"]
    assert levels_from_counts(dict(zip(codes, [5] * 12))) == lv
    # 4 languages, thirds: boundaries round(4/3)=1, round(8/3)=3 -> 1/2/1; 5 -> 2/1/2
    four = levels_from_counts({"a": 4, "b": 3, "c": 2, "d": 1})
    assert list(four.values()) == ["high", "medium", "medium", "low"]
    five = levels_from_counts({"a": 5, "b": 4, "c": 3, "d": 2, "e": 1})
    assert list(five.values()) == ["high", "high", "medium", "low", "low"]
    # explicit shares (normalised) and thresholds
    assert list(levels_from_counts({"a": 4, "b": 3, "c": 2, "d": 1}, split=(1, 1, 2)).values()) == [
        "high", "medium", "low", "low"]
    assert levels_from_counts(counts, thresholds=(900, 30)) == {
        "en": "high", "fr": "high", "zh": "medium", "sd": "medium", "oc": "low", "wo": "low"}
    assert parse_split("1/4,1/2,1/4") == (0.25, 0.5, 0.25) and parse_split("4,4,4") == pytest.approx((1 / 3,) * 3)
    for bad in ({}, {"en": -1}, {"en": float("nan")}, {"en": True}):
        with pytest.raises(ValueError):
            levels_from_counts(bad)
    with pytest.raises(ValueError, match="split"):
        levels_from_counts(counts, split=(0, 0, 0))
    with pytest.raises(ValueError, match="thresholds"):
        levels_from_counts(counts, thresholds=(1, 10))


def fake_scores(table):
    """An evaluate_model-shaped result from {(src, tgt): chrF++}."""
    return {"signatures": {"chrf++": "x"}, "directions": {
        f"{s}-{t}": {"src": s, "tgt": t, "group": "?", "segments": 2, "chrf++": v} for (s, t), v in table.items()}}


def test_levels_from_base_scores(tmp_path):
    table = {("en", "fr"): 60, ("fr", "en"): 50, ("en", "ha"): 20, ("ha", "en"): 30, ("fr", "ha"): 10,
             ("ha", "fr"): 14}
    per_lang = language_scores(fake_scores(table))
    # mean over directions into and out of each language, by hand
    assert per_lang == {"en": (60 + 50 + 20 + 30) / 4, "fr": (60 + 50 + 10 + 14) / 4, "ha": (20 + 30 + 10 + 14) / 4}
    assert levels_from_scores(per_lang) == {"en": "high", "fr": "medium", "ha": "low"}
    # a scores.json path (file or its directory) works too
    (tmp_path / "scores.json").write_text(json.dumps(fake_scores(table)))
    assert levels_from_scores(tmp_path) == levels_from_scores(tmp_path / "scores.json") == levels_from_scores(
        fake_scores(table))
    # ties broken by code
    assert levels_from_scores({"b": 1.0, "a": 1.0, "c": 1.0}) == {"a": "high", "b": "medium", "c": "low"}
    with pytest.raises(ValueError, match="spbleu"):
        language_scores(fake_scores(table), metric="spbleu")
    with pytest.raises(ValueError, match="no direction into or out of de"):
        language_scores(fake_scores(table), languages=["en", "de"])


def test_apply_levels():
    cfg = {"model": "m", "lslo": {"languages": ["en", {"code": "fr", "level": "low", "rank": 4}, {"code": "ha"}],
                                  "ranks": {"high": 2, "medium": 2, "low": 8}}}
    new = apply_levels(cfg, {"en": "high", "fr": "medium", "ha": "low"})
    assert new["lslo"]["languages"] == [{"code": "en", "level": "high"}, {"code": "fr", "level": "medium", "rank": 4},
                                        {"code": "ha", "level": "low"}]
    assert cfg["lslo"]["languages"][0] == "en"  # input untouched
    assert new["lslo"]["ranks"] == cfg["lslo"]["ranks"] and new["model"] == "m"
    with pytest.raises(ConfigError, match="no level for configured language 'ha'"):
        apply_levels(cfg, {"en": "high", "fr": "low"})
    with pytest.raises(ConfigError, match="de not configured"):
        apply_levels(cfg, {"en": "high", "fr": "low", "ha": "low", "de": "high"})
    with pytest.raises(ConfigError, match="levels\\[en\\]"):
        apply_levels(cfg, {"en": "huge"})
    assert apply_levels(cfg, {"en": "low"}, strict=False)["lslo"]["languages"][1]["level"] == "low"
    assert apply_levels({"model": "m"}, {"en": "high", "ha": "low"})["lslo"]["languages"] == [
        {"code": "en", "level": "high"}, {"code": "ha", "level": "low"}]
    # a bare LSLo mapping
    assert apply_levels({"languages": ["en"]}, {"en": "low"}) == {"languages": [{"code": "en", "level": "low"}]}


def test_levels_cli(tmp_path, capsys):
    cfg = write_run_config(tmp_path / "c.yaml", "m", "d", tmp_path / "r")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "scores.json").write_text(json.dumps(fake_scores(
        {("en", "fr"): 10, ("fr", "en"): 10, ("en", "ha"): 50, ("ha", "en"): 50, ("fr", "ha"): 30, ("ha", "fr"): 30})))
    assert levels_main([str(cfg), "--scores", str(tmp_path / "s"), "--out", str(tmp_path / "new.yaml")]) == 0
    new = yaml.safe_load((tmp_path / "new.yaml").read_text())
    assert {x["code"]: x["level"] for x in new["lslo"]["languages"]} == {"ha": "high", "en": "medium", "fr": "low"}
    assert new["train"] == yaml.safe_load(cfg.read_text())["train"]
    assert levels_main([str(cfg), "--counts", "en=100,fr=50,ha=1", "--thresholds", "60,10"]) == 0
    out = capsys.readouterr().out
    assert "en" in out and "high" in out and "fr" in out and "medium" in out
    assert levels_main([str(cfg), "--counts", "en=100,fr=50"]) == 2
    assert "no amount for configured language(s) ha" in capsys.readouterr().err


# --------------------------------------------------------------------------- sweep


def test_sweep_variants_parsing():
    assert parse_ranks("2/2/8") == ("r2-2-8", {"high": 2, "medium": 2, "low": 8})
    assert parse_ranks("4") == ("r4-4-4", {"high": 4, "medium": 4, "low": 4})
    assert parse_ranks("config") == ("rconfig", None)
    for bad in ("2/2", "0/2/2", "a/b/c"):
        with pytest.raises(ConfigError, match="--ranks"):
            parse_ranks(bad)
    assert parse_positions("all") == ("all", ["q", "k", "v", "fc1", "fc2"],
                                      ["q", "k", "v", "cross_q", "cross_k", "cross_v", "fc1", "fc2"])
    assert parse_positions("attention")[1:] == (["q", "k", "v"], ["q", "k", "v", "cross_q", "cross_k", "cross_v"])
    assert parse_positions("ffn")[1:] == (["fc1", "fc2"], ["fc1", "fc2"])
    assert parse_positions("fc2+cross_v+q") == ("q+cross_v+fc2", ["q", "fc2"], ["q", "cross_v", "fc2"])
    with pytest.raises(ConfigError, match="unknown: ffm"):
        parse_positions("ffm")
    grid = make_variants(["2/2/8", "8/8/8"], ["all", "ffn"])
    assert [v.name for v in grid] == ["r2-2-8_all", "r2-2-8_ffn", "r8-8-8_all", "r8-8-8_ffn"]
    axes = make_variants(["2/2/8", "8/8/8", "2/2/2"], ["all", "attention", "ffn"], design="axes")
    assert [v.name for v in axes] == ["r2-2-8_all", "r8-8-8_all", "r2-2-2_all", "r2-2-8_attention", "r2-2-8_ffn"]


def test_sweep_table_layout():
    def row(name, pct, hh, all_):
        return {"variant": name, "ranks": "2/2/8", "positions": "all", "trainable_percent": pct,
                "per_level": {"low": {"percent_of_base_mean": 1.5}, "high": {"percent_of_base_mean": 0.25}},
                "groups": {"all": {"chrf++": all_, "spbleu": 1.0}, "high->high": {"chrf++": hh, "spbleu": 2.0}},
                "signatures": {"chrf++": "c", "spbleu": "s"}}
    md = sweep_table([row("a", 1.0, 30.0, 20.0), row("b", 0.5, 31.0, 21.0)])
    lines = [x for x in md.splitlines() if x.startswith("|")]
    assert lines[0] == ("| variant | ranks h/m/l | positions | trainable % | high params/lang % | low params/lang % "
                        "| high->high | all |")
    assert lines[2] == "| a | 2/2/8 | all | 1.000 | 0.250 | 1.500 | 2.00 / 30.00 | 1.00 / 20.00 |"
    assert len(lines) == 4


@pytest.mark.filterwarnings("ignore:spBLEU unavailable")
def test_sweep_two_variants_then_skip(m2m_dir, flores_dir, tmp_path, capsys, monkeypatch):
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, tmp_path / "unused", max_steps=2,
                           update_freq=1, max_tokens=200)
    out = tmp_path / "sweep"
    args = [str(cfg), "--ranks", "2/2/8", "--positions", "all,ffn", "--set", "eval.beam=1",
            "--set", "eval.max_segments=2", "--out", str(out), "--quiet"]
    assert sweep_main(args) == 0
    table = capsys.readouterr().out
    rows = [x for x in table.splitlines() if x.startswith("| r2-2-8")]
    assert [r.split("|")[1].strip() for r in rows] == ["r2-2-8_all", "r2-2-8_ffn"]
    head = next(x for x in table.splitlines() if x.startswith("| variant"))
    assert "trainable %" in head and "high params/lang %" in head and "low params/lang %" in head
    assert "high->low" in head and head.rstrip(" |").endswith("all")
    data = json.loads((out / "sweep.json").read_text())
    assert [v["status"] for v in data["variants"]] == ["trained", "trained"]
    full, ffn = data["variants"]
    assert full["decoder_positions"] == ["q", "k", "v", "cross_q", "cross_k", "cross_v", "fc1", "fc2"]
    assert ffn["encoder_positions"] == ["fc1", "fc2"]
    assert 0 < ffn["trainable_percent"] < full["trainable_percent"]
    # per level by hand: tiny model (d=16, ffn 32, 2+2 layers), ffn only: 2 sides x 2 layers x 2 positions,
    # each r x (16 + 32)
    assert ffn["per_level"]["high"]["parameters_mean"] == 8 * 2 * 48
    assert ffn["per_level"]["low"]["parameters_mean"] == 8 * 8 * 48
    for v in data["variants"]:
        run = out / v["variant"]
        scores = json.loads((run / "eval-devtest-best" / "scores.json").read_text())
        assert scores["segments_per_direction"] == 2 and scores["beam"] == 1 and len(scores["directions"]) == 6
        assert (run / "report" / "summary.md").is_file() and (run / "report" / "parameters.png").is_file()
    assert (out / "sweep.md").read_text().startswith("### sweep of c.yaml")

    # rerun: nothing is trained or evaluated again, the same table comes out
    def boom(*a, **k):
        raise AssertionError("should have been skipped")

    monkeypatch.setattr("lslo.training.trainer.Trainer.train", boom)
    monkeypatch.setattr("lslo.evaluation.evaluate.evaluate_model", boom)
    assert sweep_main(args) == 0
    assert capsys.readouterr().out == table
    assert [v["status"] for v in json.loads((out / "sweep.json").read_text())["variants"]] == ["skipped", "skipped"]

    # a trained variant without scores is only evaluated
    monkeypatch.undo()
    monkeypatch.setattr("lslo.training.trainer.Trainer.train", boom)
    (out / "r2-2-8_ffn" / "eval-devtest-best" / "scores.json").unlink()
    assert sweep_main(args) == 0
    assert [v["status"] for v in json.loads((out / "sweep.json").read_text())["variants"]] == ["skipped", "evaluated"]

    # `lslo report RUN` on a variant's run directory
    import argparse

    from lslo.cli.report import add_parser as add_report_parser

    parser = argparse.ArgumentParser()
    add_report_parser(parser.add_subparsers())
    a = parser.parse_args(["report", str(out / "r2-2-8_ffn"), "--checkpoint", "last", "--no-per-language"])
    assert a.func(a) == 0
    assert "| ha | low | 8 | 8.00 | 8 | 3,072 |" in capsys.readouterr().out

    # a different config in an existing variant directory is refused
    assert sweep_main([*args, "--set", "train.lr=0.02"]) == 2
    assert "train.lr: 0.02 here, 0.01 in the run" in capsys.readouterr().err
