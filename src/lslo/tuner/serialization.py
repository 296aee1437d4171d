"""Save and load a model's adapters: ``adapters.safetensors`` (compact, sparse when pruned) and
``adapter_config.json``; the base model is never copied."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lslo.errors import LSLoError
from lslo.tuner.config import LSLoConfig
from lslo.tuner.storage import StorageError, load_state, save_state

ADAPTER_WEIGHTS = "adapters.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


class AdapterError(LSLoError):
    """Saved adapters do not fit the model they are loaded into."""


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Compact per-language tensors: padding dropped, masks only where something is pruned."""
    tensors: dict[str, torch.Tensor] = {}
    for name, m in model.lslo_modules().items():
        for i, code in enumerate(m.languages):
            tensors[f"{name}.{code}.lora_A"] = m.A_of(i).detach().contiguous().cpu()
            tensors[f"{name}.{code}.lora_B"] = m.B_of(i).detach().contiguous().cpu()
            ma, mb = m.mask_A_of(i), m.mask_B_of(i)
            if not (bool(ma.all()) and bool(mb.all())):
                tensors[f"{name}.{code}.mask_A"] = ma.to(torch.uint8).contiguous().cpu()
                tensors[f"{name}.{code}.mask_B"] = mb.to(torch.uint8).contiguous().cpu()
    return tensors


def save_adapters(model: nn.Module, directory: str | Path) -> Path:
    """Write adapters.safetensors + adapter_config.json (the base model is not copied)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    save_state(model.adapter_state(), out / ADAPTER_WEIGHTS)  # sparse when pruned; "version": "2" in metadata
    meta = {
        "format": "lslo",
        "version": 1,
        "base_model": str(getattr(getattr(model.base, "config", None), "_name_or_path", "") or ""),
        "lslo": model.config.to_dict(),
        "encoder_routing": model.encoder_routing,
        "decoder_routing": model.decoder_routing,
        "language_tokens": dict(zip(model.tokens.codes, model.tokens.token_ids)) if model.tokens else None,
        # verified on load: a bit flip or a truncated copy is an error, not a silently different model
        "weights_sha256": _sha256(out / ADAPTER_WEIGHTS),
    }
    (out / ADAPTER_CONFIG).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    return out


def load_adapters(model: nn.Module, directory: str | Path, languages: Sequence[str] | None = None) -> None:
    """Load saved adapters; with ``languages``, only those (others keep their current weights)."""
    path = Path(directory) / ADAPTER_WEIGHTS
    load_adapter_state(model, read_adapter_state(directory), path, languages)


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_adapter_config(directory: str | Path) -> dict[str, Any]:
    """``adapter_config.json`` of an adapter directory, checked to be a readable lslo config."""
    path = Path(directory) / ADAPTER_CONFIG
    if not path.is_file():
        raise AdapterError(f"{path}: no adapter config found")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AdapterError(f"{path}: malformed JSON ({getattr(e, 'msg', e)})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("lslo"), dict):
        raise AdapterError(f"{path}: not an lslo adapter config (no 'lslo' section)")
    for key in ("encoder_routing", "decoder_routing"):
        if not isinstance(meta.get(key), list):
            raise AdapterError(f"{path}: '{key}' missing or not a list")
    return meta


def read_adapter_state(directory: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of ``directory``'s adapter file (version 1 plain or 2 packed); when the config
    records the file's sha256 (every save since it was added), the file must match it."""
    path = Path(directory) / ADAPTER_WEIGHTS
    if not path.is_file():
        raise AdapterError(f"{path}: no adapter weights found")
    if (Path(directory) / ADAPTER_CONFIG).is_file():
        want = read_adapter_config(directory).get("weights_sha256")
        if want is not None and _sha256(path) != want:
            raise AdapterError(f"{path}: sha256 does not match adapter_config.json (corrupted or replaced file)")
    try:
        return load_state(path)
    except StorageError as e:
        raise AdapterError(str(e)) from None


