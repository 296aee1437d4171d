"""Beam-search speed with lslo's beam-search cache against transformers' own, side by side.

transformers reorders the cross-attention keys/values of every layer by beam after every step;
``lslo.tuner.beam_cache.BeamSearchCache`` leaves them in place (a beam never leaves its sentence,
and a sentence's beams share them). This times ``lslo.tuner.translation.translate`` (the path of
``lslo translate``, ``lslo evaluate`` and ``lslo serve``) over the same mixed-direction list both
ways, alternating, and checks that the translations are identical.

    python benchmarks/generation.py --json benchmarks/results/generation.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
from _machine import machine  # noqa: E402
from _report import emit  # noqa: E402
from _traffic import traffic  # noqa: E402

from lslo.data import load_corpus  # noqa: E402
from lslo.training import load_run  # noqa: E402
from lslo.tuner import translation  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/testbed-wesnoth-lang12.yaml")
    p.add_argument("--segments", type=int, default=64, help="segments in the mixed-direction list")
    p.add_argument("--beams", default="1,2,4", help="comma-separated beam sizes")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=4096, help="padded source tokens per batch (as lslo serve)")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per setting (median reported)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    cfg, model = load_run(args.config, checkpoint="none")
    codes = list(cfg.lslo.codes)
    corpus = load_corpus(cfg.data.path, cfg.data.test_split, codes)
    reqs = traffic({c: corpus.texts[c] for c in codes}, codes, args.segments, args.seed)
    texts, src, tgt = ([r[k] for r in reqs] for k in ("q", "source", "target"))
    lengths = [len(x) for x in model.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    rows = []
    for beams in (int(b) for b in args.beams.split(",")):
        gen = {"num_beams": beams, "max_new_tokens": args.max_new_tokens, "length_penalty": cfg.eval.length_penalty}
        times: dict[str, list[float]] = {"lslo": [], "transformers": []}
        outs: dict[str, list[str]] = {}
        translation.translate(model, texts[:2], src[:2], tgt[:2], 2, None, **gen)  # warm-up
        for _ in range(args.repeats):
            for name, flag in (("lslo", True), ("transformers", False)):
                t0 = time.perf_counter()
                outs[name] = translation.translate(model, texts, src, tgt, args.batch_size, args.max_tokens,
                                                   engine="transformers", beam_cache=flag, **gen)
                times[name].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        row = {"beams": beams, "lslo_cache_s": round(med["lslo"], 2), "transformers_cache_s": round(med["transformers"], 2),
               "lslo_cache_segments_per_s": round(args.segments / med["lslo"], 2),
               "transformers_cache_segments_per_s": round(args.segments / med["transformers"], 2),
               "speedup": round(med["transformers"] / med["lslo"], 2),
               "identical_translations": outs["lslo"] == outs["transformers"]}
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
    emit({
        "benchmark": "generation", "command": "python benchmarks/generation.py " + " ".join(argv or sys.argv[1:]),
        "machine": machine(threads=args.threads),
        "model": {"config": args.config, "base_parameters": model.base_parameter_count()},
        "settings": {"segments": args.segments, "directions": len(set(zip(src, tgt))),
                     "mean_source_tokens": round(sum(lengths) / len(lengths), 1), "max_source_tokens": max(lengths),
                     "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size,
                     "max_tokens": args.max_tokens, "repeats": args.repeats},
        "results": rows,
    }, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
