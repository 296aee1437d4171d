"""A fairseq M2M-100-family checkpoint -> a Hugging Face ``M2M100ForConditionalGeneration``
directory with a tokenizer that gives fairseq's dictionary ids.

Supported: fairseq's ``transformer`` models as M2M-100 and the FLORES-101 baselines train them
(pre-norm encoder and decoder with a final layer norm, one embedding shared by encoder, decoder
and output projection, sinusoidal positions, scaled embeddings, no layer norm on the embeddings).
Anything else is refused with the setting that differs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from lslo.convert.checkpoint import CheckpointError, load_checkpoint, model_args
from lslo.convert.dictionary import FairseqVocab, read_dict_file, read_languages

# keys fairseq keeps that hold no weights of the model (versions, buffers, fused copies for its
# BetterTransformer fast path, which mirror the modules' own weights)
_SKIP = re.compile(r"(^|\.)version$|_float_tensor$|^encoder\.layers\.\d+\.(in_proj|out_proj|fc1|fc2)_(weight|bias)$")
_LAYER = re.compile(r"^(encoder|decoder)\.layers\.(\d+)\.")
REQUIRED_TRUE = ("encoder_normalize_before", "decoder_normalize_before")
REQUIRED_FALSE = ("encoder_learned_pos", "decoder_learned_pos", "layernorm_embedding", "no_token_positional_embeddings",
                  "adaptive_input", "no_cross_attention", "cross_self_attention")


def _get(args: dict, key: str, default: Any = None) -> Any:
    v = args.get(key)
    return default if v is None else v


def check_architecture(args: dict, state: dict, where: str) -> None:
    """Refuse what an M2M-100 model in transformers cannot represent, naming the setting."""
    for k in REQUIRED_TRUE:
        if args.get(k) is not True:
            raise CheckpointError(f"{where}: {k} is {args.get(k)!r}; lslo converts pre-norm transformers "
                                  "(M2M-100, the FLORES-101 baselines) only")
    for k in REQUIRED_FALSE:
        if args.get(k):
            raise CheckpointError(f"{where}: {k} is set; M2M-100 has no such option (expected fairseq's M2M-100 / "
                                  "FLORES-101 transformer)")
    if args.get("activation_fn", "relu") not in ("relu", "gelu"):
        raise CheckpointError(f"{where}: activation_fn {args.get('activation_fn')!r}; expected relu or gelu")
    if _get(args, "encoder_embed_dim") != _get(args, "decoder_embed_dim"):
        raise CheckpointError(f"{where}: encoder_embed_dim {args.get('encoder_embed_dim')} != decoder_embed_dim "
                              f"{args.get('decoder_embed_dim')}; M2M-100 has one d_model")
    enc, dec = state.get("encoder.embed_tokens.weight"), state.get("decoder.embed_tokens.weight")
    if enc is None or dec is None:
        raise CheckpointError(f"{where}: no encoder/decoder.embed_tokens.weight; not a fairseq transformer checkpoint")
    if enc.shape != dec.shape or not torch.equal(enc, dec):
        raise CheckpointError(f"{where}: the encoder and decoder embeddings differ; M2M-100 shares one embedding "
                              "(fairseq's --share-all-embeddings)")
    out = state.get("decoder.output_projection.weight")
    if out is not None and not torch.equal(out, dec):
        raise CheckpointError(f"{where}: decoder.output_projection.weight is not the embedding; M2M-100 ties them")
    if "encoder.embed_positions.weight" in state or "decoder.embed_positions.weight" in state:
        raise CheckpointError(f"{where}: learned positional embeddings; M2M-100 uses sinusoidal ones")


def hf_config(args: dict, state: dict) -> dict:
    """The ``M2M100Config`` fields of a fairseq transformer."""
    def layers(side: str) -> int:
        return 1 + max((int(m.group(2)) for k in state if (m := _LAYER.match(k)) and m.group(1) == side), default=-1)

    cfg = {
        "vocab_size": int(state["encoder.embed_tokens.weight"].shape[0]),
        "d_model": int(_get(args, "encoder_embed_dim")),
        "encoder_layers": layers("encoder"), "decoder_layers": layers("decoder"),
        "encoder_attention_heads": int(_get(args, "encoder_attention_heads")),
        "decoder_attention_heads": int(_get(args, "decoder_attention_heads")),
        "encoder_ffn_dim": int(_get(args, "encoder_ffn_embed_dim")),
        "decoder_ffn_dim": int(_get(args, "decoder_ffn_embed_dim")),
        "max_position_embeddings": int(max(_get(args, "max_source_positions", 1024),
                                           _get(args, "max_target_positions", 1024))),
        "dropout": float(_get(args, "dropout", 0.1)), "attention_dropout": float(_get(args, "attention_dropout", 0.0)),
        "activation_dropout": float(_get(args, "activation_dropout", _get(args, "relu_dropout", 0.0))),
        "activation_function": _get(args, "activation_fn", "relu"),
        "encoder_layerdrop": float(_get(args, "encoder_layerdrop", 0.0)),
        "decoder_layerdrop": float(_get(args, "decoder_layerdrop", 0.0)),
        "scale_embedding": not args.get("no_scale_embedding", False),
        "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "decoder_start_token_id": 2,
        "tie_word_embeddings": True, "architectures": ["M2M100ForConditionalGeneration"], "model_type": "m2m_100",
    }
    for side in ("encoder", "decoder"):
        if args.get(f"{side}_layers") is not None and int(args[f"{side}_layers"]) != cfg[f"{side}_layers"]:
            raise CheckpointError(f"checkpoint: {side}_layers is {args[f'{side}_layers']} but the state dict has "
                                  f"{cfg[f'{side}_layers']} {side} layers")
    return cfg


def hf_state(state: dict) -> dict[str, torch.Tensor]:
    """fairseq key names -> ``M2M100ForConditionalGeneration``'s (``model.`` prefix, one shared embedding)."""
    out = {f"model.{k}": v for k, v in state.items()
           if not _SKIP.search(k) and k not in ("decoder.output_projection.weight",)}
    emb = state["encoder.embed_tokens.weight"]
    out["model.shared.weight"] = emb
    out["model.encoder.embed_tokens.weight"] = emb
    out["model.decoder.embed_tokens.weight"] = emb
    out["lm_head.weight"] = emb
    return out


