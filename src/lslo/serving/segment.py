"""Sentence splitting for the server: long text -> sentences -> one batch -> the text, rejoined.

A text becomes a :class:`Layout`: its pieces in order, the sentences to translate and the
whitespace and line breaks between them, kept as they were. ``Layout.fill`` puts the
translations back. A sentence still longer than the model's positions is cut at whitespace
(at characters for text without spaces) until each piece fits, so no line is ever refused
for its length.

Splitters are chosen by name through :data:`SPLITTERS`; the default is the one that measured
best on the testbed's help text (``benchmarks/sentence_split.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lslo.errors import LSLoError

DEFAULT_SPLITTER = "sentencex"


class SplitterError(LSLoError):
    """An unknown splitter name or a missing library."""


def _sentencex() -> Callable[[str, str], list[str]]:
    from sentencex import segment

    return lambda lang, text: list(segment(lang, text))


def _pysbd() -> Callable[[str, str], list[str]]:
    import pysbd
    from pysbd.languages import LANGUAGE_CODES

    cache: dict[str, object] = {}

    def split(lang: str, text: str) -> list[str]:
        code = lang if lang in LANGUAGE_CODES else "en"  # pysbd knows 23 languages
        if code not in cache:
            cache[code] = pysbd.Segmenter(language=code, clean=False)
        return cache[code].segment(text)

    return split


def _lines(lang: str, text: str) -> list[str]:
    return [text]  # no splitting inside a line (each line is one segment)


SPLITTERS: dict[str, Callable[[], Callable[[str, str], list[str]]]] = {
    "sentencex": _sentencex,
    "pysbd": _pysbd,
    "lines": lambda: _lines,
}


def make_splitter(name: str) -> Callable[[str, str], list[str]]:
    if name not in SPLITTERS:
        raise SplitterError(f"sentence splitter {name!r}: expected one of {', '.join(SPLITTERS)}")
    try:
        return SPLITTERS[name]()
    except ImportError as e:
        raise SplitterError(f"sentence splitter {name!r} needs the {e.name} package (pip install {e.name})") from None


@dataclass
class Layout:
    """A text as pieces: ``pieces[i]`` for i in ``slots`` is a sentence to translate, the rest stays."""

    pieces: list[str] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)

    @property
    def sentences(self) -> list[str]:
        return [self.pieces[i] for i in self.slots]

    def add(self, text: str, translate: bool) -> None:
        if not text:
            return
        if translate and any(ch.isalnum() for ch in text):  # punctuation or symbols alone stay as they are
            self.slots.append(len(self.pieces))
        self.pieces.append(text)

    def fill(self, translations: Sequence[str]) -> str:
        if len(translations) != len(self.slots):
            raise ValueError(f"fill: {len(translations)} translations for {len(self.slots)} sentences")
        out = list(self.pieces)
        for i, t in zip(self.slots, translations):
            out[i] = t
        return "".join(out)


def _sentences_in(line: str, found: list[str]) -> list[tuple[int, int]]:
    """Where each sentence the splitter returned lies in ``line`` (stripped spans), in order;
    the whole line when the splitter changed the text so that its sentences cannot be found."""
    spans, pos = [], 0
    for s in found:
        s = s.strip()
        if not s:
            continue
        at = line.find(s, pos)
        if at < 0:
            stripped = line.strip()
            start = line.find(stripped) if stripped else 0
            return [(start, start + len(stripped))] if stripped else []
        spans.append((at, at + len(s)))
        pos = at + len(s)
    return spans


def _cut(text: str, fits: Callable[[str], bool]) -> list[str]:
    """``text`` cut into pieces that fit, at the whitespace nearest the middle (at the middle
    character when there is none); the pieces joined give ``text`` back exactly."""
    if fits(text) or len(text) < 2:
        return [text]
    mid = len(text) // 2
    spaces = [i for i, ch in enumerate(text) if ch.isspace() and 0 < i < len(text) - 1]
    at = min(spaces, key=lambda i: abs(i - mid)) + 1 if spaces else mid
    return _cut(text[:at], fits) + _cut(text[at:], fits)


def layout(text: str, lang: str, split: Callable[[str, str], list[str]],
           fits: Callable[[str], bool] | None = None) -> Layout:
    """``text`` -> its :class:`Layout`: line breaks and whitespace kept, sentences to translate.

    ``fits(sentence)``: whether the model can take it (None: any length); longer sentences are cut."""
    out = Layout()
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        pos = 0
        for start, end in _sentences_in(body, split(lang, body) if body.strip() else []):
            out.add(body[pos:start], False)
            sentence = body[start:end]
            if fits is None:
                out.add(sentence, True)
            else:
                for piece in _cut(sentence, fits):
                    core = piece.strip()
                    lead = piece[:len(piece) - len(piece.lstrip())]
                    out.add(lead, False)
                    out.add(core, True)
                    out.add(piece[len(lead) + len(core):], False)
            pos = end
        out.add(body[pos:], False)
        out.add(line[len(body):], False)
    return out
