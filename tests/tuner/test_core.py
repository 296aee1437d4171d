"""LSLo layer, injection, routing, save/load/merge on small real HF models reloaded from disk."""

from __future__ import annotations

import itertools

import pytest
import torch
from conftest import LANGS, SENTENCES, load_lslo, lslo_config
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from lslo.tuner.languages import encode_batch
from lslo.tuner.layer import LSLoLinear
from lslo.tuner.model import LSLoModel

DIRECTIONS = [("en", "fr"), ("fr", "de"), ("de", "zh"), ("zh", "ha"), ("ha", "yo"), ("yo", "en")]


def mixed_batch(model, directions=DIRECTIONS, k=0):
    src = [SENTENCES[s][(i + k) % 5] for i, (s, _) in enumerate(directions)]
    tgt = [SENTENCES[t][(i + k) % 5] for i, (_, t) in enumerate(directions)]
    return encode_batch(model.tokenizer, model.tokens, src, [s for s, _ in directions], [t for _, t in directions], tgt)


def run(model, batch):
    keys = ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")
    return model(batch["src_lang"], batch["tgt_lang"], **{k: batch[k] for k in keys}).logits


def test_zero_init_equals_base_exactly(m2m_dir):
    model = load_lslo(m2m_dir, randomize=False)
    base = AutoModelForSeq2SeqLM.from_pretrained(str(m2m_dir)).eval()
    batch = mixed_batch(model)
    keys = ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")
    with torch.no_grad():
        ref = base(**{k: batch[k] for k in keys}).logits
        out = run(model, batch)
    assert torch.equal(out, ref)
    # A is kaiming-initialised (non-zero), B zero: training starts at the pretrained model.
    m = next(iter(model.lslo_modules().values()))
    assert m.lora_A.abs().sum() > 0 and m.lora_BT.abs().sum() == 0


def test_injection_positions_and_default_routing(m2m_dir):
    model = load_lslo(m2m_dir, randomize=False)
    mods = model.lslo_modules()
    enc = sorted({m.position for m in mods.values() if m.side == "encoder"})
    dec = sorted({m.position for m in mods.values() if m.side == "decoder"})
    assert enc == sorted(["q", "k", "v", "fc1", "fc2"])
    assert dec == sorted(["q", "k", "v", "cross_q", "cross_k", "cross_v", "fc1", "fc2"])
    assert len(mods) == 2 * 5 + 2 * 8
    assert "model.encoder.layers.0.self_attn.out_proj" not in mods  # output projections not adapted
    # 2 encoder layers: the top quarter (rounded half up) is target-indexed; decoder all target.
    assert model.encoder_routing == ["source", "target"] and model.decoder_routing == ["target", "target"]
    cross_k = mods["model.decoder.layers.0.encoder_attn.k_proj"]
    assert cross_k.routing == "target"  # cross k/v follow their decoder layer's routing
    assert all(not p.requires_grad for n, p in model.base.named_parameters() if "lora_" not in n)
    assert all(p.requires_grad for p in model.adapter_parameters())


def test_default_routing_scales_with_depth():
    cfg = lslo_config()
    assert cfg.resolve_routing(12, 12) == (["source"] * 9 + ["target"] * 3, ["target"] * 12)
    assert cfg.resolve_routing(6, 6)[0] == ["source"] * 4 + ["target"] * 2
    cfg2 = lslo_config(encoder_routing={"target": [0]}, decoder_routing=["source", "target"])
    assert cfg2.resolve_routing(2, 2) == (["target", "target"], ["source", "target"])


