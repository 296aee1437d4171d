"""Run directories: loading the base model, writing and reading checkpoints, ``load_run``.

A run directory holds ``config.yaml``, ``checkpoints/{last,best}/`` (weights + masks, and in
``last`` the trainer state) and logs. Directories are written through a temporary sibling
and renamed into place, so a kill while saving leaves the previous checkpoint loadable.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lslo.errors import LSLoError
from lslo.training.config import RunConfig
from lslo.tuner.model import LSLoModel

STATE_FILE = "trainer_state.pt"


class RunError(LSLoError):
    """A run directory or a model path is missing or inconsistent."""


def load_base(cfg: RunConfig, dropout: float | None = None):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    path = Path(cfg.model)
    if not path.is_dir():
        raise RunError(f"model: {cfg.model} is not a directory (expected a local Hugging Face model)")
    tok_path = cfg.tokenizer or cfg.model
    if not Path(tok_path).is_dir():
        raise RunError(f"tokenizer: {tok_path} is not a directory")
    # float32 whatever the checkpoint's dtype (transformers 5 loads "auto", so a float16 export would
    # train in float16: slow on a CPU, and full fine-tuning overflows to NaN); bf16/fp16 compute
    # comes from autocast (train.precision), with float32 master weights
    kwargs = {"dtype": torch.float32} if dropout is None else {"dtype": torch.float32, "dropout": dropout}
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


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
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
    try:
        tmp.mkdir(parents=True)
        write(tmp)
    except BaseException as e:  # a full disk, Ctrl-C: no half-written directory stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) or is_write_failure(e):
            why = "no space left on the device" if isinstance(e, RuntimeError) or e.errno == 28 else (
                e.strerror or type(e).__name__)
            raise RunError(f"{target}: writing failed ({why}); the previous '{target.name}' is kept intact; "
                           "free space (or fix the path) and rerun") from None
        raise
    if target.exists():
        if old.exists():
            shutil.rmtree(old)
        os.rename(target, old)
    os.rename(tmp, target)
    if old.exists():
        shutil.rmtree(old)


def is_write_failure(e: BaseException) -> bool:
    """torch.save's / safetensors' RuntimeError for a failed write (a full disk, mostly:
    ``[enforce fail at inline_container.cc] unexpected pos``)."""
    return isinstance(e, RuntimeError) and any(
        k in str(e) for k in ("inline_container", "PytorchStreamWriter", "file write failed", "No space left",
                              "unexpected pos"))


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


def saved_rank(meta: dict[str, Any], code: str) -> int:
    for lang in meta["lslo"]["languages"]:
        if lang["code"] == code:
            return int(lang.get("rank") or meta["lslo"]["ranks"][lang.get("level", "high")])
    raise KeyError(code)


def resolve_device(device: str | None) -> torch.device:
    """``cpu`` / ``cuda`` / ``cuda:N`` (default: cuda when available); anything else is a one-line error."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise RunError(f"--device {device}: expected cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RunError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise RunError(f"--device {device}: expected cpu, cuda or cuda:N")
    return dev


def load_run(run_dir: str | Path, checkpoint: str = "last", device: str | None = None):
    """(config, model) of a run directory, weights from the named checkpoint.

    ``run_dir`` may also be a run config file with ``checkpoint="none"``: the base model of that
    config, with its adapters at their zero init (to score a base before any training). The model's
    ``loaded_checkpoint`` says which weights were loaded: ``best``, ``last`` (also when ``best`` was
    asked for but the run has none, e.g. without a validation split) or ``none``.
    """
    run = Path(run_dir)
    if run.is_file():
        if checkpoint != "none":
            raise RunError(f"{run}: a config file has no trained weights; use --checkpoint none or a run directory")
        cfg_path = run
    else:
        cfg_path = run / "config.yaml"
        if not cfg_path.is_file():
            raise RunError(f"{run}: not a run directory (no config.yaml)")
    dev = resolve_device(device)
    cfg = RunConfig.load(cfg_path)
    base, tok = load_base(cfg)
    model = build_model(cfg, base, tok)
    used = "none"
    if checkpoint != "none":  # "none": the base model as it is (adapters at their zero init)
        try:
            ckpt, used = checkpoint_dir(run, checkpoint), checkpoint
        except RunError:
            if checkpoint != "best":
                raise
            ckpt, used = checkpoint_dir(run, "last"), "last"  # no validation split: last is the result
        load_weights(model, ckpt, cfg.method)
    model.loaded_checkpoint = used
    model.to(dev).eval()
    return cfg, model
