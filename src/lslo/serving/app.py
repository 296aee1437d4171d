"""The HTTP API: LibreTranslate-compatible ``POST /translate`` over one dynamic mixed-direction batcher.

Endpoints: ``POST /translate`` (JSON or form: ``q`` a string or a list, ``source``, ``target``,
optional ``format: text`` and ``api_key``; answers ``{"translatedText": ...}``), ``GET /languages``,
``GET /health``, ``GET /metrics`` (Prometheus text) and ``GET /`` (a small web page).

Every error is JSON ``{"error": message, ...}`` naming the field or the limit: 400 (malformed
JSON, missing or wrong field, unknown language), 401 (API key), 413 (request limits), 415
(content type), 503 with ``Retry-After`` (queue full or shutting down).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from lslo.serving.batcher import POLICIES, Batcher, QueueFull, ShuttingDown, TranslateFn
from lslo.serving.metrics import Metrics
from lslo.tuner.langcodes import UnknownLanguageError, language_name, resolve_code


@dataclass
class Limits:
    max_segments: int = 64  # segments (lines) per request
    max_chars: int = 5000  # characters per request, all segments together
    max_body_bytes: int = 1 << 20  # bytes of the request body

    def __post_init__(self):
        for name in ("max_segments", "max_chars", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


class HTTPError(Exception):
    def __init__(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None, **extra):
        super().__init__(message)
        self.status, self.message, self.kind, self.headers, self.extra = status, message, kind, headers, extra

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.message, **self.extra}, status_code=self.status, headers=self.headers)


def _bad(field: str, message: str) -> HTTPError:
    return HTTPError(400, f"{field}: {message}", "bad_request", field=field)


class TranslationService:
    """The state behind the app: the run's languages, the batcher, the limits, the key and the metrics."""

    def __init__(self, translate: TranslateFn, count_tokens: Callable[[str], int], codes: Sequence[str], *,
                 api_key: str | None = None, limits: Limits | None = None, policy: str = "mixed",
                 max_batch_tokens: int = 4096, max_batch_segments: int = 64, max_wait_ms: float = 5.0,
                 max_queue: int = 1024, retry_after_s: int = 1, description: str = "lslo",
                 max_segment_tokens: int | None = None, trim_interval_s: float | None = None,
                 trained: Sequence[tuple[str, str]] | None = None, allow_same_language: bool = False):
        if policy not in POLICIES:
            raise ValueError(f"policy {policy!r}: expected one of {', '.join(POLICIES)}")
        self.codes = list(codes)
        # the directions the run trained on (None: all); others are served with a warning header
        self.trained = None if trained is None else {tuple(d) for d in trained}
        self.allow_same_language = allow_same_language
        self.api_key = api_key or None
        self.limits = limits or Limits()
        self.retry_after_s = retry_after_s
        self.count_tokens = count_tokens
        self.max_segment_tokens = max_segment_tokens  # the model's position limit: longer inputs would fail
        self.description = description
        self.metrics: Metrics | None = None
        self.batcher = Batcher(translate, count_tokens, policy=policy, max_batch_tokens=max_batch_tokens,
                               max_batch_segments=max_batch_segments, max_wait_ms=max_wait_ms, max_queue=max_queue,
                               on_batch=self._on_batch, trim_interval_s=trim_interval_s)
        self.metrics = Metrics(lambda: self.batcher.queue_depth, lambda: self.batcher.in_flight)
        self.started = time.time()

    def _on_batch(self, stats) -> None:
        if self.metrics is not None:
            self.metrics.on_batch(stats)

    def code(self, field: str, value) -> str:
        if not isinstance(value, str) or not value.strip():
            raise _bad(field, f"expected a language code, got {value!r}")
        if value.strip().lower() == "auto":
            raise _bad(field, "'auto' (language detection) is not supported: name the source language")
        try:
            return resolve_code(value.strip(), self.codes)
        except UnknownLanguageError:
            raise _bad(field, f"unknown language {value!r} (this server has {', '.join(self.codes)})") from None

    def direction(self, source, target) -> tuple[str, str]:
        """The server's codes for a request's languages; the same language twice is a 400 unless
        the server was started to allow it (``lslo serve --allow-same-language``)."""
        src, tgt = self.code("source", source), self.code("target", target)
        if src == tgt and not self.allow_same_language:
            raise _bad("target", f"{target!r} is the source language too; name two different languages")
        return src, tgt

    def untrained_note(self, source, target) -> str | None:
        """A warning for a direction the run did not train on (None when it did)."""
        if self.trained is None:
            return None
        src, tgt = self.direction(source, target)
        if (src, tgt) in self.trained:
            return None
        return f"{src}->{tgt} was not trained (the run trained {len(self.trained)} directions); quality may be poor"

    async def translate(self, q, source, target) -> str | list[str]:
        """Validate, split into segments (one per line), queue, wait: LibreTranslate's answer shape."""
        if q is None:
            raise _bad("q", "missing (the text to translate: a string or a list of strings)")
        texts = q if isinstance(q, list) else [q]
        if not texts and isinstance(q, list):
            return []
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                where = f"q[{i}]" if isinstance(q, list) else "q"
                raise _bad(where, f"expected a string, got {type(t).__name__}")
        src, tgt = self.direction(source, target)
        lines = [t.split("\n") for t in texts]  # a text with line breaks: one segment per line
        segments = [line for ls in lines for line in ls]
        lim = self.limits
        if len(segments) > lim.max_segments:
            raise HTTPError(413, f"q: {len(segments)} segments (lines) exceed the limit of {lim.max_segments} "
                                 "per request (max_segments)", "too_large", limit="max_segments",
                            value=len(segments), maximum=lim.max_segments)
        chars = sum(len(s) for s in segments)
        if chars > lim.max_chars:
            raise HTTPError(413, f"q: {chars} characters exceed the limit of {lim.max_chars} per request "
                                 "(max_chars)", "too_large", limit="max_chars", value=chars, maximum=lim.max_chars)
        work = [i for i, s in enumerate(segments) if s.strip()]
        counts = [self.count_tokens(segments[i].strip()) for i in work]
        if self.max_segment_tokens is not None:
            for i, n in zip(work, counts):
                if n > self.max_segment_tokens:
                    raise HTTPError(413, f"q: segment {i} has {n} tokens, more than the model's "
                                         f"{self.max_segment_tokens} (max_segment_tokens)", "too_large",
                                    limit="max_segment_tokens", value=n, maximum=self.max_segment_tokens)
        try:
            future = self.batcher.submit([segments[i].strip() for i in work], [src] * len(work), [tgt] * len(work),
                                         counts)
        except (QueueFull, ShuttingDown) as e:
            raise HTTPError(503, str(e), "unavailable", headers={"Retry-After": str(self.retry_after_s)}) from None
        done = await asyncio.wrap_future(future)
        out = [""] * len(segments)
        for i, text in zip(work, done):
            out[i] = text
        joined, pos = [], 0
        for ls in lines:
            joined.append("\n".join(out[pos:pos + len(ls)]))
            pos += len(ls)
        return joined if isinstance(q, list) else joined[0]

    def check_key(self, request: Request, body: dict | None) -> None:
        if self.api_key is None:
            return
        given = None
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        given = given or request.headers.get("x-api-key") or request.query_params.get("api_key")
        if not given and isinstance(body, dict) and isinstance(body.get("api_key"), str):
            given = body["api_key"]
        if not given:
            raise HTTPError(401, "api_key: missing (send it as api_key, X-API-Key or Authorization: Bearer)",
                            "unauthorized", field="api_key")
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            raise HTTPError(401, "api_key: wrong key", "unauthorized", field="api_key")

    def languages(self) -> list[dict]:
        out = []
        for c in self.codes:
            try:
                name = language_name(c)
            except UnknownLanguageError:
                name = c
            out.append({"code": c, "name": name,
                        "targets": [t for t in self.codes if t != c or self.allow_same_language]})
        return out

    def close(self) -> None:
        self.batcher.close()


