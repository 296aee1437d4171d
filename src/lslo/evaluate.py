"""Evaluation: beam search in every direction, spBLEU and chrF++ per direction and per group.

spBLEU is BLEU on SentencePiece pieces. sacrebleu's own ``flores101``/``flores200``
tokenizers are used when their model file is already on disk (sacrebleu would
otherwise try to download it); else a SentencePiece model the user names, applied
to hypotheses and references before BLEU with ``tokenize='none'``; with neither,
only chrF++ is reported, with a warning. Every score carries a signature saying
exactly how it was computed.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import sacrebleu
import torch
from sacrebleu.metrics import BLEU, CHRF
from tqdm.auto import tqdm

from lslo.data.corpus import MultiWayCorpus
from lslo.model import LSLoModel

SACREBLEU_SPM_FILES = {"flores101": "sacrebleu_tokenizer_spm.model", "flores200": "flores200sacrebleuspm"}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class SpBleu:
    """spBLEU with a known SentencePiece model, and a signature that names it."""

    def __init__(self, preferred: str = "flores200", spm_model: str | None = None) -> None:
        self.mode = None
        self.signature = ""
        sacre_dir = Path(os.environ.get("SACREBLEU", Path.home() / ".sacrebleu")) / "models"
        local = sacre_dir / SACREBLEU_SPM_FILES[preferred]
        if local.is_file():
            self.mode, self.tokenize = "sacrebleu", preferred
            self.model_file = local
        elif spm_model:
            path = Path(spm_model)
            if not path.is_file():
                raise FileNotFoundError(f"eval.spm_model: {spm_model} does not exist")
            import sentencepiece as spm

            self.mode, self.tokenize = "spm", "none"
            self.model_file = path
            self.sp = spm.SentencePieceProcessor(model_file=str(path))
        if self.mode is not None:
            digest = _sha256(self.model_file)[:12]
            name = preferred if self.mode == "sacrebleu" else f"spm:{self.model_file.name}"
            self.signature = f"spBLEU|tok:{name}|spm-sha256:{digest}|sacrebleu:{sacrebleu.__version__}"

    @property
    def available(self) -> bool:
        return self.mode is not None

    def score(self, hyps: list[str], refs: list[str]) -> float:
        bleu = BLEU(tokenize=self.tokenize)
        if self.mode == "spm":
            enc = lambda xs: [" ".join(self.sp.encode(x, out_type=str)) for x in xs]  # noqa: E731
            hyps, refs = enc(hyps), enc(refs)
        score = bleu.corpus_score(hyps, [refs]).score
        self.bleu_signature = bleu.get_signature().format()
        return score


def chrf_pp(hyps: list[str], refs: list[str]) -> tuple[float, str]:
    chrf = CHRF(word_order=2)
    score = chrf.corpus_score(hyps, [refs]).score
    return score, chrf.get_signature().format()


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
    spbleu: SpBleu | None = None,
    max_segments: int | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Translate every direction (batches mix directions) and score each one."""
    spbleu = spbleu or SpBleu()
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
        )
        for (s, t, i), h in zip(chunk, out):
            hyps[(s, t)][i] = h
        bar.update(len(chunk))
    bar.close()
    levels = {c: model.config.language(c).level for c in model.config.codes}
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
        "groups": dict(sorted(avg.items(), key=lambda kv: _group_order(kv[0]))),
        "hypotheses": {f"{s}-{t}": h for (s, t), h in hyps.items()},
    }


def _group_order(name: str) -> tuple[int, int]:
    if name == "all":
        return (9, 9)
    order = {"high": 0, "medium": 1, "low": 2}
    a, b = name.split("->")
    return (order.get(a, 5), order.get(b, 5))


def markdown_table(scores: dict[str, Any], title: str = "") -> str:
    metrics = [m for m in ("spbleu", "chrf++") if m in scores["signatures"]]
    lines = [f"### {title}"] if title else []
    lines += ["| group | directions | " + " | ".join(metrics) + " |", "|---|---:|" + "---:|" * len(metrics)]
    for g, row in scores["groups"].items():
        lines.append(f"| {g} | {row['directions']} | " + " | ".join(f"{row[m]:.2f}" for m in metrics) + " |")
    lines.append("")
    for m in metrics:
        lines.append(f"- {m}: `{scores['signatures'][m]}`")
    return "\n".join(lines) + "\n"


def heatmap(scores: dict[str, Any], path: Path, metric: str | None = None, codes: list[str] | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = metric or ("spbleu" if "spbleu" in scores["signatures"] else "chrf++")
    rows = scores["directions"].values()
    codes = codes or sorted({r["src"] for r in rows} | {r["tgt"] for r in rows})
    grid = torch.full((len(codes), len(codes)), float("nan"))
    for r in rows:
        grid[codes.index(r["src"]), codes.index(r["tgt"])] = r[metric]
    fig, ax = plt.subplots(figsize=(1 + 0.55 * len(codes), 0.8 + 0.5 * len(codes)))
    im = ax.imshow(grid.numpy(), cmap="viridis")
    ax.set_xticks(range(len(codes)), codes)
    ax.set_yticks(range(len(codes)), codes)
    ax.set_xlabel("target")
    ax.set_ylabel("source")
    for i in range(len(codes)):
        for j in range(len(codes)):
            if not torch.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=7, color="w")
    fig.colorbar(im, ax=ax, label=metric)
    ax.set_title(f"{metric} per direction")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_scores(scores: dict[str, Any], out_dir: Path, title: str = "", codes: list[str] | None = None) -> None:
    """scores.json, scores.md, heatmap.png and hyps/<src>-<tgt>.txt."""
    out_dir.mkdir(parents=True, exist_ok=True)
    hyp_dir = out_dir / "hyps"
    hyp_dir.mkdir(exist_ok=True)
    for name, lines in scores["hypotheses"].items():
        (hyp_dir / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    body = {k: v for k, v in scores.items() if k != "hypotheses"}
    (out_dir / "scores.json").write_text(json.dumps(body, indent=2, ensure_ascii=False), encoding="utf-8")
    (out_dir / "scores.md").write_text(markdown_table(scores, title), encoding="utf-8")
    heatmap(scores, out_dir / "heatmap.png", codes=codes)
