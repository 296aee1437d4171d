"""``datasets`` in, LSLo batches out: the collator, the training stream and the evaluation set.

* :class:`LSLoCollator` turns rows ``{src_lang, tgt_lang, src, tgt}`` (any mix of directions)
  into one LSLo batch with :func:`lslo.tuner.languages.build_batch`, the function ``lslo train``
  batches with: ``input_ids``/``attention_mask``, per-sentence ``src_lang``/``tgt_lang``, and
  ``labels``/``decoder_input_ids`` (the target-language token is the decoder's first input,
  not a label).
* :func:`direction_stream` turns a multi-way dataset into the temperature-sampled
  mixed-direction stream of ``lslo train``: the same :class:`~lslo.data.sampling.DirectionBatchSampler`
  (a direction drawn with ``p_d ∝ (n_d / N) ** (1 / T)``, segments from per-direction
  permutations, a fresh draw every epoch, length-sorted batches in shuffled order), its batches
  cut at the Trainer's ``per_device_train_batch_size`` sentences instead of a token budget.
* :func:`direction_eval_set` lists every (segment, direction) of an evaluation corpus in the order
  ``lslo evaluate`` translates them, so ``predict_with_generate`` with
  ``per_device_eval_batch_size`` equal to its ``batch_size`` decodes exactly the batches
  ``lslo evaluate`` decodes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lslo.data.corpus import CorpusError, MultiWayCorpus, load_corpus
from lslo.data.sampling import Direction, DirectionBatchSampler, directions
from lslo.hf.model import TrainerInputError, as_lslo_model
from lslo.training.data import TokenizedCorpus
from lslo.tuner.languages import LanguageError, build_batch

_UNLIMITED = 2**62  # a token budget no batch reaches: batches are cut by sentence count only
_NO_TRUNCATION = 10**9


class LSLoCollator:
    """Rows ``{src_lang, tgt_lang, src[, tgt]}`` -> an LSLo batch (``data_collator=`` of a Trainer).

    Language codes may be written in any form the model accepts (``en``, ``eng``, ``eng_Latn``) or
    be indices into the model's languages. ``max_length`` cuts sentences (language token and EOS
    included) as ``data.max_length`` does in ``lslo train``; ``None`` cuts nothing, which is what
    ``lslo evaluate`` does. A row without a language, with an unknown one or without text is a
    one-line error naming the row and the field.
    """

    def __init__(self, model: Any, max_length: int | None = None, label_language_token: bool = False) -> None:
        self.lslo = as_lslo_model(model)
        self.tokens = self.lslo.language_tokens()
        self.tokenizer = self.lslo.tokenizer
        if max_length is not None and max_length < 3:
            raise TrainerInputError(f"LSLoCollator: max_length must be >= 3 (language token, a piece, EOS), got {max_length}")
        self.max_length = max_length
        self.label_language_token = label_language_token

    def _language(self, value: Any, row: int, field: str) -> str:
        codes = self.lslo.config.codes
        if isinstance(value, torch.Tensor) and value.dim() == 0:
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value < len(codes):
                raise TrainerInputError(f"batch row {row}: {field} index {value} is out of range 0..{len(codes) - 1}")
            return codes[value]
        if not isinstance(value, str):
            raise TrainerInputError(f"batch row {row}: {field} must be a language code, got {value!r}")
        if value in codes:
            return value
        resolve = getattr(self.lslo, "resolve_language", None)
        try:
            if resolve is None:
                raise LanguageError(f"language {value!r} is not configured; configured: {', '.join(codes)}")
            return resolve(value)
        except LanguageError as e:
            raise TrainerInputError(f"batch row {row}: {field}: {e}") from None

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not rows:
            raise TrainerInputError("batch: no rows")
        src_langs, tgt_langs, srcs, tgts = [], [], [], []
        with_target = None
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise TrainerInputError(f"batch row {i}: expected a mapping with src_lang, tgt_lang, src, tgt; "
                                        f"got {type(row).__name__}")
            for key in ("src_lang", "tgt_lang", "src"):
                if row.get(key) is None:
                    raise TrainerInputError(f"batch row {i}: no '{key}' (LSLo rows are src_lang, tgt_lang, src, tgt; "
                                            f"this row has: {', '.join(sorted(map(str, row))) or 'nothing'})")
            has_target = row.get("tgt") is not None
            if with_target is None:
                with_target = has_target
            elif has_target != with_target:
                raise TrainerInputError(f"batch row {i}: 'tgt' is {'set' if has_target else 'missing'}, unlike row 0")
            for key in ("src", "tgt") if has_target else ("src",):
                if not isinstance(row[key], str):
                    raise TrainerInputError(f"batch row {i}: '{key}' must be a string, got {type(row[key]).__name__}")
            src_langs.append(self._language(row["src_lang"], i, "src_lang"))
            tgt_langs.append(self._language(row["tgt_lang"], i, "tgt_lang"))
            srcs.append(row["src"])
            if has_target:
                tgts.append(row["tgt"])
        pieces = self.tokenizer(srcs, add_special_tokens=False)["input_ids"]
        tgt_pieces = self.tokenizer(tgts, add_special_tokens=False)["input_ids"] if with_target else None
        return build_batch(self.tokens, pieces, src_langs, tgt_langs, tgt_pieces, max_length=self.max_length,
                           label_language_token=self.label_language_token)


def _row(corpus: MultiWayCorpus, src: str, tgt: str, seg: int) -> dict[str, str]:
    return {"src_lang": src, "tgt_lang": tgt, "src": corpus.texts[src][seg], "tgt": corpus.texts[tgt][seg]}


def _corpus_and_directions(data: Any, model: Any, languages: Sequence[str] | None, pairs: Any,
                           split: str | None) -> tuple[MultiWayCorpus, list[Direction]]:
    lslo = as_lslo_model(model)
    langs = list(languages) if languages is not None else list(lslo.config.codes)
    if isinstance(data, MultiWayCorpus):
        corpus = data.subset(langs)
    else:
        corpus = load_corpus(data, split, langs)
    for code in corpus.languages:
        if code not in lslo.config.codes:
            raise TrainerInputError(f"languages: {code!r} is not one of the model's languages "
                                    f"({', '.join(lslo.config.codes)})")
    try:
        dirs = directions(corpus.languages, pairs)
    except ValueError as e:
        raise TrainerInputError(f"directions: {e}") from None
    if len(corpus) == 0:
        raise CorpusError("dataset: no segments")
    return corpus, dirs


class DirectionStream(torch.utils.data.IterableDataset):
    """The rows of :func:`direction_stream`: one epoch of the sampler's batches, one row per sentence.

    ``set_epoch`` (the Trainer calls it through accelerate) selects the epoch, whose draw is a
    pure function of ``(seed, epoch)``; so a Trainer resumed from a checkpoint skips to the same
    batch of the same draw. With ``dataloader_num_workers`` > 0, worker k yields batches k, k + n, ...
    (the DataLoader interleaves them back into the sampler's order)."""

    def __init__(self, corpus: MultiWayCorpus, dirs: Sequence[Direction], sampler: DirectionBatchSampler) -> None:
        super().__init__()
        self.corpus = corpus
        self.directions = list(dirs)
        self.sampler = sampler
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.sampler.epoch_size

    def batches(self, epoch: int | None = None) -> list[list[tuple[str, str, int]]]:
        """The epoch's batches as ``(src, tgt, segment)`` triples (for inspection and tests)."""
        return [[(e.src, e.tgt, e.seg_index) for e in b] for b in self._epoch_batches(self.epoch if epoch is None else epoch)]

    def _epoch_batches(self, epoch: int):
        state = self.sampler.state_dict()
        state.update(epoch=int(epoch), position=0)
        self.sampler.load_state_dict(state)
        return iter(self.sampler)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        for k, batch in enumerate(self._epoch_batches(self.epoch)):
            if info is not None and k % info.num_workers != info.id:
                continue
            for e in batch:
                yield _row(self.corpus, e.src, e.tgt, e.seg_index)


def direction_stream(
    data: Any,
    model: Any,
    *,
    batch_size: int = 8,
    languages: Sequence[str] | None = None,
    directions: Sequence[str | Sequence[str]] | None = None,
    temperature: float = 5.0,
    seed: int = 0,
    epoch_size: int | None = None,
    max_length: int | None = None,
    split: str | None = None,
) -> DirectionStream:
    """The temperature-sampled mixed-direction training stream of ``lslo train``, as a dataset.

    Args:
        data: a multi-way ``datasets.Dataset`` (one column per language, FLORES+ rows, or
            ``{src_lang, tgt_lang, src, tgt}`` rows with an ``id``; see
            :func:`lslo.data.corpus.read_dataset`), a ``DatasetDict`` with ``split``, a
            :class:`MultiWayCorpus`, or any path :func:`~lslo.data.corpus.load_corpus` reads.
        model: the ``LSLoForSeq2SeqLM`` (or ``LSLoModel``); its tokenizer measures lengths.
        batch_size: the Trainer's ``per_device_train_batch_size``: each of the sampler's batches
            has exactly this many sentences (the epoch size is rounded up to a multiple), so the
            Trainer's batches are the sampler's length-sorted batches.
        languages: the languages to use (default: the model's); each must be in ``data``.
        directions: ``"en-de"`` style pairs (default: every direction among ``languages``).
        temperature, seed, epoch_size: as ``train.temperature``, ``train.seed`` and
            ``train.epoch_size`` of ``lslo train`` (default epoch: one draw per segment and direction).
        max_length: the lengths the sampler sorts by are cut here, as ``data.max_length``;
            give the collator the same value.
    """
    if batch_size < 1:
        raise TrainerInputError(f"direction_stream: batch_size must be >= 1, got {batch_size}")
    corpus, dirs = _corpus_and_directions(data, model, languages, directions, split)
    lengths = TokenizedCorpus(corpus, as_lslo_model(model).tokenizer, max_length or _NO_TRUNCATION)
    n = int(epoch_size) if epoch_size is not None else len(corpus) * len(dirs)
    n = math.ceil(n / batch_size) * batch_size
    try:
        sampler = DirectionBatchSampler(corpus, dirs, lengths.length, _UNLIMITED, temperature=temperature,
                                        seed=seed, epoch_size=n, max_sentences=batch_size)
    except ValueError as e:
        raise TrainerInputError(f"direction_stream: {e}") from None
    return DirectionStream(corpus, dirs, sampler)


class DirectionEvalSet(torch.utils.data.Dataset):
    """Every (segment, direction) of an evaluation corpus, in ``lslo evaluate``'s batch order.

    ``jobs[k]`` is ``(src, tgt, segment)`` of row k; :class:`~lslo.hf.metrics.DirectionMetrics`
    puts the Trainer's predictions back in place with it."""

    def __init__(self, corpus: MultiWayCorpus, dirs: Sequence[Direction], n: int,
                 jobs: list[tuple[str, str, int]], batch_size: int) -> None:
        self.corpus = corpus
        self.directions = list(dirs)
        self.segments = n
        self.jobs = jobs
        self.batch_size = batch_size

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, k: int) -> dict[str, str]:
        s, t, i = self.jobs[k]
        return _row(self.corpus, s, t, i)