def _languages(args: dict, langs: str | None, lang_dict: str | None, lang_pairs: str | None, base: Path) -> list[str]:
    given = read_languages(langs, lang_dict, lang_pairs)
    if given is not None:
        return given
    default = base / "language_pairs.txt"
    if default.is_file():
        return read_languages(lang_pairs=default)
    found = read_languages(args.get("langs"), None, args.get("lang_pairs"))
    if found is None:
        raise CheckpointError("languages: the checkpoint names none; give --langs, --lang-dict or --lang-pairs")
    return found


def load_model(hf_cfg: dict, state: dict[str, torch.Tensor]):
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    config = M2M100Config(**{k: v for k, v in hf_cfg.items() if k not in ("architectures", "model_type")})
    model = M2M100ForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if "embed_positions" not in k]
    if missing or unexpected:
        name = (missing or unexpected)[0]
        raise CheckpointError(f"checkpoint: {'no weight for' if missing else 'unexpected weight'} {name} "
                              f"({len(missing)} missing, {len(unexpected)} unexpected)")
    return model.eval()


def convert_fairseq(checkpoint: str | Path, out: str | Path, *, dict_path: str | Path | None = None,
                    spm_path: str | Path | None = None, langs: str | None = None, lang_dict: str | None = None,
                    lang_pairs: str | None = None, dtype: str = "float32") -> dict:
    """Write ``out`` (a Hugging Face model directory plus tokenizer); returns a summary."""
    from lslo.convert.tokenizer import write_tokenizer

    checkpoint = Path(checkpoint)
    base = checkpoint.parent
    ckpt = load_checkpoint(checkpoint)
    args = model_args(ckpt)
    state = ckpt["model"]
    check_architecture(args, state, str(checkpoint))
    hf_cfg = hf_config(args, state)
    dict_path = Path(dict_path) if dict_path else base / "dict.txt"
    languages = _languages(args, langs, lang_dict, lang_pairs, base)
    vocab = FairseqVocab.build(read_dict_file(dict_path), languages, hf_cfg["vocab_size"], str(dict_path))
    spm_path = Path(spm_path) if spm_path else _find_spm(base)
    model = load_model(hf_cfg, hf_state(state))
    if dtype != "float32":
        model = model.to(getattr(torch, dtype))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok_class = write_tokenizer(out, vocab, spm_path)
    summary = {"checkpoint": str(checkpoint.resolve()), "dictionary": str(dict_path.resolve()),
               "sentencepiece": str(spm_path.resolve()), "languages": languages,
               "language_token_ids": vocab.language_ids(), "vocab_size": hf_cfg["vocab_size"],
               "parameters": sum(p.numel() for p in model.parameters()), "tokenizer_class": tok_class,
               "encoder_layers": hf_cfg["encoder_layers"], "decoder_layers": hf_cfg["decoder_layers"],
               "d_model": hf_cfg["d_model"]}
    (out / "lslo_conversion.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n",
                                              encoding="utf-8")
    return summary


def _find_spm(base: Path) -> Path:
    for name in ("sentencepiece.bpe.model", "spm.128k.model", "spm.model"):
        if (base / name).is_file():
            return base / name
    models = sorted(base.glob("*.model"))
    if len(models) == 1:
        return models[0]
    raise CheckpointError(f"{base}: no SentencePiece model found next to the checkpoint "
                          f"({len(models)} *.model files); give --spm")

