"""Training: run configuration, the loop, the objective, and run directories (``load_run``)."""

from lslo.training.checkpoints import (
    RunError,
    build_model,
    checkpoint_dir,
    load_base,
    load_run,
    load_weights,
    save_weights,
)
from lslo.training.config import RunConfig
from lslo.training.data import TokenizedCorpus, load_splits, run_directions
from lslo.training.loss import forward_loss, inverse_sqrt_lambda, seq2seq_loss
from lslo.training.trainer import Trainer, TrainResult

__all__ = [
    "RunConfig",
    "RunError",
    "TokenizedCorpus",
    "TrainResult",
    "Trainer",
    "build_model",
    "checkpoint_dir",
    "forward_loss",
    "inverse_sqrt_lambda",
    "load_base",
    "load_run",
    "load_splits",
    "load_weights",
    "run_directions",
    "save_weights",
    "seq2seq_loss",
]