@pytest.mark.parametrize("alpha", [None, 4.0])
def test_routed_output_equals_hand_computation(m2m_dir, alpha):
    model = load_lslo(m2m_dir, lslo_config(alpha=alpha), seed=3)
    torch.manual_seed(0)
    src = torch.tensor([0, 1, 4, 5, 2, 4])
    tgt = torch.tensor([1, 3, 5, 0, 0, 2])
    for m in model.lslo_modules().values():
        x = torch.randn(6, 7, m.in_features)
        with model.route(src, tgt), torch.no_grad():
            out = m(x)
            ref_loop = m.forward_reference(x)
        ids = src if m.routing == "source" else tgt
        for i, lang in enumerate(ids.tolist()):
            code = m.languages[lang]
            s = 1.0 if alpha is None else alpha / model.config.rank_of(code)
            a, b = m.A_of(lang), m.B_of(lang)
            expected = x[i] @ m.base.weight.T + m.base.bias + s * (x[i] @ a.T) @ b.T
            torch.testing.assert_close(out[i], expected, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(out, ref_loop, atol=1e-6, rtol=1e-6)


def test_ranks_by_level_and_explicit():
    cfg = lslo_config()
    assert [cfg.rank_of(c) for c in LANGS] == [2, 2, 2, 2, 8, 8]
    cfg = lslo_config(languages=[{"code": "en", "level": "high", "rank": 5}, {"code": "fr", "level": "low"}])
    assert cfg.rank_of("en") == 5 and cfg.rank_of("fr") == 8


def test_parameter_report_counts_per_language(m2m_dir):
    model = load_lslo(m2m_dir, randomize=False)
    rep = model.parameter_report()
    mods = model.lslo_modules().values()
    for code in LANGS:
        r = model.config.rank_of(code)
        expected = sum(r * (m.in_features + m.out_features) for m in mods)
        assert rep["per_language"][code]["parameters"] == expected
    assert rep["trainable_parameters"] == sum(v["parameters"] for v in rep["per_language"].values())
    n_base = sum(p.numel() for p in AutoModelForSeq2SeqLM.from_pretrained(str(m2m_dir)).parameters())
    assert rep["base_parameters"] == n_base
    assert rep["trainable_percent"] == pytest.approx(100 * rep["trainable_parameters"] / n_base)


def test_batch_composition_invariance_logits(m2m_dir):
    model = load_lslo(m2m_dir, seed=1)
    batch = mixed_batch(model)
    with torch.no_grad():
        mixed = run(model, batch)
        # reversed order must not change any sentence's result either
        perm = torch.arange(len(DIRECTIONS)).flip(0)
        rev = run(model, {k: v[perm] for k, v in batch.items()})
        for i, d in enumerate(DIRECTIONS):
            alone = mixed_batch(model, [d], k=i)
            single = run(model, alone)[0]
            n = single.shape[0]
            torch.testing.assert_close(mixed[i, :n], single, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(rev[len(DIRECTIONS) - 1 - i, :n], single, atol=1e-5, rtol=1e-5)
    # the adapters really change the output (else the test above proves nothing)
    base = AutoModelForSeq2SeqLM.from_pretrained(str(m2m_dir)).eval()
    keys = ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")
    with torch.no_grad():
        assert (base(**{k: batch[k] for k in keys}).logits - mixed).abs().max() > 1e-2


def test_batch_composition_invariance_beam_search(m2m_dir):
    model = load_lslo(m2m_dir, seed=2)
    texts = [SENTENCES[s][i % 5] for i, (s, _) in enumerate(DIRECTIONS)]
    srcs = [s for s, _ in DIRECTIONS]
    tgts = [t for _, t in DIRECTIONS]
    kw = dict(num_beams=4, max_new_tokens=12, do_sample=False)
    mixed = model.translate(texts, srcs, tgts, batch_size=6, **kw)
    single = [model.translate([t], [s], [g], **kw)[0] for t, s, g in zip(texts, srcs, tgts)]
    assert mixed == single
    # token level: each row starts with [decoder_start, its own target token]
    batch = encode_batch(model.tokenizer, model.tokens, texts, srcs, tgts)
    out = model.generate(batch["input_ids"], batch["attention_mask"], batch["src_lang"], batch["tgt_lang"], **kw)
    for i, t in enumerate(tgts):
        assert out[i, 0].item() == model.tokens.decoder_start_id
        assert out[i, 1].item() == model.tokens.token_id(t)
        alone = encode_batch(model.tokenizer, model.tokens, [texts[i]], [srcs[i]], [t])
        one = model.generate(alone["input_ids"], alone["attention_mask"], alone["src_lang"], alone["tgt_lang"], **kw)
        row = out[i][out[i] != model.tokens.pad_id]
        assert torch.equal(row, one[0][one[0] != model.tokens.pad_id])
    # different target languages of the same input really differ (routing is live)
    outs = model.translate([texts[0]] * 3, ["en"] * 3, ["fr", "ha", "zh"], **kw)
    assert len(set(outs)) > 1


def test_gradients_reach_only_the_routed_languages(m2m_dir):
    model = load_lslo(m2m_dir, seed=4).train()
    batch = mixed_batch(model, [("en", "fr")] * 3)
    model(batch["src_lang"], batch["tgt_lang"], input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
          decoder_input_ids=batch["decoder_input_ids"], labels=batch["labels"]).loss.backward()
    en, fr = LANGS.index("en"), LANGS.index("fr")
    for m in model.lslo_modules().values():
        routed = en if m.routing == "source" else fr
        for grad in (m.lora_A.grad, m.lora_BT.grad):
            assert grad is not None
            for lang in range(len(LANGS)):
                if lang == routed:
                    assert grad[m.rows(lang)].abs().sum() > 0, (m.name, lang)
                else:
                    assert grad[m.rows(lang)].abs().sum() == 0, (m.name, lang)


def test_packed_storage_holds_exactly_the_ranks_and_unrouted_languages_stay_put_through_adam(m2m_dir):
    """No rank padding: every table has sum(r_l) rows; a language no batch routes to keeps its exact
    values through Adam even though lower-rank languages' unused slots point at row 0."""
    model = load_lslo(m2m_dir, seed=5).train()
    for m in model.lslo_modules().values():
        total = sum(m.ranks.tolist())
        assert m.lora_A.shape == (total, m.in_features) and m.lora_BT.shape == (total, m.out_features)
        assert m.mask_A.shape == m.lora_A.shape and m.mask_BT.shape == m.lora_BT.shape
    # en owns row 0, where the unused slots of every lower-rank language point: it must not move
    unused = LANGS.index("en")
    dirs = [d for d in DIRECTIONS if "en" not in d]
    before = {n: (m.A_of(unused).clone(), m.B_of(unused).clone()) for n, m in model.lslo_modules().items()}
    opt = torch.optim.Adam(list(model.adapter_parameters()), lr=1e-2)
    for step in range(3):
        batch = mixed_batch(model, dirs, k=step)
        out = model(batch["src_lang"], batch["tgt_lang"], input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"], decoder_input_ids=batch["decoder_input_ids"],
                    labels=batch["labels"])
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert any(int(r) < int(m.ranks.max()) for m in model.lslo_modules().values() for r in m.ranks)
    for n, m in model.lslo_modules().items():
        assert torch.equal(m.A_of(unused), before[n][0]) and torch.equal(m.B_of(unused), before[n][1])


def test_save_load_roundtrip_and_merge(m2m_dir, tmp_path):
    model = load_lslo(m2m_dir, seed=6)
    model.save_adapters(tmp_path / "adapters")
    assert (tmp_path / "adapters" / "adapters.safetensors").is_file()
    assert (tmp_path / "adapters" / "adapter_config.json").is_file()
    # the base model is not copied into the adapter directory
    assert not (tmp_path / "adapters" / "model.safetensors").exists()
    fresh = LSLoModel.from_pretrained(tmp_path / "adapters", base=str(m2m_dir)).eval()
    batch = mixed_batch(model)
    with torch.no_grad():
        torch.testing.assert_close(run(fresh, batch), run(model, batch), atol=1e-6, rtol=1e-6)

    model.save_merged("de", "zh", tmp_path / "merged")
    plain = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "merged")).eval()
    assert not any(isinstance(m, LSLoLinear) for m in plain.modules())
    one = mixed_batch(model, [("de", "zh"), ("de", "zh")])
    keys = ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")
    with torch.no_grad():
        torch.testing.assert_close(plain(**{k: one[k] for k in keys}).logits, run(model, one), atol=1e-4, rtol=1e-4)
    # the merged directory translates de->zh by itself: its tokenizer adds __de__, generation forces __zh__
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "merged"))
    enc = tok([SENTENCES["de"][0]], return_tensors="pt")
    assert enc["input_ids"][0, 0].item() == model.tokens.token_id("de")
    got = plain.generate(**enc, num_beams=3, max_new_tokens=10)  # its prompt is one token shorter
    ref = model.generate(one["input_ids"][:1], one["attention_mask"][:1], ["de"], ["zh"], num_beams=3, max_new_tokens=9,
                         suppress_tokens=[])  # the plain model has no language-token suppression
    assert got[0, 1].item() == model.tokens.token_id("zh")
    assert torch.equal(got[0][got[0] != 1], ref[0][ref[0] != 1])


