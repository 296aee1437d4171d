"""Mixed-direction request traffic shared by the serving and generation benchmarks."""

from __future__ import annotations

import random


def traffic(corpus: dict[str, list[str]], codes: list[str], n: int, seed: int) -> list[dict]:
    """``n`` requests ``{"q", "source", "target"}``: each a random segment of the source language's
    list in a random direction over all N*(N-1) directions of ``codes`` (seeded)."""
    rng = random.Random(seed)
    dirs = [(s, t) for s in codes for t in codes if s != t]
    size = len(corpus[codes[0]])
    out = []
    for _ in range(n):
        s, t = rng.choice(dirs)
        out.append({"q": corpus[s][rng.randrange(size)], "source": s, "target": t})
    return out
