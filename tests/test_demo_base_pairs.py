"""Pretraining-pair selection of the demo base builder (all pairs vs English-centric)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lslo.demo_base import CODES, DemoBaseError, read_pretrain, select_pairs

DATA = Path(__file__).resolve().parents[1] / "data" / "demo"


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
