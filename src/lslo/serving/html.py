"""``format: "html"``: translate the text between the tags, and nothing else.

The markup is parsed by BeautifulSoup (Python's ``html.parser`` underneath: forgiving of broken
HTML, no C extension). Each text node becomes one or more sentences to translate (the caller's
``layout``, which also keeps its surrounding whitespace); everything else is written back as it
was: tags and their attributes, comments, doctype, and the text of ``<code>``, ``<pre>``,
``<script>``, ``<style>``, ``<kbd>``, ``<samp>``, ``<var>``, ``<textarea>`` and of any element
marked ``translate="no"`` (or ``class="notranslate"``), with everything inside them.

Entities are decoded by the parser and written back escaped where HTML needs it (``&amp;``,
``&lt;``, ``&gt;``, and ``&nbsp;`` for a no-break space), so ``&copy;`` comes back as the
character it stands for, which is the same text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lslo.serving.segment import Layout

KEEP = frozenset({"code", "pre", "script", "style", "kbd", "samp", "var", "textarea", "noscript", "template"})


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\xa0", "&nbsp;")


def _kept(node) -> bool:
    for parent in node.parents:
        if parent.name in KEEP:
            return True
        attrs = getattr(parent, "attrs", None) or {}
        if str(attrs.get("translate", "")).lower() == "no" or "notranslate" in (attrs.get("class") or []):
            return True
    return False


@dataclass
class HtmlDoc:
    """A parsed document, its translatable text nodes, and each node's sentence layout."""

    soup: object
    nodes: list
    layouts: list[Layout]

    @property
    def sentences(self) -> list[str]:
        return [s for lay in self.layouts for s in lay.sentences]

    def fill(self, translations: list[str]) -> str:
        from bs4.formatter import HTMLFormatter

        pos = 0
        for node, lay in zip(self.nodes, self.layouts):
            n = len(lay.slots)
            node.replace_with(lay.fill(translations[pos:pos + n]))
            pos += n
        if pos != len(translations):
            raise ValueError(f"fill: {len(translations)} translations for {pos} sentences")
        from bs4 import Doctype, Tag

        formatter = HTMLFormatter(entity_substitution=_escape, void_element_close_prefix=None)
        out = []
        for child in self.soup.contents:  # bs4 writes a line break after a doctype: keep the original's
            if isinstance(child, Doctype):
                out.append(f"<!DOCTYPE {child}>")
            elif isinstance(child, Tag):
                out.append(child.decode(formatter=formatter))
            else:
                out.append(child.output_ready(formatter))
        return "".join(out)


def html_doc(markup: str, layout: Callable[[str], Layout]) -> HtmlDoc:
    """Parse ``markup``; ``layout(text)`` splits one text node into sentences (see :mod:`.segment`)."""
    from bs4 import BeautifulSoup, NavigableString

    soup = BeautifulSoup(markup, "html.parser")
    nodes, layouts = [], []
    for node in list(soup.find_all(string=True)):
        if type(node) is not NavigableString or not node.strip() or _kept(node):
            continue  # comments, CDATA, doctype and declarations are NavigableString subclasses
        lay = layout(str(node))
        if lay.slots:
            nodes.append(node)
            layouts.append(lay)
    return HtmlDoc(soup, nodes, layouts)
