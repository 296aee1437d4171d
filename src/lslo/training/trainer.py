"""The training loop: one for LSLo, one shared LoRA and full fine-tuning, with exact resume.

Everything a run makes goes into its run directory:

    config.yaml            the resolved run configuration
    checkpoints/last/      weights (+ masks) and trainer_state.pt: optimizer, scheduler,
                           sampler, pruner and RNG states, so a resumed run continues to
                           the same result as an uninterrupted one
    checkpoints/best/      weights of the epoch with the lowest validation loss
    metrics.csv, tb/       logs (CSV always, TensorBoard when installed)
    parameters.json        trainable parameters per language (after training: what survived pruning)

Checkpoints are written to a temporary directory and renamed into place, so a kill
while saving leaves the previous checkpoint loadable.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import shutil
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from lslo.data.sampling import DirectionBatchSampler, Example, all_direction_examples
from lslo.pruning import Pruner, find_lslo_modules
from lslo.training.checkpoints import (
    STATE_FILE,
    RunError,
    atomic_write_dir,
    build_model,
    checkpoint_dir,
    load_base,
    load_weights,
    resolve_device,
    rng_state,
    save_weights,
    saved_rank,
    set_rng_state,
)
from lslo.training.config import RunConfig
from lslo.training.data import TokenizedCorpus, load_splits, run_directions
from lslo.training.loss import forward_loss, inverse_sqrt_lambda
from lslo.tuner.config import ConfigError
from lslo.tuner.model import LSLoModel
from lslo.tuner.serialization import read_adapter_config


def _to(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


class _StopFlag:
    """Ctrl-C / SIGTERM ask the loop to stop at the next update boundary and checkpoint."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self):
        def handler(signum, frame):
            if self.requested:  # second Ctrl-C: stop now
                raise KeyboardInterrupt
            self.requested = True
            tqdm.write("lslo: stopping after this update and saving a checkpoint (Ctrl-C again to abort)")

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, handler)
            except ValueError:  # not in the main thread
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