async def _read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"body: more than {limit} bytes (max_body_bytes)", "too_large",
                            limit="max_body_bytes", maximum=limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _parse_body(request: Request, limit: int) -> dict:
    raw = await _read_body(request, limit)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not raw.strip():
        return {}
    if kind in ("application/json", "") or kind.endswith("+json"):
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise _bad("body", f"not UTF-8 (byte {e.start})") from None
        except json.JSONDecodeError as e:
            raise _bad("body", f"malformed JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
        if not isinstance(data, dict):
            raise _bad("body", f"expected a JSON object, got {type(data).__name__}")
        return data
    if kind == "application/x-www-form-urlencoded":
        try:
            # errors="strict": a percent-escaped byte that is not UTF-8 is a 400, as in a JSON body,
            # never silently replaced by U+FFFD
            form = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False, encoding="utf-8",
                            errors="strict")
        except UnicodeDecodeError as e:
            raise _bad("body", f"not UTF-8 (byte {e.start}; percent-escapes must encode UTF-8)") from None
        return {k: (v[0] if len(v) == 1 else v) for k, v in form.items()}
    raise HTTPError(415, f"content-type: {kind!r} is not supported (send application/json or "
                         "application/x-www-form-urlencoded)", "unsupported_media_type", field="content-type")


