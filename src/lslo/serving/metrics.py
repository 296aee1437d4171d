"""Prometheus metrics of one server (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from lslo.serving.batcher import BatchStats
from lslo.serving.memory import rss_bytes

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, queue_depth: Callable[[], int], in_flight: Callable[[], int]):
        self.registry = r = CollectorRegistry()
        self.requests = Counter("lslo_requests", "HTTP requests by endpoint and status code",
                                ["endpoint", "code"], registry=r)
        self.errors = Counter("lslo_errors", "requests answered with an error, by kind", ["kind"], registry=r)
        self.latency = Histogram("lslo_request_latency_seconds", "request latency by endpoint", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.segments = Counter("lslo_translated_segments", "segments translated", registry=r)
        self.batch_segments = Histogram("lslo_batch_segments", "segments per generation call",
                                        buckets=SIZE_BUCKETS, registry=r)
        self.batch_directions = Histogram("lslo_batch_directions", "distinct directions per generation call",
                                          buckets=SIZE_BUCKETS, registry=r)
        self.batch_seconds = Histogram("lslo_batch_seconds", "seconds per generation call",
                                       buckets=LATENCY_BUCKETS, registry=r)
        Gauge("lslo_queue_depth", "segments waiting for a batch", registry=r).set_function(queue_depth)
        Gauge("lslo_in_flight_segments", "segments in the batch being translated", registry=r).set_function(in_flight)
        Gauge("lslo_resident_memory_bytes", "resident set size of the server process (Linux; -1 elsewhere)",
              registry=r).set_function(lambda: rss_bytes() or -1)

    def on_batch(self, stats: BatchStats) -> None:
        self.segments.inc(stats.segments)
        self.batch_segments.observe(stats.segments)
        self.batch_directions.observe(stats.directions)
        self.batch_seconds.observe(stats.seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
