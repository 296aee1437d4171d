"""LibreTranslate's behaviour beyond plain /translate, over a real uvicorn server and the recording fake.

Each test names the handler or field of LibreTranslate's ``libretranslate/app.py`` it follows.
The fake answers ``[src>tgt] text`` for each sentence it is given, so the tests can see what was
split, detected, batched and put back.
"""

from __future__ import annotations

import io
import time

import httpx
import pytest
from test_app import CODES, KEY, post, serve

# lingua tells these apart at once (conftest's sentences are too short for Hausa, which lingua lacks)
EN = "The children are playing in the park this afternoon."
FR = "Les enfants jouent dans le parc cet après-midi."
DE = "Die Kinder spielen heute Nachmittag im Park."


@pytest.fixture(scope="module")
def server():
    srv, fake, service = serve()
    with srv:
        yield srv, fake, service


def test_fields_from_query_string_form_multipart_and_json(server):
    """translate(): ``request.values`` (query string + form) for a non-JSON request, the JSON object otherwise."""
    srv, fake, _ = server
    want = {"translatedText": "[en>fr] Hi"}
    # deep-translator: a POST whose fields are all in the query string, with an empty body
    assert httpx.post(srv.url + "/translate", params={"q": "Hi", "source": "en", "target": "fr"}).json() == want
    assert httpx.post(srv.url + "/translate", data={"q": "Hi", "source": "en", "target": "fr"}).json() == want
    # LibreTranslate's own web page and libretranslate-aio's files: multipart/form-data
    r = httpx.post(srv.url + "/translate", data={"q": "Hi", "source": "en", "target": "fr"},
                   files={"unused": ("a.txt", b"x")})
    assert r.status_code == 200 and r.json() == want
    # the query string fills what a body lacks
    assert httpx.post(srv.url + "/translate?target=fr", json={"q": "Hi", "source": "en"}).json() == want
    # a form field sent twice, or as q[], is a list (one q is a string: a form cannot say "list of one")
    r = httpx.post(srv.url + "/translate", data={"q": ["a", "b"], "source": "en", "target": "de"})
    assert r.json() == {"translatedText": ["[en>de] a", "[en>de] b"]}
    r = httpx.post(srv.url + "/translate", data={"q[]": ["only"], "source": "en", "target": "de"})
    assert r.json() == {"translatedText": ["[en>de] only"]}
    r = httpx.post(srv.url + "/translate", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data"})
    assert r.status_code == 400 and "multipart" in r.json()["error"]


def test_source_auto_detects_each_text_and_batches_mixed_sources_in_one_call(server):
    """translate(): ``detectedLanguage`` {confidence, language}, a list of them for a list ``q``."""
    srv, fake, _ = server
    r = post(srv, {"q": FR, "source": "auto", "target": "en"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["translatedText"] == f"[fr>en] {FR}"
    assert body["detectedLanguage"]["language"] == "fr" and 50 < body["detectedLanguage"]["confidence"] <= 100
    fake.calls.clear()
    r = post(srv, {"q": [EN, FR, DE], "source": "auto", "target": "zh"})
    body = r.json()
    assert [d["language"] for d in body["detectedLanguage"]] == ["en", "fr", "de"]
    assert body["translatedText"] == [f"[en>zh] {EN}", f"[fr>zh] {FR}", f"[de>zh] {DE}"]
    assert len(fake.calls) == 1 and {s for _, s, _ in fake.calls[0]} == {"en", "fr", "de"}  # one generation call
    # a text already in the target language comes back as it is; so does one with nothing to detect
    r = post(srv, {"q": [EN, "12345"], "source": "auto", "target": "en"})
    assert r.json()["translatedText"] == [EN, "12345"]
    assert r.json()["detectedLanguage"][1]["confidence"] == 0.0


def test_detect_answers_candidates_restricted_to_the_run(server):
    """detect(): ``[{confidence, language}, ...]`` best first; form or JSON."""
    srv, _, _ = server
    r = httpx.post(srv.url + "/detect", data={"q": DE})
    assert r.status_code == 200
    cands = r.json()
    assert cands[0]["language"] == "de" and {c["language"] for c in cands} <= set(CODES)
    assert [c["confidence"] for c in cands] == sorted((c["confidence"] for c in cands), reverse=True)
    assert abs(sum(c["confidence"] for c in cands) - 100) < 0.1
    lists = httpx.post(srv.url + "/detect", json={"q": [EN, FR]}).json()
    assert [c[0]["language"] for c in lists] == ["en", "fr"]
    r = httpx.post(srv.url + "/detect", data={})
    assert r.status_code == 400 and r.json()["error"] == "Invalid request: missing q parameter"


def test_auto_is_refused_clearly_without_a_detector():
    srv, _, _ = serve(detector=None)
    with srv:
        r = post(srv, {"q": EN, "source": "auto", "target": "fr"})
        assert r.status_code == 400 and r.json()["field"] == "source" and "--detector" in r.json()["error"]
        assert httpx.get(srv.url + "/frontend/settings").json()["language"]["source"]["code"] == "en"


def test_alternatives_come_from_the_beam(server):
    """translate(): ``alternatives`` a list (a list of lists for a list ``q``), without the translation itself."""
    srv, fake, _ = server
    r = post(srv, {"q": "One. Two.", "source": "en", "target": "fr", "alternatives": 2})
    assert r.json() == {"translatedText": "[en>fr] One. [en>fr] Two.",
                        "alternatives": ["[en>fr] One. #1 [en>fr] Two. #1", "[en>fr] One. #2 [en>fr] Two. #2"]}
    r = httpx.post(srv.url + "/translate", data={"q": ["a", "b"], "source": "en", "target": "de", "alternatives": "1"})
    assert r.json()["alternatives"] == [["[en>de] a #1"], ["[en>de] b #1"]]
    assert "alternatives" not in post(srv, {"q": "a", "source": "en", "target": "de", "alternatives": 0}).json()


def test_html_keeps_markup_and_translates_text_nodes(server):
    """translate(): ``format: html``: tags, attributes, entities, code and translate="no" untouched."""
    srv, _, _ = server

    def html(q):
        r = post(srv, {"q": q, "source": "en", "target": "fr", "format": "html"})
        assert r.status_code == 200, r.text
        return r.json()["translatedText"].replace("[en&gt;fr]", "[en>fr]")  # the fake's marker, escaped in HTML

    assert html("<b>Save</b> the <i>file</i>") == "<b>[en>fr] Save</b> [en>fr] the <i>[en>fr] file</i>"
    assert html('<a href="/open" title="Open file">Open</a>') == '<a href="/open" title="Open file">[en>fr] Open</a>'
    assert html("Fish &amp; chips&nbsp;now &lt;3") == "[en>fr] Fish &amp; chips&nbsp;now &lt;3"
    kept = "<pre>keep  this</pre><code>x = 1</code><span translate=\"no\">Brand</span><!-- note -->"
    assert html(kept + "<p>Go</p>") == kept + "<p>[en>fr] Go</p>"
    # broken HTML stays as broken as it came: nothing closed, nothing re-quoted, stray tags kept
    assert html("<div><p>Unclosed <b>bold") == "<div><p>[en>fr] Unclosed <b>[en>fr] bold"
    assert html("<P CLASS=x>Hi</b> there<br>") == "<P CLASS=x>[en>fr] Hi</b> [en>fr] there<br>"
    assert html("<script>var s = 'Hi';</script><style>p {}</style>Ok") == \
        "<script>var s = 'Hi';</script><style>p {}</style>[en>fr] Ok"
    assert html('<div translate="no">Name <b>Brand</b></div> <p class="a notranslate">Keep</p>Go') == \
        '<div translate="no">Name <b>Brand</b></div> <p class="a notranslate">Keep</p>[en>fr] Go'
    assert html("Caf&eacute; &#169; 2024") == "[en>fr] Café © 2024"  # a translated run is decoded, then escaped
    assert html("<ul>\n  <li>One.</li>\n</ul>") == "<ul>\n  <li>[en>fr] One.</li>\n</ul>"  # whitespace kept


def test_long_text_is_split_into_sentences_and_rejoined_with_its_whitespace(server):
    srv, fake, _ = server
    fake.calls.clear()
    text = "First sentence here. Second one!  Third?\n\n  Indented line.\r\nLast"
    r = post(srv, {"q": text, "source": "en", "target": "de"})
    assert r.json()["translatedText"] == ("[en>de] First sentence here. [en>de] Second one!  [en>de] Third?\n\n"
                                          "  [en>de] Indented line.\r\n[en>de] Last")
    assert [t for t, _, _ in fake.calls[0]] == ["First sentence here.", "Second one!", "Third?", "Indented line.",
                                                "Last"]


def test_frontend_settings_suggest_and_spec(server):
    """frontend_settings(), suggest() without --suggestions, spec() (``info.title``, which Dialect checks)."""
    srv, _, service = server
    s = httpx.get(srv.url + "/frontend/settings").json()
    assert set(s) == {"charLimit", "frontendTimeout", "apiKeys", "keyRequired", "suggestions", "filesTranslation",
                      "supportedFilesFormat", "language"}
    assert s["charLimit"] == 100 and s["suggestions"] is False and s["apiKeys"] is False
    assert s["supportedFilesFormat"] == [".txt", ".html", ".htm", ".docx"]
    assert s["language"] == {"source": {"code": "auto", "name": "Auto Detect"},
                             "target": {"code": "fr", "name": "French"}}
    r = httpx.post(srv.url + "/suggest", data={"q": "a", "s": "b", "source": "en", "target": "fr"})
    assert r.status_code == 403 and r.json() == {"error": "Suggestions are disabled on this server."}
    spec = httpx.get(srv.url + "/spec").json()
    assert spec["info"]["title"] == "LibreTranslate" and spec["openapi"].startswith("3.")
    assert {"/translate", "/detect", "/translate_file", "/languages", "/frontend/settings"} <= set(spec["paths"])
    assert "q" in spec["paths"]["/translate"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "required"]


def _docx(paragraphs, table=()):
    import docx

    d = docx.Document()
    for text in paragraphs:
        p = d.add_paragraph()
        for i, part in enumerate(text.split("|")):
            p.add_run(part).bold = i % 2 == 1
    if table:
        t = d.add_table(rows=1, cols=len(table))
        for cell, text in zip(t.rows[0].cells, table):
            cell.text = text
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def test_translate_file_txt_html_docx_and_download(server):
    """translate_file() -> ``translatedFileUrl``; download_file() gives the file its uploaded name."""
    srv, _, _ = server
    import docx

    def upload(name, data, **fields):
        r = httpx.post(srv.url + "/translate_file", data={"source": "en", "target": "fr", **fields},
                       files={"file": (name, data)}, timeout=20)
        assert r.status_code == 200, r.text
        url = r.json()["translatedFileUrl"]
        assert url.startswith(srv.url + "/download_file/")
        got = httpx.get(url)
        assert got.status_code == 200 and name in got.headers["content-disposition"]
        return got.content

    assert upload("notes.txt", b"One. Two.\nThree") == b"[en>fr] One. [en>fr] Two.\n[en>fr] Three"
    assert upload("page.html", b"<p>Hi <b>you</b></p>") == b"<p>[en&gt;fr] Hi <b>[en&gt;fr] you</b></p>"
    out = docx.Document(io.BytesIO(upload("memo.docx", _docx(["Hello |world", "", "Bye"], table=["Cell"]))))
    assert [p.text for p in out.paragraphs] == ["[en>fr] Hello world", "", "[en>fr] Bye"]
    assert out.paragraphs[0].runs[0].bold is not True  # the first run's formatting carries the text
    assert out.tables[0].rows[0].cells[0].text == "[en>fr] Cell"
    auto = upload("auto.txt", FR.encode(), source="auto")
    assert auto == f"[fr>fr] {FR}".encode() or auto == FR.encode()  # detected French: already the target


def test_translate_file_errors_and_cleanup(server):
    srv, _, _ = server
    r = httpx.post(srv.url + "/translate_file", data={"source": "en", "target": "fr"}, files={"file": ("a.pdf", b"x")})
    assert r.status_code == 400 and r.json()["error"] == "Invalid request: file format not supported"
    r = httpx.post(srv.url + "/translate_file", data={"source": "en", "target": "fr"}, files={"file": ("a.txt", b"")})
    assert r.status_code == 400 and r.json()["error"] == "Invalid request: empty file"
    r = httpx.post(srv.url + "/translate_file", data={"source": "en", "target": "fr"})
    assert r.status_code == 400 and r.json()["error"] == "Invalid request: missing file parameter"
    r = httpx.post(srv.url + "/translate_file", data={"target": "fr"}, files={"file": ("a.txt", b"x")})
    assert r.json()["error"] == "Invalid request: missing source parameter"
    r = httpx.post(srv.url + "/translate_file", data={"source": "en", "target": "fr"},
                   files={"file": ("a.docx", b"not a zip")})
    assert r.status_code == 400 and "not a .docx" in r.json()["error"]
    r = httpx.post(srv.url + "/translate_file", data={"source": "en", "target": "fr"}, files={"file": ("a.txt", b"\xff")})
    assert r.status_code == 400 and "UTF-8" in r.json()["error"]
    assert httpx.get(srv.url + "/download_file/..%2Fetc%2Fpasswd").status_code in (400, 404)
    r = httpx.get(srv.url + "/download_file/nope")
    assert r.status_code == 400 and r.json()["error"] == "Invalid filename"
    r = httpx.get(srv.url + "/download_file/" + "0" * 32 + ".gone.txt")
    assert r.status_code == 404


def test_translated_files_are_removed_at_shutdown_and_after_their_time():
    srv, _, _ = serve()
    with srv:
        store = srv.server.config.app.state.files
        url = httpx.post(srv.url + "/translate_file", data={"source": "en", "target": "fr"},
                         files={"file": ("a.txt", b"Hi")}).json()["translatedFileUrl"]
        assert len(list(store.root.iterdir())) == 1
        store.ttl_s = 0.0
        time.sleep(0.01)
        store.sweep()
        assert httpx.get(url).status_code == 404
        root = store.root
    assert not root.exists()


def test_cors_is_off_by_default_and_on_with_origins(server):
    srv, _, _ = server
    pre = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    r = httpx.options(srv.url + "/translate", headers=pre)
    assert "access-control-allow-origin" not in r.headers
    cors, _, _ = serve(cors_origins=["https://app.example"])
    with cors:
        r = httpx.options(cors.url + "/translate", headers={**pre, "Access-Control-Request-Headers": "content-type"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://app.example"
        r = post(cors, {"q": "x", "source": "en", "target": "fr"}, headers={"Origin": "https://app.example"})
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        r = httpx.options(cors.url + "/translate", headers={**pre, "Origin": "https://evil.example"})
        assert r.status_code == 400


def test_req_limit_answers_429_per_key_or_address():
    """The limiter's 429 handler: ``Slowdown: <limit>``."""
    srv, _, _ = serve(api_key=KEY, req_limit=2)
    with srv:
        body = {"q": "x", "source": "en", "target": "fr", "api_key": KEY}
        assert [post(srv, body).status_code for _ in range(2)] == [200, 200]
        r = post(srv, body)
        assert r.status_code == 429 and r.json()["error"] == "Slowdown: 2 per 1 minute"
        assert int(r.headers["retry-after"]) >= 1
        assert httpx.get(srv.url + "/languages").status_code == 200  # exempt, as in LibreTranslate
