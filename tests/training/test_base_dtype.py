"""A float16 checkpoint (the committed testbed base is one) trains and reloads in float32."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lslo.testbed.demo import BASE, demo_config
from lslo.training.checkpoints import load_base
from lslo.training.config import RunConfig

pytestmark = pytest.mark.skipif(not (BASE / "config.json").is_file(), reason="data/testbed/base is missing")


def test_a_float16_base_loads_in_float32_for_training(tmp_path):
    assert json.loads((BASE / "config.json").read_text())["dtype"] == "float16"  # what is on disk
    base, _ = load_base(RunConfig.from_dict(demo_config(tmp_path)))
    assert {p.dtype for p in base.parameters()} == {torch.float32}


def test_saved_adapters_reload_on_a_float32_base(tmp_path):
    from lslo.tuner.model import LSLoModel

    cfg = RunConfig.from_dict(demo_config(tmp_path))
    base, tok = load_base(cfg)
    model = LSLoModel(base, cfg.adapter_config(), tok)
    model.save_adapters(tmp_path / "adapters")
    again = LSLoModel.from_pretrained(tmp_path / "adapters", base=str(Path(cfg.model)))
    assert {p.dtype for p in again.parameters()} == {torch.float32}
