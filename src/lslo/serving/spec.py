"""``GET /spec``: the API as an OpenAPI 3 document, and the endpoint table the docs print.

Its ``info.title`` is ``LibreTranslate``: clients check it to accept a server as a LibreTranslate
instance (Dialect's ``validate_instance``); the description says which server it is.
"""

from __future__ import annotations

TEXT = {"type": "string"}
TEXTS = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
ERROR = {"description": "error", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": TEXT}, "required": ["error"]}}}}

# path, method, summary, request fields {name: (schema, required, description)}
ENDPOINTS: list[tuple[str, str, str, dict]] = [
    ("/translate", "post", "Translate text(s) from one language to another", {
        "q": (TEXTS, True, "text(s) to translate"),
        "source": (TEXT, True, "source language code, or auto"),
        "target": (TEXT, True, "target language code"),
        "format": ({"type": "string", "enum": ["text", "html"], "default": "text"}, False, "text or html"),
        "alternatives": ({"type": "integer", "default": 0}, False, "further translations from the beam"),
        "api_key": (TEXT, False, "API key"),
    }),
    ("/detect", "post", "Detect the language of text(s)", {
        "q": (TEXTS, True, "text(s)"), "api_key": (TEXT, False, "API key")}),
    ("/translate_file", "post", "Translate a file (.txt, .html, .htm, .docx)", {
        "file": ({"type": "string", "format": "binary"}, True, "the file (multipart/form-data)"),
        "source": (TEXT, True, "source language code, or auto"),
        "target": (TEXT, True, "target language code"), "api_key": (TEXT, False, "API key")}),
    ("/download_file/{filename}", "get", "Download a translated file", {}),
    ("/languages", "get", "The languages and their targets", {}),
    ("/frontend/settings", "get", "Settings for a front end", {}),
    ("/suggest", "post", "Submit a better translation (disabled: answers 403)", {
        "q": (TEXT, True, "original text"), "s": (TEXT, True, "suggested translation"),
        "source": (TEXT, True, "source language"), "target": (TEXT, True, "target language")}),
    ("/spec", "get", "This document", {}),
    ("/health", "get", "Liveness, queue depth, uptime", {}),
    ("/metrics", "get", "Prometheus metrics", {}),
]


def _operation(summary: str, fields: dict) -> dict:
    op: dict = {"summary": summary, "responses": {"200": {"description": "OK"}, "400": ERROR, "403": ERROR,
                                                  "429": ERROR, "503": ERROR}}
    if fields:
        schema = {"type": "object", "properties": {k: {**s, "description": d} for k, (s, _, d) in fields.items()},
                  "required": [k for k, (_, req, _) in fields.items() if req]}
        kinds = ["multipart/form-data"] if "file" in fields else \
            ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"]
        op["requestBody"] = {"required": True, "content": {k: {"schema": schema} for k in kinds}}
    return op


def openapi(version: str, description: str) -> dict:
    paths: dict = {}
    for path, method, summary, fields in ENDPOINTS:
        op = _operation(summary, fields)
        if "{filename}" in path:
            op["parameters"] = [{"name": "filename", "in": "path", "required": True, "schema": TEXT}]
        paths.setdefault(path, {})[method] = op
    return {"openapi": "3.0.3",
            "info": {"title": "LibreTranslate", "version": version, "license": {"name": "Apache-2.0"},
                     "description": f"lslo serve ({description}): a LibreTranslate-compatible API over one "
                                    "language-specific LoRA model that serves every direction."},
            "paths": paths}
