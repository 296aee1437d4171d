"""Sentence splitters for ``lslo serve``: how often each recovers the sentences of a paragraph.

Paragraphs are built from consecutive devtest sentences of the testbed's held-out help text
(each a single sentence: sentence punctuation at its end and nowhere
inside, as many help segments hold two), three at a time, joined by a space (nothing for ja/zh,
which write no space between sentences). A paragraph counts as right when the splitter returns
exactly its three sentences. ``ms_per_paragraph`` is the mean time of one call (one thread).

    python benchmarks/sentence_split.py --json benchmarks/results/sentence_split.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402
from _report import emit  # noqa: E402

from lslo.data.corpus import load_corpus  # noqa: E402
from lslo.serving.segment import make_splitter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "data" / "testbed" / "heldout"
CODES = ["de", "en", "es", "fr", "id", "it", "ja", "pl", "ru", "tr", "vi", "zh"]
ENDS = tuple(".!?。！？")


def one_sentence(code: str, text: str) -> bool:
    """Ends in sentence punctuation and has none inside (many help segments hold two sentences)."""
    if not text.endswith(ENDS) or text.startswith("."):
        return False
    inner = text[:-1]
    if code in ("ja", "zh"):
        return len(text) >= 6 and not any(ch in inner for ch in ENDS)
    return len(text.split()) >= 3 and not any(f"{ch} " in inner for ch in ENDS)


def paragraphs(code: str, texts: list[str], size: int, limit: int) -> list[list[str]]:
    keep = [t.strip() for t in texts if one_sentence(code, t.strip())]
    return [keep[i:i + size] for i in range(0, len(keep) - size + 1, size)][:limit]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--splitters", default="sentencex,pysbd")
    p.add_argument("--size", type=int, default=3)
    p.add_argument("--per-language", type=int, default=100)
    p.add_argument("--json")
    args = p.parse_args(argv)
    corpus = load_corpus(str(ROOT), "devtest", CODES)
    data = {c: paragraphs(c, corpus.texts[c], args.size, args.per_language) for c in CODES}
    rows = []
    for name in args.splitters.split(","):
        split = make_splitter(name)
        per_lang, right, total, seconds = {}, 0, 0, 0.0
        for code, paras in data.items():
            joiner = "" if code in ("ja", "zh") else " "
            ok = 0
            for para in paras:
                t0 = time.perf_counter()
                got = [s.strip() for s in split(code, joiner.join(para)) if s.strip()]
                seconds += time.perf_counter() - t0
                ok += got == para
            per_lang[code] = round(ok / max(1, len(paras)), 3)
            right, total = right + ok, total + len(paras)
        rows.append({"splitter": name, "exact": round(right / total, 4), "paragraphs": total,
                     "ms_per_paragraph": round(1000 * seconds / total, 3), "per_language": per_lang,
                     "worst_language": min(per_lang, key=per_lang.get)})
    emit({"benchmark": "sentence_split",
          "command": "python benchmarks/sentence_split.py " + " ".join(argv or sys.argv[1:]),
          "corpus": "heldout devtest", "sentences_per_paragraph": args.size, "languages": CODES,
          "splitters": rows, "most_exact": max(rows, key=lambda r: r["exact"])["splitter"],
          "machine": machine(threads=1)}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
