"""Serving against what a user would deploy instead: one CTranslate2 translator per merged direction.

    python benchmarks/serve_pool.py [--directions 4,12] [--clients 16,64] [--requests 128,256]
                                    [--json benchmarks/results/serve_pool.json]

A user who wants CTranslate2's speed with fine-tuned weights merges each direction (``lslo merge``),
converts each merged model with CTranslate2's ``TransformersConverter`` and runs one translator per
direction (built first, in a process of its own). Both sides here sit behind the same HTTP front (``lslo.serving``'s app and batcher, on
loopback, uvicorn + httpx) and get the same traffic: one Wesnoth devtest segment per request, in a
random direction among K (seeded), sent by C concurrent clients back to back.

- ``lslo``: ``lslo serve``'s service: one LSLo model for every direction, mixed-direction batches,
  lslo's beam search;
- ``ct2-pool``: K CTranslate2 float32 translators (one per merged direction), batches of one
  direction (the batcher's ``direction`` policy), each batch on its direction's translator.

Both use CTranslate2's stopping rule (``early_stopping=True``), the same beam, length limit and
length penalty; the LSLo adapters get small random values (``--adapter-std``) so that every merged
direction differs. Each side runs in its own process, which loads only what it serves (the LSLo
model, or the tokenizer and the K translators): throughput, p50/p95 latency, and the process's peak
resident memory (weights, translators, serving state and the HTTP clients together).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

SIDES = ("lslo", "ct2-pool")  # "build" (the pool's models) runs first, in its own process


def directions(codes: list[str], k: int, seed: int) -> list[tuple[str, str]]:
    """``k`` of the config's directions, seeded (all of them when k is their number)."""
    pairs = [(s, t) for s in codes for t in codes if s != t]
    random.Random(seed).shuffle(pairs)
    return sorted(pairs[:k])


def requests_over(corpus: dict[str, list[str]], dirs: list[tuple[str, str]], n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    size = len(next(iter(corpus.values())))
    return [{"q": corpus[s][rng.randrange(size)], "source": s, "target": t}
            for s, t in (rng.choice(dirs) for _ in range(n))]


def build_pool(args: argparse.Namespace) -> dict:
    """Merge each of the K directions (``save_merged``, what ``lslo merge`` writes) and convert it
    with CTranslate2's converter: the pool's models, built once in a process of their own."""
    from engines import convert_ct2
    from serve import randomize

    from lslo.training import load_run

    cfg, model = load_run(args.config, checkpoint="none")
    randomize(model, args.adapter_std, args.seed)
    work = Path(args.work_dir) / f"k{args.k}"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for s, t in directions(list(cfg.lslo.codes), args.k, args.seed):
        merged = work / f"merged-{s}-{t}"
        shutil.rmtree(merged, ignore_errors=True)
        model.save_merged(s, t, merged)
        convert_ct2(merged, work / f"ct2-{s}-{t}")
        shutil.rmtree(merged, ignore_errors=True)
    return {"side": "build", "k": args.k, "build_s": round(time.perf_counter() - t0, 1)}


def pool_service(cfg, codes, dirs, gen: dict, work: Path, opts: dict):
    """K CTranslate2 translators, one per merged direction, behind lslo's service with one-direction
    batches; only the translators and the tokenizer are loaded (no LSLo model)."""
    import ctranslate2
    from engines import ct2_translate
    from transformers import AutoTokenizer

    from lslo.serving.app import TranslationService

    tok = AutoTokenizer.from_pretrained(str(cfg.model))
    translators = {(s, t): ctranslate2.Translator(str(work / f"ct2-{s}-{t}"), device="cpu", compute_type="float32",
                                                  inter_threads=1, intra_threads=gen["threads"]) for s, t in dirs}

    def translate(texts, src, tgt, batch_size):
        (direction,) = set(zip(src, tgt))  # the direction policy: one direction per batch
        return ct2_translate(translators[direction], tok, texts, src, tgt, beam=gen["num_beams"],
                             max_new_tokens=gen["max_new_tokens"], length_penalty=gen["length_penalty"],
                             batch_size=batch_size)

    def count(text):
        return len(tok(text, add_special_tokens=False)["input_ids"]) + 2

    return TranslationService(translate, count, codes, policy="direction", **opts), len(translators)


def side(args: argparse.Namespace) -> dict:
    """One side, one K, every client count: the server in this process, the clients too."""
    import torch
    from serve import drive, randomize

    from lslo.data import load_corpus
    from lslo.serving import service_for_model
    from lslo.serving.app import create_app
    from lslo.serving.server import BackgroundServer
    from lslo.training import RunConfig, load_run

    torch.set_num_threads(args.threads)
    cfg = RunConfig.load(args.config)
    codes = list(cfg.lslo.codes)
    dirs = directions(codes, args.k, args.seed)
    test = load_corpus(cfg.data.path, cfg.data.test_split, codes)
    corpus = {c: test.texts[c][:args.segments] for c in codes}
    gen = {"num_beams": args.beam, "max_new_tokens": args.max_new_tokens, "length_penalty": cfg.eval.length_penalty,
           "early_stopping": True}
    opts = {"max_wait_ms": 5.0, "max_queue": 100_000}
    t0 = time.perf_counter()
    if args.side == "lslo":
        cfg, model = load_run(args.config, checkpoint="none")
        randomize(model, args.adapter_std, args.seed)
        service, loaded = service_for_model(model, codes, gen, policy="mixed", **opts), 1
    else:
        service, loaded = pool_service(cfg, codes, dirs, {**gen, "threads": args.threads},
                                       Path(args.work_dir) / f"k{args.k}", opts)
    load_s = round(time.perf_counter() - t0, 1)
    rows, answers = [], {}
    with BackgroundServer(create_app(service)) as srv:
        for c, n in zip(args.clients, args.requests):
            res = asyncio.run(drive(srv.url, requests_over(corpus, dirs, n, args.seed + c), c, args.max_seconds))
            answers[c] = res.pop("answers")
            res.pop("detected")
            rows.append(res)
            print(f"serve_pool.py: K={args.k} {args.side} @{c}: {res['segments_per_s']} seg/s, "
                  f"p95 {res['p95_ms']} ms, errors {res['errors']}", file=sys.stderr, flush=True)
    return {"side": args.side, "k": args.k, "models_loaded": loaded, "load_s": load_s, "results": rows,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "answers": {str(c): a for c, a in answers.items()}}


def run_side(args, name: str, k: int) -> dict:
    out = Path(args.work_dir) / f"{name}-k{k}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--side", name, "--k", str(k), "--result", str(out),
           "--config", args.config, "--clients", ",".join(map(str, args.clients)),
           "--requests", ",".join(map(str, args.requests)), "--beam", str(args.beam),
           "--max-new-tokens", str(args.max_new_tokens), "--segments", str(args.segments),
           "--adapter-std", str(args.adapter_std), "--threads", str(args.threads), "--seed", str(args.seed),
           "--max-seconds", str(args.max_seconds), "--work-dir", args.work_dir]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not out.is_file():
        raise SystemExit(f"serve_pool.py: {name} K={k} failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}")
    sys.stderr.write("".join(x + "\n" for x in proc.stderr.splitlines() if x.startswith("serve_pool.py:")))
    return json.loads(out.read_text(encoding="utf-8"))


