"""lslo's own generation: a lean beam search for M2M-100-architecture models.

:func:`generate` translates like ``model.generate(input_ids, attention_mask,
decoder_input_ids=prompt, **kwargs)`` of transformers, token for token, with less work per step
(see :mod:`lslo.decoding.m2m100` and :mod:`lslo.decoding.search`). It covers the settings that
translation uses (beams, length limit, length penalty, early stopping, suppressed tokens, a
forced end token); :func:`unsupported` names any other setting, and the caller then uses
transformers' ``generate``, which stays the reference path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lslo.decoding.m2m100 import M2M100Stepper, is_m2m100
from lslo.decoding.search import SearchSettings, beam_search, greedy_search

__all__ = ["SearchSettings", "generate", "search_settings", "unsupported"]

# generation settings the lean search implements; every other one must keep its default
_HANDLED = {
    "num_beams", "max_length", "max_new_tokens", "length_penalty", "early_stopping", "suppress_tokens",
    "forced_eos_token_id", "eos_token_id", "pad_token_id", "bos_token_id", "decoder_start_token_id",
    "use_cache", "output_attentions", "output_hidden_states",
    # sampling-only knobs are inert without do_sample (which must stay False)
    "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff",
    # bookkeeping that does not change the search
    "transformers_version", "_from_model_config", "_commit_hash", "generation_kwargs", "cache_implementation",
    "cache_config", "return_legacy_cache", "compile_config", "disable_compile", "is_assistant",
}


# transformers 5 leaves unset settings None and fills these in at generate time
_DEFAULTS = {"max_length": 20, "min_length": 0, "do_sample": False, "use_cache": True, "early_stopping": False,
             "num_beams": 1, "repetition_penalty": 1.0, "length_penalty": 1.0, "no_repeat_ngram_size": 0,
             "encoder_no_repeat_ngram_size": 0, "num_return_sequences": 1, "output_scores": False,
             "return_dict_in_generate": False, "remove_invalid_values": False, "epsilon_cutoff": 0.0,
             "eta_cutoff": 0.0, "encoder_repetition_penalty": 1.0, "num_beam_groups": 1, "diversity_penalty": 0.0}


def _settings(model: nn.Module, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The generation settings of ``model.generate(**kwargs)`` with transformers' defaults filled in,
    and the keyword arguments that are not generation settings."""
    import copy

    from transformers import GenerationConfig

    config = copy.deepcopy(getattr(model, "generation_config", None) or GenerationConfig())
    extra = config.update(**kwargs)
    defaults = dict(_DEFAULTS)
    getter = getattr(GenerationConfig, "_get_default_generation_params", None)
    if callable(getter):
        defaults.update(getter())
    values = config.to_dict()
    for key, value in defaults.items():
        if values.get(key) is None:
            values[key] = value
    return values, extra


@functools.lru_cache(maxsize=1)
def _default_settings() -> dict[str, Any]:
    """transformers' settings for a ``generate`` call that sets nothing (computed once)."""
    from transformers import GenerationConfig

    return _settings(GenerationConfig(), {})[0]


def unsupported(model: nn.Module, kwargs: dict[str, Any]) -> str | None:
    """Why the lean search cannot run ``model.generate(**kwargs)`` (None when it can)."""
    if not is_m2m100(model):
        return f"{type(model).__name__} is not an M2M-100-architecture model"
    if getattr(model.config, "_attn_implementation", "sdpa") not in ("sdpa", None):
        return f"attention implementation {model.config._attn_implementation!r} (the lean search uses sdpa's kernel)"
    if model.training:
        return "the model is in training mode (dropout)"
    values, extra = _settings(model, kwargs)
    if extra:
        return f"argument(s) {', '.join(sorted(extra))}"
    default = _default_settings()
    for key, value in values.items():
        if key not in _HANDLED and value != default.get(key):
            return f"generation setting {key}={value!r}"
    if not isinstance(values["num_beams"], int) or values["num_beams"] < 1:
        return f"num_beams={values['num_beams']!r}"
    return None


def _max_length(model: nn.Module, prompt_len: int, kwargs: dict[str, Any], v: dict[str, Any]) -> int:
    """transformers 5's ``_prepare_generated_length``: ``max_new_tokens`` counts from the prompt; a
    length nobody set (no ``max_length`` in the call or the model's generation config) is 20 *new*
    tokens, capped at the model's positions."""
    if v.get("max_new_tokens") is not None:
        if v["max_new_tokens"] <= 0:  # transformers' GenerationConfig.validate
            raise ValueError(f"`max_new_tokens` must be greater than 0, but is {v['max_new_tokens']}.")
        return prompt_len + v["max_new_tokens"]
    config = getattr(model, "generation_config", None)
    if kwargs.get("max_length") is None and getattr(config, "max_length", None) is None:
        length = v["max_length"] + prompt_len
        positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        return min(length, positions) if positions is not None else length
    return v["max_length"]


def suppress_all(forced: list[int], suppress: list[int]) -> bool:
    return all(t in set(suppress) for t in forced)


def search_settings(model: nn.Module, prompt_len: int, kwargs: dict[str, Any]) -> SearchSettings:
    """The lean search's settings for ``model.generate(**kwargs)`` with a prompt of ``prompt_len``."""
    v, _ = _settings(model, kwargs)
    max_length = _max_length(model, prompt_len, kwargs, v)
    eos, forced = v.get("eos_token_id"), v.get("forced_eos_token_id")
    eos = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    forced = None if forced is None else ([forced] if isinstance(forced, int) else list(forced))
    pad = v.get("pad_token_id")
    if forced and suppress_all(forced, v.get("suppress_tokens") or []):  # transformers' validate()
        raise ValueError(f"Every token in `forced_eos_token_id` ({forced}) is also in `suppress_tokens`: the "
                         "forcing step would have no token left")
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    suppress = [int(t) for t in v.get("suppress_tokens") or []]
    if vocab is not None:  # transformers ignores ids outside the vocabulary (a negative one too)
        suppress = [t for t in suppress if 0 <= t < vocab]
    return SearchSettings(
        num_beams=v["num_beams"], max_length=max_length, eos_token_ids=eos,
        pad_token_id=pad if pad is not None else (eos[0] if eos else None),
        length_penalty=v["length_penalty"], early_stopping=v["early_stopping"],
        suppress_tokens=suppress or None,
        forced_eos_token_id=forced,
    )


@torch.no_grad()
def generate(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
             prompt: torch.Tensor, kwargs: dict[str, Any],
             on_active: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor:
    """The lean search's ``model.generate(input_ids, attention_mask, decoder_input_ids=prompt, **kwargs)``.

    A setting it does not implement (:func:`unsupported`) is a ``ValueError`` naming it: call the
    model's own ``generate`` for those. ``on_active(ids)`` hears which sentences still decode; a
    model whose layers route rows (LSLo's) needs it, to follow the rows that leave the batch."""
    why = unsupported(model, kwargs)
    if why is not None:
        raise ValueError(f"lslo.decoding.generate cannot run this: {why}; use the model's generate() for it")
    if on_active is None and any(hasattr(m, "router") for m in model.modules()):
        raise ValueError("lslo.decoding.generate: the model has routed (LSLo) layers; pass on_active so that "
                         "their routing follows the sentences that leave the batch (LSLoModel.generate does)")
    s = search_settings(model, prompt.shape[1], kwargs)
    if prompt.shape[1] >= s.max_length:
        return prompt
    stepper = M2M100Stepper(model, input_ids, attention_mask, s.num_beams, s.max_length)
    search = beam_search if s.num_beams > 1 else greedy_search
    return search(stepper, prompt, s, on_active)
