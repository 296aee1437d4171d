"""lslo's lean beam search (``lslo.decoding``): the same translations as transformers' ``generate``,
token for token, on mixed-direction batches with unequal source lengths, at beams 1, 4 and 5, for
M2M-100 and NLLB, with LSLo adapters routed per sentence; finished sentences really leave the
batch; any setting it does not implement goes to transformers' ``generate``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import load_lslo, randomize_adapters

from lslo import decoding
from lslo.decoding import m2m100 as stepper_module
from lslo.tuner.languages import build_batch

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "data" / "testbed" / "base"
TEXTS = ["The cat sleeps on the mat.", "Le chat dort sur le tapis.", "Kinder spielen im Park.",
         "Yara suna wasa a wurin shakatawa.", "我们在图书馆读书。", "Open the window, please, before it rains."]
SRC = ["en", "fr", "de", "ha", "zh", "en"]
TGT = ["fr", "de", "ha", "yo", "en", "zh"]


def tiny(request, fixture):
    """A tiny model whose end-of-sentence token is likely enough that outputs end at different steps."""
    model = load_lslo(request.getfixturevalue(fixture), seed=3)
    with torch.no_grad():
        model.base.model.shared.weight[model.base.config.eos_token_id] *= 2.6
    pieces = model.tokenizer(TEXTS, add_special_tokens=False)["input_ids"]
    return model, build_batch(model.language_tokens(), pieces, SRC, TGT)


def both(model, b, **kw):
    ours = model.generate(b["input_ids"], b["attention_mask"], b["src_lang"], b["tgt_lang"], **kw)
    assert model.last_engine == ("lslo", None)
    ref = model.generate(b["input_ids"], b["attention_mask"], b["src_lang"], b["tgt_lang"],
                         engine="transformers", **kw)
    assert model.last_engine[0] == "transformers"
    return ours, ref


@pytest.mark.parametrize("fixture", ["m2m_dir", "nllb_dir"])
@pytest.mark.parametrize("beams", [1, 4, 5])
@pytest.mark.parametrize("stop", [(1.0, False), (1.0, True), (0.7, "never"), (1.3, False)])
def test_token_identical_to_transformers_on_tiny_models(fixture, beams, stop, request):
    model, b = tiny(request, fixture)
    length_penalty, early_stopping = stop
    ours, ref = both(model, b, num_beams=beams, max_new_tokens=20, length_penalty=length_penalty,
                     early_stopping=early_stopping)
    assert ours.shape == ref.shape and torch.equal(ours, ref)


@pytest.mark.parametrize("fixture", ["m2m_dir", "nllb_dir"])
def test_the_tiny_batches_end_at_different_steps(fixture, request):
    """The test above is only worth something if sentences finish at different steps."""
    model, b = tiny(request, fixture)
    out = model.generate(b["input_ids"], b["attention_mask"], b["src_lang"], b["tgt_lang"], num_beams=4,
                         max_new_tokens=20)
    eos = model.base.config.eos_token_id
    ends = {int((row[2:] == eos).nonzero()[0]) if bool((row[2:] == eos).any()) else None for row in out}
    assert len(ends) >= 2


@pytest.fixture(scope="module")
def testbed():
    if not (BASE / "config.json").is_file():
        pytest.skip("data/testbed/base is missing")
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from lslo.data import load_corpus
    from lslo.training.config import RunConfig
    from lslo.tuner import LSLoModel

    cfg = RunConfig.load(ROOT / "configs" / "testbed-software-lang12.yaml")
    model = LSLoModel(AutoModelForSeq2SeqLM.from_pretrained(str(BASE), dtype=torch.float32), cfg.lslo,
                      AutoTokenizer.from_pretrained(str(BASE))).eval()
    randomize_adapters(model, seed=5, std=0.05)  # adapters that change the translations
    corpus = load_corpus(cfg.data.path, "devtest", list(cfg.lslo.codes))
    codes = list(cfg.lslo.codes)
    items = [(codes[i % 12], codes[(i * 5 + 1) % 12], corpus.texts[codes[i % 12]][i * 7]) for i in range(24)]
    items = [(s, t, x) for s, t, x in items if s != t]
    return model, items


@pytest.mark.parametrize("beams", [1, 4, 5])
def test_translations_identical_on_the_testbed_base_with_adapters(testbed, beams):
    """A real translating model: 12 languages, mixed directions, natural output lengths."""
    model, items = testbed
    src, tgt, texts = zip(*items)
    kw = dict(batch_size=32, num_beams=beams, max_new_tokens=48)
    ours = model.translate(list(texts), list(src), list(tgt), **kw)
    ref = model.translate(list(texts), list(src), list(tgt), engine="transformers", **kw)
    assert ours == ref
    assert len({len(x) for x in ours}) > 5  # translations of many different lengths


def test_finished_sentences_leave_the_batch(testbed, monkeypatch):
    model, items = testbed
    src, tgt, texts = zip(*items)
    rows = []
    original = stepper_module.M2M100Stepper.step

    def spy(self, tokens):
        rows.append(tokens.shape[0])
        return original(self, tokens)

    monkeypatch.setattr(stepper_module.M2M100Stepper, "step", spy)
    model.translate(list(texts), list(src), list(tgt), batch_size=32, num_beams=4, max_new_tokens=48)
    assert rows[0] == 4 * len(items) and rows[-1] < rows[0] / 4  # 4 beams per sentence, most gone at the end
    assert rows == sorted(rows, reverse=True)


def test_lslo_routing_follows_the_sentences_that_remain(testbed):
    """After sentences leave, each remaining row still gets its own languages' adapters: the result of
    one batch equals translating every sentence on its own."""
    model, items = testbed
    src, tgt, texts = zip(*items[:8])
    together = model.translate(list(texts), list(src), list(tgt), batch_size=32, num_beams=4, max_new_tokens=48)
    alone = [model.translate([x], [s], [t], num_beams=4, max_new_tokens=48)[0] for x, s, t in zip(texts, src, tgt)]
    assert together == alone


def test_forced_eos_and_the_length_limit(testbed):
    model, items = testbed
    src, tgt, texts = zip(*items[:6])
    pieces = model.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    b = build_batch(model.language_tokens(), pieces, list(src), list(tgt))
    for kw in ({"num_beams": 4, "max_new_tokens": 3}, {"num_beams": 1, "max_new_tokens": 3},
               {"num_beams": 4, "max_new_tokens": 6, "forced_eos_token_id": 2}):
        ours, ref = both(model, b, **kw)
        assert torch.equal(ours, ref), kw


@pytest.mark.parametrize("setting", [{"no_repeat_ngram_size": 2}, {"do_sample": True, "top_k": 5},
                                     {"num_return_sequences": 2}, {"repetition_penalty": 1.3},
                                     {"output_scores": True, "return_dict_in_generate": True}])
def test_settings_it_does_not_implement_go_to_transformers(m2m_dir, setting):
    model = load_lslo(m2m_dir, seed=3)
    pieces = model.tokenizer(TEXTS[:2], add_special_tokens=False)["input_ids"]
    b = build_batch(model.language_tokens(), pieces, SRC[:2], TGT[:2])
    torch.manual_seed(0)
    model.generate(b["input_ids"], b["attention_mask"], b["src_lang"], b["tgt_lang"], num_beams=2,
                   max_new_tokens=5, **setting)
    engine, why = model.last_engine
    assert engine == "transformers" and next(iter(setting)) in why


def test_other_architectures_are_named():
    from torch import nn

    assert "Linear is not an M2M-100-architecture model" in decoding.unsupported(nn.Linear(2, 2), {})


def test_unknown_engine_is_refused(m2m_dir):
    model = load_lslo(m2m_dir)
    b = build_batch(model.language_tokens(), model.tokenizer(TEXTS[:1], add_special_tokens=False)["input_ids"],
                    SRC[:1], TGT[:1])
    with pytest.raises(ValueError, match="engine must be one of lslo, transformers"):
        model.generate(b["input_ids"], b["attention_mask"], b["src_lang"], b["tgt_lang"], engine="ct2")



def test_training_mode_and_other_attention_kernels_go_to_transformers(m2m_dir):
    model = load_lslo(m2m_dir, seed=3)
    model.base.train()
    assert "training mode" in decoding.unsupported(model.base, {})
    model.base.eval()
    model.base.config._attn_implementation = "eager"
    assert "attention implementation 'eager'" in decoding.unsupported(model.base, {})
    model.base.config._attn_implementation = "sdpa"
    assert decoding.unsupported(model.base, {"num_beams": 4, "max_length": 9}) is None


def test_int8_stays_close_to_float32_on_the_testbed_base(testbed):
    """int8 cannot be token-identical; its difference is bounded: the next-token distributions of a
    teacher-forced batch stay close to float32's and most arg-max tokens agree."""
    import copy

    from lslo.decoding.quantize import quantize_int8

    model, items = testbed
    src, tgt, texts = zip(*items)
    pieces = model.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    b = build_batch(model.language_tokens(), pieces, list(src), list(tgt))
    inputs = dict(input_ids=b["input_ids"], attention_mask=b["attention_mask"], decoder_input_ids=b["input_ids"][:, :8])
    q = copy.deepcopy(model)
    assert quantize_int8(q) > 0
    with torch.no_grad():
        with model.route(b["src_lang"], b["tgt_lang"]):
            ref = torch.log_softmax(model.base(**inputs).logits, -1)
        with q.route(b["src_lang"], b["tgt_lang"]):
            got = torch.log_softmax(q.base(**inputs).logits, -1)
    kl = (ref.exp() * (ref - got)).sum(-1)
    assert float(kl.mean()) < 0.05  # 0.008 measured
    assert float((ref.argmax(-1) == got.argmax(-1)).float().mean()) > 0.85  # 0.94 measured
    assert not torch.equal(ref, got)  # really quantised