def test_every_direction_pair_routes_independently(m2m_dir):
    """All 30 directions in one batch give the same logits as 30 single-sentence batches."""
    model = load_lslo(m2m_dir, seed=7)
    dirs = [(s, t) for s, t in itertools.permutations(LANGS, 2)]
    batch = mixed_batch(model, dirs)
    with torch.no_grad():
        mixed = run(model, batch)
        for i in range(0, len(dirs), 7):
            single = run(model, mixed_batch(model, [dirs[i]], k=i))[0]
            torch.testing.assert_close(mixed[i, : single.shape[0]], single, atol=1e-5, rtol=1e-5)


def test_translate_mixed_list_by_token_budget(m2m_dir):
    """translate() returns input order; token-budget batching does not change any result."""
    model = load_lslo(m2m_dir, seed=8)
    texts, srcs, tgts = [], [], []
    for i, (s, t) in enumerate(itertools.permutations(LANGS, 2)):
        if i % 3 == 0:
            texts.append(SENTENCES[s][i % 5])
            srcs.append(s)
            tgts.append(t)
    kw = dict(num_beams=3, max_new_tokens=8)
    one_by_one = [model.translate([x], [s], [t], **kw)[0] for x, s, t in zip(texts, srcs, tgts)]
    assert model.translate(texts, srcs, tgts, max_tokens=40, **kw) == one_by_one
    assert model.translate(texts, srcs, tgts, batch_size=64, **kw) == one_by_one
    assert model.translate([], [], []) == []


