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
import os
from pathlib import Path

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF

SACREBLEU_SPM_FILES = {"flores101": "sacrebleu_tokenizer_spm.model", "flores200": "flores200sacrebleuspm"}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def default_spm_tokenizer(tokenizer) -> str:
    """sacrebleu's spBLEU tokenizer for a model family: ``flores200`` for NLLB (its tokenizer
    class), ``flores101`` for M2M-100 and everything else (the paper reports ``--tokenize
    flores101``)."""
    name = type(tokenizer).__name__ if tokenizer is not None else ""
    return "flores200" if name.startswith("Nllb") else "flores101"


class SpBleu:
    """spBLEU with a known SentencePiece model, and a signature that names it."""

    @classmethod
    def for_model(cls, preferred: str, tokenizer, spm_model: str | None = None) -> SpBleu:
        """``preferred`` ``auto`` picks by model family (:func:`default_spm_tokenizer`)."""
        return cls(default_spm_tokenizer(tokenizer) if preferred == "auto" else preferred, spm_model)

    def __init__(self, preferred: str = "flores101", spm_model: str | None = None) -> None:
        self.preferred = preferred
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
            # a local model stands in for sacrebleu's: the signature says so, and which it replaces
            name = preferred if self.mode == "sacrebleu" else f"spm:{self.model_file.name}(instead-of:{preferred})"
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
