"""``datasets`` in, LSLo batches out: the corpus reader, the collator, the sampled stream (the
sampler of ``lslo train``) and the one-line errors for bad input."""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import segments
from hf_helpers import LANGS3, make_model, multiway, quiet_transformers, training_args

quiet_transformers()


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


# --------------------------------------------------------------------------- reading datasets


def test_read_dataset_accepts_language_columns_flores_plus_rows_and_pairs_with_ids():
    import datasets

    from lslo.data import load_corpus
    from lslo.data.corpus import read_dataset

    wide = multiway(4)
    corpus = read_dataset(wide)
    assert corpus.languages == list(LANGS3) and corpus.ids == ["s0", "s1", "s2", "s3"]
    assert corpus.texts["fr"] == segments("fr", 4)

    # facebook/flores style: sentence_<flores200 code> columns next to metadata columns
    flores = datasets.Dataset.from_dict({"id": [1, 2, 3, 4], "URL": ["u"] * 4,
                                         "sentence_eng_Latn": segments("en", 4), "sentence_fra_Latn": segments("fr", 4),
                                         "sentence_deu_Latn": segments("de", 4)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read = read_dataset(flores)
    assert read.texts == corpus.texts and read.ids == ["1", "2", "3", "4"]
    assert any("URL" in str(w.message) for w in caught)
    assert read_dataset(flores, languages=["de", "en"]).languages == ["de", "en"]

    # openlanguagedata/flores_plus style: one row per segment and language
    rows = [(sid, lang) for lang in LANGS3 for sid in range(4)]
    codes = {"en": ("eng", "Latn"), "fr": ("fra", "Latn"), "de": ("deu", "Latn")}
    long = datasets.Dataset.from_dict({"id": [sid for sid, _ in rows],
                                       "iso_639_3": [codes[lang][0] for _, lang in rows],
                                       "iso_15924": [codes[lang][1] for _, lang in rows],
                                       "text": [segments(lang, 4)[sid] for sid, lang in rows]})
    assert read_dataset(long).texts == corpus.texts

    # rows of {src_lang, tgt_lang, src, tgt}, joined by id
    pairs = datasets.Dataset.from_dict({"id": ["s0", "s0", "s1", "s1"], "src_lang": ["en", "fr", "en", "de"],
                                        "tgt_lang": ["fr", "de", "de", "fr"],
                                        "src": [segments("en", 2)[0], segments("fr", 2)[0], segments("en", 2)[1],
                                                segments("de", 2)[1]],
                                        "tgt": [segments("fr", 2)[0], segments("de", 2)[0], segments("de", 2)[1],
                                                segments("fr", 2)[1]]})
    joined = read_dataset(pairs, languages=["en", "fr", "de"])
    assert joined.ids == ["s0", "s1"]
    assert joined.texts == {lang: segments(lang, 2) for lang in LANGS3}

    # lslo's own entry point takes a dataset, or one split of a DatasetDict
    assert load_corpus(wide, languages=["fr", "en"]).texts["en"] == segments("en", 4)
    assert load_corpus(datasets.DatasetDict({"dev": wide}), "dev").ids == corpus.ids


def test_bad_datasets_give_one_line_errors_naming_the_column_or_row():
    import datasets

    from lslo.data import CorpusError
    from lslo.data.corpus import read_dataset

    with pytest.raises(CorpusError) as e:
        read_dataset(multiway(3), languages=["en", "ha"])
    assert "no column for language 'ha'" in _one_line(e)
    pairs = datasets.Dataset.from_dict({"id": [1, 2], "src_lang": ["en", "xx_Nope"], "tgt_lang": ["fr", "fr"],
                                        "src": ["a", "b"], "tgt": ["c", "d"]})
    with pytest.raises(CorpusError) as e:
        read_dataset(pairs)
    assert "row 1" in _one_line(e) and "src_lang" in str(e.value) and "xx_Nope" in str(e.value)
    with pytest.raises(CorpusError) as e:
        read_dataset(pairs.remove_columns("id"))
    assert "'id' column" in _one_line(e)
    with pytest.raises(CorpusError) as e:
        from lslo.data import load_corpus

        load_corpus(datasets.DatasetDict({"dev": multiway(2)}))
    assert "pass split=" in _one_line(e)


# --------------------------------------------------------------------------- collator


def test_collator_builds_the_batches_lslo_train_builds(m2m_dir):
    from lslo.data.corpus import read_dataset
    from lslo.data.sampling import Example
    from lslo.hf import LSLoCollator
    from lslo.training.data import TokenizedCorpus

    model = make_model(m2m_dir)
    corpus = read_dataset(multiway(6))
    examples = [Example(0, "en", "fr"), Example(3, "de", "en"), Example(5, "fr", "de")]
    want = TokenizedCorpus(corpus, model.lslo.tokenizer, 12).batch(model.lslo, examples)
    rows = [{"src_lang": e.src, "tgt_lang": e.tgt, "src": corpus.texts[e.src][e.seg_index],
             "tgt": corpus.texts[e.tgt][e.seg_index]} for e in examples]
    got = LSLoCollator(model, max_length=12)(rows)
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)
    # codes in another form (FLORES-200) and indices name the same languages
    other = [dict(r, src_lang={"en": "eng_Latn", "de": 2, "fr": "fra_Latn"}[r["src_lang"]]) for r in rows]
    assert torch.equal(LSLoCollator(model, max_length=12)(other)["src_lang"], want["src_lang"])


def test_bad_batches_give_one_line_errors_and_never_train_without_routing(m2m_dir, tmp_path):
    import datasets
    from transformers import Seq2SeqTrainer

    from lslo.hf import LSLoCollator, LSLoForSeq2SeqLM, TrainerInputError

    model = make_model(m2m_dir)
    collate = LSLoCollator(model)
    good = {"src_lang": "en", "tgt_lang": "fr", "src": "The cat.", "tgt": "Le chat."}
    with pytest.raises(TrainerInputError) as e:
        collate([good, {"tgt_lang": "fr", "src": "x", "tgt": "y"}])
    assert "batch row 1: no 'src_lang'" in _one_line(e)
    with pytest.raises(TrainerInputError) as e:
        collate([dict(good, tgt_lang="ha")])
    assert "batch row 0: tgt_lang" in _one_line(e) and "'ha'" in str(e.value)
    with pytest.raises(TrainerInputError) as e:
        model(input_ids=torch.tensor([[5, 6, 2]]), attention_mask=torch.ones(1, 3, dtype=torch.long))
    assert "no 'src_lang'" in _one_line(e)

    # a plain Trainer on a dataset tokenized the usual way (no languages): the model refuses the
    # batch instead of training without routing
    tok = model.lslo.tokenizer
    enc = tok(["The cat sleeps."] * 4)
    tokenized = datasets.Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                                            "labels": tok(["Le chat dort."] * 4)["input_ids"]})
    trainer = Seq2SeqTrainer(model=model, args=training_args(tmp_path / "out", max_steps=1), train_dataset=tokenized)
    with pytest.raises(TrainerInputError) as e:
        trainer.train()
    assert "no 'src_lang'" in _one_line(e)
    # text rows without LSLo's collator: the default collator keeps no string, transformers stops
    # on the empty batch (its own one-line error, which lists src_lang among the expected keys)
    rows = datasets.Dataset.from_list([good] * 4)
    trainer = Seq2SeqTrainer(model=model, args=training_args(tmp_path / "out2", max_steps=1), train_dataset=rows)
    with pytest.raises(ValueError) as e:
        trainer.train()
    assert "src_lang" in _one_line(e) and trainer.state.global_step == 0

    # a checkpoint directory without adapters
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception) as e:
        LSLoForSeq2SeqLM.from_pretrained(tmp_path / "empty", base=str(m2m_dir))
    assert "adapters.safetensors: no adapter weights found" in _one_line(e)