def _encoders(model, b):
    with torch.no_grad(), model.route(b["src_lang"], b["tgt_lang"]):
        ref = model.base.model.encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state
        rows, padder = stepper_module.encode(model.base, b["input_ids"], b["attention_mask"])
    return ref, rows, padder


@pytest.mark.parametrize("fixture", ["m2m_dir", "nllb_dir"])
def test_encoder_without_padding_equals_the_models_encoder(fixture, request):
    """The lean encoder runs its token-wise ops (the LSLo layers' bases included) on the real tokens
    only, and its output equals the model's encoder at every real position, bit for bit."""
    model, b = tiny(request, fixture)
    real = int(b["attention_mask"].sum())
    assert real < b["attention_mask"].numel()  # the batch has padding
    seen = []
    fc1 = model.base.model.encoder.layers[0].fc1
    assert hasattr(fc1, "adapter_delta")  # an LSLo layer: its base runs on the real tokens
    fc1.base.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[0]))
    ref, rows, padder = _encoders(model, b)
    assert seen == [b["input_ids"].shape[0], real]  # the model's encoder saw every row, lslo's only the real ones
    assert rows.shape == (real, ref.shape[-1]) and torch.equal(rows, padder.pack(ref))
    assert torch.equal(padder.pad(rows)[~b["attention_mask"].bool()], torch.zeros(ref.numel() // ref.shape[-1] - real,
                                                                                 ref.shape[-1]))


