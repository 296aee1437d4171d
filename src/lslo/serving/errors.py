"""Errors as LibreTranslate words them (clients match these texts), with lslo's field names added.

Every error answer is JSON ``{"error": text, ...}``. ``text`` is LibreTranslate's for the same
case (``app.py``'s ``abort(...)`` descriptions), so that clients which match on it (Dialect:
``is not supported``, ``Invalid API key``, ``exceeds text limit``) recognise it; the extra keys
(``field``, ``limit``, ``value``, ``maximum``) say which field or limit, for people and scripts.
"""

from __future__ import annotations

from starlette.responses import JSONResponse


class HTTPError(Exception):
    def __init__(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None, **extra):
        super().__init__(message)
        self.status, self.message, self.kind, self.headers, self.extra = status, message, kind, headers, extra

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.message, **self.extra}, status_code=self.status, headers=self.headers)


def bad(field: str, message: str) -> HTTPError:
    """A 400 naming a field, in lslo's words (for what LibreTranslate has no text of its own)."""
    return HTTPError(400, f"{field}: {message}", "bad_request", field=field)


def missing(name: str) -> HTTPError:
    """LibreTranslate: ``Invalid request: missing %(name)s parameter`` (also for an empty ``q``)."""
    return HTTPError(400, f"Invalid request: missing {name} parameter", "bad_request", field=name)


def not_supported(lang: str, field: str) -> HTTPError:
    """LibreTranslate: ``%(lang)s is not supported``."""
    return HTTPError(400, f"{lang} is not supported", "bad_request", field=field)


def exceeds(size: int, limit: int, which: str) -> HTTPError:
    """LibreTranslate's char_limit and batch_limit answer:
    ``Invalid request: request (%(size)s) exceeds text limit (%(limit)s)``."""
    return HTTPError(400, f"Invalid request: request ({size}) exceeds text limit ({limit})", "too_large",
                     limit=which, value=size, maximum=limit)


def key_required() -> HTTPError:
    """LibreTranslate, when a key is required and none was sent (``access_check``)."""
    return HTTPError(400, "Please contact the server operator to get an API key", "unauthorized", field="api_key")


def invalid_key() -> HTTPError:
    """LibreTranslate, for a key it does not know (``access_check``)."""
    return HTTPError(403, "Invalid API key", "forbidden", field="api_key")
