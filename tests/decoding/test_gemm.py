"""The GEMM path of frozen linears (``lslo.decoding.gemm``): oneDNN with pre-packed weights within a
stated bound of the reference, the reference token-identical to transformers, CTranslate2's vendor
rule for ``auto``, and inference only (gradients and changed weights take torch's own path)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import load_lslo
from torch import nn
from torch.nn import functional as F

from lslo.decoding import gemm
from lslo.decoding.gemm import GemmError, PackedLinear, cpu_vendor, pack_linears, resolve
from lslo.tuner.languages import build_batch

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "data" / "testbed" / "base"
needs_onednn = pytest.mark.skipif(not gemm.onednn_available(), reason="this torch build has no oneDNN packed linear")


def test_auto_follows_ctranslate2s_vendor_rule(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\n"
                    "processor\t: 1\nvendor_id\t: AuthenticAMD\n", encoding="utf-8")
    assert cpu_vendor(str(info)) == "AuthenticAMD" and cpu_vendor(str(tmp_path / "none")) == "unknown"
    assert resolve("auto", "GenuineIntel") == "reference"
    assert resolve("auto", "AuthenticAMD") == ("onednn" if gemm.onednn_available() else "reference")
    assert resolve("reference", "AuthenticAMD") == "reference" and resolve("onednn", "GenuineIntel") == "onednn"
    with pytest.raises(GemmError, match="gemm: expected reference | onednn | auto, got 'mkl'"):
        resolve("mkl")


@needs_onednn
def test_a_packed_linear_is_within_rounding_and_inference_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 300), nn.ReLU(), nn.Linear(300, 48, bias=False))
    keys = list(model.state_dict())
    x = torch.randn(5, 7, 64)
    with torch.no_grad():
        want = model(x)
    report = pack_linears(model, "onednn")
    assert report["gemm"] == "onednn" and report["layers"] == 2
    assert report["packed_bytes"] == (64 * 300 + 300 * 48) * 4
    assert all(type(m) is PackedLinear for m in (model[0], model[2])) and list(model.state_dict()) == keys
    with torch.no_grad():
        got = model(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)  # float32 rounding apart
    first = model[0]
    with torch.no_grad():  # one row is a gemv, left to torch's own path: exact
        assert torch.equal(first(x[:1, :1]), F.linear(x[:1, :1], first.weight, first.bias))
    with torch.enable_grad():  # training takes torch's path, with gradients
        y = first(x)
        assert torch.equal(y, F.linear(x, first.weight, first.bias))
        y.sum().backward()
    assert first.weight.grad is not None
    with torch.no_grad():  # a weight changed in place: the stale packed copy is not used
        first.weight.mul_(2)
        assert torch.equal(first(x), F.linear(x, first.weight, first.bias))
    pack_linears(model, "reference")
    assert all(type(m) is nn.Linear for m in (model[0], model[2])) and list(model.state_dict()) == keys


@pytest.fixture
def onednn_calls(monkeypatch):
    """The input shapes of every oneDNN packed-linear call while the test runs."""
    seen: list[torch.Size] = []
    real = torch.ops.mkldnn

    class Spy:
        def __getattr__(self, name):
            if name == "_linear_pointwise":
                return lambda *a: (seen.append(a[0].shape), real._linear_pointwise(*a))[1]
            return getattr(real, name)

    monkeypatch.setattr(torch.ops, "mkldnn", Spy(), raising=False)
    return seen


@needs_onednn
def test_onednn_is_taken_for_several_rows(onednn_calls):
    layer = nn.Linear(32, 16)
    pack_linears(layer, "onednn")
    with torch.no_grad():
        layer(torch.randn(3, 32))
        layer(torch.randn(1, 32))
    assert onednn_calls == [torch.Size([3, 32])]


def test_reference_keeps_lean_search_token_identical_to_transformers(m2m_dir):
    model = load_lslo(m2m_dir, seed=3)
    report = pack_linears(model, "reference")
    assert report["gemm"] == "reference" and report["packed_bytes"] == 0
    assert not any(isinstance(m, PackedLinear) for m in model.modules())
    pieces = model.tokenizer(["The cat sleeps.", "Le chat dort sur le tapis."], add_special_tokens=False)["input_ids"]
    b = build_batch(model.language_tokens(), pieces, ["en", "fr"], ["fr", "de"])
    ours = model.generate(b["input_ids"], b["attention_mask"], b["src_lang"], b["tgt_lang"], num_beams=4,
                          max_new_tokens=12)
    ref = model.generate(b["input_ids"], b["attention_mask"], b["src_lang"], b["tgt_lang"], num_beams=4,
                         max_new_tokens=12, engine="transformers")
    assert torch.equal(ours, ref)


@needs_onednn
@pytest.mark.skipif(not (BASE / "config.json").is_file(), reason="data/testbed/base is missing")
def test_onednn_translations_within_the_bound_on_the_testbed(onednn_calls):
    """The stated bound: chrF++ within 0.1 of the reference on a testbed devtest sample; the share of
    identical translations is printed (the engines benchmark records it at full size)."""
    from sacrebleu.metrics import CHRF
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from lslo.data import load_corpus
    from lslo.training.config import RunConfig
    from lslo.tuner import LSLoConfig, LSLoModel

    cfg = RunConfig.load(ROOT / "configs" / "testbed-wesnoth-lang12.yaml")
    codes = list(cfg.lslo.codes)
    corpus = load_corpus(cfg.data.path, cfg.data.test_split, codes)
    g = torch.Generator().manual_seed(0)
    items = [(codes[int(s)], codes[int(t)], int(i)) for s, t, i in zip(torch.randint(0, 12, (48,), generator=g),
                                                                       torch.randint(0, 12, (48,), generator=g),
                                                                       torch.randint(0, len(corpus), (48,), generator=g))
             if s != t]
    base = AutoModelForSeq2SeqLM.from_pretrained(str(BASE), dtype=torch.float32)
    model = LSLoModel(base, LSLoConfig.from_dict(cfg.lslo.to_dict()), AutoTokenizer.from_pretrained(str(BASE))).eval()
    texts, src, tgt = [corpus.texts[s][i] for s, _, i in items], [s for s, _, _ in items], [t for _, t, _ in items]
    refs = [corpus.texts[t][i] for _, t, i in items]

    def run():
        return model.translate(texts, src, tgt, batch_size=32, num_beams=4, max_new_tokens=48)

    reference = run()
    assert not onednn_calls
    pack_linears(model, "onednn")
    packed = run()
    assert len(onednn_calls) > 1000  # the search really ran on oneDNN
    chrf = CHRF(word_order=2)
    change = chrf.corpus_score(packed, [refs]).score - chrf.corpus_score(reference, [refs]).score
    same = sum(a == b for a, b in zip(packed, reference)) / len(items)
    print(f"onednn: chrF++ change {change:+.3f}, identical {same:.3f} of {len(items)}")
    assert abs(change) <= 0.1 and same >= 0.8