def test_max_new_tokens_is_honoured_without_a_warning(m2m_dir, caplog):
    """A checkpoint whose generation_config sets max_length (M2M-100's does) gets exactly
    max_new_tokens new tokens after the [start, tgt] prompt, without transformers' clash warning."""
    model = load_lslo(m2m_dir, seed=3)
    model.base.generation_config.max_length = 200
    batch = mixed_batch(model, [("en", "fr"), ("fr", "ha")])
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()  # another test in this process may have silenced transformers
    hf_logging.set_verbosity_warning()
    try:
        with caplog.at_level("WARNING"):
            out = model.generate(batch["input_ids"], batch["attention_mask"], ["en", "fr"], ["fr", "ha"],
                                 num_beams=2, max_new_tokens=4, min_new_tokens=4)
    finally:
        hf_logging.set_verbosity(level)
    assert out.shape[1] == 2 + 4
    assert not [r for r in caplog.records if "seem to have been set" in r.getMessage()]


def test_language_tokens_never_leak_into_hypotheses(m2m_dir):
    """Even when the model wants a language token next, generation cannot emit one after the prompt."""
    from transformers import LogitsProcessor, LogitsProcessorList

    model = load_lslo(m2m_dir, seed=3)
    es = model.tokenizer.convert_tokens_to_ids("__es__")

    class PreferSpanish(LogitsProcessor):
        def __call__(self, input_ids, scores):
            scores[:, es] += 1000.0
            return scores

    out = model.translate(["The cat sleeps on the mat."] * 2, ["en", "fr"], ["fr", "en"], num_beams=2,
                          max_new_tokens=6, logits_processor=LogitsProcessorList([PreferSpanish()]))
    assert all("__es__" not in o and "__" not in o for o in out)
    assert es in model._suppressed() and model.tokens.token_id("fr") in model._suppressed()
