"""Build the small pretrained base model of the offline demo (``data/demo/base``).

The demo fine-tunes a *pretrained* multilingual model with LSLo, as the paper does with
M2M-100. Nothing can be downloaded, so this module makes one from the demo corpus's
pretraining text only (``data/demo/pretrain/*.tsv``: rows that are in no dev/devtest line
of any language), in the exact format lslo fine-tunes with:

1. Tokenizer: a SentencePiece unigram model (4000 pieces) trained on the pretraining text
   of the 12 languages (each distinct line once; no dev/devtest text), with byte fallback
   so that no character of any later text becomes ``<unk>``; ``character_coverage`` 0.9995
   leaves the rarest pretraining characters to the byte pieces, so those pieces get
   trained too (dev/devtest characters never seen in pretraining, mostly Chinese, become
   byte pieces). No Unicode normalisation, so decoded text can match the references
   exactly. Packaged as a real ``M2M100Tokenizer`` (``vocab.json`` +
   ``sentencepiece.bpe.model`` + the 100 ``__xx__`` language tokens), loadable with
   ``AutoTokenizer.from_pretrained``.
2. Model: an ``M2M100ForConditionalGeneration``, d_model 128, 3+3 layers, FFN 512, 4
   heads, tied embeddings (~1.9M parameters, ~7.7 MB in fp32), trained from scratch with
   a plain torch loop: AdamW (fused), inverse-sqrt schedule with linear warmup, label
   smoothing 0.1, token-budget batches mixing all 132 directions (both directions of
   every pairwise row), sequences built by :func:`lslo.tuner.languages.encode_batch`
   (``__src__ x </s>`` -> ``__tgt__ y </s>``, decoder start ``</s>``). The loss skips the
   first label (the target language token, which generation always forces).
   Short UI strings dominate the pretraining text while dev/devtest lines are longer, so
   some examples concatenate two or three rows of one language pair (``--concat``).

Why so small, and the one trick. On the shared 2-core machine a training step of a d=256
model costs several seconds, so 25 minutes buys well under one epoch; measured at equal
wall time, d=128 reached a lower dev loss than d=192 and d=256, and smaller batches
(1024 tokens) without dropout learned faster per example. Even so, a model started from
random embeddings stayed a target-side language model (fluent UI strings that ignore the
source) for the whole budget. So the tied embeddings start from cross-lingual piece
vectors computed from the same pretraining rows (:func:`lexical_init`: piece x message
counts, PPMI, SVD; ``Next``/``Nächste``/``siguiente``/``다음`` start as neighbours); with that
start the model translates words and short phrases within a few hundred updates.

3. Output: ``save_pretrained`` model + tokenizer and ``PRETRAIN.json`` (command, seed,
   data hashes, shapes, steps, time, losses, library versions, sanity chrF++ next to the
   copy-the-source baseline, and the sha256 of the weights file).

Rebuild: ``PRETRAIN.json["rebuild_command"]`` (``python -m lslo.testbed.demo_base --out
data/demo/base --seed 0`` plus ``--steps N`` when the time cap cut the run).

Determinism: data order, batches, initialisation and dropout are functions of the seed;
the number of updates is ``--steps``, ``--minutes`` is only a safety cap (a run cut by it
says so in PRETRAIN.json, and since neither the inverse-sqrt schedule nor the batch order
depends on the planned step count, ``--steps N`` reproduces a run cut at step N). With the
same torch build, CPU and ``--threads`` the weights are the same; other thread counts,
torch builds or CPUs can differ in the last bits of float sums (the quality does not
change). ``--threads`` defaults to 1: on the shared, oversubscribed demo machine one
thread ran 2-3x faster than two (OpenMP threads wait for each other when the cores are
busy); on an idle machine ``--threads 2`` is faster but gives slightly different weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lslo.errors import LSLoError

# one language list and one file hasher for the demo corpus and its base
from lslo.testbed.demo_data import CODES, LANGUAGES
from lslo.testbed.pretrain import fairseq_init
from lslo.testbed.sources import sha256_file
from lslo.training.loss import inverse_sqrt_lambda

REPO = Path(__file__).resolve().parents[3]
DEFAULT_DATA = REPO / "data" / "demo"
WEIGHTS = "model.safetensors"
# Scripts written without spaces between words: joined rows get no space either.
NO_SPACE = {"zh"}


class DemoBaseError(LSLoError):
    """The pretraining data or the output is not usable."""


@dataclass
class Settings:
    """Everything that determines the base model (recorded in PRETRAIN.json)."""

    seed: int = 0
    threads: int = 1
    device: str = "cpu"
    # which pretraining pairs: "all" 66 language pairs, or "english" (en-X only: an
    # English-centric base, whose 110 non-English directions are zero-shot)
    pairs: str = "all"
    # fraction of the rows kept for the low-resource languages (ha yo km my): < 1 makes them
    # really low-resource in the base, as in M2M-100; a row is kept when every low-resource
    # side's text hashes below the fraction, so one language keeps the same strings everywhere
    low_fraction: float = 1.0
    # tokenizer
    vocab_size: int = 4000
    character_coverage: float = 0.9995
    byte_fallback: bool = True
    normalization: str = "identity"
    # model
    d_model: int = 128
    encoder_layers: int = 3
    decoder_layers: int = 3
    ffn_dim: int = 512
    heads: int = 4
    dropout: float = 0.0
    attention_dropout: float = 0.0
    max_positions: int = 1024
    init: str = "fairseq"
    lexical_init: float = 0.7
    # training
    steps: int = 4000
    max_tokens: int = 1024
    max_length: int = 256
    lr: float = 3e-3
    warmup: int = 200
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    clip_norm: float = 1.0
    concat: float = 0.15
    copy: float = 0.0
    copy_epochs: int = 1
    concat_max: int = 3
    minutes: float = 25.0
    reserve_minutes: float = 2.0
    # evaluation
    dev_loss_examples: int = 1320
    sanity_sentences: int = 50
    sanity_beams: int = 4
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- data


def read_pretrain(data_dir: str | Path, codes: Sequence[str] = CODES) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """``{(a, b): [(text_a, text_b), ...]}`` for every ``pretrain/a-b.tsv`` among ``codes``."""
    root = Path(data_dir) / "pretrain"
    files = sorted(root.glob("*.tsv"))
    if not files:
        raise DemoBaseError(f"{root}: no pretraining files (*.tsv); build the demo corpus first (python -m lslo.testbed.demo_data)")
    pairs: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for path in files:
        lines = path.read_bytes().decode("utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        header = lines[0].split("\t")
        if len(header) != 2:
            raise DemoBaseError(f"{path}:1: header must be '<a>\\t<b>', got {lines[0]!r}")
        a, b = header
        if a not in codes or b not in codes:
            continue
        rows = []
        for n, line in enumerate(lines[1:], start=2):
            cols = line.split("\t")
            if len(cols) != 2 or not cols[0].strip() or not cols[1].strip():
                raise DemoBaseError(f"{path}:{n}: expected two non-empty tab-separated texts")
            rows.append((cols[0], cols[1]))
        pairs[(a, b)] = rows
    missing = {(a, b) for i, a in enumerate(codes) for b in codes[i + 1:]} - {tuple(sorted(p, key=codes.index)) for p in pairs}
    if missing:
        raise DemoBaseError(f"{root}: missing pairs {sorted(missing)}")
    return pairs


def select_pairs(pairs: dict[tuple[str, str], list[tuple[str, str]]], which: str):
    """All pretraining pairs (``"all"``), or only those with English (``"english"``: English-centric)."""
    if which == "all":
        return dict(pairs)
    if which == "english":
        return {k: v for k, v in pairs.items() if "en" in k}
    raise DemoBaseError(f"pairs must be 'all' or 'english', got {which!r}")


LOW_RESOURCE = tuple(lang.code for lang in LANGUAGES if lang.level == "low")


def _bucket(text: str) -> float:
    """A fixed pseudo-random number in [0, 1) per text (sha256), independent of the file order."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def thin_low_resource(pairs: dict[tuple[str, str], list[tuple[str, str]]], fraction: float,
                      low: Sequence[str] = LOW_RESOURCE):
    """Keep only ``fraction`` of the rows that have a low-resource side (see ``Settings.low_fraction``)."""
    if not 0.0 < fraction <= 1.0:
        raise DemoBaseError(f"low_fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return dict(pairs)
    out = {}
    for (a, b), rows in pairs.items():
        keep = [(x, y) for x, y in rows
                if (a not in low or _bucket(x) < fraction) and (b not in low or _bucket(y) < fraction)]
        if keep:
            out[(a, b)] = keep
    return out


def texts_by_language(pairs: dict[tuple[str, str], list[tuple[str, str]]]) -> dict[str, list[str]]:
    """Distinct pretraining lines per language, in first-seen order (files sorted)."""
    out: dict[str, dict[str, None]] = {}
    for (a, b), rows in sorted(pairs.items()):
        for x, y in rows:
            out.setdefault(a, {})[x] = None
            out.setdefault(b, {})[y] = None
    return {lang: list(texts) for lang, texts in out.items()}


def read_split(data_dir: str | Path, split: str, codes: Sequence[str] = CODES) -> dict[str, list[str]]:
    """FLORES-layout dev/devtest lines of the demo corpus, by short code."""
    from lslo.data.corpus import read_flores

    corpus = read_flores(Path(data_dir) / "flores200_dataset", split, list(codes))
    return {c: corpus.texts[c] for c in codes}


# --------------------------------------------------------------------------- tokenizer


def build_tokenizer(texts: Sequence[str], out_dir: str | Path, vocab_size: int = 4000,
                    character_coverage: float = 0.9995, byte_fallback: bool = True,
                    normalization: str = "identity"):
    """Train SentencePiece (unigram) on ``texts`` and save a real ``M2M100Tokenizer`` in ``out_dir``.

    Like :func:`lslo.testbed.tiny.build_m2m100_tokenizer` with the settings a real multilingual
    vocabulary needs: byte fallback, coverage below 1, one training thread (deterministic),
    and no Unicode normalisation by default (``identity``): NFKC would turn Chinese
    full-width punctuation into ASCII and Khmer zero-width spaces into spaces, so decoded
    output could never match the references character for character.
    SentencePiece ids 0-3 are ``<s> <pad> </s> <unk>``, the M2M-100/fairseq order, so the
    ``vocab.json`` id of every piece equals its SentencePiece id.
    """
    import io

    import sentencepiece as spm

    from lslo.testbed.tiny import m2m100_tokenizer_from_spm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts)), model_writer=buf, vocab_size=vocab_size, model_type="unigram",
        character_coverage=character_coverage, byte_fallback=byte_fallback, input_sentence_size=0,
        shuffle_input_sentence=False, hard_vocab_limit=False, num_threads=1, minloglevel=2,
        unk_id=3, bos_id=0, eos_id=2, pad_id=1, max_sentence_length=16384,
        normalization_rule_name=normalization,
    )
    spm_path = out / "sentencepiece.bpe.model"
    spm_path.write_bytes(buf.getvalue())
    try:
        return m2m100_tokenizer_from_spm(spm_path, out, check_ids=True)
    except ValueError as e:
        raise DemoBaseError(str(e)) from None


