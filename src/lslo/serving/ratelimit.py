"""``--req-limit``: at most N requests per minute per API key (or per client address without one).

A sliding window of the last minute's request times per client, as flask-limiter's moving
window (LibreTranslate's ``--req-limit``); the limit is off by default.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque


class RateLimiter:
    def __init__(self, per_minute: int, window_s: float = 60.0, clock=time.monotonic, max_clients: int = 100_000):
        if per_minute < 1:
            raise ValueError(f"per_minute must be >= 1, got {per_minute}")
        self.per_minute, self.window, self.clock, self.max_clients = per_minute, window_s, clock, max_clients
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._wait = 0.0

    def allow(self, client: str) -> bool:
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(client, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.per_minute:
                self._wait = hits[0] + self.window - now
                return False
            hits.append(now)
            if len(self._hits) > self.max_clients:  # forget idle clients: memory stays bounded
                for k in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
                    del self._hits[k]
            return True

    def retry_after(self) -> int:
        """Seconds until the last refused client may try again (for ``Retry-After``)."""
        return max(1, math.ceil(self._wait))
