"""The HTTP API over a real uvicorn server on a free port, with a recording fake model behind it.

What is checked here is the protocol: LibreTranslate's request and answer shapes, every error's
status code and JSON, limits, the key, 503 + Retry-After when the queue is full, metrics, and a
client that disconnects mid-request. The real model is served in test_serve_cli.py.
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

    def __call__(self, texts, src, tgt, bs):
        self.entered.set()
        assert self.gate.wait(20)
        self.calls.append(list(zip(texts, src, tgt)))
        return [f"[{s}>{t}] {x}" for x, s, t in zip(texts, src, tgt)]


def serve(api_key=None, **kw):
    fake = Fake()
    kw.setdefault("limits", Limits(max_segments=4, max_chars=100, max_body_bytes=2000))
    service = TranslationService(fake, lambda t: len(t) + 2, CODES, api_key=api_key, max_wait_ms=0, **kw)
    return BackgroundServer(create_app(service)), fake, service


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
    assert r.json()["translatedText"] == "[fr>zh] line one\n[fr>zh] line two"  # one segment per line
    r = httpx.post(srv.url + "/translate", data={"q": "Hi", "source": "en", "target": "ha"}, timeout=20)
    assert r.json() == {"translatedText": "[en>ha] Hi"}  # form-encoded, as LibreTranslate clients send
    langs = httpx.get(srv.url + "/languages").json()
    assert [lang["code"] for lang in langs] == CODES and langs[0]["name"] == "English"
    assert set(langs[0]["targets"]) == set(CODES) - {"en"}
    h = httpx.get(srv.url + "/health").json()
    assert h["status"] == "ok" and h["directions"] == 30 and h["api_key_required"] is False
    page = httpx.get(srv.url + "/")
    assert page.status_code == 200 and "/translate" in page.text and "text/html" in page.headers["content-type"]


@pytest.mark.parametrize("body, status, field", [
    ({"source": "en", "target": "fr"}, 400, "q"),
    ({"q": "x", "target": "fr"}, 400, "source"),
    ({"q": "x", "source": "en"}, 400, "target"),
    ({"q": "x", "source": "xx", "target": "fr"}, 400, "source"),
    ({"q": "x", "source": "en", "target": "ko"}, 400, "target"),  # a real language, not this server's
    ({"q": "x", "source": "auto", "target": "fr"}, 400, "source"),
    ({"q": 5, "source": "en", "target": "fr"}, 400, "q"),
    ({"q": ["ok", 7], "source": "en", "target": "fr"}, 400, "q[1]"),
    ({"q": "x", "source": None, "target": "fr"}, 400, "source"),
    ({"q": "x", "source": "en", "target": "fr", "format": "html"}, 400, "format"),
    ({"q": "x", "source": "en", "target": "fr", "alternatives": 3}, 400, "alternatives"),
])
def test_bad_fields_get_400_naming_the_field(server, body, status, field):
    srv, _, _ = server
    r = post(srv, body)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field and r.json()["error"].startswith(field + ":")


def test_malformed_bodies_and_limits(server):
    srv, _, _ = server
    for raw, ctype, status, needle in [
        (b'{"q": "x", "source": ', "application/json", 400, "malformed JSON"),
        (b'["x"]', "application/json", 400, "expected a JSON object"),
        (b"\xff\xfe", "application/json", 400, "not UTF-8"),
        (b"q=x", "text/plain", 415, "content-type"),
        (b'{"q": "' + b"x" * 3000 + b'"}', "application/json", 413, "max_body_bytes"),
    ]:
        r = httpx.post(srv.url + "/translate", content=raw, headers={"content-type": ctype}, timeout=20)
        assert r.status_code == status and needle in r.json()["error"], (raw[:20], r.text)
    r = post(srv, {"q": ["a"] * 5, "source": "en", "target": "fr"})
    assert r.status_code == 413 and r.json()["limit"] == "max_segments" and r.json()["maximum"] == 4
    r = post(srv, {"q": "a\nb\nc\nd\ne", "source": "en", "target": "fr"})  # lines count as segments
    assert r.status_code == 413 and r.json()["limit"] == "max_segments"
    r = post(srv, {"q": "y" * 101, "source": "en", "target": "fr"})
    assert r.status_code == 413 and r.json()["limit"] == "max_chars" and "101 characters" in r.json()["error"]
    r = httpx.get(srv.url + "/nope")
    assert r.status_code == 404 and "error" in r.json()
    r = httpx.get(srv.url + "/translate")
    assert r.status_code == 405 and "error" in r.json()


def test_api_key():
    srv, _, _ = serve(api_key=KEY)
    with srv:
        body = {"q": "x", "source": "en", "target": "fr"}
        r = post(srv, body)
        assert r.status_code == 401 and r.json()["field"] == "api_key" and "missing" in r.json()["error"]
        assert post(srv, {**body, "api_key": "wrong"}).status_code == 401
        assert "wrong" in post(srv, {**body, "api_key": "wrong"}).json()["error"]
        assert post(srv, {**body, "api_key": KEY}).json() == {"translatedText": "[en>fr] x"}
        assert post(srv, body, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert post(srv, body, headers={"X-API-Key": KEY}).status_code == 200
        assert httpx.post(srv.url + "/translate", data={**body, "api_key": KEY}).status_code == 200
        assert httpx.get(srv.url + "/metrics").status_code == 401
        assert httpx.get(srv.url + "/metrics", headers={"X-API-Key": KEY}).status_code == 200
        assert httpx.get(srv.url + "/health").json()["api_key_required"] is True  # health stays open


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


def test_a_segment_longer_than_the_model_takes_gets_413_and_the_others_are_untouched():
    srv, fake, _ = serve(max_segment_tokens=12)  # the fake counts len(text) + 2 tokens
    with srv:
        r = post(srv, {"q": ["short", "x" * 11], "source": "en", "target": "fr"})
        assert r.status_code == 413 and r.json()["limit"] == "max_segment_tokens"
        assert r.json()["value"] == 13 and "segment 1" in r.json()["error"]
        assert fake.calls == []  # refused before anything was queued
        assert post(srv, {"q": "x" * 10, "source": "en", "target": "fr"}).status_code == 200


def test_same_language_untrained_directions_and_non_utf8_forms():
    srv, fake, _ = serve(trained=[("en", "fr"), ("fr", "en")])
    with srv:
        r = post(srv, {"q": "x", "source": "en", "target": "eng_Latn"})  # the same language, named otherwise
        assert r.status_code == 400 and r.json()["field"] == "target" and "source language too" in r.json()["error"]
        assert all(x["targets"] == [t for t in CODES if t != x["code"]] for x in httpx.get(srv.url + "/languages").json())
        r = post(srv, {"q": "x", "source": "en", "target": "fr"})
        assert r.status_code == 200 and "x-lslo-warning" not in r.headers
        r = post(srv, {"q": "x", "source": "en", "target": "de"})  # served, with a warning header
        assert r.status_code == 200 and "en->de was not trained" in r.headers["x-lslo-warning"]
        # a percent-escaped byte that is not UTF-8: 400, as the same text in JSON, never repaired to U+FFFD
        r = httpx.post(srv.url + "/translate", content=b"q=caf%E9&source=en&target=fr",
                       headers={"content-type": "application/x-www-form-urlencoded"}, timeout=20)
        assert r.status_code == 400 and "not UTF-8" in r.json()["error"], r.text
    srv, _, _ = serve(allow_same_language=True)
    with srv:
        assert post(srv, {"q": "x", "source": "en", "target": "en"}).json() == {"translatedText": "[en>en] x"}
