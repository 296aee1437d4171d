"""``/translate_file`` and ``/download_file``: .txt, .html/.htm and .docx files, kept in a temporary
directory for ``ttl_s`` seconds (one hour by default) and removed when the server stops.

A file is read into *items*, each a text and its format (a .txt file is one text, an HTML file
one HTML document, a .docx file one text per non-empty paragraph, table cells included); the
service translates them as it translates ``/translate``'s texts, and ``render`` writes the
translations back into a file of the same kind. In a .docx paragraph the translation takes the
first run's formatting (runs are the paragraph's differently formatted stretches: a translation
has no word-for-word correspondence to spread them over).
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from lslo.serving.errors import HTTPError, bad

SUPPORTED = (".txt", ".html", ".htm", ".docx")
_TOKEN = re.compile(r"^[0-9a-f]{32}\.[A-Za-z0-9._-]{1,200}$")


def safe_name(filename: str) -> str:
    """A file name without directories or unusual characters (what werkzeug's secure_filename keeps)."""
    name = Path(filename.replace("\\", "/")).name
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return name or "file"


class Document:
    """A file's translatable items, and how to write the translated file."""

    def __init__(self, items: list[tuple[str, str]], render: Callable[[list[str]], bytes]):
        self.items, self._render = items, render

    def render(self, translations: list[str]) -> bytes:
        return self._render(translations)


def _text(data: bytes, fmt: str) -> Document:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise bad("file", f"not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    return Document([(text, fmt)], lambda out: out[0].encode("utf-8"))


def _paragraphs(doc) -> list:
    """Body paragraphs, then the paragraphs of every table cell (nested tables too), in order."""
    out = list(doc.paragraphs)

    def cells(tables):
        for table in tables:
            for row in table.rows:
                for cell in row.cells:
                    out.extend(cell.paragraphs)
                    cells(cell.tables)

    cells(doc.tables)
    seen, unique = set(), []
    for p in out:  # a merged cell appears once per grid position
        if id(p._p) not in seen:
            seen.add(id(p._p))
            unique.append(p)
    return unique


def _docx(data: bytes) -> Document:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        doc = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise bad("file", f"not a .docx document ({type(e).__name__})") from None
    paras = [p for p in _paragraphs(doc) if "".join(r.text for r in p.runs).strip()]

    def render(out: list[str]) -> bytes:
        for p, text in zip(paras, out):
            runs = p.runs
            runs[0].text = text
            for r in runs[1:]:
                r.text = ""
        buf = io.BytesIO()
        doc.save(buf)
        return buf.getvalue()

    return Document([("".join(r.text for r in p.runs), "text") for p in paras], render)


def read_document(filename: str, data: bytes) -> Document:
    """The items of an uploaded file (400 for an empty file or an unsupported kind, in LibreTranslate's words)."""
    ext = Path(filename).suffix.lower()
    if ext not in SUPPORTED:
        raise HTTPError(400, "Invalid request: file format not supported", "bad_request", field="file",
                        supported=list(SUPPORTED))
    if not data:
        raise HTTPError(400, "Invalid request: empty file", "bad_request", field="file")
    if ext == ".docx":
        return _docx(data)
    return _text(data, "html" if ext in (".html", ".htm") else "text")


class FileStore:
    """Translated files, each under a random name in one temporary directory."""

    def __init__(self, ttl_s: float = 3600.0, root: str | Path | None = None):
        self.ttl_s = ttl_s
        self.root = Path(tempfile.mkdtemp(prefix="lslo-files-", dir=root))
        self._lock = threading.Lock()

    def save(self, original: str, data: bytes) -> str:
        """Store ``data``; the token names it in ``/download_file/<token>``."""
        self.sweep()
        token = f"{uuid.uuid4().hex}.{safe_name(original)}"
        (self.root / token).write_bytes(data)
        return token

    @staticmethod
    def well_formed(token: str) -> bool:
        return bool(_TOKEN.match(token))

    def path(self, token: str) -> Path | None:
        """The stored file for ``token`` (None: malformed, unknown or expired)."""
        if not self.well_formed(token):
            return None
        p = self.root / token
        return p if p.is_file() else None

    def sweep(self) -> None:
        cutoff = time.time() - self.ttl_s
        with self._lock:
            for p in self.root.iterdir():
                try:
                    if p.stat().st_mtime < cutoff:
                        p.unlink()
                except FileNotFoundError:
                    pass

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def download_name(token: str) -> str:
    """The name a downloaded file gets: the uploaded one (LibreTranslate drops its uuid prefix)."""
    return token.split(".", 1)[1]