def _endpoint(name: str, service: TranslationService):
    """Wrap a handler: HTTPError -> its JSON answer; count and time every request."""

    def wrap(handler):
        async def run(request: Request) -> Response:
            start = time.perf_counter()
            m = service.metrics
            try:
                response = await handler(request)
            except HTTPError as e:
                m.errors.labels(e.kind).inc()
                response = e.response()
            except ClientDisconnect:
                m.errors.labels("client_disconnect").inc()
                response = Response(status_code=499)
            except Exception as e:  # noqa: BLE001 - the server answers, logs, and lives on
                m.errors.labels("internal").inc()
                response = JSONResponse({"error": f"internal error: {type(e).__name__}: {e}"}, status_code=500)
            m.requests.labels(name, str(response.status_code)).inc()
            m.latency.labels(name).observe(time.perf_counter() - start)
            return response

        return run

    return wrap


def create_app(service: TranslationService) -> Starlette:
    """The Starlette app; its lifespan drains the batcher at shutdown (uvicorn does that on SIGTERM)."""
    page = resources.files("lslo.serving").joinpath("page.html").read_text(encoding="utf-8")

    @_endpoint("translate", service)
    async def translate(request: Request) -> Response:
        body = await _parse_body(request, service.limits.max_body_bytes)
        service.check_key(request, body)
        fmt = body.get("format", "text")
        if fmt not in ("text", None):
            raise _bad("format", f"{fmt!r} is not supported (only 'text')")
        alternatives = body.get("alternatives", 0)
        if alternatives not in (0, "0", None):
            raise _bad("alternatives", f"{alternatives!r}: lslo returns one translation (0)")
        for field in ("source", "target"):
            if field not in body:
                raise _bad(field, "missing (a language code, e.g. 'en')")
        text = await service.translate(body.get("q"), body["source"], body["target"])
        note = service.untrained_note(body["source"], body["target"])
        return JSONResponse({"translatedText": text}, headers={"X-LSLo-Warning": note} if note else None)

    @_endpoint("languages", service)
    async def languages(request: Request) -> Response:
        return JSONResponse(service.languages())

    @_endpoint("health", service)
    async def health(request: Request) -> Response:
        ok = service.batcher.alive
        return JSONResponse({"status": "ok" if ok else "stopping", "model": service.description,
                             "languages": len(service.codes), "directions": len(service.codes) * (len(service.codes) - 1),
                             "queue_depth": service.batcher.queue_depth, "in_flight": service.batcher.in_flight,
                             "api_key_required": service.api_key is not None,
                             "uptime_s": round(time.time() - service.started, 1)},
                            status_code=200 if ok else 503)

    @_endpoint("metrics", service)
    async def metrics(request: Request) -> Response:
        service.check_key(request, None)
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    @_endpoint("page", service)
    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await asyncio.get_running_loop().run_in_executor(None, service.close)

    routes = [
        Route("/translate", translate, methods=["POST"]),
        Route("/languages", languages, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/", index, methods=["GET"]),
    ]
    async def not_routed(request: Request, exc) -> Response:  # 404 / 405 as JSON like every other error
        return JSONResponse({"error": f"{request.method} {request.url.path}: {exc.detail}"},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_routed, 405: not_routed})
    app.state.service = service
    return app
