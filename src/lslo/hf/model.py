"""An LSLo model as the Hugging Face ``Trainer`` expects one: ``LSLoForSeq2SeqLM``.

The ``Trainer`` treats a ``PreTrainedModel`` (or a ``PeftModel``) as a model it can save: it calls
its ``save_pretrained``. A bare ``nn.Module`` gets its whole ``state_dict`` written to
``model.safetensors`` instead, which fails on the tied embeddings of a frozen M2M-100/NLLB base
and would copy the base into every checkpoint. So the Trainer-facing model is a thin
``PreTrainedModel`` around an :class:`~lslo.tuner.model.LSLoModel`:

* ``forward`` names every column the collator needs (``src_lang``, ``tgt_lang``, ``src``, ``tgt``),
  so a ``Trainer`` with default arguments (``remove_unused_columns=True``) keeps them; it refuses a
  batch without languages (one line, never training without routing);
* the loss is lslo's own (summed token cross-entropy, :func:`lslo.training.loss.seq2seq_loss`)
  divided by the ``Trainer``'s token count of the whole update, so gradient accumulation gives
  the same update as one big batch, as in ``lslo train``;
* ``save_pretrained`` writes the adapters only, in lslo's format (``adapters.safetensors`` +
  ``adapter_config.json`` with the file's sha256, :func:`lslo.tuner.serialization.save_adapters`),
  plus ``model.safetensors.index.json``: a small JSON index through which the ``Trainer``'s own
  loader (``resume_from_checkpoint``, ``load_best_model_at_end``) finds ``adapters.safetensors``
  and hands its tensors to this model's ``load_state_dict``;
* the state dict of this model is its adapter state (per module and language ``lora_A``,
  ``lora_B``, ``mask_A``, ``mask_B``): the base is frozen and never saved.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import Seq2SeqLMOutput

from lslo.errors import LSLoError
from lslo.training.loss import seq2seq_loss
from lslo.tuner.config import LSLoConfig
from lslo.tuner.languages import generation_prompt
from lslo.tuner.model import LSLoModel
from lslo.tuner.serialization import ADAPTER_CONFIG, ADAPTER_WEIGHTS, AdapterError, load_adapter_state
from lslo.tuner.storage import StorageError, unpack

# The index file the Trainer's loader looks for (transformers' SAFE_WEIGHTS_INDEX_NAME)
TRAINER_INDEX = "model.safetensors.index.json"
# what LSLoModel.generate does when not told otherwise
GENERATION_DEFAULTS = {"num_beams": 5, "max_new_tokens": 128}


class TrainerInputError(LSLoError):
    """A batch, a dataset row or a checkpoint the Hugging Face integration cannot use (one line)."""


def as_lslo_model(model: Any) -> LSLoModel:
    """The :class:`LSLoModel` inside ``model`` (an ``LSLoForSeq2SeqLM`` or an ``LSLoModel`` itself)."""
    if isinstance(model, LSLoModel):
        return model
    inner = getattr(model, "lslo", None)
    if isinstance(inner, LSLoModel):
        return inner
    raise TrainerInputError(f"model: expected an LSLoModel or LSLoForSeq2SeqLM, got {type(model).__name__}")


class LSLoForSeq2SeqLM(PreTrainedModel):
    """An :class:`LSLoModel` the ``transformers`` ``Trainer`` / ``Seq2SeqTrainer`` trains, saves and
    reloads as it does any model; ``.lslo`` is the model itself (same modules, same weights)."""

    base_model_prefix = "lslo"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    # the Trainer passes its token count of the whole update (gradient accumulation) to forward
    accepts_loss_kwargs = True

    def __init__(self, lslo: LSLoModel) -> None:
        if not isinstance(lslo, LSLoModel):
            raise TrainerInputError(f"LSLoForSeq2SeqLM: expected an LSLoModel, got {type(lslo).__name__}")
        if lslo.tokenizer is None:
            raise TrainerInputError("LSLoForSeq2SeqLM: the LSLoModel has no tokenizer; pass tokenizer= to LSLoModel")
        # a copy: PreTrainedModel.__init__ writes its attention settings into the config it gets
        super().__init__(copy.deepcopy(lslo.base.config))
        self.lslo = lslo
        self.generation_config = copy.deepcopy(lslo.base.generation_config)
        self._generation_defaults()

    def _generation_defaults(self) -> None:
        """Beam size and length of ``predict_with_generate``: this model's ``generation_config``
        (``num_beams``, ``max_new_tokens``, ``length_penalty``), set here to LSLoModel.generate's
        defaults where unset; written into the config so that the Trainer filling in transformers'
        defaults after the first batch (1 beam, 20 tokens) cannot change later batches."""
        config = self.generation_config
        if config.num_beams is None:
            config.num_beams = GENERATION_DEFAULTS["num_beams"]
        if config.max_new_tokens is None:
            config.max_new_tokens = GENERATION_DEFAULTS["max_new_tokens"]

    # ------------------------------------------------------------- construction
    @classmethod
    def from_base(cls, base: nn.Module, config: LSLoConfig, tokenizer: Any) -> LSLoForSeq2SeqLM:
        """Inject LSLo into ``base`` (frozen) and wrap it: what ``peft.get_peft_model`` is to PEFT."""
        return cls(LSLoModel(base, config, tokenizer))

    @classmethod
    def from_pretrained(cls, adapter_dir: str | Path, base: nn.Module | str | None = None,  # type: ignore[override]
                        tokenizer: Any = None, **_: Any) -> LSLoForSeq2SeqLM:
        """Load saved adapters (a Trainer checkpoint, ``save_model``'s directory, or any lslo adapter
        directory) into a fresh base: :meth:`LSLoModel.from_pretrained`, wrapped."""
        directory = Path(adapter_dir)
        if directory.is_dir() and not any((directory / name).exists() for name in (ADAPTER_WEIGHTS, ADAPTER_CONFIG,
                                                                                  "checkpoints")):
            raise AdapterError(f"{directory / ADAPTER_WEIGHTS}: no adapter weights found")
        return cls(LSLoModel.from_pretrained(directory, base=base, tokenizer=tokenizer))

    # ---------------------------------------------------------------- training
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        src_lang: torch.Tensor | list[str] | None = None,
        tgt_lang: torch.Tensor | list[str] | None = None,
        src: Any = None,
        tgt: Any = None,
        num_items_in_batch: int | torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Seq2SeqLMOutput:
        """One routed forward pass; with ``labels``, the loss (summed token cross-entropy divided by
        ``num_items_in_batch``, the Trainer's label-token count of the whole update, else by this
        batch's). ``src``/``tgt`` are named only so the Trainer keeps those columns for the collator."""
        if src is not None or tgt is not None:
            raise TrainerInputError(
                "batch: holds raw text ('src'/'tgt'); pass data_collator=lslo.hf.LSLoCollator(model) to the Trainer"
            )
        for name, value in (("src_lang", src_lang), ("tgt_lang", tgt_lang)):
            if value is None:
                raise TrainerInputError(
                    f"batch: no '{name}' (every LSLo batch carries per-sentence languages); build batches with "
                    "lslo.hf.LSLoCollator"
                )
        if labels is not None and decoder_input_ids is None:
            raise TrainerInputError("batch: 'labels' without 'decoder_input_ids'; build batches with lslo.hf.LSLoCollator")
        kwargs.setdefault("use_cache", False)  # no decoder cache while training or scoring
        out = self.lslo(src_lang, tgt_lang, input_ids=input_ids, attention_mask=attention_mask,
                        decoder_input_ids=decoder_input_ids, decoder_attention_mask=decoder_attention_mask,
                        **kwargs)
        loss = None
        if labels is not None:
            total, n = seq2seq_loss(out.logits, labels, 0.0)
            denom = num_items_in_batch if num_items_in_batch is not None else max(n, 1)
            if torch.is_tensor(denom):
                denom = denom.to(total.device)
            loss = total / denom
        return Seq2SeqLMOutput(loss=loss, logits=out.logits)

    def generate(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                 src_lang: Any = None, tgt_lang: Any = None, **kwargs: Any) -> torch.Tensor:
        """Beam search on a mixed-direction batch, each row starting with its own target token
        (:meth:`LSLoModel.generate`); what ``Seq2SeqTrainer``'s ``predict_with_generate`` calls.

        Settings: keyword arguments (the Trainer's ``generation_num_beams``/``generation_max_length``),
        else this model's ``generation_config`` (``num_beams``, ``max_new_tokens``, ``length_penalty``).
        The Trainer's extra batch keys (``labels``, ``decoder_*``, ``src``/``tgt``) are dropped; a
        ``max_length`` without ``max_new_tokens`` counts the per-sentence prompt, as in transformers."""
        if input_ids is None or src_lang is None or tgt_lang is None:
            missing = [n for n, v in (("input_ids", input_ids), ("src_lang", src_lang), ("tgt_lang", tgt_lang))
                       if v is None]
            raise TrainerInputError(f"generate: no '{missing[0]}' in the batch; build batches with lslo.hf.LSLoCollator")
        for key in ("labels", "decoder_input_ids", "decoder_attention_mask", "src", "tgt", "num_items_in_batch"):
            kwargs.pop(key, None)
        if not kwargs.get("synced_gpus"):
            kwargs.pop("synced_gpus", None)
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if "max_length" in kwargs and "max_new_tokens" not in kwargs:
            width = generation_prompt(self.lslo.language_tokens(), self.lslo.lang_ids(tgt_lang)[:1].cpu()).shape[1]
            kwargs["max_new_tokens"] = max(1, int(kwargs.pop("max_length")) - width)
        kwargs.pop("max_length", None)
        self._generation_defaults()  # a generation_config given to the Trainer may leave them unset
        for key in ("num_beams", "max_new_tokens", "length_penalty"):
            if key not in kwargs and getattr(self.generation_config, key, None) is not None:
                kwargs[key] = getattr(self.generation_config, key)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.lslo.generate(input_ids, attention_mask, src_lang, tgt_lang, **kwargs)

    # ---------------------------------------------------------- state and files
    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:  # type: ignore[override]
        """The adapter state, masks included (the frozen base is not part of it)."""
        tensors: dict[str, torch.Tensor] = {}
        for name, m in self.lslo.lslo_modules().items():
            for i, code in enumerate(m.languages):
                tensors[f"{name}.{code}.lora_A"] = m.A_of(i).detach().contiguous().cpu()
                tensors[f"{name}.{code}.lora_B"] = m.B_of(i).detach().contiguous().cpu()
                tensors[f"{name}.{code}.mask_A"] = m.mask_A_of(i).to(torch.uint8).contiguous().cpu()
                tensors[f"{name}.{code}.mask_B"] = m.mask_B_of(i).to(torch.uint8).contiguous().cpu()
        return tensors

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor], strict: bool = True,  # type: ignore[override]
                        assign: bool = False) -> Any:
        """Load an adapter state: this model's :meth:`state_dict`, or the tensors of an
        ``adapters.safetensors`` file as stored (packed), which is what the Trainer's loader passes."""
        try:
            state = unpack(dict(state_dict))
        except StorageError as e:
            raise AdapterError(f"checkpoint: {e}") from None
        load_adapter_state(self.lslo, state, Path("checkpoint"))
        return torch.nn.modules.module._IncompatibleKeys([], [])

    def save_pretrained(self, save_directory: str | Path, is_main_process: bool = True,  # type: ignore[override]
                        state_dict: Any = None, **_: Any) -> Path:
        """Write the adapters in lslo's format and the Trainer's index to them (the base is not copied)."""
        out = Path(save_directory)
        if not is_main_process:
            return out
        self.lslo.save_adapters(out)
        index = {
            "metadata": {
                "format": "lslo",
                "note": f"the adapters of an LSLo model; the tensors are in {ADAPTER_WEIGHTS} (lslo's packed "
                        "format, read it with lslo: LSLoModel.from_pretrained / lslo.hf.LSLoForSeq2SeqLM)",
            },
            "weight_map": dict.fromkeys(self.state_dict(), ADAPTER_WEIGHTS),
        }
        (out / TRAINER_INDEX).write_text(json.dumps(index, indent=2), encoding="utf-8")
        return out

    # ------------------------------------------------------ PEFT's method names
    def get_nb_trainable_parameters(self) -> tuple[int, int]:
        """(trainable, all) parameters, as PEFT's method of that name counts them."""
        return self.lslo.get_nb_trainable_parameters()

    def print_trainable_parameters(self) -> None:
        self.lslo.print_trainable_parameters()

    def get_base_model(self) -> nn.Module:
        """The adapted Hugging Face model (its LSLo layers route by the languages of each call)."""
        return self.lslo.base

    # --------------------------------------------------- activation checkpointing
    def activation_checkpointing_enable(self, activation_checkpointing_kwargs: dict[str, Any] | None = None,
                                        every_n_layers: int = 1, offload: bool = False) -> None:
        """PreTrainedModel's activation checkpointing over the base's layers (it also makes the frozen
        embeddings' output require grad, so the adapters inside checkpointed layers get gradients),
        with the routing put back while a layer is recomputed in backward: the forward's
        ``route`` context has ended by then (``torch.utils.checkpoint``'s ``context_fn``)."""
        kwargs = dict(activation_checkpointing_kwargs or {"use_reentrant": False})
        if kwargs.get("use_reentrant", False):
            raise TrainerInputError("activation_checkpointing_kwargs: use_reentrant=True cannot carry LSLo's per-sentence "
                                    "routing into the recomputation; leave it False (the default)")
        kwargs["use_reentrant"] = False
        kwargs.setdefault("context_fn", _routing_context_fn(self.lslo.router))
        super().activation_checkpointing_enable(kwargs, every_n_layers=every_n_layers, offload=offload)

    def get_input_embeddings(self) -> nn.Module:
        return self.lslo.base.get_input_embeddings()


def _routing_context_fn(router: Any):
    """``context_fn`` for ``torch.utils.checkpoint``: the recomputation of a checkpointed layer runs
    with the languages the layer saw in its forward."""

    def context_fn():
        src, tgt = router.src, router.tgt

        @contextlib.contextmanager
        def recompute():
            saved = (router.src, router.tgt)
            router.set(src, tgt)
            try:
                yield
            finally:
                router.set(*saved)

        return contextlib.nullcontext(), recompute()

    return context_fn


def get_lslo_model(base: nn.Module, config: LSLoConfig, tokenizer: Any) -> LSLoForSeq2SeqLM:
    """``peft.get_peft_model`` for LSLo: inject the adapters into ``base`` and return the Trainer-ready model."""
    return LSLoForSeq2SeqLM.from_base(base, config, tokenizer)


__all__ = ["TRAINER_INDEX", "LSLoForSeq2SeqLM", "TrainerInputError", "as_lslo_model", "get_lslo_model"]
