"""The paper's gradual pruning inside a plain ``transformers.Trainer``: a ``TrainerCallback``.

It drives :class:`lslo.pruning.Pruner` (the code ``lslo train`` prunes with): the cubic schedule,
layer-wise cross-language pools, masks kept exactly zero through the optimiser (gradients masked,
pruned entries of the weights and of the optimiser state zeroed after every step).

* ``unit: step``: the schedule advances with the Trainer's optimizer steps (``global_step``);
* ``unit: epoch``: it advances at the end of every complete epoch, as in ``lslo train`` (an epoch
  cut short by ``max_steps`` does not count).

Pruning happens in ``on_step_end`` / ``on_epoch_end``, which the Trainer calls before it evaluates
and saves, so checkpoints and evaluations see the masks of their step. With
``load_best_model_at_end``, a checkpoint evaluated before the schedule ended is never kept as the
best (a denser model than the final one would win unfairly; ``lslo train`` saves ``best`` only at
the final ratio): the callback clears the Trainer's best until an evaluation at the final ratio.
A resumed run gets its masks from the checkpoint's adapters and continues the schedule from there.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from lslo.hf.model import TrainerInputError, as_lslo_model
from lslo.pruning import Pruner, PruningConfig, find_lslo_modules

_EPS = 1e-6


class PruningCallback(TrainerCallback):
    """``callbacks=[PruningCallback(PruningConfig(enabled=True, unit="step", start=..., duration=...))]``.

    ``config`` is a :class:`~lslo.pruning.PruningConfig` or a dict of its fields (``enabled`` is
    implied); ``self.pruner`` is the :class:`~lslo.pruning.Pruner` of the current ``train()`` call."""

    def __init__(self, config: PruningConfig | dict[str, Any] | None = None) -> None:
        if config is None or isinstance(config, dict):
            try:
                config = PruningConfig.from_dict({"enabled": True, **(config or {})})
            except ValueError as e:
                raise TrainerInputError(str(e)) from None
        if not isinstance(config, PruningConfig):
            raise TrainerInputError(f"PruningCallback: expected a PruningConfig or a dict, got {type(config).__name__}")
        self.config = config
        self.pruner: Pruner | None = None

    # ----------------------------------------------------------------- schedule
    def _end(self) -> float:
        return float(self.config.start + self.config.duration)

    def _now(self, state: Any) -> float | None:
        """The schedule's time after this step/epoch: optimizer steps, or completed epochs (None
        in the middle of an epoch)."""
        if self.config.unit == "step":
            return float(state.global_step)
        epoch = float(state.epoch or 0.0)
        return float(round(epoch)) if abs(epoch - round(epoch)) < _EPS else None

    def _epoch_of_step(self, state: Any, step: int) -> float | None:
        for entry in reversed(state.log_history):
            if entry.get("step") == step and "epoch" in entry:
                return float(entry["epoch"])
        return None

    def _forget_unfair_best(self, state: Any) -> None:
        """Clear the Trainer's best checkpoint when it was evaluated before the schedule ended."""
        if not self.config.enabled or state.best_global_step is None:
            return
        step = state.best_global_step
        t = float(step) if self.config.unit == "step" else self._epoch_of_step(state, step)
        if t is None or t < self._end() - _EPS:
            state.best_metric = None
            state.best_global_step = None
            state.best_model_checkpoint = None

    # ---------------------------------------------------------------- callbacks
    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        if model is None or optimizer is None:
            raise TrainerInputError("PruningCallback: the Trainer gave no model or optimizer at train begin")
        if self.pruner is not None:
            self.pruner.detach()
        modules = find_lslo_modules(as_lslo_model(model))
        if not modules:
            raise TrainerInputError("PruningCallback: the model has no LSLo layers to prune")
        self.pruner = Pruner(modules, self.config)
        self.pruner.attach(getattr(optimizer, "optimizer", optimizer))  # accelerate wraps the torch optimizer
        if state.global_step > 0:  # resumed: the masks came with the checkpoint; take up the schedule there
            t = float(state.global_step) if self.config.unit == "step" else float(int(state.epoch + _EPS))
            self.pruner.step(t)
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if self.pruner is not None and self.config.unit == "step":
            self.pruner.step(float(state.global_step))
        self._forget_unfair_best(state)
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        t = self._now(state)
        if self.pruner is not None and self.config.unit == "epoch" and t is not None:
            self.pruner.step(t)
        self._forget_unfair_best(state)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.pruner is not None and logs is not None and "loss" in logs:
            logs["prune_ratio"] = round(self.pruner.current_ratio, 6)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self.pruner is not None:
            self.pruner.detach()  # masks stay in the model; the next train() attaches its own optimizer
        return control


__all__ = ["PruningCallback"]
