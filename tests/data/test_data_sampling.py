"""Directions, temperature probabilities and the resumable token-budget batch sampler."""

from __future__ import annotations

import math
import zlib
from collections import Counter

import pytest

from lslo.data.corpus import MultiWayCorpus
from lslo.data.sampling import (
    DirectionBatchSampler,
    Example,
    all_direction_examples,
    batch_padded_tokens,
    directions,
    temperature_probs,
)

LANGS = ["en", "fr", "oc", "wo"]


def make_corpus(n: int = 60, langs=LANGS) -> MultiWayCorpus:
    ids = [str(i + 1) for i in range(n)]
    return MultiWayCorpus(list(langs), ids, {lang: [f"{lang} {i}" for i in ids] for lang in langs})


def length_fn(lang: str, i: int) -> int:
    """Deterministic pseudo-random lengths in 1..40 that differ per language."""
    return 1 + zlib.crc32(f"{lang}:{i}".encode()) % 40


def make_sampler(corpus=None, **kw) -> DirectionBatchSampler:
    corpus = corpus or make_corpus()
    kw.setdefault("max_tokens", 120)
    kw.setdefault("seed", 3)
    return DirectionBatchSampler(corpus, directions(corpus.languages), length_fn, **kw)


def as_tuples(batches):
    return [[(e.seg_index, e.src, e.tgt) for e in b] for b in batches]


# ------------------------------------------------------------------ directions / probabilities


def test_directions_all_pairs_and_validation():
    twelve = "en fr it de nl zh ja ko oc or sd wo".split()
    assert len(directions(twelve)) == 132
    assert directions(["en", "fr"]) == [("en", "fr"), ("fr", "en")]
    assert directions(LANGS, ["en-fr", ("oc", "wo"), "eng-wol_Latn"]) == [
        ("en", "fr"),
        ("oc", "wo"),
        ("en", "wo"),
    ]
    with pytest.raises(ValueError, match="not of the form 'src-tgt'"):
        directions(LANGS, ["en_fr"])
    with pytest.raises(ValueError, match="same source and target"):
        directions(LANGS, ["en-en"])
    with pytest.raises(ValueError, match="'de' is not one of the languages"):
        directions(LANGS, ["en-de"])
    with pytest.raises(ValueError, match="listed twice"):
        directions(LANGS, ["en-fr", "eng-fra"])


def test_temperature_probs_by_hand():
    sizes = {("en", "fr"): 100, ("en", "wo"): 900}
    p1 = temperature_probs(sizes, 1.0)
    assert p1[("en", "fr")] == pytest.approx(0.1) and p1[("en", "wo")] == pytest.approx(0.9)
    # T=2: sqrt(.1) : sqrt(.9) = 1 : 3
    p2 = temperature_probs(sizes, 2.0)
    assert p2[("en", "fr")] == pytest.approx(0.25) and p2[("en", "wo")] == pytest.approx(0.75)
    # T=5: .1**.2 = 0.630957, .9**.2 = 0.979148 -> 0.391873 / 0.608127
    p5 = temperature_probs(sizes, 5.0)
    assert p5[("en", "fr")] == pytest.approx(0.391873, abs=1e-6)
    assert p5[("en", "wo")] == pytest.approx(0.608127, abs=1e-6)
    assert temperature_probs(sizes, math.inf)[("en", "fr")] == pytest.approx(0.5)
    assert temperature_probs({("a", "b"): 0, ("b", "a"): 5}, 5.0) == {("a", "b"): 0.0, ("b", "a"): 1.0}
    with pytest.raises(ValueError, match="temperature must be > 0"):
        temperature_probs(sizes, 0)


def test_all_direction_examples_covers_each_pair_once():
    corpus = make_corpus(5)
    examples = all_direction_examples(corpus, directions(corpus.languages))
    assert len(examples) == 5 * 12 and len(set(examples)) == len(examples)
    assert examples[:2] == [Example(0, "en", "fr"), Example(1, "en", "fr")]
    assert all_direction_examples(corpus) == examples


