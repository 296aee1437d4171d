"""The state behind the HTTP API, and what ``/translate`` and ``/detect`` do with a request.

A request's texts go through these steps, each refusing bad input as LibreTranslate does
(:mod:`lslo.serving.errors`):

1. ``q`` checked (missing or empty: 400), ``batch_limit`` (texts per request) and ``char_limit``
   (characters per text) enforced;
2. languages resolved; ``source: "auto"`` detects each text's language among the run's
   (:mod:`lslo.serving.detect`), so one list may mix sources;
3. each text is laid out as sentences (:mod:`lslo.serving.segment`; text nodes first for
   ``format: "html"``, :mod:`lslo.serving.html`), long ones cut to the model's positions;
4. every sentence of the request goes to the batcher as one job, which mixes it with other
   requests' sentences, whatever their directions, into one beam search;
5. the translations are put back into each text's layout (and, with ``alternatives: N``, the
   beam's next ``N`` hypotheses into copies of it).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request

from lslo.serving.batcher import POLICIES, Batcher, QueueFull, ShuttingDown, TranslateFn
from lslo.serving.detect import DEFAULT_DETECTOR, Detector, make_detector
from lslo.serving.errors import HTTPError, bad, exceeds, invalid_key, key_required, missing, not_supported
from lslo.serving.html import HtmlDoc, html_doc
from lslo.serving.metrics import Metrics
from lslo.serving.ratelimit import RateLimiter
from lslo.serving.segment import DEFAULT_SPLITTER, Layout, layout, make_splitter
from lslo.tuner.langcodes import UnknownLanguageError, language_name, resolve_code

FORMATS = ("text", "html")


@dataclass
class Limits:
    max_texts: int = 64  # texts in one request's list q (LibreTranslate's batch_limit)
    max_chars: int = 5000  # characters per text (LibreTranslate's char_limit)
    max_segments: int = 512  # sentences per request, after splitting
    max_body_bytes: int = 1 << 20  # bytes of a request body
    max_file_bytes: int = 2 << 20  # bytes of a file sent to /translate_file

    def __post_init__(self):
        for name in ("max_texts", "max_chars", "max_segments", "max_body_bytes", "max_file_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class Piece:
    """One text of a request, laid out: its direction, its sentences, and how to rebuild it."""

    text: str
    src: str
    tgt: str
    fmt: str
    layout: Layout | HtmlDoc | None  # None: returned unchanged (nothing to translate, or already the target language)
    detected: dict | None = None

    def sentences(self) -> list[str]:
        return self.layout.sentences if self.layout is not None else []


class TranslationService:
    """The run's languages, the batcher, the detector, the limits, the key and the metrics."""

    def __init__(self, translate: TranslateFn, count_tokens: Callable[[str], int], codes: Sequence[str], *,
                 api_key: str | None = None, limits: Limits | None = None, policy: str = "mixed",
                 max_batch_tokens: int = 4096, max_batch_segments: int = 64, max_wait_ms: float = 5.0,
                 max_queue: int = 1024, retry_after_s: int = 1, description: str = "lslo",
                 max_segment_tokens: int | None = None, trim_interval_s: float | None = None,
                 trained: Sequence[tuple[str, str]] | None = None, allow_same_language: bool = False,
                 detector: str | Detector | None = DEFAULT_DETECTOR, splitter: str = DEFAULT_SPLITTER,
                 max_alternatives: int = 0, req_limit: int = 0, frontend_timeout_ms: int = 500):
        if policy not in POLICIES:
            raise ValueError(f"policy {policy!r}: expected one of {', '.join(POLICIES)}")
        self.codes = list(codes)
        # the directions the run trained on (None: all); others are served with a warning header
        self.trained = None if trained is None else {tuple(d) for d in trained}
        self.allow_same_language = allow_same_language
        self.api_key = api_key or None
        self.limits = limits or Limits()
        self.retry_after_s = retry_after_s
        self.count_tokens = count_tokens
        self.max_segment_tokens = max_segment_tokens  # the model's position limit: longer inputs are cut
        self.description = description
        self.max_alternatives = max_alternatives  # the beam's other hypotheses: beam size - 1
        self.frontend_timeout_ms = frontend_timeout_ms
        self.detector = make_detector(detector, self.codes) if isinstance(detector, str) else detector
        self.split = make_splitter(splitter)
        self.rate = RateLimiter(req_limit) if req_limit else None
        self.metrics: Metrics | None = None
        self.batcher = Batcher(translate, count_tokens, policy=policy, max_batch_tokens=max_batch_tokens,
                               max_batch_segments=max_batch_segments, max_wait_ms=max_wait_ms, max_queue=max_queue,
                               on_batch=self._on_batch, trim_interval_s=trim_interval_s)
        self.metrics = Metrics(lambda: self.batcher.queue_depth, lambda: self.batcher.in_flight)
        self.started = time.time()

    def _on_batch(self, stats) -> None:
        if self.metrics is not None:
            self.metrics.on_batch(stats)

    # ------------------------------------------------------------------ languages
    def code(self, field: str, value, auto: bool = False) -> str:
        """The server's code for a request's language (``auto`` passes through where allowed)."""
        if value is None or value == "":
            raise missing(field)
        if not isinstance(value, str) or not value.strip():
            raise bad(field, f"expected a language code, got {value!r}")
        value = value.strip()
        if auto and value.lower() == "auto":
            if self.detector is None:
                raise bad(field, "'auto': language detection is off on this server (started with --detector "
                                 "none); name the source language")
            return "auto"
        try:
            return resolve_code(value, self.codes)
        except UnknownLanguageError:
            raise not_supported(value, field) from None

    def name(self, code: str) -> str:
        try:
            return language_name(code)
        except UnknownLanguageError:
            return code

    def same_language(self, code: str) -> HTTPError:
        """LibreTranslate's answer for a pair it has no model for, here a language into itself."""
        return HTTPError(400, f"{self.name(code)} ({code}) is not available as a target language from "
                              f"{self.name(code)} ({code})", "bad_request", field="target")

    def untrained_note(self, pairs: Sequence[tuple[str, str]]) -> str | None:
        """A warning for directions the run did not train on (None when it trained them all)."""
        if self.trained is None:
            return None
        new = sorted({f"{s}->{t}" for s, t in pairs if s != t and (s, t) not in self.trained})
        if not new:
            return None
        return f"{', '.join(new)} not trained (the run trained {len(self.trained)} directions); quality may be poor"

    def languages(self) -> list[dict]:
        return [{"code": c, "name": self.name(c),
                 "targets": [t for t in self.codes if t != c or self.allow_same_language]} for c in self.codes]

    # ------------------------------------------------------------------ detection
    def _detect_all(self, texts: list[str]) -> list[list[tuple[str, float]]]:
        return [self.detector.detect(t) for t in texts]

    async def detect_many(self, texts: list[str]) -> list[list[tuple[str, float]]]:
        """Candidates for each text, off the event loop (the libraries hold the CPU)."""
        return await asyncio.get_running_loop().run_in_executor(None, self._detect_all, texts)

    async def detect(self, q) -> list:
        """``POST /detect``: ``[{confidence, language}, ...]`` best first (a list of those for a list ``q``)."""
        if self.detector is None:
            raise HTTPError(400, "detect: language detection is off on this server (--detector none)",
                            "bad_request", field="q")
        texts = self.texts(q)
        found = await self.detect_many(texts)
        answers = [[{"confidence": conf, "language": code} for code, conf in cands] for cands in found]
        return answers if isinstance(q, list) else answers[0]

    # ------------------------------------------------------------------ translation
    def texts(self, q) -> list[str]:
        """``q`` as a list of texts, checked: missing or empty is a 400 (LibreTranslate's ``if not q``)."""
        if not q:
            raise missing("q")
        texts = q if isinstance(q, list) else [q]
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise bad(f"q[{i}]" if isinstance(q, list) else "q", f"expected a string, got {type(t).__name__}")
        if len(texts) > self.limits.max_texts:
            raise exceeds(len(texts), self.limits.max_texts, "batch_limit")
        for t in texts:
            if len(t) > self.limits.max_chars:
                raise exceeds(len(t), self.limits.max_chars, "char_limit")
        return texts

    def alternatives(self, value) -> int:
        try:
            n = max(0, int(value or 0))
        except (TypeError, ValueError):
            raise HTTPError(400, "Invalid request: alternatives parameter is not a number", "bad_request",
                            field="alternatives") from None
        if n > self.max_alternatives:
            raise HTTPError(400, f"Invalid request: alternatives parameter must be <= {self.max_alternatives}",
                            "bad_request", field="alternatives", maximum=self.max_alternatives)
        return n

    def fits(self, sentence: str) -> bool:
        return self.max_segment_tokens is None or self.count_tokens(sentence) <= self.max_segment_tokens

    def lay_out(self, text: str, lang: str, fmt: str) -> Layout | HtmlDoc:
        """``text`` as sentences to translate (its text nodes' sentences for html)."""
        def split(t: str) -> Layout:
            return layout(t, lang, self.split, self.fits)

        return html_doc(text, split) if fmt == "html" else split(text)

    async def pieces(self, texts: list[str], source, target, fmt: str) -> list[Piece]:
        """Each text's direction and layout; ``auto`` detects each text's source."""
        src = self.code("source", source, auto=True)  # LibreTranslate checks the source first
        tgt = self.code("target", target)
        if src == tgt and not self.allow_same_language:
            raise self.same_language(src)
        detected: list[dict | None] = [None] * len(texts)
        sources = [src] * len(texts)
        if src == "auto":
            found = await self.detect_many(texts)
            for i, cands in enumerate(found):
                code, conf = cands[0]
                if code not in self.codes:  # a detector that answers outside the run's languages
                    raise not_supported(code, "source")
                sources[i], detected[i] = code, {"confidence": conf, "language": code}
        out = []
        for text, s, det in zip(texts, sources, detected):
            keep = det is not None and (s == tgt or det["confidence"] == 0.0)  # nothing to translate
            lay = None if keep or not text.strip() else self.lay_out(text, s, fmt)
            out.append(Piece(text, s, tgt, fmt, lay, det))
        return out

    async def _submit(self, work: list[tuple[str, str, str]], n_best: int) -> list[list[str]]:
        sentences = [w[0] for w in work]
        counts = [self.count_tokens(s) for s in sentences]
        try:
            future = self.batcher.submit(sentences, [w[1] for w in work], [w[2] for w in work], counts,
                                         n_best=n_best)
        except (QueueFull, ShuttingDown) as e:
            raise HTTPError(503, str(e), "unavailable", headers={"Retry-After": str(self.retry_after_s)}) from None
        return [[d] if isinstance(d, str) else d for d in await asyncio.wrap_future(future)]

    async def run(self, pieces: list[Piece], n_best: int = 1, chunk: int | None = None) -> list[list[str]]:
        """Translate every sentence of ``pieces``; each piece's ``n_best`` renderings.

        The sentences go to the batcher as one job (``max_segments`` at most), or, with ``chunk``,
        as jobs of ``chunk`` sentences one after the other (a file: other requests go in between)."""
        work = [(s, p.src, p.tgt) for p in pieces for s in p.sentences()]
        if chunk is None:
            if len(work) > self.limits.max_segments:
                raise exceeds(len(work), self.limits.max_segments, "max_segments")
            done = await self._submit(work, n_best) if work else []
        else:
            done = []
            for i in range(0, len(work), chunk):
                done += await self._submit(work[i:i + chunk], n_best)
        out, pos = [], 0
        for p in pieces:
            n = len(p.sentences())
            hyps = done[pos:pos + n]
            pos += n
            if p.layout is None:
                out.append([p.text] * n_best)
                continue
            out.append([p.layout.fill([h[k] if k < len(h) else h[0] for h in hyps]) for k in range(n_best)])
        return out

    async def run_file(self, pieces: list[Piece]) -> list[str]:
        """A file's pieces, translated in jobs of one batch each."""
        return [r[0] for r in await self.run(pieces, 1, chunk=self.batcher.max_batch_segments)]

    async def translate(self, q, source, target, fmt=None, alternatives=0) -> tuple[dict, str | None]:
        """``POST /translate``: LibreTranslate's answer, and a warning for untrained directions."""
        texts = self.texts(q)
        if source is None or (isinstance(source, str) and not source.strip()):
            raise missing("source")
        if target is None or (isinstance(target, str) and not target.strip()):
            raise missing("target")
        n = self.alternatives(alternatives)
        fmt = fmt or "text"
        if fmt not in FORMATS:
            raise HTTPError(400, f"{fmt} format is not supported", "bad_request", field="format")
        pieces = await self.pieces(texts, source, target, fmt)
        renders = await self.run(pieces, n + 1)
        answer: dict = {"translatedText": [r[0] for r in renders] if isinstance(q, list) else renders[0][0]}
        if isinstance(source, str) and source.strip().lower() == "auto":
            dets = [p.detected for p in pieces]
            answer["detectedLanguage"] = dets if isinstance(q, list) else dets[0]
        if n > 0:
            alts = [_unique(r[1:], r[0]) for r in renders]
            answer["alternatives"] = alts if isinstance(q, list) else alts[0]
        return answer, self.untrained_note([(p.src, p.tgt) for p in pieces if p.layout is not None])

    # ------------------------------------------------------------------ access
    def check_key(self, request: Request, fields: dict | None) -> None:
        """LibreTranslate's ``access_check``: no key sent -> 400, a wrong key -> 403."""
        if self.api_key is None:
            return
        given = None
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        given = given or request.headers.get("x-api-key") or request.query_params.get("api_key")
        if not given and isinstance(fields, dict) and isinstance(fields.get("api_key"), str):
            given = fields["api_key"]
        if not given:
            raise key_required()
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            raise invalid_key()

    def check_rate(self, request: Request, fields: dict | None) -> None:
        if self.rate is None:
            return
        key = fields.get("api_key") if isinstance(fields, dict) else None
        forwarded = request.headers.get("x-forwarded-for")
        ip = forwarded.split(",")[0].strip() if forwarded else (request.client.host if request.client else "?")
        if not self.rate.allow(f"key:{key}" if isinstance(key, str) and key else f"ip:{ip}"):
            raise HTTPError(429, f"Slowdown: {self.rate.per_minute} per 1 minute", "rate_limited",
                            headers={"Retry-After": str(self.rate.retry_after())})

    def close(self) -> None:
        self.batcher.close()


def _unique(alternatives: list[str], best: str) -> list[str]:
    """LibreTranslate's ``filter_unique``: no repeats, and not the translation itself."""
    out: list[str] = []
    for a in alternatives:
        if a != best and a not in out:
            out.append(a)
    return out
