"""Directions, temperature sampling and token-budget batches over a multi-way corpus.

Training mixes all directions in every batch (the language-specific LoRA modules
route per sentence), so examples are drawn one by one: a direction with the
temperature probability ``p_d ∝ (n_d / N) ** (1 / T)``, then a segment of that
direction. Batches are cut from the drawn examples by a token budget after a
length sort (less padding), and their order is shuffled. The whole epoch is a
pure function of ``(seed, epoch)``, which makes training reproducible and lets a
checkpoint resume in the middle of an epoch with exactly the remaining batches.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lslo.data.corpus import MultiWayCorpus
from lslo.tuner.langcodes import UnknownLanguageError, to_short

Direction = tuple[str, str]


@dataclass(frozen=True)
class Example:
    """One training/eval example: segment ``seg_index`` of the corpus, from ``src`` to ``tgt``."""

    seg_index: int
    src: str
    tgt: str


def parse_direction(spec: str | Sequence[str]) -> Direction:
    """``"en-fr"`` or ``("en", "fr")`` -> ``("en", "fr")`` (codes as written)."""
    if isinstance(spec, str):
        parts = spec.split("-")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise ValueError(f"direction {spec!r} is not of the form 'src-tgt' (e.g. 'en-fr')")
        return parts[0].strip(), parts[1].strip()
    parts = list(spec)
    if len(parts) != 2 or not all(isinstance(p, str) and p for p in parts):
        raise ValueError(f"direction {spec!r} is not a (src, tgt) pair of language codes")
    return parts[0], parts[1]


def directions(
    languages: Sequence[str], pairs: Sequence[str | Sequence[str]] | None = None
) -> list[Direction]:
    """All ``src != tgt`` directions among ``languages`` (in their order), or the validated ``pairs``.

    Codes in ``pairs`` may be written in any form the language table knows
    (``eng-fra``); they are returned as the codes used in ``languages``.
    """
    langs = list(languages)
    if len(set(langs)) != len(langs):
        raise ValueError(f"duplicate languages in {langs}")
    if pairs is None:
        return [(s, t) for s in langs for t in langs if s != t]

    def resolve(code: str, spec: Any) -> str:
        if code in langs:
            return code
        try:
            short = to_short(code)
        except UnknownLanguageError:
            short = None
        if short in langs:
            return short
        raise ValueError(
            f"direction {spec!r}: language {code!r} is not one of the languages {' '.join(langs)}"
        )

    result: list[Direction] = []
    for spec in pairs:
        src, tgt = parse_direction(spec)
        src, tgt = resolve(src, spec), resolve(tgt, spec)
        if src == tgt:
            raise ValueError(f"direction {spec!r} has the same source and target language")
        if (src, tgt) in result:
            raise ValueError(f"direction {spec!r} is listed twice")
        result.append((src, tgt))
    if not result:
        raise ValueError("the list of directions is empty")
    return result


_all_directions = directions  # reachable where a parameter is called ``directions``


def temperature_probs(sizes: Mapping[Direction, int], T: float) -> dict[Direction, float]:
    """Sampling probabilities ``p_i ∝ (n_i / N) ** (1 / T)`` (T=1: proportional, T=inf: uniform)."""
    if not sizes:
        raise ValueError("temperature_probs needs at least one direction")
    if not T > 0:
        raise ValueError(f"temperature must be > 0, got {T}")
    if any(n < 0 for n in sizes.values()):
        raise ValueError(f"direction sizes must be >= 0, got {dict(sizes)}")
    total = sum(sizes.values())
    if total <= 0:
        raise ValueError("all direction sizes are 0")
    weights = {d: ((n / total) ** (1.0 / T) if n > 0 else 0.0) for d, n in sizes.items()}
    z = sum(weights.values())
    return {d: w / z for d, w in weights.items()}


def all_direction_examples(
    corpus: MultiWayCorpus, directions: Sequence[Direction] | None = None
) -> list[Example]:
    """Every (segment, direction) once, direction-major, for evaluation (deterministic order).

    ``directions=None`` means all ``src != tgt`` directions of the corpus languages.
    """
    dirs = _all_directions(corpus.languages) if directions is None else [tuple(d) for d in directions]
    for src, tgt in dirs:
        for lang in (src, tgt):
            if lang not in corpus.texts:
                raise ValueError(f"direction {src}-{tgt}: language {lang!r} is not in the corpus")
    return [Example(i, src, tgt) for src, tgt in dirs for i in range(len(corpus))]


class DirectionBatchSampler:
    """Yields batches (lists of :class:`Example`) mixing directions under a token budget.

    * ``epoch_size`` (examples drawn per epoch) defaults to ``len(corpus) *
      len(directions)`` - the size of the union of all direction datasets, like a
      fairseq epoch over all language pairs - so one epoch sees about as many
      examples as there are (segment, direction) pairs, redistributed by temperature.
    * Within a direction, segments are drawn from a fresh random permutation (cycled
      if a direction is drawn more often than it has segments), so an epoch covers a
      direction's segments evenly instead of repeating some and missing others.
    * A batch's padded size ``len(batch) * max(max(src_len, tgt_len))`` never exceeds
      ``max_tokens``, except an example longer than ``max_tokens`` alone, which
      becomes its own batch and is counted in ``num_oversize`` (with a warning).
    * ``buffer_size`` examples (default: the whole epoch, as fairseq does) are sorted
      by length before being cut into batches; the batch order is then shuffled.

    Deterministic in ``(seed, epoch)``. ``set_epoch(e)`` with a new ``e`` starts that
    epoch at its first batch; with the current epoch it keeps the position, so a
    training loop that calls ``set_epoch`` unconditionally resumes correctly after
    ``load_state_dict``. Iterating yields the batches from the current position on
    and advances it; a finished epoch yields nothing until the epoch changes.
    """

    def __init__(
        self,
        corpus: MultiWayCorpus,
        directions: Sequence[Direction],
        length_fn: Callable[[str, int], int],
        max_tokens: int,
        temperature: float = 5.0,
        seed: int = 0,
        epoch_size: int | None = None,
        buffer_size: int | None = None,
        max_sentences: int | None = None,
        sizes: Mapping[Direction, int] | None = None,
    ) -> None:
        if len(corpus) == 0:
            raise ValueError("cannot sample from an empty corpus")
        self.directions: list[Direction] = [tuple(d) for d in directions]  # type: ignore[misc]
        if not self.directions:
            raise ValueError("no directions to sample")
        if len(set(self.directions)) != len(self.directions):
            raise ValueError("duplicate directions")
        for src, tgt in self.directions:
            if src == tgt:
                raise ValueError(f"direction {src}-{tgt} has the same source and target language")
            for lang in (src, tgt):
                if lang not in corpus.texts:
                    raise ValueError(f"direction {src}-{tgt}: language {lang!r} is not in the corpus")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        if max_sentences is not None and max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1, got {max_sentences}")
        if buffer_size is not None and buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.corpus = corpus
        self.max_tokens = int(max_tokens)
        self.max_sentences = max_sentences
        self.temperature = float(temperature)
        self.seed = int(seed)
        self.num_segments = len(corpus)
        self.epoch_size = (
            int(epoch_size) if epoch_size is not None else self.num_segments * len(self.directions)
        )
        if self.epoch_size < 1:
            raise ValueError(f"epoch_size must be >= 1, got {epoch_size}")
        self.buffer_size = buffer_size

        if sizes is None:
            sizes = {d: self.num_segments for d in self.directions}
        elif set(sizes) != set(self.directions):
            raise ValueError("sizes must have exactly one entry per direction")
        self.probs: dict[Direction, float] = temperature_probs(
            {d: sizes[d] for d in self.directions}, self.temperature
        )

        # Token lengths of every (language, segment) used, computed once.
        self._langs = sorted({lang for d in self.directions for lang in d})
        lang_row = {lang: r for r, lang in enumerate(self._langs)}
        lengths = np.empty((len(self._langs), self.num_segments), dtype=np.int64)
        for lang, r in lang_row.items():
            for i in range(self.num_segments):
                n = length_fn(lang, i)
                if n < 0:
                    raise ValueError(f"length_fn({lang!r}, {i}) returned a negative length {n}")
                lengths[r, i] = n
        self._lengths = lengths
        self._src_row = np.array([lang_row[s] for s, _ in self.directions], dtype=np.int64)
        self._tgt_row = np.array([lang_row[t] for _, t in self.directions], dtype=np.int64)

        self._epoch = 0
        self._position = 0
        self._plan: tuple[np.ndarray, np.ndarray, list[np.ndarray]] | None = None
        self.num_oversize = 0

    # ------------------------------------------------------------------ plan

    def _build_plan(self) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """(direction index, segment index) per drawn example, and the shuffled batches."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self._epoch]))
        n_dirs, n_seg, size = len(self.directions), self.num_segments, self.epoch_size
        p = np.array([self.probs[d] for d in self.directions], dtype=np.float64)
        dir_idx = rng.choice(n_dirs, size=size, p=p / p.sum())
        seg_idx = np.empty(size, dtype=np.int64)
        by_dir = np.argsort(dir_idx, kind="stable")  # example positions grouped by direction, in draw order
        bounds = np.cumsum(np.bincount(dir_idx, minlength=n_dirs))
        for d in range(n_dirs):
            where = by_dir[(bounds[d - 1] if d else 0) : bounds[d]]
            if where.size == 0:
                continue
            reps = -(-where.size // n_seg)
            seg_idx[where] = np.concatenate([rng.permutation(n_seg) for _ in range(reps)])[: where.size]
        ex_len = np.maximum(
            self._lengths[self._src_row[dir_idx], seg_idx], self._lengths[self._tgt_row[dir_idx], seg_idx]
        )
        ex_len = np.maximum(ex_len, 1)  # an empty side still costs a position (EOS / language token)

        batches: list[np.ndarray] = []
        oversize = 0
        buf = self.buffer_size or size
        cap = self.max_sentences or size
        lens = ex_len.tolist()  # Python ints: the greedy loop below is ~10x faster than on numpy scalars
        for start in range(0, size, buf):
            chunk = np.arange(start, min(start + buf, size))
            order = chunk[np.argsort(ex_len[chunk], kind="stable")]
            current: list[int] = []
            longest = 0
            for i in order.tolist():
                n = lens[i]
                if n > self.max_tokens:  # sorted ascending: all remaining ones are too long as well
                    oversize += 1
                    batches.append(np.array([i], dtype=np.int64))
                    continue
                if current and (
                    (len(current) + 1) * max(longest, n) > self.max_tokens or len(current) >= cap
                ):
                    batches.append(np.array(current, dtype=np.int64))
                    current, longest = [], 0
                current.append(i)
                longest = max(longest, n)
            if current:
                batches.append(np.array(current, dtype=np.int64))
        batches = [batches[j] for j in rng.permutation(len(batches))]
        self.num_oversize = oversize
        if oversize:
            warnings.warn(
                f"epoch {self._epoch}: {oversize} example(s) longer than max_tokens={self.max_tokens} "
                f"were put in batches of their own",
                stacklevel=3,
            )
        return dir_idx, seg_idx, batches

    def _get_plan(self) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        if self._plan is None:
            self._plan = self._build_plan()
        return self._plan

    # ------------------------------------------------------------------ API

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def position(self) -> int:
        """Number of batches of the current epoch already yielded."""
        return self._position

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch; a different epoch restarts at batch 0, the same one keeps the position."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch != self._epoch:
            self._epoch = int(epoch)
            self._position = 0
            self._plan = None

    def __len__(self) -> int:
        return len(self._get_plan()[2])

    def __iter__(self) -> Iterator[list[Example]]:
        dir_idx, seg_idx, batches = self._get_plan()
        epoch = self._epoch
        while self._position < len(batches):
            if self._epoch != epoch:  # set_epoch was called mid-iteration: stop this epoch's stream
                return
            batch = batches[self._position]
            self._position += 1  # before yielding: a state saved after receiving a batch excludes it
            yield [Example(int(seg_idx[i]), *self.directions[int(dir_idx[i])]) for i in batch]

    def _fingerprint(self) -> str:
        """Hash of everything that determines the batches, to refuse resuming with other settings."""
        h = hashlib.sha256()
        h.update(
            repr(
                (
                    self.directions,
                    self.num_segments,
                    self.max_tokens,
                    self.max_sentences,
                    self.temperature,
                    self.seed,
                    self.epoch_size,
                    self.buffer_size,
                    sorted(self.probs.items()),
                )
            ).encode()
        )
        h.update(self._lengths.tobytes())
        return h.hexdigest()[:16]

    def state_dict(self) -> dict[str, Any]:
        """Epoch and position within it (plus a fingerprint of the settings)."""
        return {
            "epoch": self._epoch,
            "position": self._position,
            "seed": self.seed,
            "fingerprint": self._fingerprint(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict`; the next iteration yields exactly the remaining batches."""
        if state.get("fingerprint") != self._fingerprint():
            raise ValueError(
                "sampler state was saved with different data, directions, lengths or settings "
                "(seed, max_tokens, temperature, epoch_size, ...): resuming would not reproduce the batches"
            )
        self._epoch = int(state["epoch"])
        self._plan = None
        position = int(state["position"])
        if not 0 <= position <= len(self):
            raise ValueError(
                f"sampler state position {position} is outside epoch {self._epoch} ({len(self)} batches)"
            )
        self._position = position

    def direction_counts(self) -> dict[Direction, int]:
        """How many examples of each direction the current epoch holds (for logging)."""
        dir_idx = self._get_plan()[0]
        counts = np.bincount(dir_idx, minlength=len(self.directions))
        return {d: int(c) for d, c in zip(self.directions, counts)}


def batch_padded_tokens(batch: Sequence[Example], length_fn: Callable[[str, int], int]) -> int:
    """Padded size of a batch, ``len(batch) * max(max(src_len, tgt_len))``: what ``max_tokens`` bounds."""
    if not batch:
        return 0
    longest = max(max(length_fn(e.src, e.seg_index), length_fn(e.tgt, e.seg_index), 1) for e in batch)
    return len(batch) * longest


__all__ = [
    "Direction",
    "DirectionBatchSampler",
    "Example",
    "all_direction_examples",
    "batch_padded_tokens",
    "directions",
    "parse_direction",
    "temperature_probs",
]
