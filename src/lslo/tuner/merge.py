"""Fold one direction's adapters into a plain copy of the base model (loads without lslo)."""

from __future__ import annotations

import contextlib
import copy
import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lslo.tuner.languages import LanguageTokens
from lslo.tuner.layer import LSLoLinear, set_submodule


@torch.no_grad()


def merge(model: nn.Module, src: str, tgt: str) -> nn.Module:
    """A plain copy of the base model with direction src->tgt folded into its weights."""
    src, tgt = model.resolve_language(src), model.resolve_language(tgt)
    si, ti = model.lang_ids([src, tgt]).tolist()
    if model.shared:
        si = ti = 0
    merged = copy.deepcopy(model.base)
    for name, m in list(merged.named_modules()):
        if isinstance(m, LSLoLinear):
            lang = si if m.routing == "source" else ti
            lin = m.base
            delta = m.delta_weight(lang).to(torch.float32)
            lin.weight.copy_((lin.weight.to(torch.float32) + delta).to(lin.weight.dtype))
            set_submodule(merged, name, lin)
    for p in merged.parameters():
        p.requires_grad_(True)
    if model.tokens is not None:
        tok_id = model.tokens.token_id(tgt)
        gen_cfg = getattr(merged, "generation_config", None)
        if gen_cfg is not None:
            gen_cfg.forced_bos_token_id = tok_id
    return merged


def save_merged(model: nn.Module, src: str, tgt: str, directory: str | Path) -> Path:
    """Write a model directory that AutoModelForSeq2SeqLM loads without lslo."""
    out = Path(directory)
    src, tgt = model.resolve_language(src), model.resolve_language(tgt)
    merged = merge(model, src, tgt)
    merged.save_pretrained(str(out))
    if model.tokenizer is not None:
        tok = copy.deepcopy(model.tokenizer)
        if hasattr(tok, "src_lang") and model.tokens.token_id(src) is not None:
            with contextlib.suppress(Exception):  # best effort: tokenizers name languages differently
                tok.src_lang = tokenizer_lang_code(tok, model.tokens, src)
        tok.save_pretrained(str(out))
    (out / "lslo_direction.json").write_text(json.dumps({"src": src, "tgt": tgt}), encoding="utf-8")
    return out


def tokenizer_lang_code(tokenizer: Any, tokens: LanguageTokens, code: str) -> str:
    """The value a tokenizer's ``src_lang`` expects: 'fr' for M2M-100 (__fr__), else the token itself."""
    tok_id = tokens.token_id(code)
    token = tokenizer.convert_ids_to_tokens(tok_id)
    m = re.fullmatch(r"__(.+)__", token)
    return m.group(1) if m else token
