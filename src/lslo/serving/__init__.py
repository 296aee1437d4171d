"""``lslo serve``: one LSLo model serves every direction over HTTP, batching mixed directions together.

- :mod:`lslo.serving.batcher`: the bounded queue and the worker that builds mixed-direction batches;
- :mod:`lslo.serving.service`: what a request goes through (limits, languages, detection, sentences);
- :mod:`lslo.serving.app`: the LibreTranslate-compatible Starlette app and its endpoints;
- :mod:`lslo.serving.fields`, :mod:`~lslo.serving.errors`: requests read and errors worded as
  LibreTranslate reads and words them;
- :mod:`lslo.serving.detect`, :mod:`~lslo.serving.segment`, :mod:`~lslo.serving.html`,
  :mod:`~lslo.serving.files`: language identification, sentence splitting, HTML and files;
- :mod:`lslo.serving.metrics`: Prometheus metrics; :mod:`lslo.serving.ratelimit`: ``--req-limit``;
- :func:`service_for_model`: an :class:`~lslo.tuner.model.LSLoModel` behind the service.
"""

from __future__ import annotations

from typing import Any

from lslo.serving.app import create_app
from lslo.serving.batcher import POLICIES, Batcher, QueueFull, ShuttingDown
from lslo.serving.service import Limits, TranslationService


def service_for_model(model: Any, codes: list[str] | None = None, generate_kwargs: dict | None = None,
                      **options) -> TranslationService:
    """A :class:`TranslationService` whose batches run :meth:`LSLoModel.translate` (the ``lslo translate`` path).

    ``options`` go to :class:`TranslationService` (``api_key``, ``limits``, ``policy``,
    ``max_batch_tokens``, ``max_batch_segments``, ``max_wait_ms``, ``max_queue``, ``detector``,
    ``splitter``, ``req_limit``). ``alternatives`` may ask for up to the beam size - 1.
    """
    gen = dict(generate_kwargs or {})
    max_tokens = options.get("max_batch_tokens", 4096)
    tokenizer = model.tokenizer

    def translate(texts, src, tgt, batch_size, n_best: int = 1):
        if n_best > 1:
            return model.translate_n_best(texts, src, tgt, n_best, batch_size=batch_size, max_tokens=max_tokens,
                                          **gen)
        return model.translate(texts, src, tgt, batch_size=batch_size, max_tokens=max_tokens, **gen)

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 2

    codes = list(codes if codes is not None else model.config.codes)
    if "max_segment_tokens" not in options:  # learned position tables end here (sinusoidal ones grow)
        positions = getattr(getattr(model.base, "config", None), "max_position_embeddings", None)
        options["max_segment_tokens"] = int(positions) if positions else None
    options.setdefault("max_alternatives", max(0, int(gen.get("num_beams", 5)) - 1))
    return TranslationService(translate, count_tokens, codes, **options)


__all__ = ["POLICIES", "Batcher", "Limits", "QueueFull", "ShuttingDown", "TranslationService", "create_app",
           "service_for_model"]
