"""Config validation: every kind of bad field gives one clear error naming the field."""

from __future__ import annotations

import pytest
from conftest import load_lslo, lslo_config

from lslo.tuner.config import ConfigError, LSLoConfig
from lslo.tuner.languages import LanguageError
from lslo.tuner.model import LSLoModel

GOOD = {"languages": [{"code": "en", "level": "high"}, {"code": "ha", "level": "low"}]}


def bad(**over):
    data = {**GOOD, **over}
    with pytest.raises(ConfigError) as e:
        LSLoConfig.from_dict(data)
    return str(e.value)


def test_yaml_roundtrip(tmp_path):
    cfg = lslo_config(alpha=8.0, encoder_routing={"target": [1]}, dropout=0.1)
    cfg.save(tmp_path / "c.yaml")
    again = LSLoConfig.load(tmp_path / "c.yaml")
    assert again.to_dict() == cfg.to_dict()
    assert again.rank_of("ha") == 8 and again.scale_of("ha") == 1.0


def test_defaults_are_the_paper_setting():
    cfg = LSLoConfig.from_dict(GOOD)
    assert cfg.ranks == {"high": 2, "medium": 2, "low": 8}
    assert cfg.alpha is None and cfg.scale_of("en") == 1.0
    assert cfg.encoder_positions == ["q", "k", "v", "fc1", "fc2"]
    assert cfg.decoder_positions == ["q", "k", "v", "cross_q", "cross_k", "cross_v", "fc1", "fc2"]


@pytest.mark.parametrize(
    "over, field",
    [
        ({"rankz": 3}, "rankz: unknown field"),
        ({"ranks": {"high": 0, "medium": 2, "low": 8}}, "ranks.high: expected an integer >= 1"),
        ({"ranks": {"huge": 2}}, "ranks.huge: unknown level"),
        ({"languages": [{"code": "en", "level": "high", "rank": 0}]}, "languages[0].rank: expected an integer >= 1"),
        ({"languages": [{"code": "en", "level": "extreme"}]}, "languages[0].level: expected one of high/medium/low"),
        ({"languages": [{"code": "en", "lvl": "high"}]}, "languages[0].lvl: unknown field"),
        ({"languages": [{"level": "high"}]}, "languages[0].code: missing"),
        ({"languages": [{"code": "en"}, {"code": "en"}]}, "languages[1].code: duplicate language 'en'"),
        ({"languages": []}, "languages: expected a non-empty list"),
        ({"encoder_positions": ["q", "cross_q"]}, "encoder_positions: unknown position 'cross_q'"),
        ({"decoder_positions": ["fc3"]}, "decoder_positions: unknown position 'fc3'"),
        ({"encoder_routing": ["source", "middle"]}, "encoder_routing[1]: expected 'source' or 'target'"),
        ({"decoder_routing": {"both": [1]}}, "decoder_routing.both: expected keys 'source'/'target'"),
        ({"alpha": -1}, "alpha: expected a positive number or null"),
        ({"dropout": 1.5}, "dropout: expected a number in [0, 1)"),
        ({"init": "xavier"}, "init: expected 'kaiming' or 'gaussian'"),
    ],
)
def test_bad_fields(over, field):
    msg = bad(**over)
    assert field in msg
    assert "\n" not in msg


def test_layer_index_out_of_range(m2m_dir):
    cfg = lslo_config(encoder_routing={"target": [5]})
    with pytest.raises(ConfigError, match=r"encoder_routing.target: layer 5 out of range \(the model has 2 layers: 0-1\)"):
        load_lslo(m2m_dir, cfg)
    with pytest.raises(ConfigError, match="decoder_routing: has 3 entries but the model has 2 layers"):
        load_lslo(m2m_dir, lslo_config(decoder_routing=["target"] * 3))


