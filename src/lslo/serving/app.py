"""The HTTP API: LibreTranslate's endpoints over one dynamic mixed-direction batcher.

Endpoints (LibreTranslate's paths, fields, answers, status codes and error texts):
``POST /translate``, ``POST /detect``, ``POST /translate_file`` + ``GET /download_file/<name>``,
``GET /languages``, ``GET /frontend/settings``, ``POST /suggest`` (disabled), ``GET /spec``
(OpenAPI); and lslo's own ``GET /health``, ``GET /metrics`` (Prometheus) and ``GET /`` (a web page).

Fields may come as JSON, a form (urlencoded or multipart) or the query string
(:mod:`lslo.serving.fields`). Every error is JSON ``{"error": text, ...}``
(:mod:`lslo.serving.errors`): 400 (bad or missing field, unknown language, limits, no key),
403 (wrong key; suggestions), 404/405 (no such route), 413 (body size), 415 (content type),
429 (``--req-limit``) and 503 with ``Retry-After`` (queue full or shutting down).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from importlib import resources

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from lslo.serving.errors import HTTPError, missing
from lslo.serving.fields import read_fields
from lslo.serving.files import SUPPORTED, FileStore, download_name, read_document
from lslo.serving.service import Limits, TranslationService
from lslo.serving.spec import openapi

__all__ = ["HTTPError", "Limits", "TranslationService", "create_app"]


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


async def _fields(service: TranslationService, request: Request, file: bool = False):
    """The request's fields, after the rate limit and the key (LibreTranslate's order)."""
    if file:  # a file, and room for the form around it
        fields = await read_fields(request, service.limits.max_file_bytes + (64 << 10), "max_file_bytes")
    else:
        fields = await read_fields(request, service.limits.max_body_bytes)
    service.check_rate(request, fields.values)
    service.check_key(request, fields.values)
    return fields


def _warned(answer: dict, note: str | None) -> JSONResponse:
    return JSONResponse(answer, headers={"X-LSLo-Warning": note} if note else None)


def frontend_settings(service: TranslationService) -> dict:
    """LibreTranslate's ``/frontend/settings`` fields, for this server."""
    codes = service.codes
    source = {"code": "auto", "name": "Auto Detect"} if service.detector is not None else \
        {"code": codes[0], "name": service.name(codes[0])}
    target = codes[1] if len(codes) > 1 else codes[0]  # LibreTranslate: the second language
    return {"charLimit": service.limits.max_chars, "frontendTimeout": service.frontend_timeout_ms,
            "apiKeys": service.api_key is not None, "keyRequired": service.api_key is not None,
            "suggestions": False, "filesTranslation": True, "supportedFilesFormat": list(SUPPORTED),
            "language": {"source": source, "target": {"code": target, "name": service.name(target)}}}


def _text_routes(service: TranslationService) -> list[Route]:
    @_endpoint("translate", service)
    async def translate(request: Request) -> Response:
        f = await _fields(service, request)
        answer, note = await service.translate(f.get("q"), f.get("source"), f.get("target"), f.get("format"),
                                               f.get("alternatives", 0))
        return _warned(answer, note)

    @_endpoint("detect", service)
    async def detect(request: Request) -> Response:
        f = await _fields(service, request)
        return JSONResponse(await service.detect(f.get("q")))

    @_endpoint("suggest", service)
    async def suggest(request: Request) -> Response:  # LibreTranslate without --suggestions
        raise HTTPError(403, "Suggestions are disabled on this server.", "forbidden")

    return [Route("/translate", translate, methods=["POST"]), Route("/detect", detect, methods=["POST"]),
            Route("/suggest", suggest, methods=["POST"])]


