"""export-peft: one direction of an LSLo model as a standard PEFT LoRA adapter."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

import pytest
import torch
from conftest import SENTENCES, load_lslo, lslo_config, write_run_config
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from lslo.cli.export import add_parser as add_export_parser
from lslo.pruning import Pruner, PruningConfig
from lslo.tuner.languages import encode_batch
from lslo.tuner.peft_export import export_peft

peft = pytest.importorskip("peft")
KEYS = ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")


def direction_batch(model, src, tgt, n=3):
    return encode_batch(model.tokenizer, model.tokens, SENTENCES[src][:n], [src] * n, [tgt] * n, SENTENCES[tgt][:n])


def load_peft(base_dir, out_dir):
    base = AutoModelForSeq2SeqLM.from_pretrained(str(base_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # PEFT warns about missing/unexpected adapter keys
        return peft.PeftModel.from_pretrained(base, str(out_dir)).eval()


def assert_same_logits(model, peft_model, src, tgt):
    batch = direction_batch(model, src, tgt)
    with torch.no_grad():
        ref = model(batch["src_lang"], batch["tgt_lang"], **{k: batch[k] for k in KEYS}).logits
        got = peft_model(**{k: batch[k] for k in KEYS}).logits
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    # and the adapters matter: the bare base model is far off
    base = peft_model.get_base_model()
    with torch.no_grad(), peft_model.disable_adapter():
        plain = base(**{k: batch[k] for k in KEYS}).logits
    assert (plain - ref).abs().max() > 1e-2


def lora_modules(peft_model):
    from peft.tuners.lora import LoraLayer

    prefix = "base_model.model."
    return {n.removeprefix(prefix): m for n, m in peft_model.named_modules() if isinstance(m, LoraLayer)}


@pytest.mark.parametrize("alpha", [None, 4.0])
def test_exported_adapter_reproduces_the_direction(m2m_dir, tmp_path, alpha):
    model = load_lslo(m2m_dir, lslo_config(alpha=alpha), seed=11)
    out = export_peft(model, "en", "ha", tmp_path / "en-ha")
    cfg = json.loads((out / "adapter_config.json").read_text())
    mods = model.lslo_modules()
    assert sorted(cfg["target_modules"]) == sorted(mods)
    # encoder layer 0 is source-indexed (en: rank 2), the rest target-indexed (ha: rank 8)
    assert cfg["r"] == 8 and cfg["peft_type"] == "LORA" and cfg["task_type"] == "SEQ_2_SEQ_LM"
    assert set(cfg["rank_pattern"]) == {n for n, m in mods.items() if m.routing == "source"}
    assert set(cfg["rank_pattern"].values()) == {2}
    if alpha is None:  # s_l = 1: alpha = r per module
        assert cfg["lora_alpha"] == 8 and cfg["alpha_pattern"] == dict.fromkeys(cfg["rank_pattern"], 2)
    else:  # s_l = alpha / r_l: alpha_module = alpha for every module
        assert cfg["lora_alpha"] == 4 and cfg["alpha_pattern"] == {}
    assert cfg["base_model_name_or_path"] == str(m2m_dir)

    pm = load_peft(m2m_dir, out)
    lm = lora_modules(pm)
    assert set(lm) == set(mods)  # exactly the adapted modules: no out_proj, nothing else
    for name, m in mods.items():
        lang = m.languages.index("en" if m.routing == "source" else "ha")
        assert torch.equal(lm[name].lora_A["default"].weight, m.A_of(lang))
        assert torch.equal(lm[name].lora_B["default"].weight, m.B_of(lang))
        assert lm[name].scaling["default"] == pytest.approx(float(m.scale[lang]))
    assert_same_logits(model, pm, "en", "ha")

    info = json.loads((out / "lslo_direction.json").read_text())
    assert (info["src"], info["tgt"]) == ("en", "ha") and info["forced_bos_token_id"] == model.tokens.token_id("ha")
    readme = (out / "README.md").read_text()
    assert str(m2m_dir) in readme and "en` -> `ha" in readme
    tok = AutoTokenizer.from_pretrained(str(out))
    assert tok(["x"])["input_ids"][0][0] == model.tokens.token_id("en")  # src_lang set to en


def test_pruned_adapter_drops_dead_components(m2m_dir, tmp_path):
    model = load_lslo(m2m_dir, lslo_config(alpha=2.0), seed=12)
    cfg = PruningConfig(enabled=True, structured=0.5, final_ratio=0.7, matrices="AB")
    Pruner(model, cfg).prune_to(0.7, 0.5)
    mods = model.lslo_modules()
    # one module loses everything in the target language: it must be left out of the adapter
    dead = "model.decoder.layers.1.fc2"
    with torch.no_grad():
        ti = mods[dead].languages.index("fr")
        mods[dead].mask_B_of(ti).fill_(False)
        mods[dead].B_of(ti).zero_()
    out = export_peft(model, "zh", "fr", tmp_path / "zh-fr")
    cfg_json = json.loads((out / "adapter_config.json").read_text())
    assert dead not in cfg_json["target_modules"]
    ranks = {n: cfg_json["rank_pattern"].get(n, cfg_json["r"]) for n in cfg_json["target_modules"]}
    lowered = 0
    for n, r in ranks.items():
        m = mods[n]
        lang = m.languages.index("zh" if m.routing == "source" else "fr")
        full = int(m.ranks[lang])
        live = int((m.mask_A_of(lang).any(dim=1) & m.mask_B_of(lang).any(dim=0)).sum())
        assert r == live <= full
        lowered += r < full
        alpha = cfg_json["alpha_pattern"].get(n, cfg_json["lora_alpha"])
        assert alpha / r == pytest.approx(float(m.scale[lang]))  # s_l = 2 / r_l, whatever r' is
    assert lowered > 0 and cfg_json["rank_pattern"]  # structured pruning lowered some ranks
    pm = load_peft(m2m_dir, out)
    assert set(lora_modules(pm)) == set(cfg_json["target_modules"])
    assert_same_logits(model, pm, "zh", "fr")
    # --keep-dead: full ranks, dead components exported as zeros; same function
    keep = export_peft(model, "zh", "fr", tmp_path / "keep", drop_dead=False)
    kept = json.loads((keep / "adapter_config.json").read_text())
    assert kept["r"] == 2 and kept["rank_pattern"] == {}  # zh and fr: rank 2 everywhere
    assert sorted(kept["target_modules"]) == sorted(mods)  # the dead module too (as zeros)
    assert_same_logits(model, load_peft(m2m_dir, keep), "zh", "fr")


def test_alpha_is_rounded_to_the_scale(m2m_dir, tmp_path):
    model = load_lslo(m2m_dir, lslo_config(alpha=4.0, languages=[
        {"code": "en", "level": "high", "rank": 3}, {"code": "fr", "level": "low", "rank": 6}]), seed=15)
    from lslo.tuner.peft_export import peft_lora_for_direction

    _, fields = peft_lora_for_direction(model, "en", "fr")
    assert fields["lora_alpha"] == 4 and fields["alpha_pattern"] == {}  # not 4.0000001 (float32 4/3 * 3)


def test_shared_lora_baseline_exports_too_even_without_peft(m2m_dir, tmp_path, monkeypatch):
    model = load_lslo(m2m_dir, lslo_config(shared_rank=4), seed=13)
    with monkeypatch.context() as mp:
        mp.setitem(sys.modules, "peft", None)  # export writes adapter_config.json by hand
        out = export_peft(model, "de", "yo", tmp_path / "shared")
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["r"] == 4 and cfg["rank_pattern"] == {} and cfg["lora_alpha"] == 4
    assert_same_logits(model, load_peft(m2m_dir, out), "de", "yo")


def test_cli_export_peft(m2m_dir, flores_dir, tmp_path, capsys):
    from lslo.training import load_run

    run = tmp_path / "run"
    run.mkdir()
    write_run_config(run / "config.yaml", m2m_dir, flores_dir, run)
    _, model = load_run(run, checkpoint="none", device="cpu")
    from conftest import randomize_adapters

    randomize_adapters(model, seed=14)
    model.save_adapters(run / "checkpoints" / "last")  # no 'best': export falls back to last
    parser = argparse.ArgumentParser(prog="lslo")
    add_export_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["export-peft", str(run), "--src", "fr", "--tgt", "en", "--out", str(tmp_path / "x")])
    assert args.func(args) == 0
    assert "PEFT LoRA adapter for fr->en" in capsys.readouterr().out
    assert_same_logits(model, load_peft(m2m_dir, tmp_path / "x"), "fr", "en")
    from lslo.tuner.languages import LanguageError

    args = parser.parse_args(["export-peft", str(run), "--src", "fr", "--tgt", "xx", "--out", str(tmp_path / "y")])
    with pytest.raises(LanguageError, match="xx"):
        args.func(args)
