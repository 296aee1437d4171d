"""Training: one loop for LSLo, one shared LoRA and full fine-tuning, with exact resume.

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
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lslo.config import ConfigError
from lslo.data.corpus import CorpusError, MultiWayCorpus, load_corpus
from lslo.data.sampling import DirectionBatchSampler, Example, all_direction_examples, directions
from lslo.languages import build_batch
from lslo.model import LSLoModel
from lslo.pruning import Pruner, find_lslo_modules
from lslo.run_config import RunConfig

STATE_FILE = "trainer_state.pt"


class RunError(ValueError):
    """A run directory or a model path is missing or inconsistent."""


# --------------------------------------------------------------------------- loading
def load_base(cfg: RunConfig, dropout: float | None = None):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    path = Path(cfg.model)
    if not path.is_dir():
        raise RunError(f"model: {cfg.model} is not a directory (expected a local Hugging Face model)")
    tok_path = cfg.tokenizer or cfg.model
    if not Path(tok_path).is_dir():
        raise RunError(f"tokenizer: {tok_path} is not a directory")
    kwargs = {} if dropout is None else {"dropout": dropout}
    try:
        base = AutoModelForSeq2SeqLM.from_pretrained(str(path), **kwargs)
        tok = AutoTokenizer.from_pretrained(str(tok_path))
    except (OSError, ValueError) as e:
        raise RunError(f"model: cannot load {path}: {str(e).splitlines()[0]}") from None
    return base, tok


def build_model(cfg: RunConfig, base, tokenizer) -> LSLoModel:
    model = LSLoModel(base, cfg.adapter_config(), tokenizer)
    if cfg.method == "full":
        for p in model.base.parameters():
            p.requires_grad_(True)
    return model


class TokenizedCorpus:
    """A multi-way corpus with every segment tokenized once (no special tokens)."""

    def __init__(self, corpus: MultiWayCorpus, tokenizer, max_length: int) -> None:
        self.corpus = corpus
        self.max_length = max_length
        self.pieces: dict[str, list[list[int]]] = {}
        for lang in corpus.languages:
            ids = tokenizer(list(corpus.texts[lang]), add_special_tokens=False)["input_ids"]
            self.pieces[lang] = [x[: max_length - 2] for x in ids]

    def length(self, lang: str, seg: int) -> int:
        return len(self.pieces[lang][seg]) + 2

    def batch(self, model: LSLoModel, examples: list[Example]) -> dict[str, torch.Tensor]:
        return build_batch(
            model.tokens,
            [self.pieces[e.src][e.seg_index] for e in examples],
            [e.src for e in examples],
            [e.tgt for e in examples],
            [self.pieces[e.tgt][e.seg_index] for e in examples],
            max_length=self.max_length,
        )


def load_splits(cfg: RunConfig) -> dict[str, MultiWayCorpus]:
    """train / valid / test corpora for the configured languages."""
    d = cfg.data
    langs = cfg.lslo.codes
    if d.split_ratios:
        whole = load_corpus(d.path, None, langs, fmt=d.format, empty=d.empty)
        parts = whole.split_by_ratio(d.split_ratios, seed=0)
        for key in ("train", "test"):
            if key not in parts:
                raise ConfigError(f"data.split_ratios: needs a '{key}' entry, got {sorted(parts)}")
        out = {"train": parts["train"], "test": parts["test"]}
        out["valid"] = parts.get("valid")
    else:
        out = {
            "train": load_corpus(d.path, d.train_split, langs, fmt=d.format, empty=d.empty),
            "test": load_corpus(d.path, d.test_split, langs, fmt=d.format, empty=d.empty)
            if d.test_split else None,
            "valid": load_corpus(d.path, d.valid_split, langs, fmt=d.format, empty=d.empty)
            if d.valid_split else None,
        }
    if out["valid"] is None and d.valid_ratio > 0:
        parts = out["train"].split_by_ratio({"train": 1 - d.valid_ratio, "valid": d.valid_ratio}, seed=0)
        out["train"], out["valid"] = parts["train"], parts["valid"]
    if d.max_train_segments:
        out["train"] = out["train"].select(out["train"].ids[: d.max_train_segments])
    for name, corpus in out.items():
        if corpus is not None and len(corpus) == 0:
            raise CorpusError(f"data: the {name} split is empty")
    return out


def run_directions(cfg: RunConfig, pairs=None, training: bool = True) -> list[tuple[str, str]]:
    """Training directions (data.directions), or with ``training=False`` the given pairs / all."""
    if pairs is None and training:
        pairs = cfg.data.directions
    try:
        return [tuple(x) for x in directions(cfg.lslo.codes, pairs)]
    except ValueError as e:
        raise ConfigError(f"data.directions: {e}") from None


# --------------------------------------------------------------------------- helpers
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


def _to(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def forward_loss(model: LSLoModel, batch: dict[str, torch.Tensor], smoothing: float):
    out = model(
        batch["src_lang"], batch["tgt_lang"], input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
        decoder_input_ids=batch["decoder_input_ids"], decoder_attention_mask=batch["decoder_attention_mask"],
    )
    return seq2seq_loss(out.logits, batch["labels"], smoothing)


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_write_dir(target: Path, write) -> None:
    """Write a directory via a temporary sibling and renames: a crash leaves the old one."""
    tmp = target.with_name(f".{target.name}.tmp")
    old = target.with_name(f".{target.name}.old")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    write(tmp)
    if target.exists():
        if old.exists():
            shutil.rmtree(old)
        os.rename(target, old)
    os.rename(tmp, target)
    if old.exists():
        shutil.rmtree(old)


def checkpoint_dir(run_dir: Path, name: str = "last") -> Path:
    """The named checkpoint, or the previous one if a kill interrupted its replacement."""
    target = run_dir / "checkpoints" / name
    if target.exists():
        return target
    old = target.with_name(f".{name}.old")
    if old.exists():
        return old
    raise RunError(f"{run_dir}: no '{name}' checkpoint (is this a run directory?)")


def save_weights(model: LSLoModel, out: Path, method: str) -> None:
    if method == "full":
        model.base.save_pretrained(str(out))
    model.save_adapters(out)


def load_weights(model: LSLoModel, ckpt: Path, method: str) -> None:
    if method == "full":
        from safetensors.torch import load_file

        files = sorted(ckpt.glob("model*.safetensors"))
        if not files:
            raise RunError(f"{ckpt}: no model weights")
        state = {}
        for f in files:
            state.update(load_file(str(f)))
        missing, unexpected = model.base.load_state_dict(state, strict=False)
        bad = [k for k in unexpected]
        if bad:
            raise RunError(f"{ckpt}: unexpected weight {bad[0]}")
    model.load_adapters(ckpt)


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


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: str | Path, *, device: str | None = None, quiet: bool = False):
        self.cfg = cfg
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
            self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.is_main = self.rank == 0
        self.quiet = quiet or not self.is_main
        t = cfg.train
        self.precision = t.precision
        if self.precision == "auto":
            bf16_ok = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
            self.precision = "bf16" if bf16_ok else "fp32"
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    # ---------------------------------------------------------------- setup
    def make_model(self, base, tokenizer) -> LSLoModel:
        """The model to train (architecture search overrides this)."""
        return build_model(self.cfg, base, tokenizer)

    def setup(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.train.seed)
        random.seed(cfg.train.seed)
        np.random.seed(cfg.train.seed)
        base, tok = load_base(cfg, dropout=cfg.train.dropout)
        self.model = self.make_model(base, tok).to(self.device)
        if cfg.init_from:
            self._init_from(cfg.init_from)
        self.splits = load_splits(cfg)
        self.directions = run_directions(cfg)
        self.train_data = TokenizedCorpus(self.splits["train"], tok, cfg.data.max_length)
        self.valid_data = (
            TokenizedCorpus(self.splits["valid"], tok, cfg.data.max_length) if self.splits["valid"] is not None else None
        )
        t = cfg.train
        self.sampler = DirectionBatchSampler(
            self.splits["train"], self.directions, self.train_data.length, t.max_tokens,
            temperature=t.temperature, seed=t.seed, epoch_size=t.epoch_size,
        )
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.trainable = params
        if not params:
            raise ConfigError("nothing to train: no positions adapted and method is not 'full'")
        self.optimizer = torch.optim.Adam(
            params, lr=t.lr, betas=tuple(t.adam_betas), eps=t.adam_eps, weight_decay=t.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, inverse_sqrt_lambda(t.warmup_steps, t.lr, t.warmup_init_lr)
        )
        if cfg.trainable_languages is not None:
            self._freeze_languages(cfg.trainable_languages)
        self.pruner = None
        if cfg.pruning.enabled:
            if cfg.method == "full":
                raise ConfigError("pruning.enabled: pruning applies to adapters; not available with method: full")
            self.pruner = Pruner(find_lslo_modules(self.model), cfg.pruning)
            self.pruner.attach(self.optimizer)
        self.step = 0
        self.epoch = 0
        self.best_valid: float | None = None
        self.first_loss: float | None = None
        self.last_loss: float | None = None

    def _init_from(self, source: str) -> None:
        """Copy the adapters of every language the source run has (a run dir or an adapter dir)."""
        src = Path(source)
        ckpt = src if (src / "adapters.safetensors").is_file() else checkpoint_dir(src, "last")
        meta = json.loads((ckpt / "adapter_config.json").read_text(encoding="utf-8"))
        have = [lang["code"] for lang in meta["lslo"]["languages"]]
        for code in have:
            if code in self.cfg.lslo.codes and self.cfg.lslo.rank_of(code) != _rank_in(meta, code):
                raise ConfigError(f"init_from: language {code!r} has rank {_rank_in(meta, code)} in {src}, "
                                  f"{self.cfg.lslo.rank_of(code)} here")
        self.model.load_adapters(ckpt, languages=[c for c in have if c in self.cfg.lslo.codes])

    def _freeze_languages(self, trainable: list[str]) -> None:
        """Train only some languages: grads of the others are zeroed, and a post-step hook puts
        their exact values back (so Adam's weight decay or eps cannot move them by a bit)."""
        codes = self.cfg.lslo.codes
        keep = torch.tensor([c in trainable for c in codes], device=self.device)
        frozen: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
        for m in self.model.lslo_modules().values():
            for p in (m.lora_A, m.lora_B):
                mask = keep.view(-1, *([1] * (p.dim() - 1))).to(p.dtype)
                p.register_hook(lambda g, mask=mask: g * mask)
                frozen.append((p, p.detach().clone()))

        def restore(optimizer, args, kwargs) -> None:
            with torch.no_grad():
                for p, saved in frozen:
                    p[~keep] = saved[~keep]

        self.optimizer.register_step_post_hook(restore)

    # ------------------------------------------------------------ checkpoints
    def _state(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "pruner": self.pruner.state_dict() if self.pruner else None,
            "rng": _rng_state(),
            "step": self.step,
            "epoch": self.epoch,
            "best_valid": self.best_valid,
            "first_loss": self.first_loss,
            "last_loss": self.last_loss,
        }

    def _barrier(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()

    def save_checkpoint(self, name: str = "last", with_state: bool = True) -> None:
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
        state = torch.load(ckpt / STATE_FILE, map_location=self.device, weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        try:
            self.sampler.load_state_dict(state["sampler"])
        except ValueError as e:
            raise RunError(f"{ckpt}: cannot resume: {e}") from None
        if self.pruner and state["pruner"] is not None:
            self.pruner.load_state_dict(state["pruner"])
        _set_rng_state(state["rng"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.best_valid, self.first_loss, self.last_loss = state["best_valid"], state["first_loss"], state["last_loss"]

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

    def _update(self, group: list[list[Example]]) -> tuple[float, int]:
        """One optimizer update over ``update_freq`` batches; loss normalised by the update's tokens."""
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
            (loss / n_tokens).backward()
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
        if self.cfg.train.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], self.cfg.train.clip_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return total / n_tokens, n_tokens

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
        if resume:
            self.load_checkpoint()
        elif self.is_main:
            cfg.save(self.run_dir / "config.yaml")
        self.tb = None
        if cfg.train.tensorboard and self.is_main:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.run_dir / "tb"))
            except Exception:  # tensorboard not installed: CSV only
                self.tb = None
        t = cfg.train
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
        valid = self.validate()
        self.epoch += 1
        if self.pruner and self.cfg.pruning.unit == "epoch":
            self.pruner.step(self.epoch)
        self._log({"kind": "valid", "step": self.step, "epoch": self.epoch,
                   "loss": "" if valid is None else f"{valid:.6f}",
                   "prune_ratio": f"{self.pruner.current_ratio:.4f}" if self.pruner else "",
                   "elapsed_s": f"{time.time() - start:.1f}"})
        if not self.quiet:
            msg = f"epoch {self.epoch}: train loss {self.last_loss:.4f}"
            if valid is not None:
                msg += f", valid loss {valid:.4f}"
            if self.pruner:
                msg += f", pruned {self.pruner.current_ratio:.1%}"
            tqdm.write(msg)
        # With pruning, only a checkpoint at the final ratio is a fair "best".
        pruning_done = self.pruner is None or self.pruner.current_ratio >= self.cfg.pruning.entry_final_ratio - 1e-9
        if valid is not None and pruning_done and (self.best_valid is None or valid < self.best_valid):
            self.best_valid = valid
            self.save_checkpoint("best", with_state=False)
        self.save_checkpoint()

    def _write_parameters(self) -> None:
        report = self.model.parameter_report()
        if self.pruner is not None:
            from lslo.pruning import sparsity_report

            report["sparsity"] = sparsity_report(find_lslo_modules(self.model), report["base_parameters"])
        (self.run_dir / "parameters.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        if self.pruner is not None:  # what survived pruning, per language: RUN/report/ (any run: lslo report RUN)
            try:
                from lslo.report import write_run_report

                write_run_report(self.run_dir, self.model)
            except Exception as e:  # a plot must never cost a finished run
                warnings.warn(f"{self.run_dir / 'report'}: not written ({type(e).__name__}: {e})", stacklevel=2)


def _rank_in(meta: dict[str, Any], code: str) -> int:
    for lang in meta["lslo"]["languages"]:
        if lang["code"] == code:
            return int(lang.get("rank") or meta["lslo"]["ranks"][lang.get("level", "high")])
    raise KeyError(code)


def load_run(run_dir: str | Path, checkpoint: str = "last", device: str | None = None):
    """(config, model) of a run directory, weights from the named checkpoint."""
    run = Path(run_dir)
    cfg_path = run / "config.yaml"
    if not cfg_path.is_file():
        raise RunError(f"{run}: not a run directory (no config.yaml)")
    cfg = RunConfig.load(cfg_path)
    base, tok = load_base(cfg)
    model = build_model(cfg, base, tok)
    if checkpoint != "none":  # "none": the base model as it is (adapters at their zero init)
        try:
            ckpt = checkpoint_dir(run, checkpoint)
        except RunError:
            if checkpoint != "best":
                raise
            ckpt = checkpoint_dir(run, "last")  # no validation split: last is the result
        load_weights(model, ckpt, cfg.method)
    model.to(torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))).eval()
    return cfg, model
