"""NLLB, MBart and Marian: injection, routing numerics and mixed-batch generation."""

from __future__ import annotations

import pytest
import torch
from conftest import LANGS, SENTENCES, all_text, load_lslo, lslo_config
from transformers import AutoModelForSeq2SeqLM

from lslo.testbed.tiny import build_m2m100_tokenizer, build_tiny_model
from lslo.tuner.languages import encode_batch, tokenizer_vocab_size

DIRS = [("en", "fr"), ("ha", "zh"), ("de", "yo")]


def check_model(model):
    texts = [SENTENCES[s][i] for i, (s, _) in enumerate(DIRS)]
    srcs, tgts = [s for s, _ in DIRS], [t for _, t in DIRS]
    batch = encode_batch(model.tokenizer, model.tokens, texts, srcs, tgts, texts)
    keys = ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")
    with torch.no_grad():
        mixed = model(batch["src_lang"], batch["tgt_lang"], **{k: batch[k] for k in keys}).logits
        for i in range(len(DIRS)):
            one = encode_batch(model.tokenizer, model.tokens, [texts[i]], [srcs[i]], [tgts[i]], [texts[i]])
            single = model(one["src_lang"], one["tgt_lang"], **{k: one[k] for k in keys}).logits[0]
            torch.testing.assert_close(mixed[i, : single.shape[0]], single, atol=1e-5, rtol=1e-5)
    kw = dict(num_beams=3, max_new_tokens=8)
    assert model.translate(texts, srcs, tgts, **kw) == [model.translate([t], [s], [g], **kw)[0]
                                                           for t, s, g in zip(texts, srcs, tgts)]


def test_nllb_tokens_are_flores200_codes(nllb_dir):
    model = load_lslo(nllb_dir)
    tok = model.tokenizer
    assert model.tokens.token_id("en") == tok.convert_tokens_to_ids("eng_Latn")
    assert model.tokens.token_id("zh") == tok.convert_tokens_to_ids("zho_Hans")
    # our mixed-batch encoding equals the tokenizer's own single-language encoding
    tok.src_lang = "hau_Latn"
    ref = tok(SENTENCES["ha"][0])["input_ids"]
    ours = encode_batch(tok, model.tokens, [SENTENCES["ha"][0]], ["ha"], ["en"])["input_ids"][0].tolist()
    assert ours == ref
    check_model(model)


def test_m2m100_encoding_matches_tokenizer(m2m_dir):
    model = load_lslo(m2m_dir)
    tok = model.tokenizer
    for lang in LANGS:
        tok.src_lang = lang
        ref = tok(SENTENCES[lang][1])["input_ids"]
        ours = encode_batch(tok, model.tokens, [SENTENCES[lang][1]], [lang], ["en"])["input_ids"][0].tolist()
        assert ours == ref


@pytest.mark.parametrize("arch", ["mbart", "marian"])
def test_other_bart_family_models(arch, tmp_path):
    tok = build_m2m100_tokenizer(all_text() * 3, tmp_path, vocab_size=200)
    model = build_tiny_model(arch, tokenizer_vocab_size(tok), tmp_path, seed=3)
    assert type(AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path))).__name__ == type(model).__name__
    # Marian has no language tokens: routing alone tells the languages apart.
    langs = [{"code": c, "level": "high", **({"token": "none"} if arch == "marian" else {})} for c in LANGS]
    m = load_lslo(tmp_path, lslo_config(languages=langs))
    assert len(m.lslo_modules()) == 2 * 5 + 2 * 8
    if arch == "marian":
        assert m.tokens.token_id("fr") is None
    check_model(m)
