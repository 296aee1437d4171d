"""The HTTP API over a real uvicorn server on a free port, with a recording fake model behind it.

What is checked here is the protocol: LibreTranslate's request and answer shapes, every error's
status code and JSON, limits, the key, 503 + Retry-After when the queue is full, metrics, and a
client that disconnects mid-request. The endpoints and fields LibreTranslate has beyond these are
in test_libretranslate_parity.py; the real model is served in test_serve_cli.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from lslo.serving import Limits, TranslationService, create_app
from lslo.serving.server import BackgroundServer

CODES = ["en", "fr", "de", "zh", "ha", "yo"]
KEY = "s3cret"


class Fake:
    def __init__(self):
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.calls = []

    def __call__(self, texts, src, tgt, bs, n_best=1):
        self.entered.set()
        assert self.gate.wait(20)
        self.calls.append(list(zip(texts, src, tgt)))
        best = [f"[{s}>{t}] {x}" for x, s, t in zip(texts, src, tgt)]
        if n_best == 1:
            return best
        return [[b] + [f"{b} #{k}" for k in range(1, n_best)] for b in best]


def serve(api_key=None, cors_origins=None, **kw):
    fake = Fake()
    kw.setdefault("limits", Limits(max_texts=4, max_segments=6, max_chars=100, max_body_bytes=2000))
    kw.setdefault("max_alternatives", 2)
    service = TranslationService(fake, lambda t: len(t) + 2, CODES, api_key=api_key, max_wait_ms=0, **kw)
    return BackgroundServer(create_app(service, cors_origins=cors_origins)), fake, service


@pytest.fixture(scope="module")
def server():
    srv, fake, service = serve()
    with srv:
        yield srv, fake, service


def post(srv, body=None, **kw):
    return httpx.post(srv.url + "/translate", json=body, timeout=20, **kw)


def test_libretranslate_shapes_json_and_form(server):
    srv, fake, _ = server
    r = post(srv, {"q": "Hello", "source": "en", "target": "fr"})
    assert r.status_code == 200 and r.json() == {"translatedText": "[en>fr] Hello"}
    r = post(srv, {"q": ["a", "b c", ""], "source": "eng_Latn", "target": "__de__", "format": "text"})
    assert r.json() == {"translatedText": ["[en>de] a", "[en>de] b c", ""]}  # FLORES-200 and token codes
    r = post(srv, {"q": "line one\nline two", "source": "fra", "target": "zh"})  # FLORES-101 code
    assert r.json()["translatedText"] == "[fr>zh] line one\n[fr>zh] line two"  # one sentence per line
    r = httpx.post(srv.url + "/translate", data={"q": "Hi", "source": "en", "target": "ha"}, timeout=20)
    assert r.json() == {"translatedText": "[en>ha] Hi"}  # form-encoded, as LibreTranslate clients send
    langs = httpx.get(srv.url + "/languages").json()
    assert [lang["code"] for lang in langs] == CODES and langs[0]["name"] == "English"
    assert set(langs[0]["targets"]) == set(CODES) - {"en"}
    h = httpx.get(srv.url + "/health").json()
    assert h["status"] == "ok" and h["directions"] == 30 and h["api_key_required"] is False
    page = httpx.get(srv.url + "/")
    assert page.status_code == 200 and "/translate" in page.text and "text/html" in page.headers["content-type"]


# app.py translate(): "Invalid request: missing %(name)s parameter" (an empty q too: `if not q`),
# "%(lang)s is not supported", "%(format)s format is not supported", and the alternatives checks
@pytest.mark.parametrize("body, field, error", [
    ({"source": "en", "target": "fr"}, "q", "Invalid request: missing q parameter"),
    ({"q": "", "source": "en", "target": "fr"}, "q", "Invalid request: missing q parameter"),
    ({"q": [], "source": "en", "target": "fr"}, "q", "Invalid request: missing q parameter"),
    ({"q": "x", "target": "fr"}, "source", "Invalid request: missing source parameter"),
    ({"q": "x", "source": "en"}, "target", "Invalid request: missing target parameter"),
    ({"q": "x", "source": None, "target": "fr"}, "source", "Invalid request: missing source parameter"),
    ({"q": "x", "source": "xx", "target": "fr"}, "source", "xx is not supported"),
    ({"q": "x", "source": "en", "target": "ko"}, "target", "ko is not supported"),  # real, not this server's
    ({"q": "x", "source": "en", "target": "fr", "format": "pdf"}, "format", "pdf format is not supported"),
    ({"q": "x", "source": "en", "target": "fr", "alternatives": "many"}, "alternatives",
     "Invalid request: alternatives parameter is not a number"),
    ({"q": "x", "source": "en", "target": "fr", "alternatives": 3}, "alternatives",
     "Invalid request: alternatives parameter must be <= 2"),
    ({"q": 5, "source": "en", "target": "fr"}, "q", "q: expected a string, got int"),
    ({"q": ["ok", 7], "source": "en", "target": "fr"}, "q[1]", "q[1]: expected a string, got int"),
])
def test_bad_fields_get_400_with_libretranslates_text_and_the_field(server, body, field, error):
    srv, _, _ = server
    r = post(srv, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == error and r.json()["field"] == field


def test_malformed_bodies_and_limits(server):
    srv, _, _ = server
    for raw, ctype, status, needle in [
        (b'{"q": "x", "source": ', "application/json", 400, "malformed JSON"),
        (b'["x"]', "application/json", 400, "Invalid JSON format"),  # get_json_dict's text
        (b"\xff\xfe", "application/json", 400, "not UTF-8"),
        (b"q=x", "text/plain", 415, "content-type"),
        (b'{"q": "' + b"x" * 3000 + b'"}', "application/json", 413, "max_body_bytes"),
    ]:
        r = httpx.post(srv.url + "/translate", content=raw, headers={"content-type": ctype}, timeout=20)
        assert r.status_code == status and needle in r.json()["error"], (raw[:20], r.text)
    # batch_limit (texts per list) and char_limit (characters per text): 400, LibreTranslate's text
    r = post(srv, {"q": ["a"] * 5, "source": "en", "target": "fr"})
    assert r.status_code == 400 and r.json()["error"] == "Invalid request: request (5) exceeds text limit (4)"
    assert r.json()["limit"] == "batch_limit" and r.json()["maximum"] == 4
    r = post(srv, {"q": ["ok", "y" * 101], "source": "en", "target": "fr"})
    assert r.status_code == 400 and r.json()["error"] == "Invalid request: request (101) exceeds text limit (100)"
    assert r.json()["limit"] == "char_limit"
    assert post(srv, {"q": ["y" * 100] * 4, "source": "en", "target": "fr"}).status_code == 200  # per text
    r = post(srv, {"q": "a\nb\nc\nd\ne\nf\ng", "source": "en", "target": "fr"})  # sentences per request
    assert r.status_code == 400 and r.json()["limit"] == "max_segments" and r.json()["value"] == 7
    r = httpx.get(srv.url + "/nope")
    assert r.status_code == 404 and "error" in r.json()
    r = httpx.get(srv.url + "/translate")
    assert r.status_code == 405 and "error" in r.json()


def test_api_key_as_libretranslates_access_check():
    srv, _, _ = serve(api_key=KEY)
    with srv:
        body = {"q": "x", "source": "en", "target": "fr"}
        r = post(srv, body)  # no key where one is required: 400 and the operator's message
        assert r.status_code == 400 and r.json() == {"error": "Please contact the server operator to get an API key",
                                                     "field": "api_key"}
        r = post(srv, {**body, "api_key": "wrong"})
        assert r.status_code == 403 and r.json()["error"] == "Invalid API key"
        assert post(srv, {**body, "api_key": KEY}).json() == {"translatedText": "[en>fr] x"}
        assert post(srv, body, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert post(srv, body, headers={"X-API-Key": KEY}).status_code == 200
        assert httpx.post(srv.url + "/translate", data={**body, "api_key": KEY}).status_code == 200
        assert httpx.post(srv.url + "/detect", data={"q": "hello", "api_key": "no"}).status_code == 403
        assert httpx.get(srv.url + "/metrics").status_code == 400
        assert httpx.get(srv.url + "/metrics", headers={"X-API-Key": KEY}).status_code == 200
        assert httpx.get(srv.url + "/health").json()["api_key_required"] is True  # health stays open
        settings = httpx.get(srv.url + "/frontend/settings").json()
        assert settings["apiKeys"] is True and settings["keyRequired"] is True


def test_full_queue_gets_503_with_retry_after_and_metrics_count_it():
    srv, fake, service = serve(max_queue=2)
    with srv:
        fake.gate.clear()
        results = {}

        def call(name, q):
            results[name] = post(srv, {"q": q, "source": "en", "target": "fr"})

        busy = threading.Thread(target=call, args=("busy", "held"))
        busy.start()
        assert fake.entered.wait(10)  # the worker is inside a batch
        waiting = threading.Thread(target=call, args=("waiting", ["q1", "q2"]))
        waiting.start()
        deadline = time.monotonic() + 10
        while service.batcher.queue_depth < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        r = post(srv, {"q": "one more", "source": "en", "target": "fr"})
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "queue is full" in r.json()["error"]
        fake.gate.set()
        busy.join(20)
        waiting.join(20)
        assert results["busy"].json() == {"translatedText": "[en>fr] held"}
        assert results["waiting"].json() == {"translatedText": ["[en>fr] q1", "[en>fr] q2"]}
        text = httpx.get(srv.url + "/metrics").text
        assert 'lslo_requests_total{code="503",endpoint="translate"} 1.0' in text
        assert 'lslo_errors_total{kind="unavailable"} 1.0' in text
        assert "lslo_translated_segments_total 3.0" in text
        assert "lslo_queue_depth 0.0" in text and "lslo_resident_memory_bytes" in text
        assert 'lslo_request_latency_seconds_bucket{endpoint="translate",le="+Inf"} 3.0' in text
        assert "lslo_batch_segments_count 2.0" in text


def test_a_client_that_disconnects_mid_request_does_not_break_the_batch():
    srv, fake, service = serve()
    with srv:
        fake.gate.clear()
        body = json.dumps({"q": "abandoned", "source": "en", "target": "fr"}).encode()
        with socket.create_connection((srv.host, srv.port)) as s:
            s.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            assert fake.entered.wait(10)  # its batch is running
        results = []
        t = threading.Thread(target=lambda: results.append(post(srv, {"q": "stays", "source": "en", "target": "de"})))
        t.start()
        time.sleep(0.1)
        fake.gate.set()
        t.join(20)
        assert results[0].json() == {"translatedText": "[en>de] stays"}
        assert httpx.get(srv.url + "/health").json()["status"] == "ok"
        assert post(srv, {"q": "after", "source": "en", "target": "fr"}).status_code == 200


def test_a_line_longer_than_the_model_takes_is_cut_not_refused():
    srv, fake, _ = serve(max_segment_tokens=12)  # the fake counts len(text) + 2 tokens
    with srv:
        long = "aaaa bbbb cccc dddd"  # 21 tokens as one piece: cut at the spaces into pieces of <= 10 chars
        r = post(srv, {"q": ["short", long], "source": "en", "target": "fr"})
        assert r.status_code == 200, r.text
        assert r.json()["translatedText"] == ["[en>fr] short", "[en>fr] aaaa bbbb [en>fr] cccc dddd"]
        assert all(len(text) + 2 <= 12 for call in fake.calls for text, _, _ in call)


def test_same_language_untrained_directions_and_non_utf8_forms():
    srv, fake, _ = serve(trained=[("en", "fr"), ("fr", "en")])
    with srv:
        r = post(srv, {"q": "x", "source": "en", "target": "eng_Latn"})  # the same language, named otherwise
        assert r.status_code == 400 and r.json()["field"] == "target"  # LibreTranslate's text for a missing pair
        assert r.json()["error"] == "English (en) is not available as a target language from English (en)"
        assert all(x["targets"] == [t for t in CODES if t != x["code"]] for x in httpx.get(srv.url + "/languages").json())
        r = post(srv, {"q": "x", "source": "en", "target": "fr"})
        assert r.status_code == 200 and "x-lslo-warning" not in r.headers
        r = post(srv, {"q": "x", "source": "en", "target": "de"})  # served, with a warning header
        assert r.status_code == 200 and "en->de not trained" in r.headers["x-lslo-warning"]
        # a percent-escaped byte that is not UTF-8: 400, as the same text in JSON, never repaired to U+FFFD
        r = httpx.post(srv.url + "/translate", content=b"q=caf%E9&source=en&target=fr",
                       headers={"content-type": "application/x-www-form-urlencoded"}, timeout=20)
        assert r.status_code == 400 and "not UTF-8" in r.json()["error"], r.text
    srv, _, _ = serve(allow_same_language=True)
    with srv:
        assert post(srv, {"q": "x", "source": "en", "target": "en"}).json() == {"translatedText": "[en>en] x"}