def unk_rate(tokenizer, texts: Sequence[str]) -> float:
    """Fraction of ``<unk>`` among the pieces of ``texts``."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    total = sum(len(s) for s in ids)
    return sum(s.count(tokenizer.unk_token_id) for s in ids) / max(total, 1)


def byte_rate(tokenizer, texts: Sequence[str]) -> float:
    """Fraction of byte-fallback pieces (``<0xNN>``) among the pieces of ``texts``."""
    pieces = [p for t in texts for p in tokenizer.tokenize(t)]
    return sum(1 for p in pieces if len(p) == 6 and p.startswith("<0x") and p.endswith(">")) / max(len(pieces), 1)


# --------------------------------------------------------------------------- model


def model_config(settings: Settings, vocab_size: int):
    from transformers import M2M100Config

    s = settings
    return M2M100Config(
        vocab_size=vocab_size, d_model=s.d_model, encoder_layers=s.encoder_layers, decoder_layers=s.decoder_layers,
        encoder_attention_heads=s.heads, decoder_attention_heads=s.heads, encoder_ffn_dim=s.ffn_dim,
        decoder_ffn_dim=s.ffn_dim, max_position_embeddings=s.max_positions, dropout=s.dropout,
        attention_dropout=s.attention_dropout, activation_dropout=0.0, activation_function="relu",
        encoder_layerdrop=0.0, decoder_layerdrop=0.0, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        decoder_start_token_id=2, scale_embedding=True, tie_word_embeddings=True,
    )


def meanings(pairs: dict[tuple[str, str], list[tuple[str, str]]]) -> list[list[tuple[str, str]]]:
    """Groups of ``(language, text)`` linked by pretraining rows (connected components).

    The pretraining rows come from the same multi-way sources, so a message is a row in many
    pair files; linking the rows recovers its translations in all languages.
    """
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for (a, b), rows in sorted(pairs.items()):
        for x, y in rows:
            ra, rb = find((a, x)), find((b, y))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for node in sorted(parent):
        groups.setdefault(find(node), []).append(node)
    return [groups[k] for k in sorted(groups)]


def lexical_init(model, tokenizer, pairs, weight: float, seed: int) -> dict:
    """Start the (tied) embeddings from cross-lingual piece vectors of the pretraining data.

    Piece x meaning counts (meanings from :func:`meanings`), positive PMI, truncated SVD: a
    piece's vector describes the messages it occurs in, whatever the language, so
    ``Category``/``Catégorie``/``Kategorie`` start close together. Each used piece's
    embedding becomes ``sqrt(weight) * svd + sqrt(1 - weight) * random`` (both with the
    embedding's std; the random part keeps same-meaning pieces of different languages
    apart). A model trained from scratch in minutes on CPU otherwise stays a target-side
    language model that ignores the source; with this start it translates words early.
    Uses the pretraining text only.
    """
    import numpy as np
    import torch

    groups = meanings(pairs)
    emb = model.get_input_embeddings().weight
    vocab, d = emb.shape
    counts = np.zeros((vocab, len(groups)), dtype=np.float64)
    texts = [t for g in groups for _, t in g]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    pos = 0
    for k, g in enumerate(groups):
        for _ in g:
            for i in set(ids[pos]):
                counts[i, k] += 1.0
            pos += 1
    used = counts.sum(1) > 0
    total = counts.sum()
    pt = counts.sum(1, keepdims=True) / total
    pk = counts.sum(0, keepdims=True) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log((counts / total) / (pt * pk))
    ppmi = np.where(counts > 0, np.maximum(pmi, 0.0), 0.0)
    u, sv, _ = np.linalg.svd(ppmi[used], full_matrices=False)
    k = min(d, u.shape[1])
    vec = np.zeros((int(used.sum()), d))
    vec[:, :k] = u[:, :k] * np.sqrt(sv[:k])
    vec -= vec.mean(0, keepdims=True)
    with torch.no_grad():
        std = float(emb.std())
        vec_t = torch.tensor(vec / (vec.std() + 1e-12) * std, dtype=emb.dtype)
        gen = torch.Generator().manual_seed(seed + 1)
        noise = torch.randn(vec_t.shape, generator=gen, dtype=emb.dtype) * std
        rows = torch.tensor(np.nonzero(used)[0], dtype=torch.long)
        emb[rows] = math.sqrt(weight) * vec_t + math.sqrt(1.0 - weight) * noise
        pad = model.get_input_embeddings().padding_idx
        if pad is not None:
            emb[pad].zero_()
    return {"meanings": len(groups), "pieces": int(used.sum()), "svd_dims": k, "weight": weight}


# --------------------------------------------------------------------------- examples and batches


@dataclass(frozen=True)
class Example:
    src_lang: str
    tgt_lang: str
    src: str
    tgt: str


def directed_examples(pairs: dict[tuple[str, str], list[tuple[str, str]]]) -> list[Example]:
    """Both directions of every row."""
    out = []
    for (a, b), rows in sorted(pairs.items()):
        for x, y in rows:
            out.append(Example(a, b, x, y))
            out.append(Example(b, a, y, x))
    return out


def _join(lang: str, parts: Sequence[str]) -> str:
    return ("" if lang in NO_SPACE else " ").join(parts)


def concat_examples(pairs: dict[tuple[str, str], list[tuple[str, str]]], n: int, max_rows: int,
                    rng: random.Random) -> list[Example]:
    """``n`` synthetic longer examples: 2..max_rows random rows of one pair, joined, random direction."""
    keys = sorted(pairs)
    out = []
    for _ in range(n):
        a, b = keys[rng.randrange(len(keys))]
        rows = pairs[(a, b)]
        k = rng.randint(2, max_rows)
        picked = [rows[rng.randrange(len(rows))] for _ in range(k)]
        x, y = _join(a, [p[0] for p in picked]), _join(b, [p[1] for p in picked])
        out.append(Example(a, b, x, y) if rng.random() < 0.5 else Example(b, a, y, x))
    return out


def copy_examples(base: Sequence[Example], n: int, rng: random.Random) -> list[Example]:
    """``n`` same-language examples ``x -> x`` (early epochs only): copying is the quickest way for a
    from-scratch model to learn to read the source through cross-attention, which translation then
    reuses; without it the small model first spends thousands of updates as a target-side LM."""
    out = []
    for _ in range(n):
        e = base[rng.randrange(len(base))]
        out.append(Example(e.tgt_lang, e.tgt_lang, e.tgt, e.tgt))
    return out


class LengthCache:
    """Token counts (without special tokens) of (language, text), computed once."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.cache: dict[str, int] = {}

    def fill(self, texts: Sequence[str]) -> None:
        todo = sorted({t for t in texts if t not in self.cache})
        for i in range(0, len(todo), 1024):
            chunk = todo[i:i + 1024]
            for t, ids in zip(chunk, self.tokenizer(chunk, add_special_tokens=False)["input_ids"]):
                self.cache[t] = len(ids)

    def __call__(self, text: str) -> int:
        if text not in self.cache:
            self.fill([text])
        return self.cache[text]


