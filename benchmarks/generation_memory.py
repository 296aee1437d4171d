"""Generation memory at a real shape: lslo's lean search against transformers' path, allocated and resident.

    python benchmarks/generation_memory.py [--batch 32] [--beam 5] [--new-tokens 200]
                                           [--json benchmarks/results/generation_memory.json]

The random-weight M2M-100 418M of ``benchmarks/engines.py --shape m2m100_418M`` (the published
config.json shape and its 128,112-token vocabulary; NLLB-600M's layers have the same shape, with a
twice larger vocabulary), LSLo on the paper's positions at their zero init, one ``translate`` batch
of ``--batch`` Wesnoth devtest sentences mixing directions, beam ``--beam``, at most
``--new-tokens`` new tokens (random weights seldom end a sentence early, so most run to the limit:
the cache's worst case). Each engine runs in its own process:

- ``lslo``: ``LSLoModel.generate`` with lslo's lean search (the default);
- ``transformers``: the same model through transformers' ``generate`` (``engine="transformers"``,
  with lslo's beam cache);
- ``hf-base``: transformers' ``generate`` on the plain base (its own cache).

Two numbers per engine, each above the level just before ``generate``:

- ``allocated``: the peak of glibc's in-use heap bytes (``mallinfo2``: arena + mmapped chunks, which
  is where torch's CPU allocator takes its blocks), sampled every millisecond by a thread;
- ``resident``: the growth of the process's peak resident set (``ru_maxrss``), pages touched.

lslo also reports its self-attention cache's allocated bytes (``cache_bytes``) at the end, against
what allocating it for the length limit up front would have cost.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

ENGINES = ("lslo", "transformers", "hf-base")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_in_use() -> int:
    """Bytes glibc has handed out and not taken back: in-use arena bytes plus mmapped chunks."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


class PeakSampler:
    """The peak of :func:`heap_in_use` while the ``with`` block runs, sampled every ``period`` s."""

    def __init__(self, period: float = 0.001) -> None:
        self.period, self.peak, self._stop = period, 0, threading.Event()

    def __enter__(self) -> PeakSampler:
        self.start = heap_in_use()
        self.peak = self.start
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, heap_in_use())
            time.sleep(self.period)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, heap_in_use())


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(engine: str, args: argparse.Namespace) -> dict:
    import torch
    from engines import pick
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from lslo.data import load_corpus
    from lslo.decoding import m2m100 as stepper_module
    from lslo.training.config import RunConfig
    from lslo.tuner import LSLoConfig, LSLoModel

    torch.set_num_threads(args.threads)
    cfg = RunConfig.load(args.config)
    base = AutoModelForSeq2SeqLM.from_pretrained(args.base, dtype=torch.float32)
    layout = cfg.lslo.to_dict()
    if engine == "hf-base":
        layout.update(encoder_positions=[], decoder_positions=[])
    model = LSLoModel(base, LSLoConfig.from_dict(layout), AutoTokenizer.from_pretrained(args.base)).eval()
    codes = list(cfg.lslo.codes)
    items = pick(load_corpus(cfg.data.path, cfg.data.test_split, codes), codes, args.batch, args.seed)
    texts, src, tgt = [w["text"] for w in items], [w["src"] for w in items], [w["tgt"] for w in items]
    kw = dict(num_beams=args.beam, max_new_tokens=args.new_tokens, engine="lslo" if engine == "lslo" else "transformers",
              beam_cache=engine == "transformers")
    caches = []
    real_init = stepper_module.M2M100Stepper.__init__

    def remember(self, *a, **k):
        real_init(self, *a, **k)
        caches.append(self)

    stepper_module.M2M100Stepper.__init__ = remember
    model.translate(texts[:2], src[:2], tgt[:2], batch_size=2, **{**kw, "max_new_tokens": 3})  # lazy init
    caches.clear()
    rss0 = rss_mb()
    t0 = time.perf_counter()
    with PeakSampler() as sampler:
        outs = model.translate(texts, src, tgt, batch_size=args.batch, **kw)
    seconds = time.perf_counter() - t0
    res = {"engine": engine, "seconds": round(seconds, 1), "translations": len(outs),
           "allocated_bytes": sampler.peak - sampler.start, "resident_growth_mb": round(rss_mb() - rss0, 1),
           "peak_rss_mb": round(rss_mb(), 1), "engine_used": list(model.last_engine)}
    if caches:
        st = caches[-1]
        per_position = st.max_rows * st.heads * st.head_dim * 4 * (2 * len(st.layers) + 1)
        res["cache_bytes"] = st.cache_bytes
        res["cache_bytes_if_sized_for_the_limit"] = per_position * st.max_length
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "testbed-wesnoth-lang12.yaml"))
    p.add_argument("--base", default=str(ROOT / "runs" / "engines" / "m2m100_418M" / "base"),
                   help="the random-weight M2M-100 418M that benchmarks/engines.py --shape m2m100_418M builds "
                   "(built here when missing)")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--new-tokens", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        Path(args.result).write_text(json.dumps(worker(args.worker, args)), encoding="utf-8")
        return 0
    engines = [e for e in args.engines.split(",") if e]
    if not engines or any(e not in ENGINES for e in engines):
        raise SystemExit(f"generation_memory.py: error: --engines: expected some of {', '.join(ENGINES)}, "
                         f"got {args.engines!r}")
    from _machine import machine
    from _report import emit

    if not (Path(args.base) / "config.json").is_file():
        from engines import build_418m

        from lslo.training.config import RunConfig

        build_418m(Path(args.base), Path(RunConfig.load(args.config).data.path), args.seed)
    rows = {}
    own = ["--config", args.config, "--base", args.base, "--batch", str(args.batch), "--beam", str(args.beam),
           "--new-tokens", str(args.new_tokens), "--threads", str(args.threads), "--seed", str(args.seed)]
    for e in engines:
        out = Path(f"/tmp/lslo-genmem-{os.getpid()}-{e}.json")
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *own, "--worker", e,
                               "--result", str(out)], capture_output=True, text=True, env=env)
        if proc.returncode != 0 or not out.is_file():
            raise SystemExit(f"generation_memory.py: {e} failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}")
        rows[e] = json.loads(out.read_text(encoding="utf-8"))
        out.unlink()
        print(f"generation_memory.py: {e}: {rows[e]['allocated_bytes'] / 2**20:.0f} MiB allocated, "
              f"+{rows[e]['resident_growth_mb']:.0f} MB resident, {rows[e]['seconds']} s", file=sys.stderr, flush=True)
    ratios = {f"lslo/{e}": {"allocated": round(rows["lslo"]["allocated_bytes"] / max(1, rows[e]["allocated_bytes"]), 3),
                            "resident": round(rows["lslo"]["resident_growth_mb"] / max(0.1, rows[e]["resident_growth_mb"]), 3)}
              for e in rows if e != "lslo" and "lslo" in rows}
    emit({"benchmark": "generation_memory",
          "command": "python benchmarks/generation_memory.py " + " ".join(argv if argv is not None else sys.argv[1:]),
          "machine": machine(threads=args.threads),
          "settings": {"shape": "m2m100_418M", "base": args.base, "batch": args.batch, "beam": args.beam,
                       "new_tokens": args.new_tokens, "sentences": "Wesnoth devtest, mixed directions (seeded)",
                       "weights": "random (sentences run to the limit)",
                       "allocated": "peak of glibc mallinfo2 in-use bytes (arena + mmapped) above the level before "
                                    "generate, sampled every 1 ms",
                       "resident": "growth of ru_maxrss during generate"},
          "results": rows, "ratios": ratios}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
