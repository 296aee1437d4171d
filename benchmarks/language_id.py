"""Language identification for ``lslo serve``'s ``source: "auto"``: accuracy and speed per detector.

Each detector of :data:`lslo.serving.detect.DETECTORS` is restricted to the testbed's languages (as
the server restricts it to a run's) and labels two kinds of text, per language, from devtest:

- ``ui``: short UI strings (the software corpus, 1-4 words: menu items, buttons, labels);
- ``sentence``: one sentence of help text (the held-out corpus, 8 words or more).

Accuracy is the share labelled with the right language; ``ms_per_text`` is the mean time of one
call on one thread (so the detectors compare at equal work, in one run); ``rss_mb`` is the
resident memory a detector adds once it has answered, measured in a fresh process each.

    python benchmarks/language_id.py --json benchmarks/results/language_id.json
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402
from _report import emit  # noqa: E402

from lslo.data.corpus import load_corpus  # noqa: E402
from lslo.serving.detect import DETECTORS, make_detector  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "data" / "testbed"
CODES = ["de", "en", "es", "fr", "id", "it", "ja", "pl", "ru", "tr", "vi", "zh"]


def words(text: str, code: str) -> int:
    """Whitespace words; for ja/zh (no spaces) one word per two characters."""
    return max(1, len(text) // 2) if code in ("ja", "zh") else len(text.split())


def samples(kind: str, per_language: int, seed: int) -> dict[str, list[str]]:
    corpus = load_corpus(str(ROOT / ("software" if kind == "ui" else "heldout")), "devtest", CODES)
    rng = random.Random(seed)
    out = {}
    for code in CODES:
        keep = [t.strip() for t in corpus.texts[code] if t.strip()]
        if kind == "ui":
            keep = [t for t in keep if 1 <= words(t, code) <= 4]
        else:
            keep = [t for t in keep if words(t, code) >= 8]
        rng.shuffle(keep)
        out[code] = keep[:per_language]
    return out


def measure(name: str, data: dict[str, dict[str, list[str]]]) -> dict:
    start = time.perf_counter()
    det = make_detector(name, CODES)
    det.detect("warm-up: models that load on first use load here")
    load_s = time.perf_counter() - start
    row = {"detector": name, "load_s": round(load_s, 2), "unknown_languages": det.unknown}
    for kind, by_lang in data.items():
        right = total = 0
        per_lang = {}
        t0 = time.perf_counter()
        for code, texts in by_lang.items():
            ok = sum(det.detect(t)[0][0] == code for t in texts)
            per_lang[code] = round(ok / max(1, len(texts)), 3)
            right += ok
            total += len(texts)
        seconds = time.perf_counter() - t0
        row[kind] = {"accuracy": round(right / total, 4), "texts": total,
                     "ms_per_text": round(1000 * seconds / total, 3), "per_language": per_lang,
                     "worst_language": min(per_lang, key=per_lang.get)}
    return row


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory(name: str) -> float:
    """Resident MB the detector adds after one answer, in a fresh interpreter (torch already loaded)."""
    import subprocess

    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); import torch, language_id as b; a = b._rss_mb(); "
            f"d = b.make_detector({name!r}, b.CODES); d.detect('Die Kinder spielen im Park.'); "
            "print(round(b._rss_mb() - a, 1))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--detectors", default=",".join(DETECTORS))
    p.add_argument("--per-language", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    data = {kind: samples(kind, args.per_language, args.seed) for kind in ("ui", "sentence")}
    rows = [measure(n, data) | {"rss_mb": memory(n)} for n in args.detectors.split(",")]
    best = max(rows, key=lambda r: (r["ui"]["accuracy"] + r["sentence"]["accuracy"]))
    emit({"benchmark": "language_id", "command": "python benchmarks/language_id.py " + " ".join(argv or sys.argv[1:]),
          "languages": CODES, "per_language": args.per_language,
          "texts": {k: {"corpus": "software" if k == "ui" else "heldout", "split": "devtest",
                        "words": "1-4" if k == "ui" else ">= 8"} for k in data},
          "detectors": rows, "best": best["detector"],
          "machine": machine(threads=1)}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