def _file_routes(service: TranslationService, store: FileStore) -> list[Route]:
    @_endpoint("translate_file", service)
    async def translate_file(request: Request) -> Response:
        f = await _fields(service, request, file=True)
        upload = f.files.get("file")
        if upload is None:
            raise missing("file")
        for name in ("source", "target"):
            if not f.get(name):
                raise missing(name)
        doc = read_document(upload.filename, upload.data)
        pieces = await service.pieces([t for t, _ in doc.items], f.get("source"), f.get("target"),
                                      doc.items[0][1] if doc.items else "text")
        renders = await service.run_file(pieces)
        token = store.save(upload.filename, doc.render(renders))
        return _warned({"translatedFileUrl": str(request.url_for("download_file", filename=token))},
                       service.untrained_note([(p.src, p.tgt) for p in pieces if p.layout is not None]))

    @_endpoint("download_file", service)
    async def download_file(request: Request) -> Response:
        token = request.path_params["filename"]
        path = store.path(token)
        if path is None and not store.well_formed(token):
            raise HTTPError(400, "Invalid filename", "bad_request", field="filename")  # LibreTranslate's text
        if path is None:
            raise HTTPError(404, f"download_file: no file {token!r} (translated files are kept "
                                 f"{store.ttl_s:g} s)", "not_found", field="filename")
        return FileResponse(path, filename=download_name(token))

    return [Route("/translate_file", translate_file, methods=["POST"]),
            Route("/download_file/{filename}", download_file, methods=["GET"], name="download_file")]


def _info_routes(service: TranslationService, page: str) -> list[Route]:
    from lslo import __version__

    @_endpoint("languages", service)
    async def languages(request: Request) -> Response:
        return JSONResponse(service.languages())

    @_endpoint("frontend_settings", service)
    async def settings(request: Request) -> Response:
        return JSONResponse(frontend_settings(service))

    @_endpoint("spec", service)
    async def spec(request: Request) -> Response:
        return JSONResponse(openapi(__version__, service.description))

    @_endpoint("health", service)
    async def health(request: Request) -> Response:
        ok = service.batcher.alive
        n = len(service.codes)
        return JSONResponse({"status": "ok" if ok else "stopping", "model": service.description,
                             "languages": n, "directions": n * (n - 1),
                             "queue_depth": service.batcher.queue_depth, "in_flight": service.batcher.in_flight,
                             "api_key_required": service.api_key is not None,
                             "detector": getattr(service.detector, "name", None),
                             "uptime_s": round(time.time() - service.started, 1)},
                            status_code=200 if ok else 503)

    @_endpoint("metrics", service)
    async def metrics(request: Request) -> Response:
        service.check_key(request, None)
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    @_endpoint("page", service)
    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    return [Route("/languages", languages, methods=["GET"]), Route("/frontend/settings", settings, methods=["GET"]),
            Route("/spec", spec, methods=["GET"]), Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]), Route("/", index, methods=["GET"])]


def create_app(service: TranslationService, cors_origins: Sequence[str] | None = None,
               files_ttl_s: float = 3600.0) -> Starlette:
    """The Starlette app; its lifespan drains the batcher and removes the translated files at shutdown
    (uvicorn runs it on SIGTERM). ``cors_origins``: the origins browsers may call from (``*``: any);
    None: no CORS headers."""
    page = resources.files("lslo.serving").joinpath("page.html").read_text(encoding="utf-8")
    store = FileStore(files_ttl_s)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            await asyncio.get_running_loop().run_in_executor(None, service.close)
            store.close()

    async def not_routed(request: Request, exc) -> Response:  # 404 / 405 as JSON like every other error
        return JSONResponse({"error": f"{request.method} {request.url.path}: {exc.detail}"},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    middleware = []
    if cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                                     allow_headers=["Authorization", "Content-Type", "X-API-Key"],
                                     expose_headers=["Authorization", "X-LSLo-Warning"], max_age=60 * 60 * 24 * 20))
    routes = _text_routes(service) + _file_routes(service, store) + _info_routes(service, page)
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware,
                    exception_handlers={404: not_routed, 405: not_routed})
    app.state.service, app.state.files = service, store
    return app
