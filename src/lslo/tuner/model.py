"""Inject LSLo into a Hugging Face encoder-decoder, route it per sentence, generate.

Translation batching, adapter files, merging and the parameter report live in
:mod:`~lslo.tuner.translation`, :mod:`~lslo.tuner.serialization`, :mod:`~lslo.tuner.merge` and
:mod:`~lslo.tuner.params`; the model keeps thin methods for them.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lslo import decoding
from lslo.tuner import merge as merging
from lslo.tuner import params, serialization, translation
from lslo.tuner.beam_cache import add_beam_search_cache
from lslo.tuner.config import ConfigError, LSLoConfig
from lslo.tuner.languages import LanguageError, LanguageTokens, generation_prompt, language_token_ids
from lslo.tuner.layer import SHARED, LSLoLinear, Router, set_submodule
from lslo.tuner.merge import tokenizer_lang_code
from lslo.tuner.serialization import ADAPTER_CONFIG, ADAPTER_WEIGHTS, AdapterError

ENGINES = ("lslo", "transformers")  # generate(engine=...)
_LAYER_RE = re.compile(r"^(?:.*\.)?(encoder|decoder)\.layers\.(\d+)\.(.+)$")


def model_depth(model: nn.Module) -> tuple[int, int]:
    """Number of encoder and decoder layers (from the HF config, else from module names)."""
    cfg = getattr(model, "config", None)
    n_enc = getattr(cfg, "encoder_layers", None)
    n_dec = getattr(cfg, "decoder_layers", None)
    if isinstance(n_enc, int) and isinstance(n_dec, int):
        return n_enc, n_dec
    seen = {"encoder": set(), "decoder": set()}
    for name, _ in model.named_modules():
        m = _LAYER_RE.match(name)
        if m:
            seen[m.group(1)].add(int(m.group(2)))
    if not seen["encoder"] or not seen["decoder"]:
        raise ConfigError("model: found no '<encoder|decoder>.layers.N' modules; is this an encoder-decoder?")
    return max(seen["encoder"]) + 1, max(seen["decoder"]) + 1


_ANNOUNCED: set[str] = set()


def announce_fallback(why: str) -> None:
    """Warn, once per process and reason, that generation runs on transformers' path."""
    if why in _ANNOUNCED:
        return
    _ANNOUNCED.add(why)
    warnings.warn(f"lslo: transformers' generate runs instead of lslo's beam search ({why}); so does every "
                  "such call (the same translations, slower; LSLoModel.last_engine says which ran)", stacklevel=3)