def token_batches(examples: Sequence[Example], lengths: LengthCache, max_tokens: int, max_length: int,
                  rng: random.Random) -> list[list[Example]]:
    """Shuffle, sort by length, cut under ``len(batch) * longest <= max_tokens``, shuffle the batches.

    ``longest`` counts the language token and ``</s>`` of both sides (capped at ``max_length``).
    """
    order = list(examples)
    rng.shuffle(order)
    keyed = [(min(max(lengths(e.src), lengths(e.tgt)) + 2, max_length), i) for i, e in enumerate(order)]
    keyed.sort()
    batches, cur, longest = [], [], 0
    for n, i in keyed:
        if cur and (len(cur) + 1) * max(longest, n) > max_tokens:
            batches.append(cur)
            cur, longest = [], 0
        cur.append(order[i])
        longest = max(longest, n)
    if cur:
        batches.append(cur)
    rng.shuffle(batches)
    return batches


def encode(tokenizer, tokens, batch: Sequence[Example], max_length: int):
    from lslo.tuner.languages import encode_batch

    return encode_batch(
        tokenizer, tokens, [e.src for e in batch], [e.src_lang for e in batch], [e.tgt_lang for e in batch],
        [e.tgt for e in batch], max_length=max_length,
    )


def batch_loss(model, enc, label_smoothing: float):
    """(mean smoothed loss, summed NLL, number of target tokens); the language-token label is skipped.

    The output projection runs only at the positions that carry a label (no padding), which
    is the same loss as the model's own head at a fraction of the cost for short lines.
    """
    import torch
    import torch.nn.functional as F

    dev = next(model.parameters()).device
    enc = {k: v.to(dev) for k, v in enc.items()}
    labels = enc["labels"].clone()
    labels[:, 0] = -100  # the target language token: forced at generation, not predicted
    hidden = model.get_decoder()(
        input_ids=enc["decoder_input_ids"], attention_mask=enc["decoder_attention_mask"],
        encoder_hidden_states=model.get_encoder()(input_ids=enc["input_ids"],
                                                  attention_mask=enc["attention_mask"]).last_hidden_state,
        encoder_attention_mask=enc["attention_mask"],
    ).last_hidden_state
    keep = labels != -100
    logits = model.get_output_embeddings()(hidden[keep]).float()
    target = labels[keep]
    loss = F.cross_entropy(logits, target, label_smoothing=label_smoothing)
    with torch.no_grad():
        nll = F.cross_entropy(logits, target, reduction="sum")
    return loss, float(nll), int(target.numel())