def test_encoder_without_padding_on_a_full_batch_and_other_modules(m2m_dir):
    """No padding: nothing is gathered. A module that is neither a linear nor an adapter layer
    runs on the padded layout it was written for, and the output is unchanged."""
    model = load_lslo(m2m_dir, seed=4)
    pieces = model.tokenizer(["Kinder spielen im Park."] * 2, add_special_tokens=False)["input_ids"]
    b = build_batch(model.language_tokens(), pieces, ["en", "fr"], ["de", "en"])
    assert bool(b["attention_mask"].all())
    ref, rows, padder = _encoders(model, b)
    assert padder.idx is None and torch.equal(rows, ref.reshape(-1, ref.shape[-1]))

    b = build_batch(model.language_tokens(), model.tokenizer(TEXTS, add_special_tokens=False)["input_ids"], SRC, TGT)
    shapes = []

    class Wrapped(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            shapes.append(tuple(x.shape))
            return self.inner(x)

    layer = model.base.model.encoder.layers[1]
    expected, _, _ = _encoders(model, b)
    layer.fc2 = Wrapped(layer.fc2)
    _, rows, padder = _encoders(model, b)
    assert shapes[-1][:2] == tuple(b["input_ids"].shape)  # the padded layout
    assert torch.equal(rows, padder.pack(expected))
