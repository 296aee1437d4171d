"""Base-model pretraining: tokenizer packaging, deterministic sampling, exact resume, export."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from lslo.testbed import pretrain as P

TINY = dict(vocab_size=340, spm_lines_per_language=1000, d_model=16, encoder_layers=1, decoder_layers=1,
            ffn_dim=32, heads=2, max_tokens=300, warmup=4, max_positions=64, max_length=24)


def _corpus(path: Path) -> Path:
    rng = random.Random(0)
    alphabet = {"en": "abcdefghij", "de": "klmnopqrst", "tr": "uvwxyzäöüß"}
    with open(path, "w", encoding="utf-8") as f:
        for i in range(300):
            words = [rng.randrange(40) for _ in range(rng.randint(2, 8))]
            texts = {c: " ".join("".join(a[(w + k) % 10] for k in range(1 + w % 4)) for w in words)
                     for c, a in alphabet.items()}
            if i % 3:
                texts.pop("tr")
            f.write(json.dumps({"id": f"s{i}", "texts": texts}, ensure_ascii=False) + "\n")
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    d = tmp_path_factory.mktemp("pre")
    work = d / "work"
    P.prepare(_corpus(d / "c.jsonl"), work, P.Settings(**TINY))
    return work


def _copy(prepared: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(prepared, dst)
    return dst


def test_prepare_packages_a_real_m2m100_tokenizer(prepared):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(prepared / "tokenizer"))
    assert type(tok).__name__.startswith("M2M100Tokenizer")
    assert tok.convert_tokens_to_ids("__tr__") != tok.unk_token_id
    data = np.load(prepared / "tokens.npz")
    off = data["tr.off"]
    assert (off[:, 0] >= 0).sum() == 100  # every third segment has Turkish
    meta = json.loads((prepared / "prepare.json").read_text())
    assert meta["codes"] == ["de", "en", "tr"] and meta["segments"] == 300


def test_sampler_is_deterministic_and_respects_the_token_budget(prepared):
    s = P.Settings(**TINY)
    a = P.Sampler(prepared / "tokens.npz", ["de", "en", "tr"], s)
    b = P.Sampler(prepared / "tokens.npz", ["de", "en", "tr"], s)
    assert a.chunk(3) == b.chunk(3) and a.chunk(3) != a.chunk(4)
    for batch in a.chunk(0):
        width = max(max(len(a.piece(x, i)), len(a.piece(y, i))) + 2 for x, y, i in batch)
        assert 2 * width * len(batch) <= s.max_tokens or len(batch) == 1
    # temperature 5 flattens the pair distribution: the rare pairs get more than their share
    n = dict(zip(a.pairs, a.sizes))
    p = dict(zip(a.pairs, a.probs))
    assert p[("de", "tr")] > n[("de", "tr")] / sum(n.values())


def test_resume_is_exact(prepared, tmp_path):
    torch.set_num_threads(1)
    s = P.Settings(**TINY)
    straight = _copy(prepared, tmp_path / "a")
    P.train(straight, steps=8, settings=s, threads=1, log_every=2)
    split = _copy(prepared, tmp_path / "b")
    P.train(split, steps=5, settings=s, threads=1, log_every=2)
    state = P.train(split, steps=8, threads=1, log_every=2)  # resumes from the checkpoint
    assert state["step"] == 8 and len(state["sessions"]) == 2
    from safetensors.torch import load_file

    wa = load_file(str(straight / P.CKPT / "model.safetensors"))
    wb = load_file(str(split / P.CKPT / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    sa = json.loads((straight / P.CKPT / "state.json").read_text())
    assert sa["curve"] == state["curve"] and sa["curve"][0]["nll"] > sa["curve"][-1]["nll"]


def test_export_loads_with_from_pretrained_and_resumes_from_portable_weights(prepared, tmp_path):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    work = _copy(prepared, tmp_path / "w")
    P.train(work, steps=4, settings=P.Settings(**TINY), threads=1)
    out = tmp_path / "base"
    info = P.export(work, out, "test", portable=True, dtype="float16", max_shard_size="20KB")
    assert len(list(out.glob("model-*.safetensors"))) > 1  # sharded: every file below the size asked for
    assert info["steps"] == 4 and (out / "PRETRAIN.json").is_file()
    model = AutoModelForSeq2SeqLM.from_pretrained(str(out), dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(out))
    assert model.config.d_model == 16 and len(tok) > 300
    # a fresh work folder continues from the committed weights with a fresh optimiser
    again = _copy(prepared, tmp_path / "again")
    state = P.train(again, steps=6, threads=1, from_weights=out, overrides={"max_tokens": 200})
    assert state["step"] == 6 and state["rewarm_from"] == 4
    assert "fresh optimiser" in state["sessions"][-1]["resumed_from"]


def test_bad_inputs_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "texts": {"en": "a"}}\nnot json\n')
    with pytest.raises(P.PretrainError, match=r"bad.jsonl:2: expected a JSON object"):
        P.read_corpus(bad)
    with pytest.raises(P.PretrainError, match="no prepare.json"):
        P.train(tmp_path, steps=1)
    assert P.main(["train", "--work", str(tmp_path), "--steps", "1"]) == 1


def test_prepare_can_reuse_a_committed_tokenizer(prepared, tmp_path):
    meta = json.loads((prepared / "prepare.json").read_text())
    again = tmp_path / "again"
    P.prepare(Path(meta["corpus"]), again, P.Settings(**TINY), tokenizer=prepared / "tokenizer")
    a, b = np.load(prepared / "tokens.npz"), np.load(again / "tokens.npz")
    assert sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)
    assert a["en.ids"].dtype == np.uint16  # small vocabularies pack into 16 bits
    with pytest.raises(P.PretrainError, match="no sentencepiece.bpe.model"):
        P.prepare(Path(meta["corpus"]), tmp_path / "x", P.Settings(**TINY), tokenizer=tmp_path)


def test_a_kill_between_the_renames_keeps_the_previous_checkpoint(prepared, tmp_path):
    work = _copy(prepared, tmp_path / "k")
    P.train(work, steps=3, settings=P.Settings(**TINY), threads=1)
    (work / P.CKPT).rename(work / f".{P.CKPT}.old")  # as if killed after the first rename
    state = P.train(work, steps=4, threads=1)
    assert state["step"] == 4 and state["sessions"][0]["end_step"] == 3  # resumed, not restarted
    assert (work / P.CKPT / "state.json").is_file() and not (work / f".{P.CKPT}.old").exists()


def test_sigint_stops_between_updates_and_saves(prepared, tmp_path, monkeypatch):
    import os
    import signal

    work = _copy(prepared, tmp_path / "s")
    real = P._Run.update
    calls = {"n": 0}

    def update_then_signal(self):
        real(self)
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # arrives mid-run: the loop finishes this update first

    monkeypatch.setattr(P._Run, "update", update_then_signal)
    state = P.train(work, steps=50, settings=P.Settings(**TINY), threads=1)
    assert state["step"] == 2
    saved = json.loads((work / P.CKPT / "state.json").read_text())
    assert saved["step"] == 2 and saved["in_chunk"] == 2


def test_cooldown_decays_linearly_to_zero_and_resumes_exactly(prepared, tmp_path):
    s = P.Settings(**TINY)
    cd = {"from": 10, "steps": 4}
    assert P.lr_at(9, s, None, cd) == P.lr_at(9, s, None)  # before: the plain schedule
    start = P.lr_at(10, s, None)
    assert [P.lr_at(k, s, None, cd) for k in range(10, 15)] == pytest.approx(
        [start, 0.75 * start, 0.5 * start, 0.25 * start, 0.0])
    torch.set_num_threads(1)
    straight = _copy(prepared, tmp_path / "a")
    P.train(straight, steps=3, settings=s, threads=1)
    state = P.train(straight, steps=1000, threads=1, cooldown=4, log_every=1)
    assert state["step"] == 7 and state["cooldown"] == {"from": 3, "steps": 4}  # stops where lr reaches 0
    assert [r["lr"] for r in state["curve"][-4:]] == pytest.approx(
        [round(P.lr_at(k, s, None, state["cooldown"]), 7) for k in range(3, 7)])
    split = _copy(prepared, tmp_path / "b")
    P.train(split, steps=3, settings=s, threads=1)
    P.train(split, steps=5, threads=1, cooldown=4)
    with pytest.raises(P.PretrainError, match="already cooling down over 4"):
        P.train(split, steps=1000, threads=1, cooldown=9)
    again = P.train(split, steps=1000, threads=1)  # the recorded cooldown goes on
    assert again["step"] == 7
    from safetensors.torch import load_file

    wa = load_file(str(straight / P.CKPT / "model.safetensors"))
    wb = load_file(str(split / P.CKPT / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    with pytest.raises(P.PretrainError, match="expected a positive number"):
        P.train(split, steps=10, cooldown=0)
