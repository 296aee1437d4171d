"""The training objective and the learning-rate schedule (fairseq semantics)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lslo.tuner.model import LSLoModel


def inverse_sqrt_lambda(warmup: int, lr: float, init_lr: float):
    """fairseq's inverse_sqrt: linear warmup from init_lr to lr, then lr * sqrt(warmup / step)."""
    warmup = max(1, warmup)

    def f(step: int) -> float:
        if step < warmup:
            return (init_lr + (lr - init_lr) * step / warmup) / lr
        return math.sqrt(warmup / max(step, 1))

    return f


def seq2seq_loss(logits: torch.Tensor, labels: torch.Tensor, smoothing: float) -> tuple[torch.Tensor, int]:
    """Summed label-smoothed cross-entropy over target tokens, and the token count."""
    loss = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
        ignore_index=-100, label_smoothing=smoothing, reduction="sum",
    )
    return loss, int((labels != -100).sum())


def forward_loss(model: LSLoModel, batch: dict[str, torch.Tensor], smoothing: float):
    out = model(
        batch["src_lang"], batch["tgt_lang"], input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
        decoder_input_ids=batch["decoder_input_ids"], decoder_attention_mask=batch["decoder_attention_mask"],
    )
    return seq2seq_loss(out.logits, batch["labels"], smoothing)