# --------------------------------------------------------------------------- the sampled stream


def test_stream_is_lslo_trains_sampler_and_the_trainer_batches_are_its_batches(m2m_dir, tmp_path):
    from transformers import Seq2SeqTrainer

    from lslo.data.corpus import read_dataset
    from lslo.data.sampling import DirectionBatchSampler, directions
    from lslo.hf import LSLoCollator, direction_stream
    from lslo.training.data import TokenizedCorpus

    model = make_model(m2m_dir)
    data = multiway(7)
    stream = direction_stream(data, model, batch_size=8, seed=4, temperature=2.0)
    corpus = read_dataset(data)
    dirs = directions(corpus.languages)
    lengths = TokenizedCorpus(corpus, model.lslo.tokenizer, 10**9).length
    sampler = DirectionBatchSampler(corpus, dirs, lengths, 2**62, temperature=2.0, seed=4, epoch_size=48,
                                    max_sentences=8)  # 7 x 6 = 42 draws, rounded up to whole batches
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        want = [[(e.src, e.tgt, e.seg_index) for e in b] for b in sampler]
        assert stream.batches(epoch) == want and all(len(b) == 8 for b in want)
    assert stream.batches(0) != stream.batches(1)  # a fresh draw every epoch
    assert len(stream) == 48

    trainer = Seq2SeqTrainer(model=model, args=training_args(tmp_path / "out"), train_dataset=stream,
                             data_collator=LSLoCollator(model))  # default arguments: batches of 8
    first = next(iter(trainer.get_train_dataloader()))
    rows = [{"src_lang": s, "tgt_lang": t, "src": corpus.texts[s][i], "tgt": corpus.texts[t][i]}
            for s, t, i in stream.batches(0)[0]]
    want = LSLoCollator(model)(rows)
    assert all(torch.equal(first[k], want[k]) for k in want)
