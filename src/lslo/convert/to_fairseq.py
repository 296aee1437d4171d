"""A Hugging Face M2M-100 directory -> fairseq's format (``model.pt``, ``dict.txt``, the
SentencePiece model and ``language_pairs.txt``), the way :mod:`lslo.convert.fairseq` reads back.

It writes what fairseq's ``translation_multi_simple_epoch`` task with a ``transformer`` model
expects (settings as an ``argparse.Namespace`` under ``args``, fairseq's key names), so the
round trip HF -> fairseq -> HF is bit-exact, and a fairseq user can load the model.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from lslo.convert.checkpoint import CheckpointError
from lslo.convert.dictionary import SPECIALS, lang_token


def fairseq_state(model) -> dict[str, torch.Tensor]:
    sd = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k.startswith("model.") and "embed_positions" not in k and k != "model.shared.weight":
            out[k.removeprefix("model.")] = v.detach().clone()
    emb = sd["model.shared.weight"].detach().clone()
    out["encoder.embed_tokens.weight"] = emb
    out["decoder.embed_tokens.weight"] = emb
    out["decoder.output_projection.weight"] = emb
    for side in ("encoder", "decoder"):
        out[f"{side}.version"] = torch.tensor([3.0])
        out[f"{side}.embed_positions._float_tensor"] = torch.tensor([1.0])
    return out


def fairseq_args(cfg, languages: list[str]) -> argparse.Namespace:
    pairs = [f"{a}-{b}" for a in languages for b in languages if a != b]
    return argparse.Namespace(
        arch="transformer", task="translation_multi_simple_epoch", langs=list(languages), lang_pairs=pairs,
        encoder_langtok="src", decoder_langtok=True, lang_tok_style="multilingual",
        encoder_embed_dim=cfg.d_model, decoder_embed_dim=cfg.d_model, decoder_output_dim=cfg.d_model,
        decoder_input_dim=cfg.d_model, encoder_layers=cfg.encoder_layers, decoder_layers=cfg.decoder_layers,
        encoder_attention_heads=cfg.encoder_attention_heads, decoder_attention_heads=cfg.decoder_attention_heads,
        encoder_ffn_embed_dim=cfg.encoder_ffn_dim, decoder_ffn_embed_dim=cfg.decoder_ffn_dim,
        encoder_normalize_before=True, decoder_normalize_before=True, share_all_embeddings=True,
        share_decoder_input_output_embed=True, encoder_learned_pos=False, decoder_learned_pos=False,
        layernorm_embedding=False, no_scale_embedding=not cfg.scale_embedding, no_token_positional_embeddings=False,
        max_source_positions=cfg.max_position_embeddings, max_target_positions=cfg.max_position_embeddings,
        dropout=cfg.dropout, attention_dropout=cfg.attention_dropout, activation_dropout=cfg.activation_dropout,
        activation_fn=cfg.activation_function, encoder_layerdrop=cfg.encoder_layerdrop,
        decoder_layerdrop=cfg.decoder_layerdrop, pad=1, eos=2, unk=3, bos=0)


def _symbols(tok, size: int) -> list[str]:
    """The tokenizer's id -> token list, ``size`` long (unused ids beyond it named as fairseq pads)."""
    vocab = dict(tok.get_vocab())
    for token, i in (getattr(tok, "lang_token_to_id", None) or {}).items():
        vocab[token] = i
    by_id: dict[int, str] = {}
    for token, i in vocab.items():
        by_id.setdefault(int(i), token)
    symbols, madeup = [], 0
    for i in range(size):
        if i in by_id:
            symbols.append(by_id[i])
        else:
            symbols.append(f"madeupword{madeup:04d}")
            madeup += 1
    if symbols[:4] != SPECIALS:
        raise CheckpointError(f"tokenizer: ids 0-3 are {symbols[:4]}; fairseq's format needs {SPECIALS}")
    return symbols


def _spm_file(tok, model_dir: Path) -> Path:
    for attr in ("spm_file", "vocab_file"):
        f = getattr(tok, attr, None)
        if f and str(f).endswith((".model", ".spm")) and Path(f).is_file():
            return Path(f)
    for name in ("sentencepiece.bpe.model", "source.spm", "spm.model"):
        if (model_dir / name).is_file():
            return model_dir / name
    raise CheckpointError(f"{model_dir}: no SentencePiece model; fairseq's format needs one")


def export_fairseq(model_dir: str | Path, out: str | Path, languages: list[str] | None = None) -> dict:
    """Write ``out``: model.pt, dict.txt, sentencepiece.bpe.model, language_pairs.txt."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model_dir, out = Path(model_dir), Path(out)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir, dtype=torch.float32)
    if model.config.model_type != "m2m_100":
        raise CheckpointError(f"{model_dir}: model_type {model.config.model_type!r}; fairseq export is for M2M-100")
    tok = AutoTokenizer.from_pretrained(model_dir)
    symbols = _symbols(tok, model.config.vocab_size)
    langs = languages or [s[2:-2] for s in symbols if len(s) > 4 and s.startswith("__") and s.endswith("__")]
    lang_toks = [lang_token(c) for c in langs]
    missing = [t for t in lang_toks if t not in symbols]
    if missing:
        raise CheckpointError(f"{model_dir}: the tokenizer has no {missing[0]}")
    out.mkdir(parents=True, exist_ok=True)
    # the whole vocabulary, language tokens and made-up words included, as M2M-100's fixed
    # dictionary (model_dict.128k.txt) holds it: fairseq finds every token at its id
    (out / "dict.txt").write_text("".join(f"{s} 1\n" for s in symbols[4:]), encoding="utf-8")
    ckpt = {"args": fairseq_args(model.config, langs), "model": fairseq_state(model), "optimizer_history": [],
            "extra_state": {}, "last_optimizer_state": None}
    torch.save(ckpt, out / "model.pt")
    shutil.copyfile(_spm_file(tok, model_dir), out / "sentencepiece.bpe.model")
    (out / "language_pairs.txt").write_text(",".join(ckpt["args"].lang_pairs) + "\n", encoding="utf-8")
    (out / "languages.txt").write_text("\n".join(langs) + "\n", encoding="utf-8")
    summary = {"model": str(model_dir.resolve()), "languages": langs, "vocab_size": len(symbols)}
    (out / "lslo_export.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary
