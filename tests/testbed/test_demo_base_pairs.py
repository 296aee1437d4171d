"""Pretraining-pair selection of the demo base builder (all pairs vs English-centric)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lslo.testbed.demo_base import CODES, DemoBaseError, read_pretrain, select_pairs

DATA = Path(__file__).resolve().parents[2] / "data" / "demo"


def test_english_centric_keeps_exactly_the_en_pairs():
    pairs = read_pretrain(DATA)
    assert len(pairs) == 66
    en = select_pairs(pairs, "english")
    assert len(en) == len(CODES) - 1
    assert all("en" in k for k in en)
    assert {x for k in en for x in k} == set(CODES)  # every language still pretrained (paired with en)
    assert all(en[k] is pairs[k] for k in en)  # rows untouched
    assert select_pairs(pairs, "all") == pairs


def test_unknown_pair_selection_is_a_clear_error():
    with pytest.raises(DemoBaseError, match="pairs must be 'all' or 'english'"):
        select_pairs({}, "everything")


def test_low_resource_thinning_keeps_the_same_strings_in_every_pair():
    from lslo.testbed.demo_base import LOW_RESOURCE, texts_by_language, thin_low_resource

    pairs = read_pretrain(DATA)
    thin = thin_low_resource(pairs, 0.1)
    full_by_lang, thin_by_lang = texts_by_language(pairs), texts_by_language(thin)
    for code in CODES:
        kept = len(thin_by_lang[code]) / len(full_by_lang[code])
        if code in LOW_RESOURCE:
            assert 0.05 < kept < 0.2, (code, kept)  # about the fraction, by string
        else:
            assert kept > 0.95, (code, kept)  # high/medium languages keep (nearly) all their strings
    # high/medium-only pairs are untouched; a low-resource string kept in one pair is kept in all
    assert thin[("en", "fr")] == pairs[("en", "fr")]
    ha_en = {y for _, y in thin[("en", "ha")]}  # the Hausa side of en-ha
    ha_fr = {y for _, y in thin[("fr", "ha")]}
    full_ha_fr = {y for _, y in pairs[("fr", "ha")]}
    assert ha_en & full_ha_fr <= ha_fr
    assert thin_low_resource(pairs, 1.0) == pairs
    with pytest.raises(DemoBaseError, match="low_fraction"):
        thin_low_resource(pairs, 0.0)
