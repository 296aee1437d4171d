"""Read LibreOffice's translated help pages (Debian ``libreoffice-help-<lang>`` packages).

Every help page exists once per language under ``usr/share/libreoffice/help/<lang>/``, with
the same relative path, and every paragraph or heading carries a stable element id
(``par_id3146957``, ``hd_id3147291``) that is the same in every language. A segment is the
text of one ``<p>``/``<h1-6>`` with such an id, keyed by ``(page path, element id)``.

What is left out of a segment's text: elements marked ``hidden`` (the help switches
between macOS and default wording with hidden spans; the default wording is kept),
``<script>``/``<style>``, and the page chrome outside ``div#DisplayArea``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from lslo.testbed.debian import DebError, deb_files

HELP_ROOT = "usr/share/libreoffice/help/"
_ID = re.compile(r"^(par|hd)_id\w+$")
_BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_SKIP = {"script", "style"}


def normalize(text: str) -> str:
    """Collapse every run of Unicode whitespace to one space."""
    return " ".join(text.split())


class _HelpPage(HTMLParser):
    """``{element id: text}`` of the id-carrying paragraphs and headings of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []  # (tag, opens a hidden/skipped subtree)
        self.hidden = 0
        self.in_area = 0  # depth inside div#DisplayArea (0: outside)
        self.block: tuple[str, int] | None = None  # (id, stack depth) of the open segment
        self.buf: list[str] = []
        self.segments: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            return
        a = dict(attrs)
        hides = "hidden" in a or tag in _SKIP
        self.stack.append((tag, hides))
        if hides:
            self.hidden += 1
        if tag == "div" and a.get("id") == "DisplayArea":
            self.in_area = len(self.stack)
        if (self.in_area and self.block is None and tag in _BLOCKS and not self.hidden
                and _ID.match(a.get("id") or "")):
            self.block = (a["id"], len(self.stack))
            self.buf = []

    def handle_endtag(self, tag):
        if tag in _VOID or not any(t == tag for t, _ in self.stack):
            return  # a stray end tag: ignore it rather than unbalance the stack
        while self.stack:
            depth = len(self.stack)
            t, hides = self.stack.pop()
            if hides:
                self.hidden -= 1
            if self.block is not None and depth == self.block[1]:
                text = normalize("".join(self.buf))
                if text:
                    self.segments.setdefault(self.block[0], text)
                self.block = None
            if depth == self.in_area:
                self.in_area = 0
            if t == tag:
                break

    def handle_data(self, data):
        if self.block is not None and not self.hidden:
            self.buf.append(data)


def parse_page(html: str) -> dict[str, str]:
    """The id-keyed segments of one help page (first occurrence of an id wins)."""
    p = _HelpPage()
    p.feed(html)
    p.close()
    return p.segments


def read_help_deb(deb: bytes) -> tuple[str, dict[tuple[str, str], str]]:
    """``(help language folder, {(page path, element id): text})`` of one help ``.deb``.
    Pages are visited in sorted path order."""
    files = deb_files(deb, lambda p: p.startswith(HELP_ROOT) and p.endswith(".html"))
    pages: dict[str, bytes] = {}
    lang_dir = None
    for name in sorted(files):
        lang, _, page = name[len(HELP_ROOT):].partition("/")
        if page.startswith("text/"):
            lang_dir = lang_dir or lang
            pages[page] = files[name]
    if lang_dir is None:
        raise DebError("no help pages under usr/share/libreoffice/help/<lang>/text/ (not a help package?)")
    out: dict[tuple[str, str], str] = {}
    for page in sorted(pages):
        for seg_id, text in parse_page(pages[page].decode("utf-8", errors="replace")).items():
            out[(page, seg_id)] = text
    return lang_dir, out
