"""What a run trains and validates on: its splits, directions and tokenized corpora."""

from __future__ import annotations

import torch

from lslo.data.corpus import CorpusError, MultiWayCorpus, load_corpus, unit_hash
from lslo.data.sampling import Example, directions
from lslo.training.config import RunConfig
from lslo.tuner.config import ConfigError
from lslo.tuner.languages import build_batch
from lslo.tuner.model import LSLoModel


class TokenizedCorpus:
    """A multi-way corpus with every segment tokenized once (no special tokens)."""

    def __init__(self, corpus: MultiWayCorpus, tokenizer, max_length: int,
                 label_language_token: bool = False) -> None:
        self.corpus = corpus
        self.label_language_token = label_language_token
        self.max_length = max_length
        self.pieces: dict[str, list[list[int]]] = {}
        for lang in corpus.languages:
            ids = tokenizer(list(corpus.texts[lang]), add_special_tokens=False)["input_ids"]
            self.pieces[lang] = [x[: max_length - 2] for x in ids]

    def length(self, lang: str, seg: int) -> int:
        return len(self.pieces[lang][seg]) + 2

    def batch(self, model: LSLoModel, examples: list[Example]) -> dict[str, torch.Tensor]:
        return build_batch(
            model.tokens,
            [self.pieces[e.src][e.seg_index] for e in examples],
            [e.src for e in examples],
            [e.tgt for e in examples],
            [self.pieces[e.tgt][e.seg_index] for e in examples],
            max_length=self.max_length,
            label_language_token=self.label_language_token,
        )


def load_splits(cfg: RunConfig) -> dict[str, MultiWayCorpus]:
    """train / valid / test corpora for the configured languages."""
    d = cfg.data
    langs = cfg.lslo.codes
    if d.split_ratios:
        whole = load_corpus(d.path, None, langs, fmt=d.format, empty=d.empty)
        parts = whole.split_by_ratio(d.split_ratios, seed=0)
        for key in ("train", "test"):
            if key not in parts:
                raise ConfigError(f"data.split_ratios: needs a '{key}' entry, got {sorted(parts)}")
        out = {"train": parts["train"], "test": parts["test"]}
        out["valid"] = parts.get("valid")
    else:
        out = {
            "train": load_corpus(d.path, d.train_split, langs, fmt=d.format, empty=d.empty),
            "test": load_corpus(d.path, d.test_split, langs, fmt=d.format, empty=d.empty)
            if d.test_split else None,
            "valid": load_corpus(d.path, d.valid_split, langs, fmt=d.format, empty=d.empty)
            if d.valid_split else None,
        }
    if out["valid"] is None and d.valid_ratio > 0:
        # a train part cut by split_ratios is already the seed-0 hash range [0, train): holding out
        # valid with the same hash would pick nothing, so the second cut hashes with another seed
        seed = 1 if d.split_ratios else 0
        parts = out["train"].split_by_ratio({"train": 1 - d.valid_ratio, "valid": d.valid_ratio}, seed=seed)
        out["train"], out["valid"] = parts["train"], parts["valid"]
    if d.max_train_segments:
        ids = out["train"].ids
        if d.train_subset_seed is not None:  # a hash-drawn subset, kept in corpus order
            keep = set(sorted(ids, key=lambda sid: unit_hash(d.train_subset_seed, sid))[: d.max_train_segments])
            ids = [sid for sid in ids if sid in keep]
        out["train"] = out["train"].select(ids[: d.max_train_segments])
    for name, corpus in out.items():
        if corpus is not None and len(corpus) == 0:
            raise CorpusError(f"data: the {name} split is empty")
    return out


def run_directions(cfg: RunConfig, pairs=None, training: bool = True) -> list[tuple[str, str]]:
    """Training directions (data.directions), or with ``training=False`` the given pairs / all."""
    if pairs is None and training:
        pairs = cfg.data.directions
    try:
        return [tuple(x) for x in directions(cfg.lslo.codes, pairs)]
    except ValueError as e:
        raise ConfigError(f"data.directions: {e}") from None


