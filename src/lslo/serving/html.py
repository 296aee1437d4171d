"""``format: "html"``: translate the text between the tags, and leave every other byte as it was.

The markup is tokenised by Python's ``html.parser`` (the parser BeautifulSoup uses by default),
which reports where each tag, comment and run of text starts in the source. Runs of text are
translated (each through the caller's sentence ``layout``, which keeps its surrounding
whitespace) and written back in their place; everything else is copied from the source
unchanged: tags with their attributes as written, comments, doctype, entities outside translated
text, whitespace between tags, and unclosed or stray tags of broken HTML. A tree builder such as
BeautifulSoup would rewrite those (it closes tags, re-quotes attributes and collapses
whitespace-only text), so the source positions are used instead.

Not translated: the text inside ``<code>``, ``<pre>``, ``<script>``, ``<style>``, ``<kbd>``,
``<samp>``, ``<var>``, ``<textarea>``, ``<noscript>``, ``<template>``, and inside any element with
``translate="no"`` or ``class="notranslate"``, with everything nested in them. A translated run
is written escaped (``&amp;``, ``&lt;``, ``&gt;``, ``&nbsp;``), so the text means what it meant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser

from lslo.serving.segment import Layout

KEEP = frozenset({"code", "pre", "script", "style", "kbd", "samp", "var", "textarea", "noscript", "template"})
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                  "track", "wbr"})


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\xa0", "&nbsp;")


def _keeps(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    a = {k.lower(): (v or "") for k, v in attrs}
    return tag in KEEP or a.get("translate", "").lower() == "no" or "notranslate" in a.get("class", "").split()


class _Tokens(HTMLParser):
    """Records (offset, kind, keep) for each event; text events are "text", markup events "markup"."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=False)
        self.starts = [0]
        for line in source.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))
        self.events: list[tuple[int, str, bool]] = []
        self.stack: list[tuple[str, bool]] = []  # open elements and whether text inside is kept

    def _at(self) -> int:
        line, col = self.getpos()
        return self.starts[line - 1] + col

    def _inside_kept(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def _text(self, *_):
        self.events.append((self._at(), "text", self._inside_kept()))

    handle_data = handle_entityref = handle_charref = _text

    def _markup(self, *_):
        self.events.append((self._at(), "markup", False))

    handle_comment = handle_decl = handle_pi = unknown_decl = handle_startendtag = _markup

    def handle_starttag(self, tag, attrs):
        self._markup()
        if tag not in VOID:
            self.stack.append((tag, self._inside_kept() or _keeps(tag, attrs)))

    def handle_endtag(self, tag):
        self._markup()
        names = [name for name, _ in self.stack]
        if tag in names:  # a stray end tag closes nothing
            del self.stack[len(names) - 1 - names[::-1].index(tag):]


@dataclass
class HtmlDoc:
    """The source, its runs of text to translate (spans), and each run's sentence layout."""

    source: str
    spans: list[tuple[int, int]]
    layouts: list[Layout]

    @property
    def sentences(self) -> list[str]:
        return [s for lay in self.layouts for s in lay.sentences]

    def fill(self, translations: list[str]) -> str:
        if len(translations) != len(self.sentences):
            raise ValueError(f"fill: {len(translations)} translations for {len(self.sentences)} sentences")
        out, pos, used = [], 0, 0
        for (start, end), lay in zip(self.spans, self.layouts):
            n = len(lay.slots)
            out.append(self.source[pos:start])
            out.append(escape(lay.fill(translations[used:used + n])))
            pos, used = end, used + n
        out.append(self.source[pos:])
        return "".join(out)


def html_doc(markup: str, layout: Callable[[str], Layout]) -> HtmlDoc:
    """Tokenise ``markup``; ``layout(text)`` splits one run of text into sentences (see :mod:`.segment`)."""
    tokens = _Tokens(markup)
    tokens.feed(markup)
    tokens.close()
    events = tokens.events + [(len(markup), "markup", False)]
    spans, layouts = [], []
    i = 0
    while i < len(events) - 1:
        start, kind, keep = events[i]
        j = i
        while events[j][1] == "text" and events[j][2] == keep:  # a run: consecutive text events
            j += 1
        if kind == "text" and not keep:
            end = events[j][0]
            lay = layout(unescape(markup[start:end]))
            if lay.slots:
                spans.append((start, end))
                layouts.append(lay)
        i = max(j, i + 1)
    return HtmlDoc(markup, spans, layouts)
