"""The dynamic batcher on a recording fake model: what goes into a batch, order, limits, drain, faults."""

from __future__ import annotations

import threading
import time

import pytest

from lslo.serving.batcher import Batcher, QueueFull, ShuttingDown


class Recorder:
    """A translate function that records its batches; ``gate`` (when set) holds the worker."""

    def __init__(self, gate: threading.Event | None = None):
        self.batches: list[list[tuple[str, str, str]]] = []
        self.batch_sizes: list[int] = []
        self.gate = gate
        self.entered = threading.Event()

    def __call__(self, texts, src, tgt, batch_size):
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        self.batches.append(list(zip(texts, src, tgt)))
        self.batch_sizes.append(batch_size)
        return [f"{s}>{t}:{x.upper()}" for x, s, t in zip(texts, src, tgt)]


def tokens(text: str) -> int:
    return len(text.split()) + 2


def held_batcher(policy="mixed", **kw):
    """A batcher whose worker is busy with a first job, so later submissions queue up together."""
    gate = threading.Event()
    rec = Recorder(gate)
    b = Batcher(rec, tokens, policy=policy, max_wait_ms=0, **kw)
    first = b.submit(["warm up"], ["en"], ["fr"])
    assert rec.entered.wait(5)
    return b, rec, gate, first


def test_mixed_policy_puts_every_direction_in_one_batch_and_keeps_each_request_in_order():
    b, rec, gate, first = held_batcher()
    futs = [b.submit([f"a{i}", f"b{i}"], [s, s], [t, t]) for i, (s, t) in
            enumerate([("en", "fr"), ("fr", "de"), ("zh", "ha"), ("en", "fr")])]
    gate.set()
    assert first.result(5) == ["en>fr:WARM UP"]
    assert [f.result(5) for f in futs] == [[f"{s}>{t}:A{i}", f"{s}>{t}:B{i}"] for i, (s, t) in
                                           enumerate([("en", "fr"), ("fr", "de"), ("zh", "ha"), ("en", "fr")])]
    b.close()
    assert len(rec.batches) == 2  # the warm-up, then all four requests (three directions) together
    assert {(s, t) for _, s, t in rec.batches[1]} == {("en", "fr"), ("fr", "de"), ("zh", "ha")}


def test_direction_policy_never_mixes_directions_and_keeps_the_rest_queued_in_order():
    b, rec, gate, _ = held_batcher("direction")
    pairs = [("en", "fr"), ("fr", "de"), ("en", "fr"), ("zh", "ha"), ("fr", "de")]
    futs = [b.submit([f"x{i}"], [s], [t]) for i, (s, t) in enumerate(pairs)]
    gate.set()
    assert [f.result(5) for f in futs] == [[f"{s}>{t}:X{i}"] for i, (s, t) in enumerate(pairs)]
    b.close()
    later = [[(x, s, t) for x, s, t in batch] for batch in rec.batches[1:]]
    assert [len({(s, t) for _, s, t in batch}) for batch in later] == [1, 1, 1]
    assert [[x for x, _, _ in batch] for batch in later] == [["x0", "x2"], ["x1", "x4"], ["x3"]]


def test_single_policy_asks_for_batch_size_one():
    b, rec, gate, _ = held_batcher("single")
    futs = [b.submit([f"x{i}", f"y{i}"], ["en", "en"], ["fr", "fr"]) for i in range(3)]
    gate.set()
    assert futs[2].result(5) == ["en>fr:X2", "en>fr:Y2"]
    b.close()
    assert set(rec.batch_sizes) == {1} and len(rec.batches) == 4  # one job per call, one segment per generate


def test_token_and_segment_budgets_cut_batches():
    b, rec, gate, _ = held_batcher(max_batch_tokens=12, max_batch_segments=64)
    futs = [b.submit(["one two three four"], ["en"], ["fr"]) for _ in range(5)]  # 6 tokens each
    gate.set()
    [f.result(5) for f in futs]
    b.close()
    assert [len(batch) for batch in rec.batches[1:]] == [2, 2, 1]
    b2, rec2, gate2, _ = held_batcher(max_batch_segments=3)
    futs = [b2.submit(["a"], ["en"], ["fr"]) for _ in range(7)]
    gate2.set()
    [f.result(5) for f in futs]
    b2.close()
    assert [len(batch) for batch in rec2.batches[1:]] == [3, 3, 1]


