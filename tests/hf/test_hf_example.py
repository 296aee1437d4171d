"""examples/hf_trainer.py at tiny scale on the committed testbed: it trains with pruning, saves
lslo adapters, and its compute_metrics scores equal lslo evaluate's scoring of those adapters."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from hf_helpers import quiet_transformers

quiet_transformers()

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hf_trainer.py"


def test_example_scores_equal_lslo_evaluate_of_the_adapters_it_saved(tmp_path, capsys):
    if not (ROOT / "data" / "testbed" / "base" / "config.json").is_file():
        pytest.skip("the committed testbed base is not in this checkout")
    from lslo.data.sampling import directions
    from lslo.evaluation import SpBleu, evaluate_model
    from lslo.training import RunConfig
    from lslo.training.data import load_splits
    from lslo.tuner.model import LSLoModel

    spec = importlib.util.spec_from_file_location("hf_trainer_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    langs = ["en", "es", "tr"]  # high, medium, low
    # 3 epochs of one update each: the config's pruning (epochs 0..2, 90% of B) runs to its end
    scores = example.main(["--languages", ",".join(langs), "--epochs", "3", "--epoch-size", "8", "--batch-size", "8",
                           "--train-segments", "12", "--eval-segments", "2", "--output", str(tmp_path)])
    assert "trainable params:" in capsys.readouterr().out

    adapters = tmp_path / "adapters"
    meta = json.loads((adapters / "adapter_config.json").read_text())
    assert meta["format"] == "lslo" and [lang["code"] for lang in meta["lslo"]["languages"]] == langs
    model = LSLoModel.from_pretrained(adapters)  # the base recorded in adapter_config.json
    mods = model.lslo_modules().values()
    pruned = sum(int((~m.mask_BT).sum()) for m in mods) / sum(m.mask_BT.numel() for m in mods)
    assert pruned == pytest.approx(0.9, abs=0.01)

    cfg = RunConfig.load(example.parse([]).config)
    test = load_splits(cfg)["test"].subset(langs)
    want = evaluate_model(model, test, directions(langs), beam=cfg.eval.beam, batch_size=cfg.eval.batch_size,
                          max_new_tokens=cfg.eval.max_new_tokens, max_segments=2, quiet=True,
                          spbleu=SpBleu.for_model("auto", model.tokenizer, cfg.eval.spm_model))
    assert scores == want
    assert set(want["groups"]) == {"high->medium", "high->low", "medium->high", "medium->low", "low->high",
                                   "low->medium", "all"}
    written = json.loads((tmp_path / "eval" / "scores.json").read_text())
    assert written["groups"] == json.loads(json.dumps(want["groups"]))