def mean_nll(model, tokenizer, tokens, examples: Sequence[Example], max_tokens: int, max_length: int) -> float:
    """Per-token NLL (nats, no smoothing, language-token label skipped) of ``examples``."""
    import torch

    lengths = LengthCache(tokenizer)
    lengths.fill([e.src for e in examples] + [e.tgt for e in examples])
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in token_batches(examples, lengths, max_tokens, max_length, random.Random(0)):
            _, nll, n = batch_loss(model, encode(tokenizer, tokens, batch, max_length), 0.0)
            total += nll
            count += n
    return total / max(count, 1)


def dev_examples(data_dir: str | Path, n: int, seed: int, codes: Sequence[str] = CODES) -> list[Example]:
    """``n`` fixed (segment, direction) samples of the demo dev split spread evenly over all directions."""
    dev = read_split(data_dir, "dev", codes)
    dirs = [(a, b) for a in codes for b in codes if a != b]
    rng = random.Random(f"dev-loss-{seed}")
    segs = len(dev[codes[0]])
    out = []
    for i in range(n):
        a, b = dirs[i % len(dirs)]
        j = rng.randrange(segs)
        out.append(Example(a, b, dev[a][j], dev[b][j]))
    return out


# --------------------------------------------------------------------------- generation and sanity scores