def test_yaml_file_errors(tmp_path):
    (tmp_path / "bad.yaml").write_text("languages: [en\n  ranks: {", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.yaml: line"):
        LSLoConfig.load(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="missing.yaml: no such config file"):
        LSLoConfig.load(tmp_path / "missing.yaml")
    (tmp_path / "f.yaml").write_text("languages: [{code: en, level: top}]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"f.yaml: languages\[0\].level"):
        LSLoConfig.load(tmp_path / "f.yaml")


def test_unknown_language_is_an_error_not_a_fallback(m2m_dir):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    base = AutoModelForSeq2SeqLM.from_pretrained(str(m2m_dir))
    tok = AutoTokenizer.from_pretrained(str(m2m_dir))
    cfg = LSLoConfig.from_dict({"languages": [{"code": "en"}, {"code": "xq", "level": "low"}]})
    with pytest.raises(LanguageError, match="language 'xq': the tokenizer has no language token"):
        LSLoModel(base, cfg, tok)
    cfg = LSLoConfig.from_dict({"languages": [{"code": "en"}, {"code": "fr", "token": "__zz__"}]})
    with pytest.raises(LanguageError, match="language 'fr': token '__zz__' is not in the tokenizer"):
        LSLoModel(base, cfg, tok)
    model = load_lslo(m2m_dir)
    with pytest.raises(LanguageError, match="language 'it' is not configured"):
        model.translate(["ciao"], ["it"], ["en"])


def test_unmatched_position_names_the_field(m2m_dir):
    cfg = lslo_config(module_names={"q": "self_attn.query", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
                                    "fc1": "fc1", "fc2": "fc2", "cross_q": "encoder_attn.q_proj",
                                    "cross_k": "encoder_attn.k_proj", "cross_v": "encoder_attn.v_proj"})
    with pytest.raises(ConfigError, match="encoder_positions: position 'q' matched 0 of 2 layers"):
        load_lslo(m2m_dir, cfg)


def test_paper_config_is_the_paper_setting():
    from pathlib import Path

    from lslo.training.config import RunConfig

    cfg = RunConfig.load(Path(__file__).resolve().parents[2] / "configs" / "paper-m2m100-flores101-lang12.yaml")
    assert cfg.lslo.codes == ["en", "fr", "it", "de", "nl", "zh", "ja", "ko", "oc", "or", "sd", "wo"]
    assert [cfg.lslo.rank_of(c) for c in cfg.lslo.codes] == [2] * 8 + [8] * 4
    assert cfg.lslo.resolve_routing(12, 12) == (["source"] * 9 + ["target"] * 3, ["target"] * 12)
    t = cfg.train
    assert (t.epochs, t.max_tokens, t.update_freq, t.temperature, t.lr, t.label_smoothing, t.dropout) == (
        15, 4000, 4, 5.0, 0.003, 0.2, 0.1)
    assert (t.warmup_steps, t.seed) == (1, 2)  # the authors' published fairseq command
    p = cfg.pruning
    assert (p.enabled, p.start, p.duration, p.final_ratio, p.unit, p.granularity, p.matrices) == (
        True, 2, 10, 0.9, "epoch", "layer", "B")
    assert cfg.eval.beam == 5 and cfg.eval.spm_tokenizer == "flores101"


def test_configs_validate_on_construction():
    from lslo.pruning import PruningConfig
    from lslo.search import SearchConfig
    from lslo.tuner.config import ConfigError, LanguageSpec, LSLoConfig

    with pytest.raises(ConfigError, match="dropout"):
        LSLoConfig(languages=[LanguageSpec("en")], dropout=1.5)
    with pytest.raises(ConfigError, match="encoder_positions: unknown position 'fc3'"):
        LSLoConfig(languages=[LanguageSpec("en")], encoder_positions=["fc3"])
    with pytest.raises(ValueError, match="final_ratio"):
        PruningConfig(final_ratio=1.5)
    with pytest.raises(ValueError):
        SearchConfig(temperature=-1.0)
    assert LSLoConfig(languages=[LanguageSpec("en")]).rank_of("en") == 2
    help_text = {f.name: f.metadata.get("help") for f in __import__("dataclasses").fields(LSLoConfig)}
    assert all(help_text.values()), [k for k, v in help_text.items() if not v]
