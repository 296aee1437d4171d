"""Read a fairseq ``model.pt`` without fairseq, and without running code from the file.

First ``torch.load(weights_only=True)`` with ``argparse.Namespace`` allowed (fairseq stores its
settings as a Namespace). Checkpoints that pickle more (omegaconf containers, fairseq's enums,
written by other fairseq versions) are read by a restricted unpickler: torch's tensors and
storages, numpy arrays and a few builtins are rebuilt; a class from ``fairseq``, ``omegaconf`` or
``enum`` becomes an inert record of its pickled data; any other global is refused by name.
"""

from __future__ import annotations

import argparse
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from lslo.errors import LSLoError


class CheckpointError(LSLoError):
    """A checkpoint lslo cannot read or convert (one line, naming the file and what was expected)."""


class Record:
    """What a pickled fairseq/omegaconf object held: its constructor arguments and its state."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.state = args, dict(kwargs)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}
        self.state.update(state if isinstance(state, dict) else {"value": state})

    def __call__(self, *args: Any, **kwargs: Any) -> Record:  # a class used as a factory in REDUCE
        return Record(*args, **kwargs)


def _record_class(module: str, name: str) -> type:
    return type(name, (Record,), {"__module__": f"lslo.convert.record.{module}"})


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("argparse", "Namespace"): argparse.Namespace,
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "slice"): slice,
    ("builtins", "complex"): complex, ("builtins", "bytearray"): bytearray,
}
_RECORDED = ("fairseq", "omegaconf", "enum", "typing", "pathlib")


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        root = module.split(".")[0]
        if root == "torch" and (name.startswith("_rebuild") or name.endswith("Storage") or name in
                                ("Size", "device", "dtype", "float32", "float16", "bfloat16")):
            return super().find_class(module, name)
        if root == "numpy" and name in ("_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"):
            return super().find_class(module, name)
        if root in _RECORDED:
            return _record_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


class _RestrictedPickle:
    Unpickler = RestrictedUnpickler
    load = staticmethod(lambda f, **kw: RestrictedUnpickler(f, **kw).load())


def load_checkpoint(path: str | Path) -> dict:
    """The checkpoint's top-level dict, tensors on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with torch.serialization.safe_globals([argparse.Namespace]):
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            ckpt = None
        except (RuntimeError, EOFError, OSError) as e:
            raise CheckpointError(f"{path}: not a readable torch checkpoint ({str(e).splitlines()[0][:200]})") from None
    if ckpt is None:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickle)
        except pickle.UnpicklingError as e:
            if not str(e).startswith("refusing"):
                raise CheckpointError(f"{path}: not a readable torch checkpoint ({str(e)[:200]})") from None
            raise CheckpointError(f"{path}: {e}; lslo reads fairseq checkpoints without running code from them, "
                                  "and this one pickles something else") from None
        except (RuntimeError, EOFError, OSError) as e:
            raise CheckpointError(f"{path}: not a readable torch checkpoint ({str(e).splitlines()[0][:200]})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise CheckpointError(f"{path}: not a fairseq checkpoint (expected a dict with a 'model' state dict)")
    return ckpt


def plain(obj: Any) -> Any:
    """Namespaces, omegaconf containers and records as plain dicts, lists and values."""
    if isinstance(obj, argparse.Namespace):
        return {k: plain(v) for k, v in vars(obj).items()}
    if isinstance(obj, Record):
        st = obj.state
        if "_content" in st:  # omegaconf DictConfig / ListConfig / ValueNode
            return plain(st["_content"])
        if "_val" in st:
            return plain(st["_val"])
        if obj.args and not st:  # an enum member: pickled as Cls(value)
            return plain(obj.args[0])
        return {k: plain(v) for k, v in st.items()}
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def model_args(ckpt: dict) -> dict[str, Any]:
    """The model's settings, flat, from ``cfg['model']`` (fairseq >= 0.10) or the legacy ``args``,
    with the task's language settings (``langs``, ``lang_pairs``, ``lang_dict``) merged in."""
    cfg = plain(ckpt.get("cfg")) or {}
    args = plain(ckpt.get("args")) or {}
    model = cfg.get("model") if isinstance(cfg.get("model"), dict) else {}
    out = {**args, **model}
    for side in ("encoder", "decoder"):  # fairseq 0.12's nested TransformerConfig
        nested = out.get(side)
        if isinstance(nested, dict):
            for k, v in nested.items():
                out.setdefault(f"{side}_{k}", v)
            out.setdefault(f"{side}_embed_dim", nested.get("embed_dim"))
    task = cfg.get("task") if isinstance(cfg.get("task"), dict) else {}
    for k in ("langs", "lang_pairs", "lang_dict", "task", "encoder_langtok", "decoder_langtok", "lang_tok_style"):
        if out.get(k) is None and task.get(k) is not None:
            out[k] = task[k]
    if not out:
        raise CheckpointError("checkpoint: holds neither 'cfg' nor 'args'; cannot tell its architecture")
    return out
