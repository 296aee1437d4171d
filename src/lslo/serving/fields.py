"""A request's fields, read as LibreTranslate (Flask) reads them, with the body size bounded.

- a JSON body: its object (``request.get_json()``); query-string fields fill what it lacks;
- a form body, ``application/x-www-form-urlencoded`` or ``multipart/form-data``, and the query
  string, merged as Flask's ``request.values`` merges them (query string first); a field sent
  more than once (``q=a&q=b``), or as ``q[]``, is a list;
- no body at all (deep-translator's POST with its fields in the query string): the query string.

Files of a multipart body (``/translate_file``) come back in ``Fields.files`` as bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from lslo.serving.errors import HTTPError, bad


@dataclass
class Upload:
    filename: str
    data: bytes


@dataclass
class Fields:
    values: dict = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)
    is_json: bool = False

    def get(self, name: str, default=None):
        return self.values.get(name, default)


async def read_body(request: Request, limit: int, name: str = "max_body_bytes") -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, name)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, name)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int, name: str) -> HTTPError:
    return HTTPError(413, f"body: more than {limit} bytes ({name})", "too_large", limit=name, maximum=limit)


def _merge(pairs: list[tuple[str, object]]) -> dict:
    """(name, value) pairs -> a dict; a repeated name or ``name[]`` gives a list, in order."""
    out: dict = {}
    for name, value in pairs:
        listed = name.endswith("[]")
        name = name[:-2] if listed else name
        if name in out:
            prev = out[name]
            out[name] = (prev if isinstance(prev, list) else [prev]) + [value]
        else:
            out[name] = [value] if listed else value
    return out


def _urlencoded(text: str, where: str) -> list[tuple[str, str]]:
    try:
        # errors="strict": a percent-escaped byte that is not UTF-8 is a 400, never silently U+FFFD
        form = parse_qs(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as e:
        raise bad(where, f"not UTF-8 (byte {e.start}; percent-escapes must encode UTF-8)") from None
    return [(k, v) for k, values in form.items() for v in values]


async def _multipart(request: Request, raw: bytes) -> tuple[list[tuple[str, str]], dict[str, Upload]]:
    async def stream():
        yield raw

    try:
        form = await MultiPartParser(request.headers, stream(), max_files=4, max_fields=256).parse()
    except MultiPartException as e:
        raise bad("body", f"malformed multipart/form-data ({e.message})") from None
    pairs, files = [], {}
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            files[name] = Upload(value.filename or "", await value.read())
        else:
            pairs.append((name, value))
    return pairs, files


async def read_fields(request: Request, limit: int, name: str = "max_body_bytes") -> Fields:
    """The request's fields (see the module docstring); 400/413/415 naming what is wrong
    (``name``: the limit a body over ``limit`` bytes is reported against)."""
    raw = await read_body(request, limit, name)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    query = _urlencoded(request.url.query, "query string") if request.url.query else []
    if not raw.strip():
        return Fields(_merge(query))
    if kind in ("application/json", "") or kind.endswith("+json"):
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise bad("body", f"not UTF-8 (byte {e.start})") from None
        except json.JSONDecodeError as e:
            raise bad("body", f"malformed JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
        if not isinstance(data, dict):
            raise HTTPError(400, "Invalid JSON format", "bad_request", field="body")  # LibreTranslate's text
        return Fields({**_merge(query), **data}, is_json=True)
    if kind == "application/x-www-form-urlencoded":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise bad("body", f"not UTF-8 (byte {e.start})") from None
        return Fields(_merge(query + _urlencoded(text, "body")))
    if kind == "multipart/form-data":
        pairs, files = await _multipart(request, raw)
        return Fields(_merge(query + pairs), files)
    raise HTTPError(415, f"content-type: {kind!r} is not supported (send application/json, "
                         "application/x-www-form-urlencoded or multipart/form-data)", "unsupported_media_type",
                    field="content-type")
