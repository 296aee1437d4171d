"""`python -m lslo.testbed.demo` end to end on the committed testbed base and the software set (a few updates only)."""

from __future__ import annotations

import json

import pytest

from lslo.testbed import demo

pytestmark = pytest.mark.skipif(not (demo.BASE / "config.json").is_file(), reason="data/testbed/base is missing")


def test_directions_cover_every_group_and_language_three_times():
    levels = demo.manifest()["levels"]
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
    # the defaults are the paper's (ranks 2/2/8, 90% of B pruned layer-wise, smoothing 0.2) but for
    # the learning rate, tuned on this base (the paper's 3e-3 is for d_model 1024)
    paper = RunConfig.from_dict(demo.demo_config(tmp_path))
    assert paper.lslo.ranks == {"high": 2, "medium": 2, "low": 8} and paper.lslo.alpha is None
    assert (paper.pruning.final_ratio, paper.pruning.granularity, paper.pruning.matrices) == (0.9, "layer", "B")
    assert (paper.train.lr, paper.train.label_smoothing, paper.train.temperature) == (1e-2, 0.2, 5.0)
    assert paper.model == str(demo.BASE) and paper.data.path == str(demo.DATA)


def test_software_config_file_is_the_demos_setting(tmp_path, monkeypatch):
    """configs/testbed-software-lang12.yaml: what `lslo train` users run; the demo's layout,
    ranks, learning rate, smoothing and pruning, on the same data."""
    from lslo.training.config import RunConfig

    monkeypatch.chdir(demo.ROOT)
    cfg = RunConfig.load(demo.ROOT / "configs" / "testbed-software-lang12.yaml")
    ref = RunConfig.from_dict(demo.demo_config(tmp_path))
    assert cfg.lslo.ranks == ref.lslo.ranks and cfg.lslo.codes == ref.lslo.codes
    assert cfg.lslo.encoder_positions == ref.lslo.encoder_positions
    assert cfg.lslo.decoder_positions == ref.lslo.decoder_positions
    assert cfg.lslo.encoder_routing == ref.lslo.encoder_routing
    assert cfg.lslo.decoder_routing == ref.lslo.decoder_routing
    assert (cfg.train.lr, cfg.train.label_smoothing, cfg.train.dropout) == (ref.train.lr, 0.2, 0.1)
    assert (cfg.pruning.final_ratio, cfg.pruning.granularity, cfg.pruning.matrices) == (0.9, "layer", "B")
    assert (demo.ROOT / cfg.data.path).resolve() == demo.DATASETS["software"][0].resolve()


def test_paper_layout_keeps_the_papers_split_at_any_depth(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"encoder_layers": 12, "decoder_layers": 12}))
    twelve = demo.paper_layout(tmp_path)
    assert twelve["encoder_routing"] == {"source": list(range(9)), "target": [9, 10, 11]}  # the paper's routing
    assert twelve["decoder_routing"] == {"target": list(range(12))}
    assert twelve["decoder_positions"] == ["q", "k", "v", "cross_q", "cross_k", "cross_v", "fc1", "fc2"]
    four = demo.paper_layout(demo.BASE)  # the testbed base: 4 + 4 layers
    assert four["encoder_routing"] == {"source": [0, 1, 2], "target": [3]}
    (tmp_path / "config.json").write_text(json.dumps({"encoder_layers": 1, "decoder_layers": 1}))
    assert demo.paper_layout(tmp_path)["encoder_routing"] == {"source": [0]}


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
    # three examples from different cross-level groups, each with all four texts, printed at the end
    exs = summary["examples"]
    assert len(exs) == 3 and len({e["direction"] for e in exs}) == 3
    assert all(e["source"] and e["reference"] and "base" in e and "lslo" in e for e in exs)
    assert "## Example translations" in text and text.count("  reference: ") == 3
    assert set(summary["phases_seconds"]) == {"base scores", "fine-tuning", "scores after"}
    assert "time: base scores" in text


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