def translate(model, tokenizer, tokens, texts: Sequence[str], src: str, tgt: str, beams: int = 4,
              batch_size: int = 16, max_new_tokens: int = 200) -> list[str]:
    """Translate ``texts`` from ``src`` to ``tgt`` with the forced prompt ``[</s>, __tgt__]``."""
    import torch

    from lslo.tuner.languages import encode_batch

    model.eval()
    out: list[str] = []
    lang_id = tokens.token_id(tgt)
    for i in range(0, len(texts), batch_size):
        chunk = list(texts[i:i + batch_size])
        enc = encode_batch(tokenizer, tokens, chunk, [src] * len(chunk), [tgt] * len(chunk), max_length=256)
        prompt = torch.tensor([[tokens.decoder_start_id, lang_id]] * len(chunk), dtype=torch.long)
        dev = next(model.parameters()).device
        enc, prompt = {k: v.to(dev) for k, v in enc.items()}, prompt.to(dev)
        limit = min(max_new_tokens, 2 * enc["input_ids"].size(1) + 10)
        with torch.no_grad():
            gen = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                 decoder_input_ids=prompt, num_beams=beams, max_new_tokens=limit,
                                 do_sample=False, **({"early_stopping": True} if beams > 1 else {}))
        out.extend(tokenizer.batch_decode(gen[:, 2:], skip_special_tokens=True))
    return out


SANITY_DIRECTIONS = ("en-fr", "fr-en", "en-de", "de-en", "en-es", "es-en", "en-ha", "en-zh")
EXAMPLE_DIRECTIONS = ("en-fr", "fr-en", "en-ha")


def sanity(model, tokenizer, tokens, data_dir: str | Path, n: int = 50, beams: int = 4, n_examples: int = 10,
           directions: Sequence[str] = SANITY_DIRECTIONS) -> dict:
    """chrF++ of beam search on the first ``n`` devtest lines, next to the copy-the-source baseline."""
    from sacrebleu.metrics import CHRF

    chrf = CHRF(word_order=2)
    devtest = read_split(data_dir, "devtest")
    scores = {}
    examples = {}
    for d in directions:
        a, b = d.split("-")
        src, ref = devtest[a][:n], devtest[b][:n]
        hyp = translate(model, tokenizer, tokens, src, a, b, beams=beams)
        scores[d] = {
            "chrf++": round(chrf.corpus_score(hyp, [ref]).score, 2),
            "copy_chrf++": round(chrf.corpus_score(list(src), [ref]).score, 2),
        }
        if d in EXAMPLE_DIRECTIONS:
            examples[d] = [{"src": s, "hyp": h, "ref": r} for s, h, r in
                           zip(src[:n_examples], hyp[:n_examples], ref[:n_examples])]
    return {"split": "devtest", "sentences": n, "beams": beams, "metric": "sacrebleu chrF++ (CHRF word_order=2)",
            "scores": scores, "examples": examples}


# --------------------------------------------------------------------------- training


