"""Checks of the committed pretrained demo base model (data/demo/base); no training here."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

BASE = Path(__file__).resolve().parents[2] / "data" / "demo" / "base"
CODES = ("en", "fr", "de", "es", "zh", "ko", "hi", "ar", "ha", "yo", "km", "my")
MAX_BYTES = 30 * 1024 * 1024

pytestmark = pytest.mark.skipif(not (BASE / "PRETRAIN.json").is_file(), reason="data/demo/base is not built")


@pytest.fixture(scope="module")
def report() -> dict:
    return json.loads((BASE / "PRETRAIN.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(BASE))


@pytest.fixture(scope="module")
def model():
    from transformers import AutoModelForSeq2SeqLM

    m = AutoModelForSeq2SeqLM.from_pretrained(str(BASE), dtype=torch.float32)
    m.eval()
    return m


def test_weights_match_report_and_size(report):
    weights = BASE / report["weights_file"]
    h = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert h == report["weights_sha256"]
    assert weights.stat().st_size == report["weights_bytes"]
    total = sum(p.stat().st_size for p in BASE.rglob("*") if p.is_file())
    assert total <= MAX_BYTES, f"data/demo/base is {total} bytes"


def test_report_records_the_build(report):
    assert report["command"].startswith(("python -m lslo.testbed.demo_base", "python -m lslo.demo_base"))
    assert report["data"]["dev_devtest_used_for_training"] is False
    for key in ("torch", "transformers"):
        assert report["versions"][key]
    assert report["training"]["steps"] > 0
    assert report["final_loss"]["dev_nll"] > 0
    assert len(report["data"]["pretrain_files"]) == 66


def test_pretrain_files_unchanged(report):
    """The weights were trained on exactly the committed pretraining files."""
    root = BASE.parent
    for rel, digest in report["data"]["pretrain_files"].items():
        assert hashlib.sha256((root / rel).read_bytes()).hexdigest() == digest, rel


def test_model_is_m2m100_and_matches_tokenizer(model, tokenizer, report):
    from lslo.tuner.languages import tokenizer_vocab_size

    assert type(model).__name__ == "M2M100ForConditionalGeneration"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.config.vocab_size == tokenizer_vocab_size(tokenizer) == report["model"]["vocab_size"]
    assert sum(p.numel() for p in model.parameters()) == report["model"]["parameters"]
    assert model.config.decoder_start_token_id == 2
    assert type(tokenizer).__name__ == "M2M100Tokenizer"


def test_language_tokens(tokenizer, report):
    from lslo.tuner.languages import LanguageTokens

    tokens = LanguageTokens.from_tokenizer(tokenizer, CODES, {}, decoder_start_id=2)
    assert len(set(tokens.token_ids)) == len(CODES)
    for code, idx in zip(CODES, tokens.token_ids):
        assert tokenizer.convert_ids_to_tokens(idx) == f"__{code}__"
        assert idx == tokenizer.get_lang_id(code) == report["tokenizer"]["language_tokens"][code]
    assert (tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id) == (2, 1, 3)


def test_tokenizer_covers_every_script_without_unk(tokenizer):
    """Byte fallback: no <unk> even for characters never seen in pretraining."""
    samples = ["Back to home", "返回主页，继续！", "홈으로 돌아가기", "होम पेज पर वापस जाएं", "العودة إلى الصفحة الرئيسية",
               "Ọmọdé ń ṣeré", "ត្រឡប់\u200bទៅ\u200bទំព័រ\u200bដើម", "ပင်မစာမျက်နှာသို့ ပြန်သွားရန်", "龘"]
    for text in samples:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.unk_token_id not in ids, text
        assert tokenizer.decode(ids) == text


def test_greedy_translation_runs(model, tokenizer):
    from lslo.tuner.languages import LanguageTokens, encode_batch

    tokens = LanguageTokens.from_tokenizer(tokenizer, CODES, {}, decoder_start_id=2)
    enc = encode_batch(tokenizer, tokens, ["Back to home", "Resource not found"], ["en", "en"], ["fr", "ha"])
    prompt = torch.tensor([[2, tokens.token_id("fr")], [2, tokens.token_id("ha")]])
    with torch.no_grad():
        out = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                             decoder_input_ids=prompt, num_beams=1, do_sample=False, max_new_tokens=20)
    assert out[:, :2].tolist() == prompt.tolist()
    texts = tokenizer.batch_decode(out[:, 2:], skip_special_tokens=True)
    assert all(isinstance(t, str) and t.strip() for t in texts)


def test_tokenizer_rebuilds_byte_identical(tmp_path):
    """The documented rebuild trains the same SentencePiece model and writes the same vocab.json."""
    from lslo.testbed import demo_base as db

    s = db.Settings()
    by_lang = db.texts_by_language(db.thin_low_resource(db.select_pairs(db.read_pretrain(db.DEFAULT_DATA), s.pairs),
                                                        s.low_fraction))
    texts = [t for c in db.CODES for t in by_lang[c]]
    db.build_tokenizer(texts, tmp_path, s.vocab_size, s.character_coverage, s.byte_fallback, s.normalization)
    for name in ("sentencepiece.bpe.model", "vocab.json"):
        assert (tmp_path / name).read_bytes() == (BASE / name).read_bytes(), name