# --------------------------------------------------------------------------- trainer
@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    epochs: int
    best_valid_loss: float | None
    last_train_loss: float | None
    first_train_loss: float | None
    interrupted: bool
    already_finished: bool = False  # resumed a run that had reached its end: nothing was trained


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: str | Path, *, device: str | None = None, quiet: bool = False,
                 finish_hooks: Sequence[Callable[[Trainer], None]] = (),
                 epoch_hooks: Sequence[Callable[[Trainer], None]] = ()):
        """Args:
            cfg: the run configuration.
            run_dir: where checkpoints, logs and ``parameters.json`` go.
            device: ``cpu`` / ``cuda`` (default: cuda when available).
            quiet: no progress bars.
            finish_hooks: called with the trainer after training ends and ``parameters.json``
                is written (the CLI passes :func:`lslo.reporting.report_after_training`); the
                training layer itself never imports reporting.
            epoch_hooks: called with the trainer at the end of every epoch, after its pruning,
                validation (``trainer.last_valid``) and ``best`` checkpoint, before ``last`` is
                written: a hook's output for an epoch is therefore always older than the
                checkpoint a resumed run starts from, and an epoch redone after a kill calls it
                again (e.g. per-epoch scores for learning curves). A hook must not draw random
                numbers, or a resumed run would no longer equal an uninterrupted one.
        """
        self.cfg = cfg
        self.finish_hooks = list(finish_hooks)
        self.epoch_hooks = list(epoch_hooks)
        self.last_valid: float | None = None
        self.run_dir = Path(run_dir)
        self.quiet = quiet
        self.world, self.rank = int(os.environ.get("WORLD_SIZE", "1")), 0
        self.accelerator = None
        if self.world > 1:  # launched by `accelerate launch` / torchrun: data parallel
            from accelerate import Accelerator

            self.accelerator = Accelerator(cpu=(device == "cpu") or not torch.cuda.is_available())
            self.rank, self.world = self.accelerator.process_index, self.accelerator.num_processes
            self.device = self.accelerator.device
        else:
            self.device = resolve_device(device)
        self.is_main = self.rank == 0
        self.quiet = quiet or not self.is_main
        t = cfg.train
        self.precision = t.precision
        if self.precision == "auto":
            bf16_ok = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
            self.precision = "bf16" if bf16_ok else "fp32"
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        # fp16 needs loss scaling or small adapter gradients underflow to 0; bf16 does not
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.nonfinite_in_a_row = 0
        self.skipped_updates = 0

    # ---------------------------------------------------------------- setup
    def make_model(self, base, tokenizer) -> LSLoModel:
        """The model to train (architecture search overrides this)."""
        return build_model(self.cfg, base, tokenizer)

    def setup(self) -> None:
        """Seed, then the model, the data, the optimiser and schedule, and the pruner, in that order."""
        seed = self.cfg.train.seed
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)
        self._setup_model()
        self._setup_data()
        self._setup_optimizer()
        self._setup_pruner()
        self._check_pruning_fits()
        self.step = 0
        self.epoch = 0
        self.best_valid: float | None = None
        self.first_loss: float | None = None
        self.last_loss: float | None = None

    def _setup_model(self) -> None:
        cfg = self.cfg
        base, self.tokenizer = load_base(cfg, dropout=cfg.train.dropout)
        self.model = self.make_model(base, self.tokenizer).to(self.device)
        if cfg.init_from:
            self._init_from(cfg.init_from)

    def _setup_data(self) -> None:
        cfg, t = self.cfg, self.cfg.train
        self.splits = load_splits(cfg)
        self.directions = run_directions(cfg)
        lab = t.predict_language_token
        self.train_data = TokenizedCorpus(self.splits["train"], self.tokenizer, cfg.data.max_length, lab)
        self.valid_data = (TokenizedCorpus(self.splits["valid"], self.tokenizer, cfg.data.max_length, lab)
                           if self.splits["valid"] is not None else None)
        self.sampler = DirectionBatchSampler(
            self.splits["train"], self.directions, self.train_data.length, t.max_tokens,
            temperature=t.temperature, seed=t.seed, epoch_size=t.epoch_size,
        )

    def param_groups(self, params: list[torch.nn.Parameter]) -> list[dict[str, Any]]:
        """Optimiser parameter groups of the trainable ``params`` (one group; a subclass may split
        it, e.g. the architecture search gives its mixing logits their own learning rate)."""
        return [{"params": params}]

    def _setup_optimizer(self) -> None:
        t = self.cfg.train
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.trainable = params
        if not params:
            raise ConfigError("nothing to train: no positions adapted and method is not 'full'")
        self.optimizer = torch.optim.Adam(
            self.param_groups(params), lr=t.lr, betas=tuple(t.adam_betas), eps=t.adam_eps,
            weight_decay=t.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, inverse_sqrt_lambda(t.warmup_steps, t.lr, t.warmup_init_lr)
        )
        if self.cfg.trainable_languages is not None:
            self._freeze_languages(self.cfg.trainable_languages)

    def _setup_pruner(self) -> None:
        cfg = self.cfg
        self.pruner = None
        if cfg.pruning.enabled:
            if cfg.method == "full":
                raise ConfigError("pruning.enabled: pruning applies to adapters; not available with method: full")
            self.pruner = Pruner(find_lslo_modules(self.model), cfg.pruning)
            self.pruner.attach(self.optimizer)

    def _check_pruning_fits(self) -> None:
        """Say so when the pruning schedule does not fit in the training (it would otherwise end
        with fewer pruned weights than configured, or none, without a word)."""
        c, t = self.cfg.pruning, self.cfg.train
        self.pruning_note = None
        if self.pruner is None:
            return
        per_epoch = max(1, math.ceil(len(self.sampler) / t.update_freq))
        steps = t.epochs * per_epoch if not t.max_steps else min(t.max_steps, t.epochs * per_epoch)
        length = steps if c.unit == "step" else (t.epochs if not t.max_steps else min(t.epochs, steps // per_epoch))
        unit = "updates" if c.unit == "step" else "epochs"
        end = c.start + c.duration
        if end <= length:
            return
        from lslo.pruning.schedule import cubic_ratio

        reached = cubic_ratio(length, c.start, c.duration, c.final_ratio)
        if c.start >= length:
            msg = (f"pruning never runs: it starts at {c.start:g} {unit} (pruning.start) but training ends after "
                   f"{length:g} {unit}")
        else:
            msg = (f"pruning will not finish: its schedule ends at {end:g} {unit} (pruning.start + pruning.duration) "
                   f"but training ends after {length:g} {unit}, at a ratio of {reached:.2f} instead of "
                   f"{c.final_ratio:g}")
        self.pruning_note = msg + "; shorten the schedule or train longer"
        if self.is_main:
            print(f"lslo: warning: {self.pruning_note}", file=sys.stderr, flush=True)

    def _init_from(self, source: str) -> None:
        """Copy the adapters of every language the source run has (a run dir or an adapter dir)."""
        src = Path(source)
        ckpt = src if (src / "adapters.safetensors").is_file() else checkpoint_dir(src, "last")
        meta = read_adapter_config(ckpt)
        have = [lang["code"] for lang in meta["lslo"]["languages"]]
        for code in have:
            if code in self.cfg.lslo.codes and self.cfg.lslo.rank_of(code) != saved_rank(meta, code):
                raise ConfigError(f"init_from: language {code!r} has rank {saved_rank(meta, code)} in {src}, "
                                  f"{self.cfg.lslo.rank_of(code)} here")
        self.model.load_adapters(ckpt, languages=[c for c in have if c in self.cfg.lslo.codes])

    def _freeze_languages(self, trainable: list[str]) -> None:
        """Train only some languages: grads of the others are zeroed, and a post-step hook puts
        their exact values back (so Adam's weight decay or eps cannot move them by a bit)."""
        codes = self.cfg.lslo.codes
        keep = torch.tensor([c in trainable for c in codes], device=self.device)
        frozen: list[tuple[torch.nn.Parameter, torch.Tensor, torch.Tensor]] = []
        for m in self.model.lslo_modules().values():
            for p, _ in m.param_masks():
                rows = keep[m.comp_lang]  # the rows of each packed table that belong to a trained language
                mask = rows.view(-1, *([1] * (p.dim() - 1))).to(p.dtype)
                p.register_hook(lambda g, mask=mask: g * mask)
                frozen.append((p, rows, p.detach().clone()))

        def restore(optimizer, args, kwargs) -> None:
            with torch.no_grad():
                for p, rows, saved in frozen:
                    p[~rows] = saved[~rows]

        self.optimizer.register_step_post_hook(restore)

    # ------------------------------------------------------------ checkpoints
    def _state(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "pruner": self.pruner.state_dict() if self.pruner else None,
            "rng": rng_state(),
            "step": self.step,
            "epoch": self.epoch,
            "best_valid": self.best_valid,
            "first_loss": self.first_loss,
            "last_loss": self.last_loss,
            "scaler": self.scaler.state_dict(),
            "nonfinite": [self.nonfinite_in_a_row, self.skipped_updates],
        }

    def _barrier(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()

    def save_checkpoint(self, name: str = "last", with_state: bool = True) -> None:
        bad = next((n for n, p in self.model.named_parameters() if p.requires_grad and not torch.isfinite(p).all()), None)
        if bad is not None:  # never replace a good checkpoint with NaN/inf weights
            raise RunError(f"{self.run_dir}: not saving checkpoint '{name}': {bad} holds NaN/inf values")

        def write(tmp: Path) -> None:
            save_weights(self.model, tmp, self.cfg.method)
            if with_state:
                torch.save(self._state(), tmp / STATE_FILE)

        if self.is_main:  # only rank 0 writes files
            atomic_write_dir(self.run_dir / "checkpoints" / name, write)
        self._barrier()

    def load_checkpoint(self) -> None:
        ckpt = checkpoint_dir(self.run_dir, "last")
        load_weights(self.model, ckpt, self.cfg.method)
        try:
            state = torch.load(ckpt / STATE_FILE, map_location=self.device, weights_only=False)
        except FileNotFoundError:
            raise RunError(f"{ckpt / STATE_FILE}: missing (the run cannot be resumed exactly)") from None
        except Exception as e:  # EOFError, UnpicklingError, RuntimeError from a truncated zip ...
            raise RunError(f"{ckpt / STATE_FILE}: corrupt or truncated ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else 'no detail'})") from None
        self.optimizer.load_state_dict(_packed_optimizer_state(state["optimizer"], self.optimizer, self.model))
        self.scheduler.load_state_dict(state["scheduler"])
        try:
            self.sampler.load_state_dict(state["sampler"])
        except ValueError as e:
            raise RunError(f"{ckpt}: cannot resume: {e}") from None
        if self.pruner and state["pruner"] is not None:
            self.pruner.load_state_dict(state["pruner"])
        set_rng_state(state["rng"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.best_valid, self.first_loss, self.last_loss = state["best_valid"], state["first_loss"], state["last_loss"]
        if "scaler" in state:  # runs saved before loss scaling existed have neither
            if state["scaler"] and self.scaler.is_enabled():  # empty when it was saved without fp16
                self.scaler.load_state_dict(state["scaler"])
            self.nonfinite_in_a_row, self.skipped_updates = state["nonfinite"]
        self._truncate_metrics(self.step, self.epoch)

    def _truncate_metrics(self, step: int, epoch: int) -> None:
        """Drop metrics.csv rows logged after the checkpoint we resume from (a kill between a log
        line and the next checkpoint would otherwise leave them twice)."""
        path = self.run_dir / "metrics.csv"
        if not self.is_main or not path.is_file():
            return
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        head = rows[0]
        col, ecol, kcol = (head.index(k) if k in head else i for i, k in ((1, "step"), (2, "epoch"), (0, "kind")))

        def before(r: list[str]) -> bool:  # logged before the checkpoint: at or before its step and epoch
            if len(r) <= max(col, ecol) or not r[col].isdigit() or int(r[col]) > step:
                return False
            return not (r[kcol] == "valid" and r[ecol].isdigit() and int(r[ecol]) > epoch)

        keep = [head] + [r for r in rows[1:] if before(r)]
        if len(keep) != len(rows):
            tmp = path.with_suffix(".csv.tmp")
            with tmp.open("w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows(keep)
            os.replace(tmp, path)

    # ---------------------------------------------------------------- logging
    def _log(self, row: dict[str, Any]) -> None:
        if not self.is_main:
            return
        path = self.run_dir / "metrics.csv"
        fields = ["kind", "step", "epoch", "loss", "lr", "prune_ratio", "tokens", "elapsed_s"]
        new = not path.exists()
        with path.open("a", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            if new:
                w.writeheader()
            w.writerow({k: row.get(k, "") for k in fields})
        if self.tb is not None:
            if row.get("loss") not in (None, ""):
                self.tb.add_scalar(f"{row['kind']}/loss", float(row["loss"]), row["step"])
            if row.get("lr") not in (None, ""):
                self.tb.add_scalar("train/lr", float(row["lr"]), row["step"])
            if row.get("prune_ratio") not in (None, ""):
                self.tb.add_scalar("train/prune_ratio", float(row["prune_ratio"]), row["step"])

    # ------------------------------------------------------------------- loop
    def _autocast(self):
        if self.autocast_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _update(self, group: list[list[Example]]) -> tuple[float | None, int]:
        """One optimizer update over ``update_freq`` batches; loss normalised by the update's tokens.

        Returns ``(loss, tokens)``; the loss is None when the update was skipped because its loss
        or gradients were not finite (the weights and the step count are then unchanged)."""
        self.model.train()
        batches = [self.train_data.batch(self.model, b) for b in group]
        n_tokens = sum(int((b["labels"] != -100).sum()) for b in batches)  # of the whole update, every rank
        total = torch.zeros((), dtype=torch.float64)
        self.optimizer.zero_grad(set_to_none=True)
        # Data parallel: rank k takes batches k, k+W, ...; gradients are summed over ranks, so W
        # processes with update_freq F equal one process with the same global batch.
        for b in batches[self.rank :: self.world]:
            with self._autocast():
                loss, _ = forward_loss(self.model, _to(b, self.device), self.cfg.train.label_smoothing)
            self.scaler.scale(loss / n_tokens).backward()
            total += float(loss.detach())
        if self.world > 1:
            import torch.distributed as dist

            for p in self.trainable:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            total = total.to(self.device)
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
        total = float(total)
        self.scaler.unscale_(self.optimizer)
        if not (math.isfinite(total) and self._grads_finite()):
            return self._skip_update(total)
        self.nonfinite_in_a_row = 0
        if self.cfg.train.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], self.cfg.train.clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return total / n_tokens, n_tokens

    def _grads_finite(self) -> bool:
        flags = [torch.isfinite(p.grad).all() for p in self.trainable if p.grad is not None]
        return bool(torch.stack(flags).all()) if flags else True

    def _skip_update(self, total: float) -> tuple[None, int]:
        """Drop an update with a NaN/inf loss or gradient; stop after too many in a row."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler.is_enabled():
            self.scaler.update()  # lowers the loss scale after an fp16 overflow
        self.nonfinite_in_a_row += 1
        self.skipped_updates += 1
        limit = self.cfg.train.max_nonfinite_updates
        if not self.quiet:
            tqdm.write(f"lslo: skipped update {self.step + 1}: non-finite {'loss' if not math.isfinite(total) else 'gradients'}"
                       f" ({self.nonfinite_in_a_row} in a row, limit train.max_nonfinite_updates={limit})")
        if self.nonfinite_in_a_row >= limit:
            raise RunError(f"training diverged: {self.nonfinite_in_a_row} updates in a row had a non-finite loss or "
                           f"gradients (step {self.step}; last good checkpoint kept). Lower train.lr, "
                           "use bf16/fp32, or set train.clip_norm")
        return None, 0

    @torch.no_grad()
    def validate(self) -> float | None:
        if self.valid_data is None:
            return None
        self.model.eval()
        examples = all_direction_examples(self.valid_data.corpus, self.directions)
        cap = self.cfg.train.valid_max_examples
        if cap and len(examples) > cap:
            stride = len(examples) / cap
            examples = [examples[int(i * stride)] for i in range(cap)]
        examples.sort(key=lambda e: (self.valid_data.length(e.src, e.seg_index), e.seg_index, e.src, e.tgt))
        total, count, i = 0.0, 0, 0
        max_tokens = self.cfg.train.max_tokens
        while i < len(examples):
            j = i + 1
            while j < len(examples):
                width = max(max(self.valid_data.length(e.src, e.seg_index), self.valid_data.length(e.tgt, e.seg_index))
                            for e in examples[i : j + 1])
                if width * (j + 1 - i) > max_tokens:
                    break
                j += 1
            b = _to(self.valid_data.batch(self.model, examples[i:j]), self.device)
            with self._autocast():
                loss, n = forward_loss(self.model, b, 0.0)
            total += float(loss)
            count += n
            i = j
        return total / max(count, 1)

    def _groups(self) -> Iterator[list[list[Example]]]:
        group: list[list[Example]] = []
        for batch in self.sampler:
            group.append(batch)
            if len(group) == self.cfg.train.update_freq:
                yield group
                group = []
        if group:
            yield group

    def train(self, resume: bool = False, stop_after_steps: int | None = None) -> TrainResult:
        """Run (or continue) training. ``stop_after_steps`` simulates an interruption (tests)."""
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.setup()
        t = cfg.train
        if resume:
            self.load_checkpoint()
            if self.epoch >= t.epochs or (t.max_steps and self.step >= t.max_steps):
                # nothing left to train: leave the run's files exactly as they are
                return TrainResult(self.run_dir, self.step, self.epoch, self.best_valid, self.last_loss,
                                   self.first_loss, False, already_finished=True)
        elif self.is_main:
            # a fresh start (--overwrite, or a first attempt killed before its first checkpoint):
            # nothing of an earlier attempt may survive to be mistaken for this run's logs or weights
            # eval-*-best / eval-*-last: `lslo evaluate`'s scores of the earlier run's weights (the
            # base's, eval-*-none, and other names stay: they do not depend on this run's weights)
            old_scores = [p.name for pat in ("eval-*-best", "eval-*-last") for p in self.run_dir.glob(pat)]
            for stale in ("checkpoints", "tb", "report", *old_scores):
                if (self.run_dir / stale).is_dir():
                    shutil.rmtree(self.run_dir / stale)
            for stale in ("metrics.csv", "parameters.json"):
                (self.run_dir / stale).unlink(missing_ok=True)
            # the run records absolute paths (and the paths as written), so it works from anywhere
            cfg.absolute_paths()
            cfg.output_dir = str(self.run_dir.resolve())
            cfg.save(self.run_dir / "config.yaml")
        self.tb = None
        if cfg.train.tensorboard and self.is_main:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.run_dir / "tb"))
            except Exception:  # tensorboard not installed: CSV only
                self.tb = None
        start = time.time()
        interrupted = False
        with _StopFlag() as stop:
            while self.epoch < t.epochs and not (t.max_steps and self.step >= t.max_steps):
                self.sampler.set_epoch(self.epoch)
                n_updates = math.ceil(len(self.sampler) / t.update_freq)
                done = math.ceil(self.sampler.position / t.update_freq)
                if t.max_steps:  # the bar ends where training will stop, so its ETA is true
                    n_updates = min(n_updates, done + max(0, t.max_steps - self.step))
                bar = tqdm(total=n_updates, initial=done, desc=f"epoch {self.epoch + 1}/{t.epochs}",
                           disable=self.quiet, leave=False, dynamic_ncols=True)
                halted = False
                for group in self._groups():
                    loss, n_tok = self._update(group)
                    if loss is None:  # skipped: non-finite loss or gradients
                        bar.update(1)
                        continue
                    self.first_loss = loss if self.first_loss is None else self.first_loss
                    self.last_loss = loss
                    if self.pruner and cfg.pruning.unit == "step":
                        self.pruner.step(self.step)
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
                    if self.step % max(1, t.log_every_steps) == 0:
                        self._log({"kind": "train", "step": self.step, "epoch": self.epoch, "loss": f"{loss:.6f}",
                                   "lr": f"{self.scheduler.get_last_lr()[0]:.6e}", "tokens": n_tok,
                                   "prune_ratio": f"{self.pruner.current_ratio:.4f}" if self.pruner else "",
                                   "elapsed_s": f"{time.time() - start:.1f}"})
                    if t.save_every_steps and self.step % t.save_every_steps == 0:
                        self.save_checkpoint()
                    if (t.max_steps and self.step >= t.max_steps) or stop.requested or (
                        stop_after_steps is not None and self.step >= stop_after_steps
                    ):
                        halted = True
                        break
                bar.close()
                if self.sampler.position >= len(self.sampler):
                    self._end_epoch(start)
                if halted:
                    interrupted = stop.requested or (stop_after_steps is not None and self.step >= stop_after_steps)
                    break
        self.save_checkpoint()
        if not interrupted and self.is_main:
            self._write_parameters()
        if self.tb is not None:
            self.tb.close()
        return TrainResult(self.run_dir, self.step, self.epoch, self.best_valid, self.last_loss, self.first_loss,
                           interrupted)

    def _end_epoch(self, start: float) -> None:
        self.epoch += 1
        if self.pruner and self.cfg.pruning.unit == "epoch":
            self.pruner.step(self.epoch)
        valid = self.validate()  # after this epoch's pruning: "best" is saved as it was validated
        self._log({"kind": "valid", "step": self.step, "epoch": self.epoch,
                   "loss": "" if valid is None else f"{valid:.6f}",
                   "prune_ratio": f"{self.pruner.current_ratio:.4f}" if self.pruner else "",
                   "elapsed_s": f"{time.time() - start:.1f}"})
        if not self.quiet:
            msg = f"epoch {self.epoch}: train loss " + ("n/a" if self.last_loss is None else f"{self.last_loss:.4f}")
            if valid is not None:
                msg += f", valid loss {valid:.4f}"
            if self.pruner:
                msg += f", pruned {self.pruner.current_ratio:.1%}"
            tqdm.write(msg)
        # With pruning, only a checkpoint at the final ratio is a fair "best".
        c = self.cfg.pruning
        t_now = self.epoch if c.unit == "epoch" else self.step
        pruning_done = self.pruner is None or t_now >= c.start + c.duration - 1e-9  # the schedule has ended
        if (valid is not None and math.isfinite(valid) and pruning_done
                and (self.best_valid is None or valid < self.best_valid)):
            self.best_valid = valid
            self.save_checkpoint("best", with_state=False)
        self.last_valid = valid
        for hook in self.epoch_hooks:
            hook(self)
        self.save_checkpoint()

    def _write_parameters(self) -> None:
        report = self.model.parameter_report()
        if self.pruner is not None:
            from lslo.pruning import sparsity_report

            report["sparsity"] = sparsity_report(find_lslo_modules(self.model), report["base_parameters"])
        (self.run_dir / "parameters.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        for hook in self.finish_hooks:  # e.g. lslo.reporting.report_after_training
            try:
                hook(self)
            except Exception as e:  # a plot must never cost a finished run
                warnings.warn(f"{self.run_dir}: finish hook {getattr(hook, '__name__', hook)} failed "
                              f"({type(e).__name__}: {e})", stacklevel=2)


def _packed_optimizer_state(saved: dict[str, Any], optimizer: torch.optim.Optimizer, model) -> dict[str, Any]:
    """Optimizer state of a checkpoint written with lslo 0.1's padded adapter stacks, in today's
    packed layout (per-parameter tensors such as Adam's moments are packed like the parameters)."""
    owners = {}
    for m in model.lslo_modules().values():
        for p, _ in m.param_masks():
            owners[id(p)] = (m, p)
    state = saved.get("state", {})
    for saved_group, group in zip(saved.get("param_groups", []), optimizer.param_groups):
        for key, p in zip(saved_group["params"], group["params"]):
            owner = owners.get(id(p))
            entry = state.get(key)
            if owner is None or entry is None:
                continue
            m, param = owner
            for name, t in list(entry.items()):
                if torch.is_tensor(t) and t.dim() == 3 and t.shape != param.shape:
                    entry[name] = m.packed_from_padded(param, t)
    return saved

