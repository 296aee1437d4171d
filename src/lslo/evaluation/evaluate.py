"""Evaluation: beam search in every direction, scored per direction and per group of
directions by resource level (metrics: :mod:`lslo.evaluation.metrics`).
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Any

from tqdm.auto import tqdm

from lslo.data.corpus import MultiWayCorpus
from lslo.evaluation.metrics import SpBleu, chrf_pp
from lslo.evaluation.tables import group_order
from lslo.tuner.model import LSLoModel


def group_of(levels: dict[str, str], src: str, tgt: str) -> str:
    return f"{levels[src]}->{levels[tgt]}"


def evaluate_model(
    model: LSLoModel,
    corpus: MultiWayCorpus,
    directions: list[tuple[str, str]],
    *,
    beam: int = 5,
    batch_size: int = 32,
    max_new_tokens: int = 200,
    length_penalty: float = 1.0,
    engine: str = "lslo",
    early_stopping: bool = False,
    spbleu: SpBleu | None = None,
    max_segments: int | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Translate every direction (batches mix directions) and score each one."""
    spbleu = spbleu or SpBleu.for_model("auto", getattr(model, "tokenizer", None))
    if not spbleu.available:
        warnings.warn(
            "spBLEU unavailable: sacrebleu's flores SentencePiece model is not on disk and no eval.spm_model "
            "was given; reporting chrF++ only",
            stacklevel=2,
        )
    n = len(corpus) if not max_segments else min(max_segments, len(corpus))
    jobs = [(s, t, i) for s, t in directions for i in range(n)]
    # Sort by source length so batches are dense; they mix directions freely.
    jobs.sort(key=lambda j: (len(corpus.texts[j[0]][j[2]]), j))
    hyps: dict[tuple[str, str], list[str]] = {d: [""] * n for d in directions}
    bar = tqdm(total=len(jobs), desc="translating", disable=quiet, leave=False, dynamic_ncols=True)
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        out = model.translate(
            [corpus.texts[s][i] for s, _, i in chunk], [s for s, _, _ in chunk], [t for _, t, _ in chunk],
            batch_size=batch_size, num_beams=beam, max_new_tokens=max_new_tokens, length_penalty=length_penalty,
            engine=engine, early_stopping=early_stopping,
        )
        for (s, t, i), h in zip(chunk, out):
            hyps[(s, t)][i] = h
        bar.update(len(chunk))
    bar.close()
    levels = {c: model.config.language(c).level for c in model.config.codes}
    return score_hypotheses(hyps, corpus, directions, levels, n, spbleu, beam)


def score_hypotheses(
    hyps: dict[tuple[str, str], list[str]],
    corpus: MultiWayCorpus,
    directions: list[tuple[str, str]],
    levels: dict[str, str],
    n: int,
    spbleu: SpBleu,
    beam: int,
) -> dict[str, Any]:
    """Score translations of the first ``n`` segments of every direction against ``corpus``: chrF++
    and (when available) spBLEU per direction, averaged per resource group (``levels``) and over all,
    with signatures; the structure :func:`evaluate_model` returns (``lslo.hf`` scores the hypotheses
    of a Trainer's ``predict_with_generate`` with it)."""
    per_dir: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[dict[str, float]]] = defaultdict(list)
    for s, t in directions:
        refs = corpus.texts[t][:n]
        chrf_score, chrf_sig = chrf_pp(hyps[(s, t)], refs)
        row = {"src": s, "tgt": t, "group": group_of(levels, s, t), "segments": n, "chrf++": chrf_score}
        if spbleu.available:
            row["spbleu"] = spbleu.score(hyps[(s, t)], refs)
        per_dir[f"{s}-{t}"] = row
        groups[row["group"]].append(row)
        groups["all"].append(row)
    metrics = ["chrf++"] + (["spbleu"] if spbleu.available else [])
    avg = {
        g: {"directions": len(rows), **{m: sum(r[m] for r in rows) / len(rows) for m in metrics}}
        for g, rows in groups.items()
    }
    return {
        "signatures": {
            "chrf++": f"chrF2++|{chrf_sig}|beam:{beam}",
            **({"spbleu": f"{spbleu.signature}|{spbleu.bleu_signature}|beam:{beam}"} if spbleu.available else {}),
        },
        "beam": beam,
        "segments_per_direction": n,
        "directions": per_dir,
        "groups": dict(sorted(avg.items(), key=lambda kv: group_order(kv[0]))),
        "hypotheses": {f"{s}-{t}": h for (s, t), h in hyps.items()},
    }


