"""Inject LSLo into a Hugging Face encoder-decoder, route it, save/load/merge it."""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lslo.errors import LSLoError
from lslo.tuner.config import ConfigError, LSLoConfig
from lslo.tuner.languages import LanguageError, LanguageTokens, build_batch, generation_prompt
from lslo.tuner.layer import LSLoLinear, Router
from lslo.tuner.storage import StorageError, load_state, save_state

ADAPTER_WEIGHTS = "adapters.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
SHARED = "shared"  # the single adapter of the shared-LoRA baseline
_LAYER_RE = re.compile(r"^(?:.*\.)?(encoder|decoder)\.layers\.(\d+)\.(.+)$")


class AdapterError(LSLoError):
    """Saved adapters do not fit the model they are loaded into."""


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


def set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


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
            yield m.lora_B

    def set_tokenizer(self, tokenizer: Any) -> None:
        start = getattr(getattr(self.base, "config", None), "decoder_start_token_id", None)
        if start is None:
            start = tokenizer.eos_token_id
        explicit = {lang.code: lang.token for lang in self.config.languages}
        self.tokens = LanguageTokens.from_tokenizer(tokenizer, self.config.codes, explicit, start)
        self.tokenizer = tokenizer

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
        out = []
        for code in langs:
            if code not in codes:
                raise LanguageError(f"language {code!r} is not configured; configured: {', '.join(codes)}")
            out.append(codes.index(code))
        return torch.tensor(out, dtype=torch.long)

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

    def _require_tokens(self) -> LanguageTokens:
        if self.tokens is None:
            raise LanguageError("no tokenizer attached: pass tokenizer= to LSLoModel or call set_tokenizer()")
        return self.tokens

    @torch.no_grad()
    def generate(self, input_ids, attention_mask, src_lang, tgt_lang, **kwargs) -> torch.Tensor:
        """Beam search on a batch that may mix directions; each row starts with its own target token."""
        tokens = self._require_tokens()
        tgt = self.lang_ids(tgt_lang)
        prompt = generation_prompt(tokens, tgt).to(input_ids.device)
        kwargs.setdefault("num_beams", 5)
        kwargs.setdefault("max_new_tokens", 128)
        if "max_length" not in kwargs and kwargs.get("max_new_tokens") is not None:
            # the same limit as max_length (the prompt counts): transformers warns on every call when a
            # checkpoint's generation_config sets max_length (M2M-100's does) and max_new_tokens is passed
            kwargs["max_length"] = prompt.shape[1] + kwargs.pop("max_new_tokens")
        with self.route(src_lang, tgt):
            return self.base.generate(
                input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=prompt,
                forced_bos_token_id=None, **kwargs,
            )

    @torch.no_grad()
    def translate(
        self,
        texts: Sequence[str],
        src_langs: Sequence[str],
        tgt_langs: Sequence[str],
        batch_size: int = 32,
        max_tokens: int | None = None,
        **generate_kwargs,
    ) -> list[str]:
        """Translate a list that may mix directions; results come back in input order.

        Inputs are sorted by length and cut into batches of at most ``batch_size`` sentences
        and, when given, ``max_tokens`` padded source tokens; every batch may mix directions.
        """
        tokens = self._require_tokens()
        if not (len(texts) == len(src_langs) == len(tgt_langs)):
            raise ValueError("translate: texts, src_langs and tgt_langs must have the same length")
        for code in set(src_langs) | set(tgt_langs):
            tokens.index(code)  # unknown language: a clear error before any work
        pieces = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
        order = sorted(range(len(texts)), key=lambda i: (-len(pieces[i]), i))
        batches: list[list[int]] = []
        for i in order:
            if batches:
                cur = batches[-1]
                width = len(pieces[cur[0]]) + 2  # sorted: the first is the longest
                fits = len(cur) < batch_size and (max_tokens is None or (len(cur) + 1) * width <= max_tokens)
                if fits:
                    cur.append(i)
                    continue
            batches.append([i])
        out: list[str] = [""] * len(texts)
        device = next(self.base.parameters()).device
        was_training = self.training
        self.eval()
        try:
            for chunk in batches:
                batch = build_batch(
                    tokens, [pieces[i] for i in chunk], [src_langs[i] for i in chunk], [tgt_langs[i] for i in chunk]
                )
                gen = self.generate(
                    batch["input_ids"].to(device), batch["attention_mask"].to(device),
                    batch["src_lang"], batch["tgt_lang"], **generate_kwargs,
                )
                n_prompt = generation_prompt(tokens, batch["tgt_lang"]).shape[1]
                decoded = self.tokenizer.batch_decode(gen[:, n_prompt:], skip_special_tokens=True)
                for i, text in zip(chunk, decoded):
                    out[i] = text.strip()
        finally:
            self.train(was_training)
        return out

    # --------------------------------------------------------------- reporting
    def base_parameter_count(self) -> int:
        adapter = {id(p) for p in self.adapter_parameters()}
        return sum(p.numel() for p in self.base.parameters() if id(p) not in adapter)

    def parameter_report(self) -> dict[str, Any]:
        """Trainable (kept, non-padding) adapter parameters in total and per language."""
        codes = [SHARED] if self.shared else self.config.codes
        per_lang = dict.fromkeys(codes, 0)
        for m in self.lslo_modules().values():
            kept = m.mask_A.sum(dim=(1, 2)) + m.mask_B.sum(dim=(1, 2))
            for i, code in enumerate(codes):
                per_lang[code] += int(kept[i])
        base = self.base_parameter_count()
        adapters = sum(per_lang.values())
        full = sum(p.numel() for p in self.base.parameters() if p.requires_grad and p.dim() > 0) - sum(
            p.numel() for p in self.adapter_parameters()
        )
        total = adapters + full  # full fine-tuning trains the base itself
        def level(c: str) -> str:
            return "shared" if c == SHARED else self.config.language(c).level
        def rank(c: str) -> int:
            return int(self.config.shared_rank) if c == SHARED else self.config.rank_of(c)
        return {
            "method": "full" if full else ("lora" if self.shared else "lslo"),
            "base_parameters": base,
            "trainable_parameters": total,
            "trainable_percent": 100.0 * total / base,
            "per_language": {
                c: {"level": level(c), "rank": rank(c), "parameters": n, "percent_of_base": 100.0 * n / base}
                for c, n in per_lang.items()
            },
        }

    # ------------------------------------------------------------ save / load
    def adapter_state(self) -> dict[str, torch.Tensor]:
        """Compact per-language tensors: padding dropped, masks only where something is pruned."""
        tensors: dict[str, torch.Tensor] = {}
        for name, m in self.lslo_modules().items():
            valid_a, valid_b = m.valid_A(), m.valid_B()
            for i, code in enumerate(m.languages):
                r = int(m.ranks[i])
                tensors[f"{name}.{code}.lora_A"] = m.lora_A[i, :r].detach().contiguous().cpu()
                tensors[f"{name}.{code}.lora_B"] = m.lora_B[i, :, :r].detach().contiguous().cpu()
                if not torch.equal(m.mask_A[i], valid_a[i]) or not torch.equal(m.mask_B[i], valid_b[i]):
                    tensors[f"{name}.{code}.mask_A"] = m.mask_A[i, :r].to(torch.uint8).contiguous().cpu()
                    tensors[f"{name}.{code}.mask_B"] = m.mask_B[i, :, :r].to(torch.uint8).contiguous().cpu()
        return tensors

    def save_adapters(self, directory: str | Path) -> Path:
        """Write adapters.safetensors + adapter_config.json (the base model is not copied)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        save_state(self.adapter_state(), out / ADAPTER_WEIGHTS)  # sparse when pruned; "version": "2" in metadata
        meta = {
            "format": "lslo",
            "version": 1,
            "base_model": str(getattr(getattr(self.base, "config", None), "_name_or_path", "") or ""),
            "lslo": self.config.to_dict(),
            "encoder_routing": self.encoder_routing,
            "decoder_routing": self.decoder_routing,
            "language_tokens": dict(zip(self.tokens.codes, self.tokens.token_ids)) if self.tokens else None,
        }
        (out / ADAPTER_CONFIG).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        return out

    def load_adapters(self, directory: str | Path, languages: Sequence[str] | None = None) -> None:
        """Load saved adapters; with ``languages``, only those (others keep their current weights)."""
        path = Path(directory) / ADAPTER_WEIGHTS
        if not path.is_file():
            raise AdapterError(f"{path}: no adapter weights found")
        try:
            state = load_state(path)  # version 1 (plain) or 2 (packed) files
        except StorageError as e:
            raise AdapterError(str(e)) from None
        if languages is not None:
            prefixes = tuple(f".{code}." for code in languages)
            state = {k: v for k, v in state.items() if any(p in k for p in prefixes)}
        expected: set[str] = set()
        with torch.no_grad():
            for name, m in self.lslo_modules().items():
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
                    m.lora_A[i].zero_()
                    m.lora_B[i].zero_()
                    m.lora_A[i, :r] = state[ka].to(m.lora_A.dtype)
                    m.lora_B[i, :, :r] = state[kb].to(m.lora_B.dtype)
                    m.mask_A[i] = m.valid_A()[i]
                    m.mask_B[i] = m.valid_B()[i]
                    km, kn = f"{name}.{code}.mask_A", f"{name}.{code}.mask_B"
                    if km in state:
                        expected.update((km, kn))
                        m.mask_A[i, :r] = state[km].bool()
                        m.mask_B[i, :, :r] = state[kn].bool()
        extra = sorted(set(state) - expected)
        if extra:
            raise AdapterError(f"{path}: unexpected tensor {extra[0]} (and {len(extra) - 1} more); config mismatch?")

    @classmethod
    def from_pretrained(cls, adapter_dir: str | Path, base: nn.Module | str | None = None, tokenizer: Any = None):
        """Load saved adapters into a freshly loaded base model (a model object or a directory)."""
        cfg_path = Path(adapter_dir) / ADAPTER_CONFIG
        if not cfg_path.is_file():
            raise AdapterError(f"{cfg_path}: no adapter config found")
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
        if base is None or isinstance(base, (str, Path)):
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

            base_dir = str(base or meta.get("base_model") or "")
            if not base_dir:
                raise AdapterError(f"{cfg_path}: no base model recorded; pass base=")
            base = AutoModelForSeq2SeqLM.from_pretrained(base_dir)
            if tokenizer is None:
                tokenizer = AutoTokenizer.from_pretrained(base_dir)
        config = LSLoConfig.from_dict(meta["lslo"], where="lslo")
        model = cls(base, config, tokenizer)
        if model.encoder_routing != meta["encoder_routing"] or model.decoder_routing != meta["decoder_routing"]:
            raise AdapterError(f"{cfg_path}: saved routing does not match this base model's depth")
        model.load_adapters(adapter_dir)
        return model

    # ------------------------------------------------------------------ merge
    @torch.no_grad()
    def merge(self, src: str, tgt: str) -> nn.Module:
        """A plain copy of the base model with direction src->tgt folded into its weights."""
        si, ti = self.lang_ids([src, tgt]).tolist()
        if self.shared:
            si = ti = 0
        merged = copy.deepcopy(self.base)
        for name, m in list(merged.named_modules()):
            if isinstance(m, LSLoLinear):
                lang = si if m.routing == "source" else ti
                lin = m.base
                delta = m.delta_weight(lang).to(torch.float32)
                lin.weight.copy_((lin.weight.to(torch.float32) + delta).to(lin.weight.dtype))
                set_submodule(merged, name, lin)
        for p in merged.parameters():
            p.requires_grad_(True)
        if self.tokens is not None:
            tok_id = self.tokens.token_id(tgt)
            gen_cfg = getattr(merged, "generation_config", None)
            if gen_cfg is not None:
                gen_cfg.forced_bos_token_id = tok_id
        return merged

    def save_merged(self, src: str, tgt: str, directory: str | Path) -> Path:
        """Write a model directory that AutoModelForSeq2SeqLM loads without lslo."""
        out = Path(directory)
        merged = self.merge(src, tgt)
        merged.save_pretrained(str(out))
        if self.tokenizer is not None:
            tok = copy.deepcopy(self.tokenizer)
            if hasattr(tok, "src_lang") and self.tokens.token_id(src) is not None:
                with contextlib.suppress(Exception):  # best effort: tokenizers name languages differently
                    tok.src_lang = tokenizer_lang_code(tok, self.tokens, src)
            tok.save_pretrained(str(out))
        (out / "lslo_direction.json").write_text(json.dumps({"src": src, "tgt": tgt}), encoding="utf-8")
        return out


def tokenizer_lang_code(tokenizer: Any, tokens: LanguageTokens, code: str) -> str:
    """The value a tokenizer's ``src_lang`` expects: 'fr' for M2M-100 (__fr__), else the token itself."""
    tok_id = tokens.token_id(code)
    token = tokenizer.convert_ids_to_tokens(tok_id)
    m = re.fullmatch(r"__(.+)__", token)
    return m.group(1) if m else token