def compare(lslo: dict, pool: dict) -> dict:
    """Throughput and memory ratios, lslo / pool, per client count; and how often both sides
    returned the same translation."""
    out = {"memory_lslo/pool": round(lslo["peak_rss_mb"] / pool["peak_rss_mb"], 3)}
    for a, b in zip(lslo["results"], pool["results"]):
        c = a["clients"]
        out[f"throughput_lslo/pool@{c}"] = round(a["segments_per_s"] / max(b["segments_per_s"], 1e-9), 3)
        x, y = lslo["answers"][str(c)], pool["answers"][str(c)]
        common = set(x) & set(y)
        out[f"identical@{c}"] = round(sum(x[i] == y[i] for i in common) / max(1, len(common)), 3)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "testbed-wesnoth-lang12.yaml"))
    p.add_argument("--directions", default="4,12", help="K values: directions in the traffic (and pool size)")
    p.add_argument("--clients", default="16,64")
    p.add_argument("--requests", default="128,256", help="requests per client count (same order)")
    p.add_argument("--max-seconds", type=float, default=180.0)
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--segments", type=int, default=200, help="devtest segments per language in the pool")
    p.add_argument("--adapter-std", type=float, default=0.02)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", default=str(ROOT / "runs" / "serve_pool"))
    p.add_argument("--json")
    p.add_argument("--side", choices=(*SIDES, "build"), help=argparse.SUPPRESS)
    p.add_argument("--k", type=int, help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        args.clients = [int(x) for x in str(args.clients).split(",")]
        args.requests = [int(x) for x in str(args.requests).split(",")]
        ks = [int(x) for x in args.directions.split(",")]
    except ValueError as e:
        raise SystemExit(f"serve_pool.py: error: --clients/--requests/--directions: comma-separated integers ({e})") from None
    if len(args.clients) != len(args.requests):
        raise SystemExit("serve_pool.py: error: --requests needs one count per --clients value")
    Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    if args.side:
        res = build_pool(args) if args.side == "build" else side(args)
        Path(args.result).write_text(json.dumps(res), encoding="utf-8")
        return 0
    from _machine import machine
    from _report import emit

    runs = {}
    for k in ks:
        built = run_side(args, "build", k)
        pair = {name: run_side(args, name, k) for name in SIDES}
        runs[str(k)] = {"ratios": compare(pair["lslo"], pair["ct2-pool"]), "pool_build_s": built["build_s"],
                        **{n: {f: v for f, v in r.items() if f != "answers"} for n, r in pair.items()}}
    emit({"benchmark": "serve_pool", "command": "python benchmarks/serve_pool.py " + " ".join(
              argv if argv is not None else sys.argv[1:]),
          "machine": machine(threads=args.threads, ctranslate2=True),
          "settings": {"beam": args.beam, "max_new_tokens": args.max_new_tokens, "early_stopping": True,
                       "adapter_std": args.adapter_std, "clients": args.clients, "requests": args.requests,
                       "traffic": "one devtest segment per request, a random direction of K, seeded"},
          "runs": runs}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
