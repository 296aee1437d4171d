"""Build small real Hugging Face tokenizers and models, saved to disk.

Nothing can be downloaded here, so tests, benchmarks and the demo build their own
SentencePiece tokenizer and M2M-100 / NLLB / MBart / Marian-architecture models,
save them with ``save_pretrained`` and reload them through ``from_pretrained``:
the same path a user's checkpoint takes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm


def train_sentencepiece(texts: Iterable[str], out_prefix: str | Path, vocab_size: int = 256,
                        model_type: str = "unigram", seed_sentences: int = 200000) -> Path:
    """Train a SentencePiece model on ``texts``; returns the .model path."""
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts)), model_writer=buf, vocab_size=vocab_size, model_type=model_type,
        character_coverage=1.0, input_sentence_size=seed_sentences, shuffle_input_sentence=False,
        hard_vocab_limit=False, num_threads=1, minloglevel=2,
        unk_id=3, bos_id=0, eos_id=2, pad_id=1,
    )
    path = Path(f"{out_prefix}.model")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return path


def m2m100_tokenizer_from_spm(spm_model: str | Path, out_dir: str | Path, check_ids: bool = False,
                              model_vocab_size: int | None = None):
    """Save a real ``M2M100Tokenizer`` for an existing SentencePiece model: ``vocab.json`` in the
    fairseq order (``<s> <pad> </s> <unk>`` first, then every piece) plus the 100 ``__xx__`` tokens.

    ``check_ids``: require every piece's vocab id to equal its SentencePiece id (true when the
    model was trained with ids 0-3 = ``<s> <pad> </s> <unk>``); a mismatch is a ``ValueError``.
    ``model_vocab_size``: pad ``vocab.json`` with ``<unusedN>`` entries so that the tokenizer's
    vocabulary (pieces, the 100 language tokens and 8 made-up words) has this size, as a model of a
    published shape expects (e.g. 128,112 for M2M-100 418M).
    """
    from transformers import M2M100Tokenizer

    out = Path(out_dir)
    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        if piece not in vocab:
            vocab[piece] = len(vocab)
        if check_ids and vocab[piece] != i:
            raise ValueError(f"SentencePiece piece {piece!r} has id {i} but vocab id {vocab[piece]}")
    if model_vocab_size is not None:
        extra = model_vocab_size - len(m2m100_language_tokens()) - 8 - len(vocab)
        if extra < 0:
            raise ValueError(f"model_vocab_size {model_vocab_size} is smaller than the tokenizer's vocabulary")
        vocab.update({f"<unused{i}>": len(vocab) + i for i in range(extra)})
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    # the language tokens are special tokens, as in facebook/m2m100_*: decoding a merged or exported
    # model with skip_special_tokens=True then prints no '__de__'
    tok = M2M100Tokenizer(vocab_file=str(out / "vocab.json"), spm_file=str(spm_model),
                          extra_special_tokens=m2m100_language_tokens())
    tok.save_pretrained(str(out))
    return tok


def m2m100_language_tokens() -> list[str]:
    """The 100 ``__xx__`` language tokens of M2M-100, in the tokenizer's order."""
    from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES

    return [f"__{code}__" for code in FAIRSEQ_LANGUAGE_CODES["m2m100"]]


def mark_language_tokens_special(tokenizer_dir: str | Path) -> bool:
    """Make an M2M-100 tokenizer directory list its ``__xx__`` tokens as special tokens (what a real
    M2M-100 tokenizer does; tokenizers saved by lslo before did not). Returns True when it changed
    ``tokenizer_config.json``; ids and vocabulary are unchanged."""
    path = Path(tokenizer_dir) / "tokenizer_config.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("tokenizer_class") != "M2M100Tokenizer":
        return False
    tokens = m2m100_language_tokens()
    if data.get("extra_special_tokens") == tokens:
        return False
    data["extra_special_tokens"] = tokens
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return True


def build_m2m100_tokenizer(texts: Iterable[str], out_dir: str | Path, vocab_size: int = 256):
    """A real ``M2M100Tokenizer`` (SentencePiece + vocab.json + the 100 ``__xx__`` tokens), saved."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = train_sentencepiece(texts, out / "sentencepiece.bpe", vocab_size)
    return m2m100_tokenizer_from_spm(model, out)


def build_nllb_tokenizer(texts: Iterable[str], out_dir: str | Path, vocab_size: int = 256):
    """A real ``NllbTokenizer`` (Unigram vocabulary from SentencePiece + FLORES-200 tokens), saved."""
    from transformers import NllbTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = train_sentencepiece(texts, out / "spm", vocab_size, model_type="bpe")
    from transformers.convert_slow_tokenizer import SentencePieceExtractor

    kwargs = SentencePieceExtractor(str(model)).extract(None)
    tok = NllbTokenizer(vocab=kwargs["vocab"], merges=kwargs["merges"])
    tok.save_pretrained(str(out))
    (out / "spm.model").unlink(missing_ok=True)
    return tok


def tiny_model_config(arch: str, vocab_size: int, d_model: int = 16, layers: int = 2, ffn: int = 32,
                      heads: int = 2, max_positions: int = 256, dropout: float = 0.0, **extra):
    """A config of the given architecture ("m2m100", "nllb", "mbart", "marian") with small shapes."""
    from transformers import M2M100Config, MarianConfig, MBartConfig

    common = dict(
        vocab_size=vocab_size, d_model=d_model, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=ffn, decoder_ffn_dim=ffn,
        max_position_embeddings=max_positions, dropout=dropout, attention_dropout=0.0, activation_dropout=0.0,
        encoder_layerdrop=0.0, decoder_layerdrop=0.0, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        decoder_start_token_id=2, scale_embedding=True, **extra,
    )
    if arch in ("m2m100", "nllb"):
        return M2M100Config(**common)
    if arch == "mbart":
        return MBartConfig(**common)
    if arch == "marian":
        common.update(decoder_start_token_id=1, pad_token_id=1)
        return MarianConfig(**common)
    raise ValueError(f"unknown tiny architecture {arch!r}")


def build_tiny_model(arch: str, vocab_size: int, out_dir: str | Path | None = None, seed: int = 0, **shape):
    """A randomly initialised small seq2seq model; saved to ``out_dir`` when given."""
    import torch
    from transformers import AutoModelForSeq2SeqLM

    torch.manual_seed(seed)
    model = AutoModelForSeq2SeqLM.from_config(tiny_model_config(arch, vocab_size, **shape))
    if out_dir is not None:
        model.save_pretrained(str(out_dir))
    return model
