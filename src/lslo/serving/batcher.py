"""Dynamic batching across directions: a bounded queue and one worker thread.

Requests (``Job``: a list of segments, each with its own direction) wait in a bounded
queue. The worker takes the oldest job, then keeps taking jobs until the batch holds
``max_batch_tokens`` source tokens or the oldest job has waited ``max_wait_ms``, and runs
one call of the translate function over all of them (for LSLo: one mixed-direction beam
search per length-sorted chunk, exactly the path of ``lslo translate``). Each job's
results come back in its own order through a :class:`concurrent.futures.Future`.

Policies, for the serving benchmark's comparison:

- ``mixed``: any directions in one batch (LSLo's strength);
- ``direction``: a batch holds one direction only (what per-direction adapters need);
- ``single``: one segment per generation call (no batching).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from lslo.errors import LSLoError

POLICIES = ("mixed", "direction", "single")

# translate(texts, src_langs, tgt_langs, batch_size) -> translations in input order; called with
# n_best=k (k > 1) it returns each text's k best hypotheses (a list of k strings per text)
TranslateFn = Callable[[Sequence[str], Sequence[str], Sequence[str], int], list[str]]


class QueueFull(LSLoError):
    """The queue holds ``max_queue`` segments already: the caller should retry later."""


class ShuttingDown(LSLoError):
    """The batcher is draining and accepts no new work."""


@dataclass
class Job:
    texts: list[str]
    src: list[str]
    tgt: list[str]
    tokens: int  # source tokens (for the batch budget)
    n_best: int = 1  # hypotheses wanted per segment: jobs are batched only with jobs wanting as many
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)

    @property
    def direction(self) -> tuple[str, str] | None:
        """The one direction of the job, or None when its segments mix directions."""
        pairs = set(zip(self.src, self.tgt))
        return next(iter(pairs)) if len(pairs) == 1 else None


@dataclass
class BatchStats:
    """What one generation call held (reported to metrics through ``on_batch``)."""

    jobs: int
    segments: int
    tokens: int
    directions: int
    seconds: float


class Batcher:
    """A bounded queue of jobs served by one worker thread; ``close()`` drains it."""

    def __init__(self, translate: TranslateFn, count_tokens: Callable[[str], int], *, policy: str = "mixed",
                 max_batch_tokens: int = 4096, max_batch_segments: int = 64, max_wait_ms: float = 5.0,
                 max_queue: int = 1024, on_batch: Callable[[BatchStats], None] | None = None,
                 trim_interval_s: float | None = None, trim: Callable[[], object] | None = None):
        """``trim_interval_s``: after a batch, at most this often, hand freed heap memory back to
        the OS (``trim``, default glibc's ``malloc_trim``); None or 0 never does."""
        if policy not in POLICIES:
            raise ValueError(f"policy {policy!r}: expected one of {', '.join(POLICIES)}")
        for name, value in (("max_batch_tokens", max_batch_tokens), ("max_batch_segments", max_batch_segments),
                            ("max_queue", max_queue)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.translate = translate
        self.count_tokens = count_tokens
        self.policy = policy
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_segments = 1 if policy == "single" else max_batch_segments
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.on_batch = on_batch
        if trim_interval_s is not None and trim_interval_s < 0:
            raise ValueError(f"trim_interval_s must be >= 0 or None, got {trim_interval_s}")
        self.trim_interval_s = trim_interval_s or None
        if trim is None:
            from lslo.serving.memory import release_free_memory as trim
        self._trim = trim
        self._last_trim = time.monotonic()
        self.trims = 0
        self._queue: deque[Job] = deque()
        self._queued_segments = 0
        self._cond = threading.Condition()
        self._closing = False
        self._busy = 0  # segments in the batch being translated
        self._thread = threading.Thread(target=self._run, name="lslo-batcher", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ clients
    def submit(self, texts: Sequence[str], src: Sequence[str], tgt: Sequence[str],
               tokens: Sequence[int] | None = None, n_best: int = 1) -> Future:
        """Queue one request; its future gives the translations in input order (with ``n_best`` > 1,
        each segment's list of its ``n_best`` best hypotheses).

        ``tokens``: the segments' token counts when the caller has them already."""
        if not (len(texts) == len(src) == len(tgt)):
            raise ValueError("submit: texts, src and tgt must have the same length")
        counts = list(tokens) if tokens is not None else [self.count_tokens(t) for t in texts]
        job = Job(list(texts), list(src), list(tgt), sum(counts), n_best)
        if not texts:
            job.future.set_result([])
            return job.future
        with self._cond:
            if self._closing:
                raise ShuttingDown("the server is shutting down")
            if self._queued_segments + len(texts) > self.max_queue:
                raise QueueFull(f"the queue is full ({self._queued_segments} of {self.max_queue} segments waiting)")
            self._queue.append(job)
            self._queued_segments += len(texts)
            self._cond.notify_all()
        return job.future

    @property
    def queue_depth(self) -> int:
        """Segments waiting (not yet in a batch)."""
        return self._queued_segments

    @property
    def in_flight(self) -> int:
        """Segments in the batch being translated now."""
        return self._busy

    def close(self, timeout: float | None = None) -> None:
        """Accept nothing more, translate everything queued, stop the worker."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------------ worker
    def _take(self) -> list[Job] | None:
        """Wait for work, then take one batch's jobs (None: closed and drained)."""
        with self._cond:
            while not self._queue:
                if self._closing:
                    return None
                self._cond.wait()
            # wait for company until the budget fills or the oldest job has waited long enough
            while not self._closing:
                deadline = self._queue[0].enqueued + self.max_wait
                left = deadline - time.monotonic()
                if left <= 0 or self._fits() is False:
                    break
                self._cond.wait(left)
            jobs = self._select()
            for job in jobs:
                self._queued_segments -= len(job.texts)
            self._busy = sum(len(j.texts) for j in jobs)
            return jobs

    def _fits(self) -> bool:
        """Whether the queue could still take more before the batch is full."""
        tokens = segments = 0
        for job in self._queue:
            tokens += job.tokens
            segments += len(job.texts)
            if tokens >= self.max_batch_tokens or segments >= self.max_batch_segments:
                return False
        return True

    def _select(self) -> list[Job]:
        """Remove and return the jobs of the next batch (at least the oldest job)."""
        first = self._queue.popleft()
        jobs, tokens, segments = [first], first.tokens, len(first.texts)
        if self.policy == "single":
            return jobs
        keep: deque[Job] = deque()
        want = first.direction if self.policy == "direction" else None
        while self._queue:
            job = self._queue.popleft()
            same = (self.policy == "mixed" or (want is not None and job.direction == want)) and \
                job.n_best == first.n_best
            if same and tokens + job.tokens <= self.max_batch_tokens and \
                    segments + len(job.texts) <= self.max_batch_segments:
                jobs.append(job)
                tokens += job.tokens
                segments += len(job.texts)
            else:
                keep.append(job)
                if self.policy == "mixed" and job.n_best == first.n_best:  # FIFO: the batch is full
                    break
        keep.extend(self._queue)
        self._queue = keep
        return jobs

    def _run(self) -> None:
        while True:
            jobs = self._take()
            if jobs is None:
                return
            live = [job for job in jobs if job.future.set_running_or_notify_cancel()]  # drop cancelled ones
            if live:
                self._translate(live)
            with self._cond:
                self._busy = 0
            self._maybe_trim()

    def _maybe_trim(self) -> None:
        if self.trim_interval_s is None or time.monotonic() - self._last_trim < self.trim_interval_s:
            return
        self._trim()
        self.trims += 1
        self._last_trim = time.monotonic()

    def _translate(self, jobs: list[Job]) -> None:
        texts = [t for job in jobs for t in job.texts]
        src = [s for job in jobs for s in job.src]
        tgt = [t for job in jobs for t in job.tgt]
        start = time.perf_counter()
        try:
            n = jobs[0].n_best
            out = self.translate(texts, src, tgt, self.max_batch_segments, **({"n_best": n} if n > 1 else {}))
        except BaseException as e:  # noqa: BLE001 - every waiting client gets the error, the worker lives on
            for job in jobs:
                job.future.set_exception(e)
            if not isinstance(e, Exception):
                raise
            return
        seconds = time.perf_counter() - start
        pos = 0
        for job in jobs:
            job.future.set_result(out[pos:pos + len(job.texts)])
            pos += len(job.texts)
        if self.on_batch is not None:
            self.on_batch(BatchStats(len(jobs), len(texts), sum(j.tokens for j in jobs),
                                     len(set(zip(src, tgt))), seconds))
