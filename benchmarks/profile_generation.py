"""Where lslo's beam search spends its time: a torch.profiler breakdown of ``LSLoModel.translate``.

    python benchmarks/profile_generation.py [--engine lslo|transformers] [--segments 64] [--beam 4]
                                            [--json benchmarks/results/profile_generation.json]

The same mixed-direction segments as ``benchmarks/engines.py`` (its ``pick``), on the testbed base
with LSLo adapters on the paper's positions (unmerged). Regions are labelled with
``torch.profiler.record_function`` around the pieces of one ``generate`` call and reported as
inclusive CPU time and share of the wall time:

- ``encoder``: the encoder forward (once per batch; lslo's engine runs its own, without the padding);
- ``decoder``: every decoder step's forward without the output projection, of which ``lslo
  adapters`` (the routed gather, memoised per routing without autograd, + two ``bmm`` of every adapted projection) and ``attention``
  (aten's attention kernels: softmax, scaled-dot-product, the q·k and ·v products) are parts;
- ``lm head``: the output projection to the vocabulary;
- ``logits processors``: the suppressed tokens (transformers' processors, or the lean search's);
- ``cache reorder``: the beam reorder of the self-attention cache after every beam step;
- ``other aten ops``: aten time outside those regions (beam bookkeeping: topk, gather, index ops);
- ``python and framework``: the wall time no aten op accounts for (Python in ``generate``, the
  per-step dispatch, module calls).

Prints one JSON (and writes ``--json``): the wall time, the steps, and each region's seconds and share.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

ATTENTION_OPS = ("aten::_softmax", "aten::softmax", "aten::scaled_dot_product_attention",
                 "aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_scaled_dot_product_attention_math")


def labelled(name: str, fn):
    from torch.profiler import record_function

    @functools.wraps(fn)
    def wrap(*a, **k):
        with record_function(name):
            return fn(*a, **k)

    return wrap


@contextlib.contextmanager
def patched(model, engine: str = "lslo"):
    """Label the regions (restored afterwards)."""
    from transformers import LogitsProcessorList
    from transformers.cache_utils import EncoderDecoderCache

    from lslo.tuner import layer

    saved = []

    def put(obj, attr, name):
        saved.append((obj, attr, getattr(obj, attr)))
        setattr(obj, attr, labelled(name, getattr(obj, attr)))

    base = model.base
    put(base.lm_head, "forward", "lm head")
    if engine == "lslo":  # the lean search: its step function holds the decoder and the lm head
        from lslo.decoding import m2m100, search

        put(m2m100, "encode", "encoder")  # its own encoder, without the padding
        put(m2m100.M2M100Stepper, "_forward", "decoder")
        put(m2m100.M2M100Stepper, "_gather", "cache reorder")
        put(search, "_process", "logits processors")
    else:
        put(base.get_encoder(), "forward", "encoder")
        put(base.get_decoder(), "forward", "decoder")
    put(layer, "routed_lora", "lslo adapters")  # with autograd
    put(layer, "apply_rows", "lslo adapters")  # without: the memoised rows (their gather) and two bmm
    put(layer.LSLoLinear, "_rows_for", "lslo adapters")
    put(LogitsProcessorList, "__call__", "logits processors")
    put(EncoderDecoderCache, "reorder_cache", "cache reorder")
    from lslo.tuner.beam_cache import BeamSearchCache

    if "reorder_cache" in vars(BeamSearchCache):  # lslo's own (self-attention only) override
        put(BeamSearchCache, "reorder_cache", "cache reorder")
    try:
        yield
    finally:
        for obj, attr, old in reversed(saved):
            setattr(obj, attr, old)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "testbed-wesnoth-lang12.yaml"))
    p.add_argument("--engine", choices=["lslo", "transformers"], default="lslo",
                   help="lslo's lean beam search or transformers' generate (with lslo's beam cache)")
    p.add_argument("--segments", type=int, default=64)
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    args = p.parse_args(argv)
    import torch
    from _machine import machine
    from _report import emit
    from engines import pick
    from torch.profiler import ProfilerActivity, profile

    from lslo.data import load_corpus
    from lslo.training import load_run

    torch.set_num_threads(args.threads)
    cfg, model = load_run(args.config, checkpoint="none", device="cpu")
    codes = list(cfg.lslo.codes)
    items = pick(load_corpus(cfg.data.path, cfg.data.test_split, codes), codes, args.segments, args.seed)
    texts, src, tgt = ([w[k] for w in items] for k in ("text", "src", "tgt"))
    gen = {"num_beams": args.beam, "max_new_tokens": args.max_new_tokens, "length_penalty": cfg.eval.length_penalty,
           "engine": args.engine}
    model.translate(texts[:2], src[:2], tgt[:2], **gen)  # warm-up
    t0 = time.perf_counter()
    model.translate(texts, src, tgt, batch_size=args.batch_size, **gen)
    plain = time.perf_counter() - t0
    # routed_lora is a module global of lslo.tuner.layer looked up at every call: patching it labels it
    with patched(model, args.engine), profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        model.translate(texts, src, tgt, batch_size=args.batch_size, **gen)
        wall = time.perf_counter() - t0
    events = prof.key_averages()
    incl = {e.key: e.cpu_time_total / 1e6 for e in events}
    counts = {e.key: e.count for e in events}
    aten_self = sum(e.self_cpu_time_total for e in events if e.key.startswith("aten::")) / 1e6
    attention = sum(e.self_cpu_time_total for e in events if e.key in ATTENTION_OPS) / 1e6
    # aten time inside the labelled regions (their inclusive time less the Python inside them is not
    # separable here; "other aten ops" is the aten self time outside encoder/decoder/lm head/processors/cache)
    decoder = incl.get("decoder", 0.0) - (incl.get("lm head", 0.0) if args.engine == "lslo" else 0.0)
    labelled_total = incl.get("encoder", 0.0) + decoder + sum(
        incl.get(k, 0.0) for k in ("lm head", "logits processors", "cache reorder"))
    regions = {
        "encoder": incl.get("encoder", 0.0),
        "decoder": decoder,
        "  of which lslo adapters": incl.get("lslo adapters", 0.0),
        "  of which attention kernels": attention,
        "lm head": incl.get("lm head", 0.0),
        "logits processors": incl.get("logits processors", 0.0),
        "cache reorder": incl.get("cache reorder", 0.0),
        "outside the regions (beam bookkeeping, generate's Python)": max(0.0, wall - labelled_total),
        "python and framework (wall - aten self time)": max(0.0, wall - aten_self),
    }
    doc = {"benchmark": "profile_generation",
           "command": "python benchmarks/profile_generation.py " + " ".join(argv or sys.argv[1:]),
           "machine": machine(threads=args.threads),
           "settings": {"engine": args.engine, "segments": args.segments, "beam": args.beam, "max_new_tokens": args.max_new_tokens,
                        "batch_size": args.batch_size},
           "wall_s_unprofiled": round(plain, 3), "wall_s_profiled": round(wall, 3),
           "decoder_calls": counts.get("decoder", 0), "aten_self_s": round(aten_self, 3),
           "regions": {k: {"seconds": round(v, 3), "share_of_wall": round(v / wall, 3),
                           **({"calls": counts[k.strip()]} if k.strip() in counts else {})}
                       for k, v in regions.items()}}
    emit(doc, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
