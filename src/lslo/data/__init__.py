"""Data layer: language codes, multi-way parallel corpora, direction sampling and batching."""

from lslo.data.corpus import (
    CorpusError,
    MultiWayCorpus,
    load_corpus,
    read_flores,
    read_jsonl,
    read_tsv,
)
from lslo.data.sampling import (
    Direction,
    DirectionBatchSampler,
    Example,
    all_direction_examples,
    batch_padded_tokens,
    directions,
    parse_direction,
    temperature_probs,
)
from lslo.tuner.langcodes import (
    M2M100_LANGUAGES,
    UnknownLanguageError,
    language_name,
    to_flores101,
    to_flores200,
    to_short,
)

__all__ = [
    "CorpusError",
    "Direction",
    "DirectionBatchSampler",
    "Example",
    "M2M100_LANGUAGES",
    "MultiWayCorpus",
    "UnknownLanguageError",
    "all_direction_examples",
    "batch_padded_tokens",
    "directions",
    "language_name",
    "load_corpus",
    "parse_direction",
    "read_flores",
    "read_jsonl",
    "read_tsv",
    "temperature_probs",
    "to_flores101",
    "to_flores200",
    "to_short",
]