def pretrain(out_dir: str | Path, data_dir: str | Path = DEFAULT_DATA, settings: Settings | None = None,
             command: str | None = None, run_sanity: bool = True, log=print) -> dict:
    """Build tokenizer + model into ``out_dir`` and write PRETRAIN.json; returns its content."""
    import numpy as np
    import torch
    import transformers
    from tqdm import tqdm
    from transformers import M2M100ForConditionalGeneration

    from lslo.tuner.languages import LanguageTokens, tokenizer_vocab_size

    s = settings or Settings()
    t_start = time.time()
    out = Path(out_dir)
    data_dir = Path(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("PRETRAIN.json", WEIGHTS, "pytorch_model.bin"):
        (out / stale).unlink(missing_ok=True)

    torch.set_num_threads(s.threads)
    random.seed(s.seed)
    np.random.seed(s.seed)
    torch.manual_seed(s.seed)

    all_pairs = read_pretrain(data_dir)
    pairs = thin_low_resource(select_pairs(all_pairs, s.pairs), s.low_fraction)
    by_lang = texts_by_language(pairs)
    tok_texts = [t for c in CODES for t in by_lang[c]]
    tok = build_tokenizer(tok_texts, out, s.vocab_size, s.character_coverage, s.byte_fallback, s.normalization)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(out))  # exactly what users of data/demo/base get
    tokens = LanguageTokens.from_tokenizer(tok, CODES, {}, decoder_start_id=2)
    vocab = tokenizer_vocab_size(tok)
    dev = read_split(data_dir, "dev")
    devtest = read_split(data_dir, "devtest")
    tok_report = {
        "type": "sentencepiece unigram -> M2M100Tokenizer",
        "trained_on": "data/demo/pretrain only (each distinct line of each language once); no dev/devtest text",
        "training_lines": len(tok_texts),
        "vocab_size_requested": s.vocab_size,
        "sentencepiece_pieces": tok.vocab_size,
        "model_vocab_size": vocab,
        "character_coverage": s.character_coverage,
        "byte_fallback": s.byte_fallback,
        "normalization": s.normalization,
        "language_tokens": {c: tokens.token_id(c) for c in CODES},
        "devtest_unk_rate": {c: round(unk_rate(tok, devtest[c]), 5) for c in CODES},
        "devtest_byte_piece_rate": {c: round(byte_rate(tok, devtest[c]), 5) for c in CODES},
        "dev_pieces_per_line": {c: round(sum(len(x) for x in tok(dev[c], add_special_tokens=False)["input_ids"])
                                         / len(dev[c]), 2) for c in CODES},
    }
    log(f"tokenizer: {tok.vocab_size} pieces, model vocab {vocab}; devtest byte-piece rate "
        + " ".join(f"{c}={v:.3f}" for c, v in tok_report["devtest_byte_piece_rate"].items()))

    torch.manual_seed(s.seed)
    model = M2M100ForConditionalGeneration(model_config(s, vocab))
    if s.init == "fairseq":
        fairseq_init(model, s.seed)
    elif s.init != "hf":
        raise DemoBaseError(f"init must be 'fairseq' or 'hf', got {s.init!r}")
    lexical = {}
    if s.lexical_init > 0:
        lexical = lexical_init(model, tok, pairs, s.lexical_init, s.seed)
        log(f"lexical init: {lexical['pieces']} pieces from {lexical['meanings']} cross-lingual meanings")
    device = torch.device(s.device)
    model.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: M2M100 d={s.d_model} {s.encoder_layers}+{s.decoder_layers} layers ffn={s.ffn_dim} "
        f"heads={s.heads}: {n_params / 1e6:.2f}M parameters")

    base = directed_examples(pairs)
    lengths = LengthCache(tok)
    lengths.fill([e.src for e in base] + [e.tgt for e in base])
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "layer_norm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": s.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:  # the fused CPU kernel (torch >= 2.4) is several times faster than the per-tensor loop
        opt = torch.optim.AdamW(groups, lr=s.lr, betas=s.betas, eps=1e-8, fused=True)
    except (RuntimeError, TypeError, ValueError):
        opt = torch.optim.AdamW(groups, lr=s.lr, betas=s.betas, eps=1e-8)
    warmup_then_inverse_sqrt = inverse_sqrt_lambda(s.warmup, 1.0, 0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_then_inverse_sqrt(step + 1))

    data_rng = random.Random(s.seed)
    n_concat = int(round(s.concat * len(base)))
    step, epoch, seen_examples, seen_tokens = 0, 0, 0, 0
    window: list[tuple[float, int]] = []
    history = []
    stopped_early = False
    t_train = time.time()
    deadline = t_start + (s.minutes - s.reserve_minutes) * 60  # keep time for the final losses and saving
    bar = tqdm(total=s.steps, desc="pretrain", unit="step", dynamic_ncols=True, mininterval=5.0)
    model.train()
    while step < s.steps and not stopped_early:
        epoch += 1
        examples = base + concat_examples(pairs, n_concat, s.concat_max, data_rng)
        if epoch <= s.copy_epochs:
            examples += copy_examples(base, int(round(s.copy * len(base))), data_rng)
        for batch in token_batches(examples, lengths, s.max_tokens, s.max_length, data_rng):
            if step >= s.steps:
                break
            if time.time() > deadline:
                stopped_early = True
                break
            enc = encode(tok, tokens, batch, s.max_length)
            loss, nll, n_tok = batch_loss(model, enc, s.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.clip_norm)
            opt.step()
            sched.step()
            step += 1
            seen_examples += len(batch)
            seen_tokens += n_tok
            window.append((nll, n_tok))
            if step % 50 == 0 or step == s.steps:
                w_nll = sum(x for x, _ in window) / max(sum(n for _, n in window), 1)
                window = []
                history.append({"step": step, "epoch": epoch, "train_nll": round(w_nll, 4),
                                "lr": round(sched.get_last_lr()[0], 6), "minutes": round((time.time() - t_train) / 60, 2)})
                bar.set_postfix(ep=epoch, nll=f"{w_nll:.3f}", lr=f"{sched.get_last_lr()[0]:.2e}")
            bar.update(1)
    bar.close()
    train_minutes = (time.time() - t_train) / 60
    if stopped_early:
        log(f"WARNING: stopped at step {step} of {s.steps}: the --minutes cap ({s.minutes}) was reached")

    pretrain_sample = [base[i] for i in random.Random(1).sample(range(len(base)), 2000)]
    train_nll = mean_nll(model, tok, tokens, pretrain_sample, 4096, s.max_length)
    dev_nll = mean_nll(model, tok, tokens, dev_examples(data_dir, s.dev_loss_examples, s.seed), 4096, s.max_length)
    log(f"final: pretrain-sample loss {train_nll:.3f} nats/token, dev loss {dev_nll:.3f} nats/token "
        f"(ppl {math.exp(dev_nll):.1f}); {step} steps in {train_minutes:.1f} min")

    model.generation_config.decoder_start_token_id = 2
    model.generation_config.bos_token_id = 0
    model.generation_config.eos_token_id = 2
    model.generation_config.pad_token_id = 1
    model.generation_config.max_length = 256
    model.to("cpu").save_pretrained(str(out))
    model.to(device)
    tok.save_pretrained(str(out))
    weights = out / WEIGHTS
    if not weights.is_file():
        raise DemoBaseError(f"{out}: save_pretrained wrote no {WEIGHTS}")

    report = {
        "what": "pretrained base model of the lslo offline demo (M2M-100 architecture, trained from scratch)",
        "command": command or f"python -m lslo.testbed.demo_base --out {out} --seed {s.seed}",
        "rebuild_command": _rebuild_command(command or f"python -m lslo.testbed.demo_base --out {out} --seed {s.seed}",
                                            step if stopped_early else None),
        "seed": s.seed,
        "threads": s.threads,
        "settings": asdict(s),
        "data": {
            "pretrain_files": {f"pretrain/{a}-{b}.tsv": sha256_file(data_dir / "pretrain" / f"{a}-{b}.tsv")
                               for a, b in sorted(all_pairs)},
            "pairs": s.pairs,
            "low_fraction": s.low_fraction,
            "rows_per_language": {c: sum(len(r) for k, r in pairs.items() if c in k) for c in CODES},
            "pretrain_rows": sum(len(r) for r in pairs.values()),
            "directed_examples_per_epoch": len(base),
            "concat_examples_per_epoch": n_concat,
            "dev_devtest_used_for_training": False,
            "dev_used_for": f"reporting the final dev loss only ({s.dev_loss_examples} fixed segment/direction samples)",
        },
        "tokenizer": tok_report,
        "model": {
            "architecture": "M2M100ForConditionalGeneration",
            "d_model": s.d_model, "encoder_layers": s.encoder_layers, "decoder_layers": s.decoder_layers,
            "ffn_dim": s.ffn_dim, "heads": s.heads, "vocab_size": vocab, "parameters": n_params,
            "tied_embeddings": True, "weights_dtype": "float32",
        },
        "training": {
            "steps": step, "steps_planned": s.steps, "stopped_by_time_cap": stopped_early, "epochs_started": epoch,
            "examples_seen": seen_examples, "target_tokens_seen": seen_tokens,
            "optimizer": f"AdamW lr={s.lr} betas={list(s.betas)} eps=1e-8 weight_decay={s.weight_decay} "
                         f"clip={s.clip_norm}",
            "schedule": f"inverse sqrt, linear warmup {s.warmup} steps",
            "loss": f"cross-entropy, label smoothing {s.label_smoothing}, target-language-token label skipped",
            "batches": f"token budget {s.max_tokens} (batch size x longest sequence), all directions mixed",
            "train_minutes": round(train_minutes, 2),
            "total_minutes_before_sanity": round((time.time() - t_start) / 60, 2),
            "history": history,
        },
        "final_loss": {"pretrain_sample_nll": round(train_nll, 4), "dev_nll": round(dev_nll, 4),
                       "dev_ppl": round(math.exp(dev_nll), 2),
                       "note": "nats per target token, no label smoothing, language-token label skipped"},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "sentencepiece": _version("sentencepiece"),
                     "sacrebleu": _version("sacrebleu")},
        "weights_file": WEIGHTS,
        "weights_sha256": sha256_file(weights),
        "weights_bytes": weights.stat().st_size,
        "determinism": "same seed, threads, torch version and CPU -> same weights; otherwise float "
                       "summation order may differ in the last bits",
    }
    if run_sanity:
        t0 = time.time()
        report["sanity"] = sanity(model, tok, tokens, data_dir, s.sanity_sentences, s.sanity_beams)
        report["sanity"]["minutes"] = round((time.time() - t0) / 60, 2)
        for d, v in report["sanity"]["scores"].items():
            log(f"sanity {d}: chrF++ {v['chrf++']:.1f} (copy baseline {v['copy_chrf++']:.1f})")
    (out / "PRETRAIN.json").write_text(json.dumps(report, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                                       encoding="utf-8")
    return report


def _rebuild_command(command: str, steps: int | None) -> str:
    """``command`` with ``--steps`` set to the updates actually made when the time cap cut the run.

    The schedule (inverse sqrt) and the batch order do not depend on the planned number of
    steps, so a run cut at step N gives the same weights as a run planned for N steps.
    """
    if steps is None:
        return command
    parts = shlex.split(command)
    out, skip = [], False
    for part in parts:
        if skip:
            skip = False
            continue
        if part == "--steps":
            skip = True
            continue
        if part.startswith("--steps="):
            continue
        out.append(part)
    return " ".join(shlex.quote(p) for p in out) + f" --steps {steps}"


def _version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


def load(base_dir: str | Path = DEFAULT_DATA / "base"):
    """(model in fp32, tokenizer, LanguageTokens of the 12 demo languages) from a built base directory."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from lslo.tuner.languages import LanguageTokens

    tok = AutoTokenizer.from_pretrained(str(base_dir))
    model = AutoModelForSeq2SeqLM.from_pretrained(str(base_dir), dtype=torch.float32)
    return model, tok, LanguageTokens.from_tokenizer(tok, CODES, {}, decoder_start_id=2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lslo.testbed.demo_base", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(DEFAULT_DATA / "base"), help="output directory (default data/demo/base)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="demo corpus directory (default data/demo)")
    d = Settings()
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads (default 1, see the module doc)")
    p.add_argument("--device", default=d.device,
                   help="torch device of the pretraining (default cpu; 'cuda' is fast but not bit-reproducible)")
    p.add_argument("--pairs", choices=("all", "english"), default=d.pairs,
                   help="pretrain on all 66 language pairs, or English-centric (en-X) pairs only")
    p.add_argument("--low-fraction", type=float, default=d.low_fraction,
                   help="fraction of the low-resource languages' rows to pretrain on (default 1: all)")
    p.add_argument("--minutes", type=float, default=d.minutes, help="safety cap on the whole build (default 25)")
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimizer updates (default {d.steps})")
    p.add_argument("--vocab-size", type=int, default=d.vocab_size)
    p.add_argument("--d-model", type=int, default=d.d_model)
    p.add_argument("--layers", type=int, default=d.encoder_layers, help="encoder and decoder layers each")
    p.add_argument("--ffn", type=int, default=d.ffn_dim)
    p.add_argument("--heads", type=int, default=d.heads)
    p.add_argument("--max-tokens", type=int, default=d.max_tokens)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--lexical-init", type=float, default=d.lexical_init,
                   help="weight of the cross-lingual embedding start (0 = random embeddings)")
    p.add_argument("--init", choices=("fairseq", "hf"), default=d.init, help="weight initialisation")
    p.add_argument("--concat", type=float, default=d.concat, help="fraction of extra concatenated examples per epoch")
    p.add_argument("--dev-loss-examples", type=int, default=d.dev_loss_examples)
    p.add_argument("--copy", type=float, default=d.copy, help="fraction of extra copy examples in the first epochs")
    p.add_argument("--copy-epochs", type=int, default=d.copy_epochs)
    p.add_argument("--no-sanity", action="store_true", help="skip the devtest translation check")
    p.add_argument("--eval-only", action="store_true", help="only rerun the sanity check of an existing --out")
    args = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.eval_only:
        import torch

        torch.set_num_threads(args.threads)
        model, tok, tokens = load(args.out)
        res = sanity(model, tok, tokens, args.data)
        print(json.dumps(res, ensure_ascii=False, indent=1))
        return 0
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print(f"lslo.testbed.demo_base: error: --device {args.device}: no CUDA device is available", file=sys.stderr)
            return 2
    s = Settings(seed=args.seed, threads=args.threads, device=args.device, pairs=args.pairs,
                 low_fraction=args.low_fraction, minutes=args.minutes, steps=args.steps,
                 vocab_size=args.vocab_size, d_model=args.d_model, encoder_layers=args.layers,
                 decoder_layers=args.layers, ffn_dim=args.ffn, heads=args.heads, max_tokens=args.max_tokens,
                 lr=args.lr, warmup=args.warmup, dropout=args.dropout, concat=args.concat,
                 dev_loss_examples=args.dev_loss_examples, init=args.init, copy=args.copy,
                 copy_epochs=args.copy_epochs, lexical_init=args.lexical_init)
    argv_used = sys.argv[1:] if argv is None else argv
    command = "python -m lslo.testbed.demo_base " + " ".join(shlex.quote(a) for a in argv_used)
    pretrain(args.out, args.data, s, command=command, run_sanity=not args.no_sanity)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
