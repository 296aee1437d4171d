"""The software UI set (data/testbed/software): pins, multi-way, disjoint from pretraining and
between its halves, and the string cleaning it relies on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from lslo.testbed import corpus as C
from lslo.testbed import software as S

DATA = Path(__file__).resolve().parents[2] / "data" / "testbed"
SOFT = DATA / "software"


def read(split: str) -> dict[str, list[str]]:
    return {lang.code: (SOFT / "flores200_dataset" / split / f"{lang.flores}.{split}").read_text(
        encoding="utf-8").split("\n")[:-1] for lang in C.LANGUAGES}


@pytest.fixture(scope="module")
def manifest():
    return json.loads((SOFT / "MANIFEST.json").read_text(encoding="utf-8"))


def test_files_match_the_manifest_and_the_pins(manifest):
    for name, meta in manifest["files"].items():
        assert hashlib.sha256((SOFT / name).read_bytes()).hexdigest() == meta["sha256"], name
    assert {p["program"]: p["sha256"] for p in manifest["packages"]} == {
        prog: pkg.sha256 for prog, (pkg, _) in S.PROGRAMS.items()}
    # built against the pretraining fingerprints that are committed now
    assert manifest["pretraining_fingerprints_sha256"] == hashlib.sha256(
        (DATA / C.FINGERPRINTS).read_bytes()).hexdigest()


def test_multiway_disjoint_halves_and_every_program_in_both(manifest):
    halves = {}
    for split in C.SPLITS:
        texts = read(split)
        assert {len(v) for v in texts.values()} == {manifest["segments"][split]}
        assert manifest["segments"][split] >= S.MIN_SEGMENTS
        for code, lines in texts.items():
            assert all(line and line.strip() == line for line in lines)
            assert not any(C._BAD.search(t) for t in lines), code  # no placeholder, markup, code
            if code != "en":
                assert not any(C.loose(t) == C.loose(e) for t, e in zip(lines, texts["en"])), code
        halves[split] = {c: {C.loose(t) for t in v} for c, v in texts.items()}
        assert all(len(halves[split][c]) == len(texts[c]) for c in texts)  # no repeat within a half
        assert set(manifest["per_program"][split]) == set(S.PROGRAMS)
    for c in C.CODES:
        assert not halves["dev"][c] & halves["devtest"][c], c


def test_shares_no_text_with_pretraining():
    import numpy as np

    fps = set(np.load(DATA / C.FINGERPRINTS, allow_pickle=False).tolist())
    n = 0
    for split in C.SPLITS:
        for code, lines in read(split).items():
            for t in lines:
                assert C.fingerprint(code, t) not in fps, (split, code, t)
                n += 1
    assert n > 12 * 1000


def test_strip_mnemonic():
    assert S.strip_mnemonic("_Open") == "Open"
    assert S.strip_mnemonic("Save _As...") == "Save As..."
    assert S.strip_mnemonic("&Open File") == "Open File"
    assert S.strip_mnemonic("Sa&ve") == "Save"
    assert S.strip_mnemonic("打开(_O)") == "打开"
    assert S.strip_mnemonic("開く(&O)...") == "開く..."
    assert S.strip_mnemonic("R&&D budget") == "R&D budget"
    assert S.strip_mnemonic("file_name here") == "file_name here"  # code: clean() drops it
    assert C.clean(S.strip_mnemonic("file_name here"), "", True) is None


def test_split_set_drops_and_splits_by_hash():
    full = {c: f"{c} text number one" for c in C.CODES}
    rows = {}
    for i in range(40):
        rows[f"p/c#k{i}"] = {c: f"{t} {i} words" for c, t in full.items()}
    rows["p/c#short"] = {c: f"{c} two" for c in C.CODES}  # English "en two": 2 words
    rows["p/c#partial"] = {"en": "only in two languages", "de": "nur in zwei Sprachen"}
    rows["p/c#pre"] = {c: f"{c} seen in pretraining" for c in C.CODES}
    fps = {C.fingerprint("de", "de seen in pretraining")}
    parts, dropped = S.split_set(rows, fps)
    assert dropped == {"a text also in the pretraining corpus": 1, "fewer than 3 English words": 1,
                       "not translated in all 12 languages": 1}
    got = [sid for split in C.SPLITS for sid, _ in parts[split]]
    assert sorted(got) == sorted(f"software:p/c#k{i}" for i in range(40))
    for split in C.SPLITS:
        assert all((C.bucket(sid) < 0.5) == (split == "dev") for sid, _ in parts[split])
        assert 5 <= len(parts[split]) <= 35  # a hash split, not all in one half
