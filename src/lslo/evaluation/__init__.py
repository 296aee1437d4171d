"""Evaluation: beam search in every direction; spBLEU / chrF++ with signatures; tables."""

from lslo.evaluation.evaluate import evaluate_model, group_of, score_hypotheses
from lslo.evaluation.metrics import SpBleu, chrf_pp
from lslo.evaluation.tables import heatmap, markdown_table, write_scores

__all__ = ["SpBleu", "chrf_pp", "evaluate_model", "group_of", "heatmap", "markdown_table", "score_hypotheses",
           "write_scores"]