def load_adapter_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path,
                       languages: Sequence[str] | None = None, modules: set[str] | None = None) -> None:
    """Copy ``state`` into the model's adapters (``path`` names the source in errors).

    Args:
        languages: only these languages' tensors are read and must be present.
        modules: only these adapter modules (by name) are filled; the others keep their weights.
    """
    if languages is not None:
        prefixes = tuple(f".{code}." for code in languages)
        state = {k: v for k, v in state.items() if any(p in k for p in prefixes)}
    expected: set[str] = set()
    with torch.no_grad():
        for name, m in model.lslo_modules().items():
            if modules is not None and name not in modules:
                continue
            for i, code in enumerate(m.languages):
                if languages is not None and code not in languages:
                    continue
                r = int(m.ranks[i])
                ka, kb = f"{name}.{code}.lora_A", f"{name}.{code}.lora_B"
                expected.update((ka, kb))
                for key, shape in ((ka, (r, m.in_features)), (kb, (m.out_features, r))):
                    if key not in state:
                        raise AdapterError(f"{path}: missing tensor {key}")
                    if tuple(state[key].shape) != shape:
                        raise AdapterError(f"{path}: {key} has shape {tuple(state[key].shape)}, expected {shape}")
                m.A_of(i).copy_(state[ka])
                m.B_of(i).copy_(state[kb])
                km, kn = f"{name}.{code}.mask_A", f"{name}.{code}.mask_B"
                if km in state:
                    expected.update((km, kn))
                    m.mask_A_of(i).copy_(state[km].bool())
                    m.mask_B_of(i).copy_(state[kn].bool())
                else:
                    m.mask_A_of(i).fill_(True)
                    m.mask_B_of(i).fill_(True)
    extra = sorted(set(state) - expected)
    if extra:
        raise AdapterError(f"{path}: unexpected tensor {extra[0]} (and {len(extra) - 1} more); config mismatch?")


def run_checkpoint(run_dir: str | Path) -> tuple[Path, str] | None:
    """``(checkpoint directory, "best" | "last")`` of an ``lslo train`` run directory: ``best`` when
    the run has one, else ``last``; None when ``run_dir`` is not a run directory."""
    run = Path(run_dir)
    if (run / ADAPTER_CONFIG).is_file() or not (run / "config.yaml").is_file():
        return None
    for name in ("best", "last"):
        for cand in (run / "checkpoints" / name, run / "checkpoints" / f".{name}.old"):  # .old: a kill mid-save
            if (cand / ADAPTER_CONFIG).is_file():
                return cand, name
    raise AdapterError(f"{run}: a run directory without a checkpoint (not trained yet, or killed before its first "
                       "checkpoint was written)")


def _run_base(run: Path) -> tuple[str, str | None]:
    """(base model, tokenizer) of a run directory, from its config.yaml; relative paths (runs made
    before runs stored absolute paths) are looked up from the run directory, then the current one."""
    import yaml

    try:
        data = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise AdapterError(f"{run / 'config.yaml'}: unreadable ({type(e).__name__})") from None

    def find(value: Any) -> str | None:
        if not value:
            return None
        p = Path(str(value))
        for cand in ([p] if p.is_absolute() else [run / p, Path.cwd() / p]):
            if cand.exists():
                return str(cand)
        return str(value)

    return find(data.get("model")) or "", find(data.get("tokenizer"))


def from_pretrained(cls: type, adapter_dir: str | Path, base: nn.Module | str | None = None, tokenizer: Any = None):
    """Load saved adapters into a freshly loaded base model (a model object or a directory).

    ``adapter_dir`` is an adapter directory (``adapters.safetensors`` + ``adapter_config.json``) or
    an ``lslo train`` run directory: then its ``best`` checkpoint, else its ``last``, is loaded and
    the choice is printed on stderr (``model.loaded_checkpoint`` holds it)."""
    import sys

    picked = run_checkpoint(adapter_dir)
    run_base, run_tok, used = None, None, None
    if picked is not None:
        run = Path(adapter_dir)
        adapter_dir, used = picked
        run_base, run_tok = _run_base(run)
        if list(Path(adapter_dir).glob("model*.safetensors")):  # full fine-tuning: the checkpoint is the base
            run_tok, run_base = run_tok or run_base, str(adapter_dir)
        why = "the lowest validation loss" if used == "best" else "the run has no 'best' checkpoint"
        print(f"lslo: {run}: loading checkpoint '{used}' ({why})", file=sys.stderr)
    cfg_path = Path(adapter_dir) / ADAPTER_CONFIG
    meta = read_adapter_config(adapter_dir)
    if base is None or isinstance(base, (str, Path)):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        base_dir = str(base or run_base or meta.get("base_model") or "")
        if not base_dir:
            raise AdapterError(f"{cfg_path}: no base model recorded; pass base=")
        if Path(base_dir).is_absolute() and not Path(base_dir).is_dir():
            raise AdapterError(f"{cfg_path}: base model {base_dir} is not a directory; pass base=")
        if tokenizer is None and run_tok:
            tokenizer = AutoTokenizer.from_pretrained(run_tok)
        base = AutoModelForSeq2SeqLM.from_pretrained(base_dir, dtype=torch.float32)  # not the file's dtype
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(base_dir)
    config = LSLoConfig.from_dict(meta["lslo"], where="lslo")
    model = cls(base, config, tokenizer)
    if model.encoder_routing != meta["encoder_routing"] or model.decoder_routing != meta["decoder_routing"]:
        raise AdapterError(f"{cfg_path}: saved routing does not match this base model's depth")
    model.load_adapters(adapter_dir)
    if used is not None:
        model.loaded_checkpoint = used
    return model
