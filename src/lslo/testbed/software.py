"""A third testbed set: software UI text from programs the base never saw, in the 12 languages.

The translation catalogues (``.mo``) of three desktop programs, pinned Debian packages: VLC 3.0
(``vlc-l10n``), Inkscape 1.2 (``inkscape``) and GIMP 2.10 (``gimp-data``). The base was pretrained
on LibreOffice's help and UI, so this is a *near* domain: the same kind of text (menu labels,
tooltips, option descriptions) about other software (video, vector drawing, image editing), with
its own terminology. It sits between the two committed sets: the held-out help text (the base's
own domain, chrF++ ~29) and the Wesnoth fiction (a far domain, chrF++ ~11).

Segments are aligned on (program, catalogue, msgctxt, msgid), keep the strings of at least
:data:`~lslo.testbed.corpus.MIN_FT_WORDS` English words that are translated in all 12 languages,
with the keyboard-mnemonic markers (``_`` in GTK, ``&`` in Qt) removed and every string with a
placeholder, markup or code dropped (:func:`lslo.testbed.corpus.clean`). Disjoint from the
pretraining text by construction: every segment in which any language's text matches a
pretraining text (exactly or after :func:`~lslo.testbed.corpus.loose`) is dropped, checked through
the committed pretraining fingerprints. The base is already trained, so this set is built *after*
it and never changes the pretraining corpus.

Split: each program ships one catalogue per component, so a file-level split would put whole
programs in one half; instead every program's segments are split by a hash of the segment id
(dev : devtest = 1 : 1), like a user who fine-tunes on part of a product's translation memory and
translates the rest. No text (in its loose form) is in both halves or twice in one.

``inkscape`` is an architecture-specific package (its catalogues are not): the pin is the amd64
archive, so on another architecture ``fetch`` refuses the downloaded archive's sha256 with a
one-line error; put the amd64 ``.deb`` in the cache to rebuild there.

Rebuild: ``python -m lslo.testbed.software --out data/testbed`` (writes ``software/`` and records
itself in ``software/MANIFEST.json``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from lslo.errors import LSLoError
from lslo.testbed import corpus as C
from lslo.testbed.sources import Package, default_cache, fetch

PREFIX = "software"
MIN_SEGMENTS = 500  # per split

# program: (pinned package, licence as stated in the package's copyright file)
PROGRAMS: dict[str, tuple[Package, str]] = {
    "vlc": (Package("vlc-l10n", "3.0.23-0+deb12u1",
                    "69ab8c034e2097e1050ff62e8048e0ad5e1f72991456a34d02bcecc8a8083136"), "GPL-2+ / LGPL-2.1+"),
    "inkscape": (Package("inkscape", "1.2.2-2+b1", "5e767932868c0e6909400986d5df7dbad540c9716512c1449bb7b8c6e864a3a8",
                         filename="inkscape_1.2.2-2+b1_amd64.deb"), "GPL-2+"),
    "gimp": (Package("gimp-data", "2.10.34-1+deb12u10",
                     "89007a69d4ef2b0440e5419e75d4112cfd1c49e97db38220d210b9f86322be7c"), "GPL-3+"),
}
# the catalogues' locale folder for each of our language codes (English is the msgid)
LOCALES = {"de": "de", "fr": "fr", "it": "it", "es": "es", "ru": "ru", "zh": "zh_CN", "ja": "ja",
           "tr": "tr", "pl": "pl", "vi": "vi", "id": "id"}
_MO = re.compile(r"/locale/([^/]+)/LC_MESSAGES/([^/]+)\.mo$")


def strip_mnemonic(text: str) -> str:
    """Remove keyboard-mnemonic markers: GTK's ``_`` and Qt's ``&`` before a letter (``_Open``,
    ``Save _As``, ``&Open``, ``Sa&ve``) and the parenthesised form of CJK translations
    (``打开(_O)``); ``&&`` is a literal ``&``. An underscore inside a word (``file_name``) stays, so
    :func:`lslo.testbed.corpus.clean` drops that string as code."""
    t = text.replace("&&", "\x00")
    t = re.sub(r"\s*\([_&]\w\)", "", t)
    t = re.sub(r"(?<!\w)[_&](?=\w)", "", t)
    t = re.sub(r"(?<=\w)&(?=\w)", "", t)
    return t.replace("\x00", "&")


def read_programs(cache: Path, download: bool) -> dict[str, dict[str, str]]:
    """``{"program/catalogue#msgctxt\\x04msgid": {code: text}}`` from the pinned packages."""
    wanted = {loc: code for code, loc in LOCALES.items()}
    rows: dict[str, dict[str, str]] = defaultdict(dict)
    for program, (pkg, _) in PROGRAMS.items():
        C.add_catalogue_rows(rows, fetch(pkg, cache, download).read_bytes(), _MO, wanted,
                             lambda cat, key, program=program: f"{program}/{cat}#{key}", strip_mnemonic)
    return rows


def split_set(rows: dict[str, dict[str, str]], pretrain_fps: set[int]) -> tuple[dict[str, list], dict]:
    """(dev/devtest segments, counts of what was dropped and why)."""
    dropped = Counter()
    segs = []
    for sid, texts in C.dedupe_on_english(rows, PREFIX):
        if len(texts) != len(C.CODES):
            dropped["not translated in all 12 languages"] += 1
        elif len(texts["en"].split()) < C.MIN_FT_WORDS:
            dropped[f"fewer than {C.MIN_FT_WORDS} English words"] += 1
        elif any(C.fingerprint(c, t) in pretrain_fps for c, t in texts.items()):
            dropped["a text also in the pretraining corpus"] += 1
        else:
            segs.append((sid, texts))
    out: dict[str, list] = {s: [] for s in C.SPLITS}
    seen: dict[str, set[str]] = {c: set() for c in C.CODES}
    for sid, texts in segs:
        if any(C.loose(texts[c]) in seen[c] for c in C.CODES):
            dropped["a text repeated (loose form) in another segment"] += 1
            continue
        for c in C.CODES:
            seen[c].add(C.loose(texts[c]))
        out["dev" if C.bucket(sid) < 0.5 else "devtest"].append((sid, texts))
    return out, dict(sorted(dropped.items()))


def load_fingerprints(testbed: Path) -> set[int]:
    import numpy as np

    path = testbed / C.FINGERPRINTS
    if not path.is_file():
        raise C.CorpusBuildError(f"{path}: missing; the pretraining fingerprints come with the testbed "
                                 "(python -m lslo.testbed.corpus)")
    return set(np.load(path, allow_pickle=False).tolist())


def build(out: Path, cache: Path, download: bool = True) -> dict:
    """Write ``out/software`` (FLORES-200 layout, ids, MANIFEST.json, LICENSES.md); returns the manifest."""
    rows = read_programs(cache, download)
    parts, dropped = split_set(rows, load_fingerprints(out))
    for split in C.SPLITS:
        if len(parts[split]) < MIN_SEGMENTS:
            raise C.CorpusBuildError(f"software {split}: {len(parts[split])} segments, need >= {MIN_SEGMENTS}")
    files = {k.split("/", 1)[1]: v for k, v in C.flores_files(PREFIX, parts).items()}
    files["LICENSES.md"] = licenses_md().encode("utf-8")
    words = {s: round(sum(len(t["en"].split()) for _, t in v) / len(v), 1) for s, v in parts.items()}
    manifest = {
        "name": "lslo testbed: software UI set",
        "builder": "lslo.testbed.software",
        "rebuild": "python -m lslo.testbed.software --out data/testbed",
        "packages": [{**pkg.describe(), "program": prog, "licence": lic} for prog, (pkg, lic) in PROGRAMS.items()],
        "languages": list(C.CODES),
        "split_by": "hash of the segment id, within every program (dev : devtest = 1 : 1)",
        "segments": {s: len(v) for s, v in parts.items()},
        "per_program": {s: dict(sorted(Counter(sid.split(":", 1)[1].split("/", 1)[0] for sid, _ in v).items()))
                        for s, v in parts.items()},
        "mean_english_words": words,
        "dropped": dropped,
        "pretraining_fingerprints_sha256": hashlib.sha256((out / C.FINGERPRINTS).read_bytes()).hexdigest(),
        "files": {name: {"sha256": hashlib.sha256(d).hexdigest(), "bytes": len(d)} for name, d in sorted(files.items())},
    }
    files["MANIFEST.json"] = (json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
    for name, data in sorted(files.items()):
        path = out / PREFIX / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return manifest


def licenses_md() -> str:
    lines = ["# Licences of `data/testbed/software`", "",
             "Built by `lslo.testbed.software` from the translation catalogues of pinned Debian packages",
             "(versions and sha256 in `MANIFEST.json`). The files are derived works of those programs'",
             "translations and keep their licences (as stated in each package's `usr/share/doc/*/copyright`);",
             "they are not covered by lslo's own licence.", ""]
    names = {"vlc": "VLC media player 3.0, the VideoLAN project and its translators",
             "inkscape": "Inkscape 1.2, the Inkscape developers and translators",
             "gimp": "GIMP 2.10, the GIMP developers and translators"}
    for prog, (pkg, lic) in PROGRAMS.items():
        lines.append(f"- `{pkg.name}` {pkg.version}: {names[prog]}. {lic}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lslo.testbed.software", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("data/testbed"), help="the testbed folder (holds the "
                    "pretraining fingerprints; software/ is written in it)")
    ap.add_argument("--cache", type=Path, default=None, help="package cache (default $LSLO_CACHE or "
                    "~/.cache/lslo/packages)")
    ap.add_argument("--no-download", action="store_true")
    args = ap.parse_args(argv)
    try:
        m = build(args.out, args.cache or default_cache(), download=not args.no_download)
    except LSLoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"software: {m['segments']} segments {m['per_program']}; dropped {m['dropped']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
