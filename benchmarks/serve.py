"""Serving benchmark: dynamic mixed-direction batching against batch size 1, per-direction
batches, and PEFT's mixed-adapter inference with one LoRA per direction; then a soak.

Everything runs on loopback through real HTTP (uvicorn + httpx). Each request is one segment
of the Wesnoth devtest in a random direction over all N*(N-1) directions of the config's
languages (132 for the testbed's 12), sent by C concurrent clients back to back.

Servers compared (same model weights, same beam search settings, same traffic):

- ``mixed``: lslo serve's default, one beam search over whatever directions are queued;
- ``single``: the same server with batch size 1 (one segment per beam search);
- ``direction``: batches hold one direction only (what switching per-direction adapters gives);
- ``peft``: a PeftModel holding one LoRA per direction (each exported from the LSLo model with
  ``lslo.tuner.peft_export``, so it computes the same function), served by the same batcher with
  mixed batches through PEFT's ``generate(adapter_names=...)``.
- ``peft-cache``: the same PeftModel with lslo's beam-search cache (``lslo.tuner.beam_cache``: no
  copy of the cross-attention keys/values per step), which lslo's own generate uses; ``mixed`` vs
  ``peft-cache`` isolates routing against PEFT's per-adapter loop, ``mixed`` vs ``peft`` is what a
  user of PEFT as shipped gets;
- ``mixed-hf-cache``: ``mixed`` with transformers' own cache (opt-in: ``--modes``).
- ``mixed-auto``: ``mixed`` with every request's source sent as ``auto``: the server detects each
  one's language (lingua, restricted to the config's languages) before batching, so the ratio
  ``mixed-auto/mixed`` is the price of detection, and ``detection_accuracy`` how often the
  detected language was the segment's own.

The LSLo adapters get small random values (``--adapter-std``) so that every direction's adapter
does real work and the PEFT copy is checked against LSLo (``agreement_with_mixed``: the share of
requests whose translation is identical).

The soak runs ``lslo serve`` itself as a subprocess (the config's base, as a user starts it),
with mixed traffic for ``--soak-minutes``, and records the error rate and its RSS over time.

    python benchmarks/serve.py --modes mixed,mixed-auto,single,direction,peft,peft-cache \
        --json benchmarks/results/serve.json                                  # ~35 min on 2 cores
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import httpx  # noqa: E402
import torch  # noqa: E402
from _machine import machine  # noqa: E402
from _report import emit  # noqa: E402
from _traffic import traffic  # noqa: E402

from lslo.data import load_corpus  # noqa: E402
from lslo.serving import service_for_model  # noqa: E402
from lslo.serving.app import TranslationService, create_app  # noqa: E402
from lslo.serving.server import BackgroundServer, free_port  # noqa: E402
from lslo.training import load_run  # noqa: E402
from lslo.tuner import translation  # noqa: E402
from lslo.tuner.beam_cache import add_beam_search_cache  # noqa: E402
from lslo.tuner.languages import generation_prompt  # noqa: E402

MODES = ("mixed", "single", "direction", "peft", "peft-cache", "mixed-hf-cache", "mixed-auto")


def randomize(model, std: float, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.lslo_modules().values():
            m.lora_BT.copy_(torch.randn(m.lora_BT.shape, generator=g) * std)


class PeftTranslator:
    """A PeftModel with one LoRA per direction, behind the interface ``translation.translate`` uses."""

    def __init__(self, lslo_model, base_path: str, directions: list[tuple[str, str]], beam_cache: bool = False):
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
        from transformers import AutoModelForSeq2SeqLM

        from lslo.tuner.peft_export import peft_lora_for_direction

        base = AutoModelForSeq2SeqLM.from_pretrained(base_path, dtype=torch.float32).eval()  # as lslo loads it
        self.peft = None
        for s, t in directions:
            state, fields = peft_lora_for_direction(lslo_model, s, t)
            cfg = LoraConfig(r=fields["r"], lora_alpha=fields["lora_alpha"], rank_pattern=fields["rank_pattern"],
                             alpha_pattern=fields["alpha_pattern"], target_modules=fields["target_modules"],
                             lora_dropout=0.0, bias="none")
            name = f"{s}-{t}"
            if self.peft is None:
                self.peft = get_peft_model(base, cfg, adapter_name=name)
            else:
                self.peft.add_adapter(name, cfg)
            set_peft_model_state_dict(self.peft, {k: v for k, v in state.items()}, adapter_name=name)
        self.peft.eval()
        self.tokenizer = lslo_model.tokenizer
        self.tokens = lslo_model.language_tokens()
        self.base = self.peft
        self.training = False
        self.suppress = lslo_model._suppressed()
        self.beam_cache = beam_cache  # lslo's BeamSearchCache (no cross-attention copy) instead of transformers' own

    def language_tokens(self):
        return self.tokens

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    @torch.no_grad()
    def generate(self, input_ids, attention_mask, src_lang, tgt_lang, **kw):
        codes = self.tokens.codes
        names = [f"{codes[s]}-{codes[t]}" for s, t in zip(src_lang.tolist(), tgt_lang.tolist())]
        prompt = generation_prompt(self.tokens, tgt_lang)
        kw["max_length"] = prompt.shape[1] + kw.pop("max_new_tokens")
        if self.beam_cache:
            add_beam_search_cache(self.peft.get_base_model(), kw)
        return self.peft.generate(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=prompt,
                                  adapter_names=names, forced_bos_token_id=None, suppress_tokens=self.suppress, **kw)


def peft_service(peft: PeftTranslator, codes, gen, **options) -> TranslationService:
    max_tokens = options.get("max_batch_tokens", 4096)

    def translate(texts, src, tgt, batch_size):
        return translation.translate(peft, texts, src, tgt, batch_size, max_tokens, **gen)

    def count(text):
        return len(peft.tokenizer(text, add_special_tokens=False)["input_ids"]) + 2

    return TranslationService(translate, count, codes, **options)


async def drive(url: str, requests: list[dict], clients: int, max_seconds: float) -> dict:
    """``clients`` workers send the requests back to back; returns throughput and latency."""
    queue = list(reversed(requests))
    lat, errors, answers, detected = [], 0, {}, {}
    failures: dict[str, int] = {}  # "status: error message" -> count
    stop_at = time.perf_counter() + max_seconds
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        async def worker():
            nonlocal errors
            while queue and time.perf_counter() < stop_at:
                i = len(queue) - 1
                body = queue.pop()
                t0 = time.perf_counter()
                r = await client.post("/translate", json=body)
                lat.append(time.perf_counter() - t0)
                if r.status_code == 200:
                    answers[len(requests) - 1 - i] = r.json()["translatedText"]
                    if "detectedLanguage" in r.json():
                        detected[len(requests) - 1 - i] = r.json()["detectedLanguage"]["language"]
                else:
                    errors += 1
                    try:
                        msg = r.json().get("error", r.text)
                    except ValueError:
                        msg = r.text
                    key = f"{r.status_code}: {str(msg)[:200]}"
                    failures[key] = failures.get(key, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - start
    lat.sort()

    def pct(p):
        return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else None

    return {"clients": clients, "requests": len(lat), "errors": errors, "failures": failures, "seconds": round(wall, 2),
            "segments_per_s": round(len(answers) / wall, 2), "p50_ms": pct(0.50), "p95_ms": pct(0.95),
            "p99_ms": pct(0.99), "answers": answers, "detected": detected}


def batch_stats(service: TranslationService) -> dict:
    reg = service.metrics.registry
    n = reg.get_sample_value("lslo_batch_segments_count") or 0
    return {"batches": int(n),
            "mean_batch_segments": round((reg.get_sample_value("lslo_batch_segments_sum") or 0) / max(n, 1), 2),
            "mean_batch_directions": round((reg.get_sample_value("lslo_batch_directions_sum") or 0) / max(n, 1), 2)}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def split_env(tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    """Leading ``NAME=VALUE`` tokens (environment variables of the server process, as in a shell
    command line) and the rest (its options): ``MALLOC_ARENA_MAX=2 --trim-interval 1``."""
    env: dict[str, str] = {}
    i = 0
    while i < len(tokens) and _ENV.match(tokens[i]):
        name, _, value = tokens[i].partition("=")
        env[name] = value
        i += 1
    return env, list(tokens[i:])


def soak(config: str, corpus, codes, minutes: float, clients: int, beam: int, max_new: int, seed: int,
         serve_args: list[str] | None = None) -> dict:
    env_extra, serve_args = split_env(serve_args or [])
    port = free_port()
    cmd = [sys.executable, "-m", "lslo.cli.main", "serve", config, "--checkpoint", "none", "--port", str(port),
           "--beam", str(beam), "--max-new-tokens", str(max_new), *serve_args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env_extra})
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise SystemExit(f"serve benchmark: lslo serve did not start: {proc.stderr.read()}")
    samples, totals = [], {"requests": 0, "errors": 0, "segments": 0}
    failures: dict[str, int] = {}
    start = time.perf_counter()
    rng_seed = seed

    async def one_round(seconds):
        reqs = traffic(corpus, codes, 100_000, rng_seed)
        return await drive(url, reqs, clients, seconds)

    samples.append({"t_s": 0.0, "rss_mb": rss_mb(proc.pid)})
    while time.perf_counter() - start < minutes * 60:
        left = minutes * 60 - (time.perf_counter() - start)
        res = asyncio.run(one_round(min(30.0, left)))
        rng_seed += 1
        totals["requests"] += res["requests"]
        totals["errors"] += res["errors"]
        for k, v in res["failures"].items():
            failures[k] = failures.get(k, 0) + v
        totals["segments"] += len(res["answers"])
        samples.append({"t_s": round(time.perf_counter() - start, 1), "rss_mb": rss_mb(proc.pid),
                        "segments_per_s": res["segments_per_s"], "p95_ms": res["p95_ms"]})
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(120)
    warm = samples[1]["rss_mb"] if len(samples) > 1 else samples[0]["rss_mb"]
    return {"minutes": minutes, "clients": clients, "serve_args": list(serve_args), "env": env_extra, **totals,
            "error_rate": round(totals["errors"] / max(totals["requests"], 1), 5), "failures": failures,
            "rss_start_mb": samples[0]["rss_mb"], "rss_after_first_30s_mb": warm, "rss_end_mb": samples[-1]["rss_mb"],
            "rss_growth_after_warmup_mb": round(samples[-1]["rss_mb"] - warm, 1), "sigterm_exit_code": code,
            "samples": samples}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/testbed-wesnoth-lang12.yaml")
    p.add_argument("--clients", default="1,8,64")
    p.add_argument("--requests", default="24,96,256", help="requests per client count (same order)")
    p.add_argument("--max-seconds", type=float, default=120.0, help="per mode and client count")
    p.add_argument("--modes", default="mixed,single,direction,peft,peft-cache",
                   help=f"comma-separated, of {','.join(MODES)}; or none: the soak only")
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--segments", type=int, default=200, help="devtest segments per language in the pool")
    p.add_argument("--adapter-std", type=float, default=0.02)
    p.add_argument("--soak-minutes", type=float, default=10.0)
    p.add_argument("--soak-clients", type=int, default=16)
    p.add_argument("--soak-serve-args", action="append", default=None, metavar="ARGS",
                   help="extra `lslo serve` options for the soak, optionally after environment variables of the "
                        "server process, e.g. 'MALLOC_ARENA_MAX=2 --trim-interval 1'; repeat to run one soak per "
                        "value, side by side")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    cfg, model = load_run(args.config, checkpoint="none")
    randomize(model, args.adapter_std, args.seed)
    codes = list(cfg.lslo.codes)
    corpus_all = load_corpus(cfg.data.path, cfg.data.test_split, codes)
    corpus = {c: corpus_all.texts[c][:args.segments] for c in codes}
    dirs = [(s, t) for s in codes for t in codes if s != t]
    gen = {"num_beams": args.beam, "max_new_tokens": args.max_new_tokens, "length_penalty": cfg.eval.length_penalty}
    clients = [int(x) for x in args.clients.split(",")]
    counts = [int(x) for x in args.requests.split(",")]
    modes = [] if args.modes in ("", "none") else args.modes.split(",")
    for mode in modes:
        if mode not in MODES:
            p.error(f"--modes: unknown mode {mode!r}, expected some of {','.join(MODES)}")
    if not modes:
        clients, counts = [], []
    peft = None
    if {"peft", "peft-cache"} & set(modes):
        t0 = time.perf_counter()
        peft = PeftTranslator(model, str(cfg.model), dirs)
        peft_build_s = round(time.perf_counter() - t0, 1)
    results, answers = [], {}
    for c, n in zip(clients, counts):
        reqs = traffic(corpus, codes, n, args.seed + c)
        for mode in modes:
            opts = {"max_wait_ms": 5.0, "max_queue": 100_000}
            sent = [{**r, "source": "auto"} for r in reqs] if mode == "mixed-auto" else reqs
            if mode.startswith("peft"):
                peft.beam_cache = mode == "peft-cache"
                service = peft_service(peft, codes, gen, policy="mixed", **opts)
            elif mode == "mixed-hf-cache":
                service = service_for_model(model, codes, {**gen, "beam_cache": False}, policy="mixed", **opts)
            elif mode == "mixed-auto":
                service = service_for_model(model, codes, gen, policy="mixed", **opts)
            else:
                service = service_for_model(model, codes, gen, policy=mode, **opts)
            with BackgroundServer(create_app(service)) as srv:
                res = asyncio.run(drive(srv.url, sent, c, args.max_seconds))
            res.update(mode=mode, **batch_stats(service))
            answers[(mode, c)] = res.pop("answers")
            detected = res.pop("detected")
            if mode == "mixed-auto":
                res["detection_accuracy"] = round(
                    sum(detected[i] == reqs[i]["source"] for i in detected) / max(1, len(detected)), 4)
            if not mode.startswith("peft"):
                res["engine"] = list(model.last_engine)
            results.append(res)
            print(json.dumps(res), file=sys.stderr, flush=True)

    def get(mode, c):
        return next((r for r in results if r["mode"] == mode and r["clients"] == c), None)

    ratios = {}
    for c in clients:
        mixed = get("mixed", c)
        for other in MODES[1:]:
            o = get(other, c)
            if mixed and o and o["segments_per_s"]:
                ratios[f"mixed/{other}@{c}"] = round(mixed["segments_per_s"] / o["segments_per_s"], 2)
    agreement = {}  # share of identical translations, against mixed (every mode computes the same function)
    for c in clients:
        a = answers.get(("mixed", c))
        for other in MODES[1:]:
            b = answers.get((other, c))
            if a and b:
                common = set(a) & set(b)
                agreement[f"{other}@{c}"] = round(sum(a[i] == b[i] for i in common) / max(len(common), 1), 3)
    out = {
        "benchmark": "serve", "command": "python benchmarks/serve.py " + " ".join(argv or sys.argv[1:]),
        "engine": "lslo" if all(r.get("engine", ["lslo"])[0] == "lslo" for r in results) else "mixed",
        "machine": machine(threads=args.threads, ctranslate2=True),
        "model": {"config": args.config, "languages": len(codes), "directions": len(dirs),
                  "base_parameters": model.base_parameter_count(),
                  "lslo_trainable": model.parameter_report()["trainable_parameters"], "adapter_std": args.adapter_std},
        "settings": {"beam": args.beam, "max_new_tokens": args.max_new_tokens, "max_batch_tokens": 4096,
                     "max_batch_segments": 64, "max_wait_ms": 5.0, "traffic": "one devtest segment per request, "
                     f"random direction of {len(dirs)}, {args.segments} segments per language"},
        "results": results, "ratios": ratios, "agreement_with_mixed": agreement,
        "goals": {"mixed/single@64 >= 3": ratios.get("mixed/single@64"), "mixed/peft@64 >= 2": ratios.get("mixed/peft@64"),
                  "mixed/peft-cache@64 >= 2": ratios.get("mixed/peft-cache@64"),
                  "mixed/mixed-auto@64 <= 1.1": ratios.get("mixed/mixed-auto@64")},
    }
    if peft is not None:
        out["peft_build_s"] = peft_build_s
    if args.soak_minutes > 0:
        import shlex

        runs = [soak(args.config, corpus, codes, args.soak_minutes, args.soak_clients, args.beam,
                     args.max_new_tokens, args.seed, shlex.split(extra))
                for extra in (args.soak_serve_args or [""])]
        out["soak"] = runs[0] if len(runs) == 1 else runs
    emit(out, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
