"""lslo convert: a checkpoint built, saved and run by fairseq 0.12.2 itself (tests/fixtures/fairseq,
written by its make_fixture.py in a throwaway environment: lslo never needs fairseq) converts to a
Hugging Face model with fairseq's logits and fairseq's dictionary ids; the testbed base goes to
fairseq's format and back bit-exactly and translates the same; bad input gets one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from lslo.cli.main import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "fairseq"
BASE = Path(__file__).resolve().parents[2] / "data" / "testbed" / "base"


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("conv") / "hf"
    assert main(["convert", "fairseq", str(FIXTURE / "model.pt"), "--out", str(out)]) == 0
    return out


def test_converted_logits_equal_fairseqs(converted):
    from transformers import AutoModelForSeq2SeqLM

    e = json.loads((FIXTURE / "expected.json").read_text())
    model = AutoModelForSeq2SeqLM.from_pretrained(converted).eval()
    src, prev = torch.tensor(e["src_tokens"]), torch.tensor(e["prev_output_tokens"])
    assert (src[:, 0] == 1).any()  # fairseq left-pads the source: positions must follow the padding
    with torch.no_grad():
        logits = model(input_ids=src, attention_mask=(src != 1).long(), decoder_input_ids=prev).logits
    assert (logits - torch.tensor(e["logits"])).abs().max().item() <= 1e-5


def test_tokenizer_ids_are_fairseqs_dictionary_ids(converted):
    from transformers import AutoTokenizer

    e = json.loads((FIXTURE / "expected.json").read_text())
    tok = AutoTokenizer.from_pretrained(converted)
    for sentence, ids in zip(e["sentences"], e["ids"]):
        assert tok(sentence, add_special_tokens=False)["input_ids"] == ids, sentence
    assert any(3 in ids for ids in e["ids"])  # a piece outside dict.txt is <unk>, in both
    for lang, i in e["lang_ids"].items():
        assert tok.convert_tokens_to_ids(f"__{lang}__") == i
        assert f"__{lang}__" in tok.all_special_tokens
        assert tok(f"__{lang}__ Open", add_special_tokens=False)["input_ids"][0] == i  # never split
        assert tok.decode([i, *e["ids"][0]], skip_special_tokens=True) == tok.decode(e["ids"][0])
    assert len(tok) == e["dictionary_size"]


def test_the_converted_model_is_accepted_by_lslo(converted):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from lslo import LSLoConfig, LSLoModel

    base = AutoModelForSeq2SeqLM.from_pretrained(converted)
    tok = AutoTokenizer.from_pretrained(converted)
    cfg = LSLoConfig.from_dict({"languages": [{"code": "en", "level": "high"}, {"code": "sw", "level": "low"}]})
    model = LSLoModel(base, cfg, tok)
    out = model.translate(["Open the file."], src_langs=["en"], tgt_langs=["sw"], num_beams=2, max_new_tokens=4)
    assert isinstance(out[0], str) and "__" not in out[0]


def test_testbed_base_round_trip_is_bit_exact_and_translates_the_same(tmp_path):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from lslo import LSLoConfig, LSLoModel

    fs, back = tmp_path / "fs", tmp_path / "back"
    assert main(["convert", "to-fairseq", str(BASE), "--out", str(fs)]) == 0
    assert main(["convert", "fairseq", str(fs / "model.pt"), "--lang-dict", str(fs / "languages.txt"),
                 "--out", str(back)]) == 0
    a = AutoModelForSeq2SeqLM.from_pretrained(BASE, dtype=torch.float32)
    b = AutoModelForSeq2SeqLM.from_pretrained(back, dtype=torch.float32)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    ta, tb = AutoTokenizer.from_pretrained(BASE), AutoTokenizer.from_pretrained(back)
    texts = ["Cannot convert to a palette with more than 256 colors.", "Fichier introuvable : « test.png »"]
    assert [ta(t, add_special_tokens=False)["input_ids"] for t in texts] == \
           [tb(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert all(ta.convert_tokens_to_ids(t) == tb.convert_tokens_to_ids(t) for t in ("__en__", "__zh__", "__yo__"))
    cfg = LSLoConfig.from_dict({"languages": [{"code": "en", "level": "high"}, {"code": "de", "level": "high"}]})
    outs = [LSLoModel(m, cfg, t).translate(texts, src_langs=["en", "en"], tgt_langs=["de", "de"], num_beams=2,
                                           max_new_tokens=24) for m, t in ((a, ta), (b, tb))]
    assert outs[0] == outs[1] and all(outs[0])


def _copy_fixture(tmp_path) -> Path:
    d = tmp_path / "fx"
    shutil.copytree(FIXTURE, d)
    return d


@pytest.mark.parametrize("case, expected", [
    ("dict_short", "embedding has 109 rows"),
    ("pre_norm", "encoder_normalize_before is False"),
    ("not_a_checkpoint", "not a readable torch checkpoint"),
    ("bad_pair", "is not 'src-tgt'"),
    ("evil_global", "refusing to load global"),
])
def test_bad_input_gets_one_line(case, expected, tmp_path, capsys):
    import argparse

    d = _copy_fixture(tmp_path)
    argv = ["convert", "fairseq", str(d / "model.pt"), "--out", str(tmp_path / "out")]
    if case == "dict_short":
        lines = (d / "dict.txt").read_text().splitlines()
        (d / "dict.txt").write_text("\n".join(lines[:-9]) + "\n")
    elif case in ("pre_norm", "evil_global"):
        with torch.serialization.safe_globals([argparse.Namespace]):
            ck = torch.load(d / "model.pt", weights_only=True)
        ck["cfg"]["model"].encoder_normalize_before = False
        if case == "evil_global":
            import os
            ck["extra_state"] = {"x": os.system}  # a pickled callable: never loaded
        torch.save(ck, d / "model.pt")
    elif case == "not_a_checkpoint":
        (d / "model.pt").write_text("not a checkpoint")
    elif case == "bad_pair":
        argv += ["--lang-pairs", "en_fr,de-en"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_non_empty_output_is_refused_without_overwrite(converted, capsys):
    assert main(["convert", "fairseq", str(FIXTURE / "model.pt"), "--out", str(converted)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert main(["convert", "fairseq", str(FIXTURE / "model.pt"), "--out", str(converted), "--overwrite"]) == 0


def test_madeup_words_pad_the_vocabulary_as_fairseq_names_them():
    from lslo.convert import FairseqVocab

    v = FairseqVocab.build(["a", "b", "c", "__fr__"], ["en", "fr"], 16)  # __fr__ in dict.txt keeps its id
    assert v.symbols[:9] == ["<s>", "<pad>", "</s>", "<unk>", "a", "b", "c", "__fr__", "__en__"]
    assert v.symbols[9:] == [f"madeupword{i:04d}" for i in range(7)]
    assert v.language_ids() == {"en": 8, "fr": 7}
