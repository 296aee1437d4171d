"""lslo's beam-search cache: no cross-attention copy per step, and the same beam search, token for token."""

from __future__ import annotations

import pytest
import torch
from conftest import load_lslo
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from lslo.tuner import beam_cache
from lslo.tuner.beam_cache import BeamSearchCache, add_beam_search_cache
from lslo.tuner.languages import build_batch

TEXTS = ["The cat sleeps on the mat.", "Le chat dort sur le tapis.", "Kinder spielen im Park.",
         "Yara suna wasa a wurin shakatawa.", "我们在图书馆读书。", "Open the window, please."]
SRC = ["en", "fr", "de", "ha", "zh", "en"]
TGT = ["fr", "de", "ha", "yo", "en", "zh"]


def mixed_batch(model):
    tok = model.language_tokens()
    pieces = model.tokenizer(TEXTS, add_special_tokens=False)["input_ids"]
    return build_batch(tok, pieces, SRC, TGT)


@pytest.mark.parametrize("fixture", ["m2m_dir", "nllb_dir"])
def test_beam_search_with_the_cache_equals_transformers_cache(fixture, request):
    """Sequences and their beam scores are identical with and without the cache, on a batch that mixes
    six directions (so sentences' cross-attention keys/values differ) and sources of unequal length."""
    model = load_lslo(request.getfixturevalue(fixture), seed=3)
    b = mixed_batch(model)
    kw = dict(num_beams=4, max_new_tokens=12, return_dict_in_generate=True, output_scores=True, length_penalty=1.0)
    ours = model.generate(b["input_ids"], b["attention_mask"], b["src_lang"], b["tgt_lang"], **kw)
    ref = model.generate(b["input_ids"], b["attention_mask"], b["src_lang"], b["tgt_lang"], beam_cache=False, **kw)
    assert torch.equal(ours.sequences, ref.sequences)
    assert torch.equal(ours.sequences_scores, ref.sequences_scores)
    assert len({tuple(s.tolist()) for s in ref.sequences}) > 1  # the rows really differ


def test_generate_uses_the_cache_for_beam_search_only(m2m_dir, monkeypatch):
    """On transformers' path (the lean search of ``lslo.decoding`` has its own cache)."""
    model = load_lslo(m2m_dir)
    b = mixed_batch(model)
    calls = []
    original = BeamSearchCache.reorder_cache

    def spy(self, beam_idx):
        calls.append(beam_idx.shape[0])
        return original(self, beam_idx)

    monkeypatch.setattr(BeamSearchCache, "reorder_cache", spy)
    model.generate(b["input_ids"], b["attention_mask"], b["src_lang"], b["tgt_lang"], num_beams=3, max_new_tokens=5,
                   engine="transformers")
    assert calls and set(calls) == {3 * len(TEXTS)}  # every step reorders through it, batch x beams rows
    calls.clear()
    model.generate(b["input_ids"], b["attention_mask"], b["src_lang"], b["tgt_lang"], num_beams=1, max_new_tokens=5,
                   engine="transformers")
    model.generate(b["input_ids"], b["attention_mask"], b["src_lang"], b["tgt_lang"], num_beams=3, max_new_tokens=5,
                   engine="transformers", beam_cache=False)
    assert calls == []


def filled_cache(cls, rows: int = 4):
    """A 2-layer encoder-decoder cache whose row i holds the value i everywhere."""
    self_c, cross_c = DynamicCache(), DynamicCache()
    for layer in range(2):
        ramp = torch.arange(rows, dtype=torch.float32)[:, None, None, None].expand(rows, 2, 3, 4).clone()
        self_c.update(ramp, ramp + 100, layer)
        cross_c.update(ramp + 10, ramp + 110, layer)
    return cls(self_c, cross_c)


def test_reorder_moves_the_self_attention_cache_and_leaves_the_cross_attention_cache():
    idx = torch.tensor([1, 1, 3, 2])
    ours, ref = filled_cache(BeamSearchCache), filled_cache(EncoderDecoderCache)
    cross_before = [(layer.keys.clone(), layer.values.clone()) for layer in ours.cross_attention_cache.layers]
    ours.reorder_cache(idx)
    ref.reorder_cache(idx)
    for a, b in zip(ours.self_attention_cache.layers, ref.self_attention_cache.layers):
        assert torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)
        assert a.keys[:, 0, 0, 0].tolist() == [1, 1, 3, 2]
    for layer, (k, v) in zip(ours.cross_attention_cache.layers, cross_before):
        assert torch.equal(layer.keys, k) and torch.equal(layer.values, v)


def test_add_beam_search_cache_leaves_other_settings_alone(m2m_dir):
    base = load_lslo(m2m_dir).base
    name = beam_cache.cache_argument(base)
    assert name in ("cache", "past_key_values")
    got = add_beam_search_cache(base, {"num_beams": 4})
    assert isinstance(got[name], BeamSearchCache)
    for kw in ({"num_beams": 1}, {"num_beams": 4, "use_cache": False},
               {"num_beams": 4, "cache_implementation": "static"}):
        assert add_beam_search_cache(base, dict(kw)) == kw
    mine = EncoderDecoderCache(DynamicCache(), DynamicCache())
    assert add_beam_search_cache(base, {"num_beams": 4, name: mine})[name] is mine
    decoder_only = torch.nn.Linear(2, 2)  # no config: not an encoder-decoder
    assert add_beam_search_cache(decoder_only, {"num_beams": 4}) == {"num_beams": 4}