# ------------------------------------------------------------------ sampler


def test_sampler_epoch_budget_and_coverage():
    corpus = make_corpus()
    sampler = make_sampler(corpus)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 1
    assert sampler.epoch_size == 60 * 12  # default: segments x directions
    assert sum(len(b) for b in batches) == sampler.epoch_size  # nothing dropped
    for batch in batches:
        assert batch_padded_tokens(batch, length_fn) <= 120
    # within a direction, segments come from permutations: no segment is drawn twice before all were drawn once
    counts = sampler.direction_counts()
    per_dir = Counter((e.src, e.tgt, e.seg_index) for b in batches for e in b)
    for (src, tgt), c in counts.items():
        seen = [per_dir[(src, tgt, i)] for i in range(60)]
        assert max(seen) - min(seen) <= 1 and sum(seen) == c
    assert list(sampler) == []  # the epoch is consumed


def test_sampler_mixes_directions_and_follows_probabilities():
    corpus = make_corpus()
    dirs = directions(corpus.languages)
    sizes = {d: (1000 if d[0] == "en" else 10) for d in dirs}  # skewed sizes -> temperature matters
    sampler = DirectionBatchSampler(
        corpus, dirs, length_fn, max_tokens=200, temperature=2.0, seed=0, epoch_size=6000, sizes=sizes
    )
    batches = list(sampler)
    mixed = [b for b in batches if len({(e.src, e.tgt) for e in b}) > 1]
    assert len(mixed) > 0.9 * len(batches)
    counts = Counter((e.src, e.tgt) for b in batches for e in b)
    probs = temperature_probs(sizes, 2.0)
    for d in dirs:
        assert counts[d] / 6000 == pytest.approx(probs[d], abs=0.02)
    assert sampler.direction_counts() == {d: counts[d] for d in dirs}


def test_sampler_is_deterministic_per_seed_and_epoch():
    a, b = make_sampler(), make_sampler()
    first = as_tuples(a)
    assert first == as_tuples(b)
    a.set_epoch(1)
    second = as_tuples(a)
    assert second != first and sum(map(len, second)) == sum(map(len, first))
    assert as_tuples(make_sampler(seed=4)) != first
    b.set_epoch(1)
    assert as_tuples(b) == second


def test_oversize_examples_get_their_own_batch_with_warning():
    sampler = make_sampler(max_tokens=30)  # lengths go up to 40
    with pytest.warns(UserWarning, match="longer than max_tokens=30"):
        batches = list(sampler)
    assert sampler.num_oversize > 0
    singles = [b for b in batches if batch_padded_tokens(b, length_fn) > 30]
    assert len(singles) == sampler.num_oversize and all(len(b) == 1 for b in singles)
    assert sum(len(b) for b in batches) == sampler.epoch_size


def test_resume_mid_epoch_yields_exactly_the_rest():
    ref = make_sampler()
    ref.set_epoch(2)
    full = as_tuples(ref)

    run = make_sampler()
    run.set_epoch(2)
    it = iter(run)
    half = len(full) // 2
    got = [next(it) for _ in range(half)]
    state = run.state_dict()
    assert state["epoch"] == 2 and state["position"] == half

    resumed = make_sampler()
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # a training loop calling set_epoch unconditionally keeps the position
    rest = as_tuples(resumed)
    assert as_tuples(got) + rest == full
    resumed.set_epoch(3)
    assert resumed.position == 0 and len(list(resumed)) == len(resumed)


def test_load_state_dict_refuses_other_settings():
    state = make_sampler().state_dict()
    with pytest.raises(ValueError, match="different data"):
        make_sampler(max_tokens=100).load_state_dict(state)


def test_max_sentences_and_buffer_size():
    sampler = make_sampler(max_tokens=10_000, max_sentences=7, buffer_size=50)
    batches = list(sampler)
    assert max(len(b) for b in batches) == 7
    assert sum(len(b) for b in batches) == sampler.epoch_size