class LSLoModel(nn.Module):
    """A frozen seq2seq model with language-specific LoRA on the configured positions.

    Every forward/generate call carries the source and target language of each
    sentence (``src_lang``/``tgt_lang``: a LongTensor of language indices or a list
    of codes); each adapted layer picks its language by its routing.
    """

    def __init__(self, base: nn.Module, config: LSLoConfig, tokenizer: Any = None) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.shared = config.shared_rank is not None
        self.base = base
        self.router = Router()
        for p in self.base.parameters():
            p.requires_grad_(False)
        if any(isinstance(m, LSLoLinear) for m in base.modules()):
            raise ConfigError("model: already has LSLo layers; load a fresh base model")
        n_enc, n_dec = model_depth(base)
        self.encoder_routing, self.decoder_routing = config.resolve_routing(n_enc, n_dec)
        self.tokenizer = None
        self.tokens: LanguageTokens | None = None
        if tokenizer is not None:  # before injection, so a bad language leaves the base untouched
            self.set_tokenizer(tokenizer)
        self._inject(n_enc, n_dec)

    # --------------------------------------------------------------- injection
    def _inject(self, n_enc: int, n_dec: int) -> None:
        cfg = self.config
        suffix_to_pos = {v: k for k, v in cfg.position_names().items()}
        wanted = {"encoder": set(cfg.encoder_positions), "decoder": set(cfg.decoder_positions)}
        routes = {"encoder": self.encoder_routing, "decoder": self.decoder_routing}
        if self.shared:
            codes = (SHARED,)
            ranks = [int(cfg.shared_rank)]
            scales = [1.0 if cfg.alpha is None else float(cfg.alpha) / cfg.shared_rank]
        else:
            codes = tuple(cfg.codes)
            ranks = [cfg.rank_of(c) for c in codes]
            scales = [cfg.scale_of(c) for c in codes]
        found: dict[tuple[str, str], int] = {}
        for name, module in list(self.base.named_modules()):
            m = _LAYER_RE.match(name)
            if not m:
                continue
            side, layer, rest = m.group(1), int(m.group(2)), m.group(3)
            pos = suffix_to_pos.get(rest)
            if pos is None or pos not in wanted[side]:
                continue
            if side == "encoder" and pos.startswith("cross_"):
                continue
            if not isinstance(module, nn.Linear):
                raise ConfigError(f"{side}_positions: {name} is a {type(module).__name__}, not an nn.Linear")
            wrapped = LSLoLinear(
                module, ranks, scales, codes, self.router,
                routing=routes[side][layer], side=side, layer=layer, position=pos, name=name,
                dropout=cfg.dropout, init=cfg.init,
            )
            set_submodule(self.base, name, wrapped)
            found[(side, pos)] = found.get((side, pos), 0) + 1
        for side, n in (("encoder", n_enc), ("decoder", n_dec)):
            for pos in sorted(wanted[side]):
                if found.get((side, pos), 0) != n:
                    suffix = cfg.position_names()[pos]
                    raise ConfigError(
                        f"{side}_positions: position {pos!r} matched {found.get((side, pos), 0)} of {n} layers "
                        f"(looked for '{side}.layers.N.{suffix}'); set module_names for this architecture"
                    )

    def lslo_modules(self) -> dict[str, LSLoLinear]:
        return {m.name: m for m in self.base.modules() if isinstance(m, LSLoLinear)}

    def adapter_parameters(self) -> Iterator[nn.Parameter]:
        for m in self.lslo_modules().values():
            yield m.lora_A
            yield m.lora_BT

    def set_tokenizer(self, tokenizer: Any) -> None:
        start = getattr(getattr(self.base, "config", None), "decoder_start_token_id", None)
        if start is None:
            start = tokenizer.eos_token_id
        explicit = {lang.code: lang.token for lang in self.config.languages}
        self.tokens = LanguageTokens.from_tokenizer(tokenizer, self.config.codes, explicit, start)
        self.tokenizer = tokenizer
        self._suppress_ids = None

    # ----------------------------------------------------------------- routing
    def lang_ids(self, langs: torch.Tensor | Sequence[str]) -> torch.Tensor:
        if isinstance(langs, torch.Tensor):
            if langs.dtype != torch.long or langs.dim() != 1:
                raise ValueError("language ids must be a 1-D LongTensor")
            # range check on host tensors only: on a GPU it would force a device-to-host sync
            if langs.device.type == "cpu" and langs.numel() and (
                int(langs.min()) < 0 or int(langs.max()) >= len(self.config.codes)
            ):
                raise LanguageError(f"language id out of range 0..{len(self.config.codes) - 1}")
            return langs
        codes = self.config.codes
        return torch.tensor([codes.index(self.resolve_language(code)) for code in langs], dtype=torch.long)

    def resolve_language(self, code: str) -> str:
        """The configured code for ``code`` given as configured, FLORES-101 (``eng``), FLORES-200
        (``eng_Latn``) or a language token (``__en__``); a one-line LanguageError otherwise."""
        from lslo.tuner.langcodes import UnknownLanguageError, resolve_code

        codes = self.config.codes
        if isinstance(code, str) and code in codes:
            return code
        try:
            return resolve_code(code, list(codes))
        except (UnknownLanguageError, TypeError):
            raise LanguageError(f"language {code!r} is not configured; configured: {', '.join(codes)}") from None

    @contextlib.contextmanager
    def route(self, src_lang, tgt_lang):
        """Route every LSLo layer by these per-sentence languages for the calls inside."""
        device = next(self.base.parameters()).device
        src, tgt = self.lang_ids(src_lang).to(device), self.lang_ids(tgt_lang).to(device)
        if self.shared:  # one adapter for everyone: every row routes to index 0
            src, tgt = torch.zeros_like(src), torch.zeros_like(tgt)
        self.router.set(src, tgt)
        try:
            yield
        finally:
            self.router.clear()

    def forward(self, src_lang, tgt_lang, **inputs):
        with self.route(src_lang, tgt_lang):
            return self.base(**inputs)

    def language_tokens(self) -> LanguageTokens:
        if self.tokens is None:
            raise LanguageError("no tokenizer attached: pass tokenizer= to LSLoModel or call set_tokenizer()")
        return self.tokens

    @torch.no_grad()
    def generate(self, input_ids, attention_mask, src_lang, tgt_lang, *, engine: str = "lslo",
                 beam_cache: bool = True, **kwargs) -> torch.Tensor:
        """Beam search on a batch that may mix directions; each row starts with its own target token.

        ``engine``: "lslo" (default) runs lslo's lean search (:mod:`lslo.decoding`: the same
        translations as transformers' ``generate``, token for token, with finished sentences
        leaving the batch and cross-attention shared by beams) on M2M-100-architecture models,
        and transformers' ``generate`` for any other model or setting (``self.last_engine`` says
        which ran and why); "transformers" always runs transformers' ``generate``.
        ``beam_cache`` (transformers' path only): keep the cross-attention keys/values in place
        instead of copying them by beam after every step (``lslo.tuner.beam_cache``)."""
        if engine not in ENGINES:
            raise ValueError(f"generate: engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        tokens = self.language_tokens()
        tgt = self.lang_ids(tgt_lang)
        prompt = generation_prompt(tokens, tgt).to(input_ids.device)
        kwargs.setdefault("num_beams", 5)
        if kwargs.get("max_length") is None:  # a caller's max_length stands; without one, 128 new tokens
            kwargs.setdefault("max_new_tokens", 128)
        if self.tokenizer is not None:  # language tokens only ever come from the prompt
            kwargs.setdefault("suppress_tokens", self._suppressed())
        if kwargs.get("max_new_tokens") is not None:
            # the same limit as max_length (the prompt counts; max_new_tokens wins over max_length, as in
            # transformers): transformers warns on every call when a checkpoint's generation_config sets
            # max_length (M2M-100's does) and max_new_tokens is passed
            if kwargs["max_new_tokens"] <= 0:
                raise ValueError(f"`max_new_tokens` must be greater than 0, but is {kwargs['max_new_tokens']}.")
            kwargs["max_length"] = prompt.shape[1] + kwargs.pop("max_new_tokens")
        kwargs["forced_bos_token_id"] = None
        why = decoding.unsupported(self.base, kwargs) if engine == "lslo" else "engine='transformers'"
        self.last_engine = ("lslo", None) if why is None else ("transformers", why)
        if why is not None and engine == "lslo":
            announce_fallback(why)
        with self.route(src_lang, tgt):
            if why is None:
                src_ids, tgt_ids = self.router.src, self.router.tgt

                def on_active(ids: torch.Tensor) -> None:  # finished sentences left the batch
                    self.router.set(src_ids.index_select(0, ids), tgt_ids.index_select(0, ids))

                return decoding.generate(self.base, input_ids, attention_mask, prompt, kwargs, on_active)
            if beam_cache:
                add_beam_search_cache(self.base, kwargs)
            return self.base.generate(input_ids=input_ids, attention_mask=attention_mask,
                                      decoder_input_ids=prompt, **kwargs)

    def _suppressed(self) -> list[int]:
        if getattr(self, "_suppress_ids", None) is None:
            self._suppress_ids = language_token_ids(self.tokenizer, self.tokens)
        return self._suppress_ids

    # ------------------------------------------- translation, reports, storage, merge
    # (each lives in its own module; the methods keep the model's API in one place)
    def translate(self, texts: Sequence[str], src_langs: Sequence[str], tgt_langs: Sequence[str],
                  batch_size: int = 32, max_tokens: int | None = None, **generate_kwargs) -> list[str]:
        """See :func:`lslo.tuner.translation.translate`."""
        return translation.translate(self, texts, src_langs, tgt_langs, batch_size, max_tokens, **generate_kwargs)

    def translate_n_best(self, texts: Sequence[str], src_langs: Sequence[str], tgt_langs: Sequence[str], n: int,
                         batch_size: int = 32, max_tokens: int | None = None, **generate_kwargs) -> list[list[str]]:
        """See :func:`lslo.tuner.translation.translate_n_best`."""
        return translation.translate_n_best(self, texts, src_langs, tgt_langs, n, batch_size, max_tokens,
                                            **generate_kwargs)

    def base_parameter_count(self) -> int:
        return params.base_parameter_count(self)

    def parameter_report(self) -> dict[str, Any]:
        """See :func:`lslo.tuner.params.parameter_report`."""
        return params.parameter_report(self)

    # PEFT's method names (the installed PEFT cannot register LSLo as a method of its own; README)
    def get_nb_trainable_parameters(self) -> tuple[int, int]:
        """(trainable, all) parameters, counted as PEFT's method of that name counts them."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return trainable, sum(p.numel() for p in self.parameters())

    def print_trainable_parameters(self) -> None:
        """PEFT's one-line summary: ``trainable params: ... || all params: ... || trainable%: ...``."""
        trainable, total = self.get_nb_trainable_parameters()
        print(f"trainable params: {trainable:,d} || all params: {total:,d} || "
              f"trainable%: {100 * trainable / max(total, 1):.4f}")

    def save_pretrained(self, directory: str | Path, **_: Any) -> Path:
        """PEFT's name for :meth:`save_adapters` (lslo's files; load with :meth:`from_pretrained`)."""
        return self.save_adapters(directory)

    def adapter_state(self) -> dict[str, torch.Tensor]:
        return serialization.adapter_state(self)

    def save_adapters(self, directory: str | Path) -> Path:
        """See :func:`lslo.tuner.serialization.save_adapters`."""
        return serialization.save_adapters(self, directory)

    def load_adapters(self, directory: str | Path, languages: Sequence[str] | None = None) -> None:
        """See :func:`lslo.tuner.serialization.load_adapters`."""
        serialization.load_adapters(self, directory, languages)

    @classmethod
    def from_pretrained(cls, adapter_dir: str | Path, base: nn.Module | str | None = None, tokenizer: Any = None):
        """See :func:`lslo.tuner.serialization.from_pretrained`."""
        return serialization.from_pretrained(cls, adapter_dir, base, tokenizer)

    def merge(self, src: str, tgt: str) -> nn.Module:
        """See :func:`lslo.tuner.merge.merge`."""
        return merging.merge(self, src, tgt)

    def save_merged(self, src: str, tgt: str, directory: str | Path) -> Path:
        """See :func:`lslo.tuner.merge.save_merged`."""
        return merging.save_merged(self, src, tgt, directory)


__all__ = ["ADAPTER_CONFIG", "ADAPTER_WEIGHTS", "SHARED", "AdapterError", "LSLoModel", "model_depth",
           "set_submodule", "tokenizer_lang_code"]