def test_a_full_queue_refuses_and_closing_drains_everything_queued():
    b, rec, gate, first = held_batcher(max_queue=3)
    a = b.submit(["1", "2"], ["en", "en"], ["fr", "fr"])
    with pytest.raises(QueueFull, match="2 of 3 segments"):
        b.submit(["3", "4"], ["en", "en"], ["fr", "fr"])
    c = b.submit(["3"], ["en"], ["de"])
    assert b.queue_depth == 3
    closer = threading.Thread(target=b.close)
    closer.start()
    time.sleep(0.05)
    with pytest.raises(ShuttingDown):
        b.submit(["late"], ["en"], ["fr"])
    gate.set()
    closer.join(5)
    assert not b.alive
    assert a.result(0) == ["en>fr:1", "en>fr:2"] and c.result(0) == ["en>de:3"] and first.done()


def test_waits_for_company_up_to_max_wait_ms():
    rec = Recorder()
    b = Batcher(rec, tokens, max_wait_ms=300)
    f1 = b.submit(["a"], ["en"], ["fr"])
    time.sleep(0.05)
    f2 = b.submit(["b"], ["de"], ["zh"])
    assert f1.result(5) == ["en>fr:A"] and f2.result(5) == ["de>zh:B"]
    b.close()
    assert len(rec.batches) == 1  # the second arrived within the wait: one batch


def test_cancelled_jobs_are_skipped_and_errors_reach_every_client_of_the_batch():
    b, rec, gate, _ = held_batcher()
    gone = b.submit(["gone"], ["en"], ["fr"])
    kept = b.submit(["kept"], ["en"], ["fr"])
    assert gone.cancel()  # a client that left before its batch started
    gate.set()
    assert kept.result(5) == ["en>fr:KEPT"]
    b.close()
    assert all("gone" not in [x for x, _, _ in batch] for batch in rec.batches)

    calls = []

    def flaky(texts, src, tgt, bs):
        calls.append(list(texts))
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory")
        return list(texts)

    b = Batcher(flaky, tokens, max_wait_ms=0)
    with pytest.raises(RuntimeError, match="out of memory"):
        b.submit(["x"], ["en"], ["fr"]).result(5)
    assert b.submit(["y"], ["en"], ["fr"]).result(5) == ["y"]  # the worker lived on
    b.close()


def test_empty_request_and_bad_settings():
    b = Batcher(Recorder(), tokens)
    assert b.submit([], [], []).result(1) == []
    with pytest.raises(ValueError, match="same length"):
        b.submit(["a"], ["en"], [])
    b.close()
    for kw, msg in (({"policy": "fastest"}, "policy"), ({"max_queue": 0}, "max_queue"),
                    ({"max_wait_ms": -1}, "max_wait_ms")):
        with pytest.raises(ValueError, match=msg):
            Batcher(Recorder(), tokens, **kw)


def test_freed_memory_is_handed_back_at_most_every_trim_interval():
    calls = []
    b = Batcher(Recorder(), tokens, max_wait_ms=0, trim_interval_s=60, trim=lambda: calls.append(1))
    b._last_trim -= 120  # as if the last trim were long ago: the first batch trims
    for i in range(5):
        assert b.submit([f"s{i}"], ["en"], ["fr"]).result(5) == [f"en>fr:S{i}"]
    assert len(calls) == 1  # five batches within the interval, one trim
    b._last_trim -= 120  # the interval has passed
    b.submit(["later"], ["en"], ["de"]).result(5)
    b.close()
    assert len(calls) == 2 and b.trims == 2
    never = Batcher(Recorder(), tokens, max_wait_ms=0, trim_interval_s=0, trim=lambda: calls.append(0))
    never._last_trim -= 120
    never.submit(["x"], ["en"], ["fr"]).result(5)
    never.close()
    assert len(calls) == 2 and never.trims == 0
    with pytest.raises(ValueError, match="trim_interval_s"):
        Batcher(Recorder(), tokens, trim_interval_s=-1)


def test_release_free_memory_runs_on_this_platform():
    import platform

    from lslo.serving.memory import release_free_memory, rss_bytes

    ok = release_free_memory()
    assert ok is (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
    rss = rss_bytes()
    assert rss is None or rss > 10 * 2**20  # a Python process with torch holds more than 10 MiB
