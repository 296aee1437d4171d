"""The lean search's settings agree with transformers 5's ``generate`` where a caller can tell:
the default length, a caller's ``max_length``, the logits processors' order, suppressed ids
outside the vocabulary, ``max_new_tokens=0``; what it does not implement is an error when called
directly and a warning (once) on ``LSLoModel.generate``'s fallback; its cache grows with the output."""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import SENTENCES, load_lslo
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from lslo import decoding
from lslo.decoding import m2m100 as stepper_module
from lslo.tuner import model as model_module
from lslo.tuner.languages import build_batch

TEXTS = [SENTENCES["en"][0], SENTENCES["fr"][1], SENTENCES["de"][2]]


@pytest.fixture(params=["m2m_dir", "nllb_dir"])
def plain(request):
    """A base model as a user loads it (no LSLo layers), a batch and a decoder prompt."""
    path = request.getfixturevalue(request.param)
    base = AutoModelForSeq2SeqLM.from_pretrained(str(path)).eval()
    tok = AutoTokenizer.from_pretrained(str(path))
    enc = tok(TEXTS, return_tensors="pt", padding=True)
    lang = tok.convert_tokens_to_ids("__fr__" if request.param == "m2m_dir" else "fra_Latn")
    start = base.config.decoder_start_token_id
    prompt = torch.tensor([[start, lang]] * len(TEXTS))
    return base, enc["input_ids"], enc["attention_mask"], prompt


def reference(base, ids, mask, prompt, **kw):
    return base.generate(input_ids=ids, attention_mask=mask, decoder_input_ids=prompt, **kw)


@pytest.mark.parametrize("beams", [1, 4])
def test_no_length_anywhere_means_20_new_tokens_as_transformers(plain, beams):
    base, ids, mask, prompt = plain
    assert base.generation_config.max_length is None  # lslo-built bases set no length
    ours = decoding.generate(base, ids, mask, prompt, {"num_beams": beams})
    ref = reference(base, ids, mask, prompt, num_beams=beams)
    assert ours.shape == ref.shape and torch.equal(ours, ref)
    assert ours.shape[1] <= prompt.shape[1] + 20


def test_a_callers_max_length_is_kept_on_both_engines(m2m_dir):
    model = load_lslo(m2m_dir, seed=3)
    pieces = model.tokenizer(TEXTS, add_special_tokens=False)["input_ids"]
    b = build_batch(model.language_tokens(), pieces, ["en", "fr", "de"], ["fr", "de", "en"])
    outs = [model.generate(b["input_ids"], b["attention_mask"], b["src_lang"], b["tgt_lang"], num_beams=3,
                           max_length=6, engine=engine) for engine in ("lslo", "transformers")]
    assert outs[0].shape[1] <= 6 and torch.equal(outs[0], outs[1])
    both = model.generate(b["input_ids"], b["attention_mask"], b["src_lang"], b["tgt_lang"], num_beams=3,
                          max_length=6, max_new_tokens=9)  # max_new_tokens wins, as in transformers
    assert both.shape[1] <= 2 + 9 and model.last_engine == ("lslo", None)
    with pytest.raises(ValueError, match="max_new_tokens` must be greater than 0"):
        model.generate(b["input_ids"], b["attention_mask"], b["src_lang"], b["tgt_lang"], max_new_tokens=0)


@pytest.mark.parametrize("kw", [
    {"forced_eos_token_id": [2, 0], "suppress_tokens": [0]},  # forced end first, then suppression
    {"suppress_tokens": [5, 10_000_000, -1]},  # ids outside the vocabulary are ignored
    {"forced_eos_token_id": 2, "suppress_tokens": [7]},
])
@pytest.mark.parametrize("beams", [1, 3])
def test_logits_processors_as_transformers(plain, kw, beams):
    base, ids, mask, prompt = plain
    settings = {"num_beams": beams, "max_new_tokens": 4, **kw}
    ours = decoding.generate(base, ids, mask, prompt, settings)
    ref = reference(base, ids, mask, prompt, **settings)
    assert torch.equal(ours, ref), (ours, ref)