def direction_eval_set(
    data: Any,
    model: Any,
    *,
    batch_size: int = 32,
    languages: Sequence[str] | None = None,
    directions: Sequence[str | Sequence[str]] | None = None,
    max_segments: int | None = None,
    split: str | None = None,
) -> DirectionEvalSet:
    """Rows of every direction of ``data`` for ``Seq2SeqTrainer(eval_dataset=...)``.

    The rows come in the order :func:`lslo.evaluation.evaluate_model` translates them (jobs sorted
    by source length, cut into ``batch_size`` chunks, each chunk longest first, as
    :func:`lslo.tuner.translation.translate` orders it): with ``per_device_eval_batch_size ==
    batch_size`` the Trainer generates exactly ``lslo evaluate``'s batches, hence its hypotheses."""
    if batch_size < 1:
        raise TrainerInputError(f"direction_eval_set: batch_size must be >= 1, got {batch_size}")
    corpus, dirs = _corpus_and_directions(data, model, languages, directions, split)
    n = len(corpus) if not max_segments else min(max_segments, len(corpus))
    jobs = [(s, t, i) for s, t in dirs for i in range(n)]
    jobs.sort(key=lambda j: (len(corpus.texts[j[0]][j[2]]), j))  # as evaluate_model
    tokenizer = as_lslo_model(model).tokenizer
    ordered: list[tuple[str, str, int]] = []
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        pieces = tokenizer([corpus.texts[s][i] for s, _, i in chunk], add_special_tokens=False)["input_ids"]
        order = sorted(range(len(chunk)), key=lambda k: (-len(pieces[k]), k))  # as translate
        ordered.extend(chunk[k] for k in order)
    return DirectionEvalSet(corpus, dirs, n, ordered, batch_size)


__all__ = ["DirectionEvalSet", "DirectionStream", "LSLoCollator", "direction_eval_set", "direction_stream"]
