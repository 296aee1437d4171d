"""PEFT: why the installed PEFT cannot register LSLo, and PEFT's method names on lslo's models
(M2M-100 in test_hf_trainer.py, NLLB here)."""

from __future__ import annotations

import re

import pytest
import torch
from hf_helpers import batch_for, logits, make_model, quiet_transformers

quiet_transformers()


def test_the_installed_peft_cannot_register_a_third_party_method():
    peft = pytest.importorskip("peft")
    from peft.utils.peft_types import register_peft_method

    from lslo.hf import peft_support

    status = peft_support()
    assert status["peft"] == peft.__version__ and status["registrable"] is False
    assert "PeftType" in status["reason"] and peft.__version__ in status["reason"]
    # the reason the README gives: PEFT's registration refuses a name outside its closed enum
    with pytest.raises(ValueError, match="Unknown PEFT type LSLO"):
        register_peft_method(name="lslo", config_cls=object, model_cls=object)


def test_peft_method_names_on_an_nllb_model(nllb_dir, tmp_path, capsys):
    from lslo.hf import LSLoForSeq2SeqLM, get_lslo_model
    from lslo.tuner.model import LSLoModel

    model = make_model(nllb_dir)
    trainable, total = model.get_nb_trainable_parameters()
    adapters = sum(p.numel() for p in model.lslo.adapter_parameters())
    assert trainable == adapters and total == model.lslo.base_parameter_count() + adapters
    model.print_trainable_parameters()
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(r"trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%: \d+\.\d{4}", line)
    assert f"{trainable:,d}" in line

    batch = batch_for(model)
    want = logits(model, batch)
    model.save_pretrained(tmp_path / "wrapped")  # PEFT's name, lslo's files
    model.lslo.save_pretrained(tmp_path / "plain")
    for d in ("wrapped", "plain"):
        assert (tmp_path / d / "adapters.safetensors").is_file() and (tmp_path / d / "adapter_config.json").is_file()
    assert torch.equal(logits(LSLoForSeq2SeqLM.from_pretrained(tmp_path / "wrapped", base=str(nllb_dir)), batch), want)
    assert torch.equal(logits(LSLoModel.from_pretrained(tmp_path / "plain", base=str(nllb_dir)), batch), want)

    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    fresh = get_lslo_model(AutoModelForSeq2SeqLM.from_pretrained(str(nllb_dir)), model.lslo.config,
                           AutoTokenizer.from_pretrained(str(nllb_dir)))
    assert isinstance(fresh, LSLoForSeq2SeqLM) and fresh.get_nb_trainable_parameters() == (trainable, total)
    assert all(not p.requires_grad for n, p in fresh.get_base_model().named_parameters()
               if not n.endswith(("lora_A", "lora_BT")))
