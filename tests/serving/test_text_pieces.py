"""The server's text machinery on its own: sentence layouts, detectors, the rate limiter, files."""

from __future__ import annotations

import pytest

from lslo.serving.detect import DETECTORS, DetectorError, make_detector
from lslo.serving.files import FileStore, read_document, safe_name
from lslo.serving.html import html_doc
from lslo.serving.ratelimit import RateLimiter
from lslo.serving.segment import SplitterError, layout, make_splitter

SPLIT = make_splitter("sentencex")


@pytest.mark.parametrize("text", ["One. Two!  Three?\n\n  Four.\r\nfive", "  lead and trail  ", "\n\n", "",
                                  "今日は晴れです。明日は雨です。", "x" * 50 + " " + "y" * 50, "a.b.c... !!"])
def test_a_layout_filled_with_its_own_sentences_gives_the_text_back(text):
    lay = layout(text, "en", SPLIT, fits=lambda s: len(s) <= 30)
    assert lay.fill(lay.sentences) == text
    assert all(s == s.strip() and s for s in lay.sentences)
    assert all(len(s) <= 30 or " " not in s for s in lay.sentences)


def test_cutting_falls_back_to_characters_without_spaces_and_punctuation_alone_is_kept():
    lay = layout("x" * 25, "en", SPLIT, fits=lambda s: len(s) <= 10)
    assert [len(s) for s in lay.sentences] == [6, 6, 6, 7] and lay.fill(lay.sentences) == "x" * 25
    assert layout("... !!", "en", SPLIT).sentences == []
    assert layout("One. Two.", "en", make_splitter("lines")).sentences == ["One. Two."]
    with pytest.raises(SplitterError, match="expected one of"):
        make_splitter("nltk")


def test_html_doc_is_byte_exact_where_nothing_is_translated():
    src = '<!DOCTYPE html>\n<HTML><body class=a>\n  <p title="x &amp; y">A&amp;B</p><!-- c --><br/>\n</body>'
    doc = html_doc(src, lambda t: layout(t, "en", SPLIT))
    assert doc.sentences == ["A&B"]
    assert doc.fill(["A&B"]) == src
    assert doc.fill(["<x>"]) == src.replace("A&amp;B</p>", "&lt;x&gt;</p>")
    with pytest.raises(ValueError, match="1 sentences"):
        doc.fill([])


def test_every_detector_answers_only_the_runs_languages_with_percentages():
    codes = ["en", "fr", "de", "ha"]
    for name in DETECTORS:
        det = make_detector(name, codes)
        cands = det.detect("Die Kinder spielen heute Nachmittag im Park.")
        assert cands[0][0] == "de", (name, cands)
        assert {c for c, _ in cands} <= set(det.known) and abs(sum(p for _, p in cands) - 100) < 0.1
    assert make_detector("lingua", codes).unknown == ["ha"]  # lingua has no Hausa
    with pytest.raises(DetectorError, match="expected one of"):
        make_detector("cld3", codes)
    with pytest.raises(DetectorError, match="knows none"):
        make_detector("lingua", ["ha"])
    assert make_detector("lingua", ["en", "ha"]).detect("anything") == [("en", 100.0)]


def test_rate_limiter_window_per_client():
    now = [0.0]
    rl = RateLimiter(2, clock=lambda: now[0])
    assert [rl.allow("a"), rl.allow("a"), rl.allow("a"), rl.allow("b")] == [True, True, False, True]
    now[0] = 30.0
    assert not rl.allow("a") and rl.retry_after() == 30
    now[0] = 60.5
    assert rl.allow("a")
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_file_names_and_store(tmp_path):
    assert safe_name("../../etc/passwd") == "passwd" and safe_name("C:\\x\\my file.txt") == "my_file.txt"
    assert safe_name("...") == "file"
    store = FileStore(root=tmp_path)
    token = store.save("../a b.txt", b"data")
    assert token.endswith(".a_b.txt") and store.path(token).read_bytes() == b"data"
    assert store.path("../" + token) is None and store.path("0" * 32 + ".missing.txt") is None
    store.close()
    assert not store.root.exists()
    doc = read_document("x.TXT", "\ufeffHello".encode())
    assert doc.items == [("Hello", "text")] and doc.render(["Salut"]) == b"Salut"
