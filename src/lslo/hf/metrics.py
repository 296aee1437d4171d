"""A ready ``compute_metrics`` for ``Seq2SeqTrainer(predict_with_generate=True)``: chrF++ and
spBLEU per direction and per resource group, with sacrebleu signatures, scored by the code that
scores ``lslo evaluate`` (:func:`lslo.evaluation.score_hypotheses`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lslo.evaluation import SpBleu, score_hypotheses
from lslo.hf.data import DirectionEvalSet
from lslo.hf.model import TrainerInputError, as_lslo_model
from lslo.tuner.languages import generation_prompt


class DirectionMetrics:
    """``compute_metrics=DirectionMetrics(eval_set, model)``.

    Returns a flat dict the Trainer logs with its ``eval_`` prefix: ``chrf++`` and ``spbleu``
    (average over all directions, as ``lslo evaluate``'s ``all`` row), ``chrf++/<group>`` per
    resource group (``high->low`` ...) and, with ``per_direction``, ``chrf++/<src>-<tgt>``. The full
    result of the last call, in ``lslo evaluate``'s structure (signatures, per-direction rows,
    groups, hypotheses), is ``self.last``.

    Args:
        eval_set: the :func:`~lslo.hf.data.direction_eval_set` given to the Trainer as ``eval_dataset``.
        model: the model being trained (its tokenizer decodes, its levels group).
        num_beams: the beam size written in the signatures (default: ``model.generation_config.num_beams``,
            else 5, :meth:`LSLoModel.generate`'s default); set the same on the model's generation config.
        spbleu: an :class:`~lslo.evaluation.SpBleu`; default as ``lslo evaluate`` picks it, with
            ``spm_model`` standing in when sacrebleu's model is not on disk.
    """

    def __init__(self, eval_set: DirectionEvalSet, model: Any, *, num_beams: int | None = None,
                 spbleu: SpBleu | None = None, spm_model: str | None = None, per_direction: bool = True) -> None:
        if not isinstance(eval_set, DirectionEvalSet):
            raise TrainerInputError("DirectionMetrics: eval_set must come from lslo.hf.direction_eval_set")
        self.eval_set = eval_set
        self.model = model
        self.lslo = as_lslo_model(model)
        self.num_beams = num_beams
        self.spbleu = spbleu or SpBleu.for_model("auto", self.lslo.tokenizer, spm_model)
        self.per_direction = per_direction
        self.last: dict[str, Any] | None = None

    def beam(self) -> int:
        if self.num_beams is not None:
            return int(self.num_beams)
        config = getattr(self.model, "generation_config", None)
        return int(getattr(config, "num_beams", None) or 5)

    def hypotheses(self, predictions: Any) -> dict[tuple[str, str], list[str]]:
        """Decode the Trainer's generated ids (prompt stripped, as ``translate`` does) into each
        direction's list of hypotheses, in segment order."""
        preds = predictions[0] if isinstance(predictions, (tuple, list)) else predictions
        preds = np.asarray(preds)
        jobs = self.eval_set.jobs
        if preds.ndim != 2:
            raise TrainerInputError(f"compute_metrics: predictions have shape {preds.shape}, not token ids; "
                                    "set predict_with_generate=True in Seq2SeqTrainingArguments")
        if preds.shape[0] != len(jobs):
            raise TrainerInputError(f"compute_metrics: {preds.shape[0]} predictions for an eval set of {len(jobs)} "
                                    "rows; give the Trainer this DirectionMetrics' eval set as eval_dataset")
        tokens = self.lslo.language_tokens()
        pad = tokens.pad_id
        preds = np.where(preds < 0, pad, preds)  # the Trainer pads across batches with -100
        widths = {code: generation_prompt(tokens, self.lslo.lang_ids([code])).shape[1] for code in self.lslo.config.codes}
        hyps = {d: [""] * self.eval_set.segments for d in self.eval_set.directions}
        tokenizer = self.lslo.tokenizer
        for row, (s, t, i) in zip(preds, jobs):
            hyps[(s, t)][i] = tokenizer.decode(row[widths[t]:].tolist(), skip_special_tokens=True).strip()
        return hyps

    def __call__(self, eval_pred: Any) -> dict[str, float]:
        predictions = getattr(eval_pred, "predictions", eval_pred)
        hyps = self.hypotheses(predictions)
        levels = {c: self.lslo.config.language(c).level for c in self.lslo.config.codes}
        scores = score_hypotheses(hyps, self.eval_set.corpus, self.eval_set.directions, levels,
                                  self.eval_set.segments, self.spbleu, self.beam())
        self.last = scores
        metrics = [m for m in ("chrf++", "spbleu") if m in scores["signatures"]]
        out: dict[str, float] = {m: float(scores["groups"]["all"][m]) for m in metrics}
        for group, row in scores["groups"].items():
            if group != "all":
                out.update({f"{m}/{group}": float(row[m]) for m in metrics})
        if self.per_direction:
            for name, row in scores["directions"].items():
                out.update({f"{m}/{name}": float(row[m]) for m in metrics})
        return out


__all__ = ["DirectionMetrics"]