def test_max_new_tokens_0_and_a_suppressed_forced_end_are_errors_as_in_transformers(plain):
    base, ids, mask, prompt = plain
    clash = {"max_new_tokens": 4, "forced_eos_token_id": 2, "suppress_tokens": [2, 7]}
    with pytest.raises(ValueError, match="is also in `suppress_tokens`"):
        reference(base, ids, mask, prompt, **clash)
    with pytest.raises(ValueError, match="is also in `suppress_tokens`"):
        decoding.generate(base, ids, mask, prompt, clash)
    with pytest.raises(ValueError, match="must be greater than 0"):
        reference(base, ids, mask, prompt, max_new_tokens=0)
    with pytest.raises(ValueError, match="must be greater than 0"):
        decoding.generate(base, ids, mask, prompt, {"max_new_tokens": 0})


@pytest.mark.parametrize("setting", [{"no_repeat_ngram_size": 2}, {"repetition_penalty": 1.3},
                                     {"min_new_tokens": 3}, {"num_return_sequences": 2, "num_beams": 2}])
def test_a_direct_call_with_an_unsupported_setting_is_an_error(plain, setting):
    base, ids, mask, prompt = plain
    with pytest.raises(ValueError, match=next(iter(setting))):
        decoding.generate(base, ids, mask, prompt, {"max_new_tokens": 4, **setting})


def test_routed_layers_need_on_active(m2m_dir):
    model = load_lslo(m2m_dir)
    pieces = model.tokenizer(TEXTS, add_special_tokens=False)["input_ids"]
    b = build_batch(model.language_tokens(), pieces, ["en", "fr", "de"], ["fr", "de", "en"])
    with pytest.raises(ValueError, match="on_active"):
        decoding.generate(model.base, b["input_ids"], b["attention_mask"], torch.tensor([[2, 5]] * 3),
                          {"max_new_tokens": 4})


def test_a_fallback_is_announced_once_per_reason(m2m_dir, monkeypatch):
    monkeypatch.setattr(model_module, "_ANNOUNCED", set())
    model = load_lslo(m2m_dir)
    pieces = model.tokenizer(TEXTS[:1], add_special_tokens=False)["input_ids"]
    b = build_batch(model.language_tokens(), pieces, ["en"], ["fr"])
    call = lambda **kw: model.generate(b["input_ids"], b["attention_mask"], b["src_lang"], b["tgt_lang"],  # noqa: E731
                                       num_beams=2, max_new_tokens=3, **kw)
    with pytest.warns(UserWarning, match=r"generate runs instead of lslo's beam search \(generation setting repetition_penalty=1.2\)"):
        call(repetition_penalty=1.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        call(repetition_penalty=1.2)  # the same reason: said once
        call(engine="transformers")  # asked for: nothing to announce
        call()
    with pytest.warns(UserWarning, match="no_repeat_ngram_size"):
        call(no_repeat_ngram_size=2)


def test_the_cache_grows_with_the_output_not_the_limit(plain, monkeypatch):
    base, ids, mask, prompt = plain
    layers = base.config.decoder_layers
    heads_dim = base.config.d_model
    per_position = (2 * layers + 1) * len(TEXTS) * 4 * heads_dim * 4  # buffers x rows x d_model x float32
    with torch.no_grad():
        st = stepper_module.M2M100Stepper(base, ids, mask, beams=4, max_length=1000)
        assert st.cache_bytes == stepper_module.CACHE_CHUNK * per_position  # not 1000 positions
        logits = st.start(prompt)
        for _ in range(40):  # past the first chunk: doubled once
            logits = st.step(logits.argmax(-1))
    assert st.capacity == 2 * stepper_module.CACHE_CHUNK and st.cache_bytes == st.capacity * per_position
    # growing (here every 2 positions) changes no token: equal to transformers at every size
    monkeypatch.setattr(stepper_module, "CACHE_CHUNK", 2)
    settings = {"num_beams": 4, "max_new_tokens": 12}
    assert torch.equal(decoding.generate(base, ids, mask, prompt, settings),
                       reference(base, ids, mask, prompt, **settings))
