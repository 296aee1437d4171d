"""End to end through the CLI: train -> evaluate -> translate -> info -> merge; resume; baselines."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from conftest import segments, write_run_config

from lslo.cli.main import main
from lslo.training import load_run


def read_metrics(run):
    with (run / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_train_evaluate_translate_end_to_end(m2m_dir, flores_dir, tmp_path, capsys):
    run = tmp_path / "run"
    prune = {"unit": "epoch", "start": 1, "duration": 1, "final_ratio": 0.5}
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, run, epochs=3, pruning=prune)
    assert main(["train", str(cfg), "--quiet"]) == 0
    for f in ("config.yaml", "metrics.csv", "parameters.json", "checkpoints/last/adapters.safetensors",
              "checkpoints/last/trainer_state.pt", "checkpoints/best/adapters.safetensors"):
        assert (run / f).exists(), f
    rows = [r for r in read_metrics(run) if r["kind"] == "train"]
    losses = [float(r["loss"]) for r in rows]
    assert losses[-1] < losses[0]  # the training loss went down
    valid = [float(r["loss"]) for r in read_metrics(run) if r["kind"] == "valid"]
    assert len(valid) == 3 and valid[-1] < valid[0]
    capsys.readouterr()

    assert main(["evaluate", str(run), "--quiet"]) == 0
    out = run / "eval-devtest-best"
    scores = json.loads((out / "scores.json").read_text())
    assert len(scores["directions"]) == 6  # en, fr, ha: all 6 directions
    assert {"high->high", "high->low", "low->high", "all"} <= set(scores["groups"])
    assert "chrF2++" in scores["signatures"]["chrf++"] and "beam:2" in scores["signatures"]["chrf++"]
    assert (out / "heatmap.png").stat().st_size > 1000
    assert len((out / "hyps" / "en-fr.txt").read_text().splitlines()) == 6
    assert "| all | 6 |" in (out / "scores.md").read_text()

    src = tmp_path / "in.txt"
    src.write_text("\n".join(segments("en", 3)) + "\n", encoding="utf-8")
    assert main(["translate", str(run), "--src", "en", "--tgt", "fr", "--input", str(src),
                 "--output", str(tmp_path / "out.txt"), "--beam", "2", "--max-new-tokens", "8"]) == 0
    lines = (tmp_path / "out.txt").read_text().splitlines()
    assert len(lines) == 3
    # mixed-direction translation equals single-direction translation
    _, model = load_run(run)
    mixed = model.translate(segments("en", 3) + segments("ha", 2), ["en"] * 3 + ["ha"] * 2,
                            ["fr"] * 3 + ["en"] * 2, num_beams=2, max_new_tokens=8)
    assert mixed[:3] == lines
    assert mixed[3:] == model.translate(segments("ha", 2), ["ha"] * 2, ["en"] * 2, num_beams=2, max_new_tokens=8)

    capsys.readouterr()
    assert main(["info", str(run)]) == 0
    info = capsys.readouterr().out
    assert "ha" in info and "low" in info and "trainable" in info
    # pruned to 50% of B at epoch 2: info and the report show what each language kept
    rep = json.loads((run / "parameters.json").read_text())
    for row in rep["per_language"].values():
        dense = sum(row["rank"] * (m.in_features + m.out_features) for m in model.lslo_modules().values())
        n_b = sum(row["rank"] * m.out_features for m in model.lslo_modules().values())
        assert row["parameters"] < dense and row["parameters"] >= dense - n_b  # B pruned, A kept
    assert "pruned" in info.lower() or "density" in info.lower()
    assert (run / "report" / "parameters.png").stat().st_size > 1000
    assert (run / "report" / "density.png").stat().st_size > 1000
    assert main(["merge", str(run), "--src", "en", "--tgt", "fr", "--out", str(tmp_path / "merged")]) == 0
    assert (tmp_path / "merged" / "config.json").exists()


def _final_adapters(run):
    from lslo.tuner.storage import load_state as load_file

    return load_file(run / "checkpoints" / "last" / "adapters.safetensors")


def test_interrupted_and_resumed_equals_uninterrupted(m2m_dir, flores_dir, tmp_path):
    full = tmp_path / "full"
    # with step-wise pruning, so masks and the pruner state must survive the resume too
    prune = {"unit": "step", "start": 2, "duration": 4, "final_ratio": 0.6, "frequency": 1}
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, full, epochs=2, pruning=prune)
    assert main(["train", str(cfg), "--quiet"]) == 0
    part = tmp_path / "part"
    cfg2 = write_run_config(tmp_path / "c2.yaml", m2m_dir, flores_dir, part, epochs=2, pruning=prune)
    n_steps = int(read_metrics(full)[-1]["step"])
    stop = n_steps // 2 + 1  # stops mid-epoch-2 or mid-epoch-1: either way the sampler is mid-way
    assert main(["train", str(cfg2), "--quiet", "--stop-after-steps", str(stop)]) == 130
    assert not (part / "parameters.json").exists()
    assert main(["train", "--resume", str(part), "--quiet"]) == 0
    a, b = _final_adapters(full), _final_adapters(part)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0)
    # the logged losses of the resumed run continue exactly where the uninterrupted run had them
    la = [r["loss"] for r in read_metrics(full)]
    lb = [r["loss"] for r in read_metrics(part)]
    assert la == lb


def test_kill_while_saving_leaves_previous_checkpoint(tmp_path):
    from lslo.training.checkpoints import atomic_write_dir, checkpoint_dir

    target = tmp_path / "checkpoints" / "last"
    atomic_write_dir(target, lambda d: (d / "w").write_text("one"))

    def crash(d):
        (d / "w").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_dir(target, crash)
    assert (checkpoint_dir(tmp_path, "last") / "w").read_text() == "one"
    # a kill between the two renames: only the .old copy exists
    target.rename(target.with_name(".last.old"))
    assert (checkpoint_dir(tmp_path, "last") / "w").read_text() == "one"


@pytest.mark.parametrize("method", ["lora", "full"])
def test_baselines_through_the_same_cli(method, m2m_dir, flores_dir, tmp_path, capsys):
    run = tmp_path / method
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, run, method=method, epochs=1)
    assert main(["train", str(cfg), "--quiet"]) == 0
    rep = json.loads((run / "parameters.json").read_text())
    assert rep["method"] == method
    if method == "lora":
        assert list(rep["per_language"]) == ["shared"] and rep["per_language"]["shared"]["rank"] == 4
        assert 0 < rep["trainable_percent"] < 100
    else:
        assert rep["trainable_parameters"] == rep["base_parameters"]
    _, model = load_run(run, "last")
    assert model.translate(segments("en", 1), ["en"], ["ha"], num_beams=2, max_new_tokens=5)


def test_train_bad_inputs(m2m_dir, flores_dir, tmp_path, capsys):
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, tmp_path / "r")
    assert main(["train", str(cfg), "--set", "train.lrr=1"]) == 2
    assert "train.lrr: unknown field" in capsys.readouterr().err
    assert main(["train", str(cfg), "--set", "model=/nonexistent"]) == 2
    assert "model: /nonexistent is not a directory" in capsys.readouterr().err
    assert main(["train", str(cfg), "--set", "lslo.languages=[{code: en}, {code: it}]"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lslo: error")]
    assert len(err) == 1 and "missing language file for 'it'" in err[0] and "ita.dev" in err[0]
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nope")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_add_language_keeps_other_languages_bit_identical(m2m_dir, flores_dir, tmp_path, capsys):
    from lslo.tuner.storage import load_state as load_file

    run = tmp_path / "run"
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, run, epochs=1, weight_decay=0.01)
    assert main(["train", str(cfg), "--quiet"]) == 0
    new = tmp_path / "run-de"
    assert main(["train", "--resume-from", str(run), "--add-language", "de:medium", "--output-dir", str(new),
                 "--quiet", "--set", "train.epochs=1"]) == 0
    old_w = load_file(run / "checkpoints" / "last" / "adapters.safetensors")
    new_w = load_file(new / "checkpoints" / "last" / "adapters.safetensors")
    for k, v in old_w.items():
        assert torch.equal(v, new_w[k]), k  # bit-identical
    de_b = [v for k, v in new_w.items() if ".de.lora_B" in k]
    assert de_b and max(float(v.abs().max()) for v in de_b) > 0  # the new language trained
    from lslo.training.config import RunConfig

    cfg2 = RunConfig.load(new / "config.yaml")
    assert all("de" in d.split("-") for d in cfg2.data.directions) and len(cfg2.data.directions) == 6
    capsys.readouterr()
    assert main(["evaluate", str(new), "--quiet", "--max-segments", "2"]) == 0
    scores = json.loads((new / "eval-devtest-best" / "scores.json").read_text())
    assert len(scores["directions"]) == 12 and "de-en" in scores["directions"]
