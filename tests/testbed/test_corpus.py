"""The testbed corpora (data/testbed): pins, sizes, resource levels, and disjointness."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from lslo.testbed import corpus as C
from lslo.testbed.debian import DebError, deb_files, mo_catalog
from lslo.testbed.libreoffice import parse_page

DATA = Path(__file__).resolve().parents[2] / "data" / "testbed"


@pytest.fixture(scope="module")
def manifest():
    return json.loads((DATA / "MANIFEST.json").read_text(encoding="utf-8"))


def read_flores(prefix: str, split: str) -> dict[str, list[str]]:
    out = {}
    for lang in C.LANGUAGES:
        path = DATA / prefix / "flores200_dataset" / split / f"{lang.flores}.{split}"
        out[lang.code] = path.read_text(encoding="utf-8").split("\n")[:-1]
    return out


def test_files_match_the_manifest(manifest):
    for name, meta in manifest["files"].items():
        data = (DATA / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == meta["sha256"], name
    assert {p["sha256"] for p in manifest["packages"]} and all(len(p["sha256"]) == 64 for p in manifest["packages"])


def test_resource_levels_come_from_the_pretraining_data(manifest):
    per = manifest["pretrain"]["per_language"]
    high = [per[c] for c in manifest["levels"]["high"]]
    assert all(h["segments"] >= 60000 and h["words"] >= 1_000_000 for h in high)
    min_high = min(h["segments"] for h in high)
    for c in manifest["levels"]["low"]:
        assert 0 < per[c]["segments"] <= 0.10 * min_high, c
    for c in manifest["levels"]["medium"]:
        assert 0.10 * min_high < per[c]["segments"] < min_high, c
    assert [len(manifest["levels"][k]) for k in ("high", "medium", "low")] == [4, 4, 4]


@pytest.mark.parametrize("prefix", ["wesnoth", "heldout"])
def test_sets_are_multiway_and_large_enough(prefix):
    for split in C.SPLITS:
        texts = read_flores(prefix, split)
        n = {len(v) for v in texts.values()}
        assert len(n) == 1 and n.pop() >= 500
        ids = (DATA / prefix / "ids" / f"{split}.ids").read_text().split("\n")[:-1]
        assert len(ids) == len(texts["en"])
        for code, lines in texts.items():
            assert all(line.strip() == line and line for line in lines)
            assert len({C.loose(t) for t in lines}) == len(lines), f"{prefix}/{split}/{code} repeats a line"
            if code != "en":
                assert not any(C.loose(t) == C.loose(e) for t, e in zip(lines, texts["en"]))


def test_finetune_split_is_by_campaign():
    camp = {}
    for split in C.SPLITS:
        ids = (DATA / "wesnoth" / "ids" / f"{split}.ids").read_text().split("\n")[:-1]
        camp[split] = {i.split(":", 1)[1].split("#", 1)[0] for i in ids}
    assert camp["devtest"] == set(C.DEVTEST_CAMPAIGNS)
    assert not camp["dev"] & camp["devtest"]


def test_evaluation_sets_share_no_segment_with_pretraining(manifest):
    """Exact and normalised (case, punctuation, whitespace) matches, through the fingerprints
    of every pretraining text; the fingerprint file is pinned by the manifest."""
    fp = np.load(DATA / C.FINGERPRINTS, allow_pickle=False)
    assert fp.dtype == np.uint64 and fp.size > 300000 and np.all(np.diff(fp.astype(np.float64)) >= 0)
    fps = set(fp.tolist())
    checked = 0
    for prefix in ("wesnoth", "heldout"):
        for split in C.SPLITS:
            for code, lines in read_flores(prefix, split).items():
                for t in lines:
                    assert C.fingerprint(code, t) not in fps, (prefix, split, code, t)
                    checked += 1
    assert checked > 12 * 3000
    # and the check can fail: a pretraining-like text is found
    assert C.fingerprint("en", "Specifies general Load/Save settings.") in fps
    assert C.fingerprint("en", "specifies   GENERAL load save settings") in fps


def test_loose_and_clean():
    assert C.loose("Hello,  World!") == C.loose("hello world") == "helloworld"
    assert C.clean("Choose  Tools - Options", "", True) == "Choose Tools - Options"
    assert C.clean("Enter $[officename] here", "", True) is None  # placeholder
    assert C.clean("<b>bold</b> text", "", True) is None  # markup
    assert C.clean("1234", "", True) is None  # no letters
    assert C.clean("Cancel.", "cancel", False) is None  # an untranslated copy
    assert C.clean("Abbrechen", "Cancel", False) == "Abbrechen"


def test_dedupe_on_english_picks_the_most_frequent_translation():
    rows = {
        "b": {"en": "Open file", "de": "Datei öffnen"},
        "a": {"en": "Open file", "de": "Öffne Datei"},
        "c": {"en": "Open  file", "de": "Datei öffnen"},
        "d": {"en": "Save", "de": "Save"},  # untranslated: no segment
    }
    out = C.dedupe_on_english(rows, "x")
    assert out == [("x:a", {"en": "Open file", "de": "Datei öffnen"})]
    shuffled = dict(reversed(list(rows.items())))
    assert C.dedupe_on_english(shuffled, "x") == out


def test_pretrain_segments_thin_low_languages_and_drop_banned_text():
    segs = [(f"s:{i}", {"en": f"english {i}", "de": f"deutsch {i}", "tr": f"türkçe {i}"}) for i in range(2000)]
    banned = {c: set() for c in C.CODES}
    banned["de"].add(C.loose("deutsch 7"))
    out = C.pretrain_segments([segs, [("t:0", {"en": "ENGLISH 3!", "de": "x"})]], banned)
    by = dict(out)
    assert "t:0" not in by  # repeated English (loosely) is deduplicated: the earlier source wins
    assert "de" not in by.get("s:7", {})
    assert all("de" in t for sid, t in out if sid != "s:7")
    n_tr = sum("tr" in t for _, t in out)
    assert abs(n_tr / 2000 - C.LOW_FRACTION) < 0.03


def test_help_page_parser_keeps_ids_and_skips_hidden_text():
    html = """<html><body><div id="Contents"><p id="par_id1">chrome</p></div>
    <div id="DisplayArea"><h1 id="hd_id1">Title</h1>
    <p id="par_id2">Choose <span hidden="true">Mac menu</span><span>Tools - Options</span>.<br>Done</p>
    <p id="other">no id pattern</p><script>var x;</script></div></body></html>"""
    assert parse_page(html) == {"hd_id1": "Title", "par_id2": "Choose Tools - Options.Done"}


def _mo(entries: dict[str, str]) -> bytes:
    keys = sorted(entries)
    ids = b"".join(k.encode() + b"\0" for k in keys)
    strs = b"".join(entries[k].encode() + b"\0" for k in keys)
    n = len(keys)
    start = 28 + 16 * n
    ko, vo, pos = [], [], start
    for k in keys:
        ko.append((len(k.encode()), pos))
        pos += len(k.encode()) + 1
    for k in keys:
        vo.append((len(entries[k].encode()), pos))
        pos += len(entries[k].encode()) + 1
    head = struct.pack("<7I", 0x950412DE, 0, n, 28, 28 + 8 * n, 0, 0)
    return head + b"".join(struct.pack("<2I", *x) for x in ko + vo) + ids + strs


def _deb(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    members = [("debian-binary", b"2.0\n"), ("control.tar.xz", b""), ("data.tar.xz", buf.getvalue())]
    out = b"!<arch>\n"
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode() + data
        if len(data) % 2:
            out += b"\n"
    return out


def test_deb_and_mo_readers():
    mo = _mo({"": "Content-Type: text/plain; charset=UTF-8\n", "ctx\x04Open": "Öffnen", "Close": "Schließen"})
    deb = _deb({"usr/share/x/de/LC_MESSAGES/a.mo": mo, "usr/share/doc/readme": b"hi"})
    files = deb_files(deb, lambda p: p.endswith(".mo"))
    assert list(files) == ["usr/share/x/de/LC_MESSAGES/a.mo"]
    assert mo_catalog(files["usr/share/x/de/LC_MESSAGES/a.mo"]) == {"ctx\x04Open": "Öffnen", "Close": "Schließen"}
    with pytest.raises(DebError, match="not a Debian package"):
        deb_files(b"PK\x03\x04", lambda p: True)
