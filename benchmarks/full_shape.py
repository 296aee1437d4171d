"""Full-size shapes on the CPU: random-weight M2M-100 418M and NLLB-200-distilled-600M through the
normal ``lslo train`` / ``lslo evaluate`` paths (``python benchmarks/speed.py --full-shape``).

For each architecture, a model is built from the exact config values of the published checkpoint
(depth, width, heads, FFN, vocabulary; random weights, nothing downloaded), saved with
``save_pretrained`` and given a real tokenizer of the family (a small SentencePiece model +
the language tokens: the model's 128k / 256k-row embeddings are exercised whatever the
tokenizer's size). Then, each in its own process, on 12 languages of the Wesnoth dev split:

- ``lslo train``: the paper's positions, routing and ranks (2/2/8), 12 languages, gradual pruning
  on (it prunes during these steps), a few updates;
- ``lslo train`` with ``method: lora`` (one shared LoRA, rank 8, same modules);
- ``lslo evaluate`` of the trained LSLo run: a mixed-direction beam search;
- ``lslo evaluate --checkpoint none``: the frozen base, same beam search.

Reported: seconds per update (from metrics.csv, the first update excluded), the peak RSS of
each process (``ru_maxrss``), the trainable parameters, and that the loss is finite. The point
is that nothing breaks or blows up at real depth and vocabulary, not speed on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine  # noqa: E402
from _report import emit  # noqa: E402

# config.json values of the published checkpoints (facebook/m2m100_418M, facebook/nllb-200-distilled-600M)
ARCHS = {
    "m2m100_418M": dict(vocab_size=128112, d_model=1024, encoder_layers=12, decoder_layers=12,
                        encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096,
                        decoder_ffn_dim=4096, max_position_embeddings=1024, activation_function="relu",
                        dropout=0.1, attention_dropout=0.1, activation_dropout=0.0, encoder_layerdrop=0.05,
                        decoder_layerdrop=0.05, scale_embedding=True, init_std=0.02, pad_token_id=1,
                        bos_token_id=0, eos_token_id=2, decoder_start_token_id=2),
    "nllb_200_distilled_600M": dict(vocab_size=256206, d_model=1024, encoder_layers=12, decoder_layers=12,
                                    encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096,
                                    decoder_ffn_dim=4096, max_position_embeddings=1024, activation_function="relu",
                                    dropout=0.1, attention_dropout=0.1, activation_dropout=0.0,
                                    encoder_layerdrop=0.0, decoder_layerdrop=0.0, scale_embedding=True,
                                    init_std=0.02, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                    decoder_start_token_id=2),
}
LANGS = [("en", "high"), ("de", "high"), ("fr", "high"), ("it", "high"), ("es", "medium"), ("ru", "medium"),
         ("zh", "medium"), ("ja", "medium"), ("tr", "low"), ("pl", "low"), ("vi", "low"), ("id", "low")]
DIRECTIONS = "en-de,de-zh,zh-tr,tr-ja,ja-id,id-en"


def build(arch: str, out: Path, shape: dict, corpus: Path, seed: int) -> dict:
    """Save a random-weight model of ``arch`` with ``shape`` and a tokenizer of its family."""
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    from lslo.data import load_corpus
    from lslo.testbed.tiny import build_m2m100_tokenizer, build_nllb_tokenizer

    texts = load_corpus(corpus, "dev", [c for c, _ in LANGS])
    sample = [t for c in texts.languages for t in texts.texts[c][:400]]
    (build_nllb_tokenizer if arch.startswith("nllb") else build_m2m100_tokenizer)(sample, out, vocab_size=2000)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    model = M2M100ForConditionalGeneration(M2M100Config(**shape))
    model.save_pretrained(str(out))
    return {"parameters": sum(p.numel() for p in model.parameters()), "build_s": round(time.perf_counter() - t0, 1)}


def run_config(path: Path, model: Path, corpus: Path, out: Path, method: str, steps: int, max_tokens: int,
               beam: int) -> Path:
    import yaml

    cfg = {
        "model": str(model), "output_dir": str(out), "method": method, "lora_rank": 8,
        "lslo": {"languages": [{"code": c, "level": lv} for c, lv in LANGS]},
        "data": {"path": str(corpus), "train_split": "dev", "test_split": "devtest", "valid_ratio": 0.02,
                 "max_length": 64, "max_train_segments": 400},
        "train": {"epochs": 1, "max_steps": steps, "max_tokens": max_tokens, "update_freq": 1, "lr": 1e-3,
                  "warmup_steps": 1, "seed": 0, "log_every_steps": 1, "tensorboard": False,
                  "valid_max_examples": 24},
        "pruning": {"enabled": True, "unit": "step", "start": 1, "duration": max(steps - 1, 1), "frequency": 1,
                    "final_ratio": 0.9},
        "eval": {"beam": beam, "max_new_tokens": 16, "batch_size": 12},
    }
    if method != "lslo":
        cfg.pop("pruning")
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def child(argv: list[str], report: Path) -> int:
    """Run ``lslo ARGV`` in this process and write its exit code, wall time and peak RSS."""
    from lslo.cli.main import main as lslo

    t0 = time.perf_counter()
    code = lslo(argv)
    report.write_text(json.dumps({"code": code, "seconds": round(time.perf_counter() - t0, 1),
                                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
    return code


def lslo_process(argv: list[str], work: Path, name: str, threads: int) -> dict:
    report = work / f"{name}.json"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "_child", str(report), *argv],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not report.is_file():
        raise SystemExit(f"full_shape: `lslo {' '.join(argv)}` failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return json.loads(report.read_text())


def step_seconds(run: Path) -> dict:
    with (run / "metrics.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["kind"] == "train"]
    t = [float(r["elapsed_s"]) for r in rows]
    per = [b - a for a, b in zip(t, t[1:])]
    losses = [float(r["loss"]) for r in rows]
    prune = [float(r["prune_ratio"] or 0) for r in rows]
    return {"updates": len(rows), "seconds_per_update_after_first": round(sum(per) / len(per), 2) if per else None,
            "first_update_s": t[0] if t else None, "loss": losses, "prune_ratio": prune,
            "tokens_per_update": round(sum(float(r["tokens"]) for r in rows) / max(len(rows), 1))}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", default=",".join(ARCHS))
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=1200, help="source+target tokens per update")
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--segments", type=int, default=2, help="devtest segments per direction in the beam search")
    ap.add_argument("--corpus", default=str(ROOT / "data" / "testbed" / "wesnoth"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reduced", action="store_true", help="tiny shapes, for the test: 1+1 layers, d 64")
    ap.add_argument("--work", help="keep the models and runs here (default: a temporary directory)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="lslo-full-shape-") as tmp:
        work = Path(args.work or tmp)
        for arch in args.archs.split(","):
            shape = dict(ARCHS[arch])
            if args.reduced:
                shape.update(d_model=64, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                             decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128,
                             vocab_size=min(shape["vocab_size"], 4000))
            d = work / arch
            d.mkdir(parents=True, exist_ok=True)
            log(f"{arch}: building {shape['encoder_layers']}+{shape['decoder_layers']} layers, d_model "
                f"{shape['d_model']}, vocabulary {shape['vocab_size']}")
            built = build(arch, d / "base", shape, Path(args.corpus), 0)
            entry = {"config": shape, **built}
            for method in ("lslo", "lora"):
                cfg = run_config(d / f"{method}.yaml", d / "base", Path(args.corpus), d / f"run-{method}", method,
                                 args.steps, args.max_tokens, args.beam)
                log(f"{arch}: lslo train ({method}), {args.steps} updates")
                proc = lslo_process(["train", str(cfg), "--quiet", "--device", "cpu"], d, f"train-{method}",
                                    args.threads)
                params = json.loads((d / f"run-{method}" / "parameters.json").read_text())
                entry[f"train_{method}"] = {**proc, **step_seconds(d / f"run-{method}"),
                                            "trainable_parameters": params.get("trainable_parameters"),
                                            "trainable_percent": round(params.get("trainable_percent", 0), 3)}
            for label, extra in (("evaluate_lslo", [str(d / "run-lslo"), "--checkpoint", "last"]),
                                 ("evaluate_base", [str(d / "lslo.yaml"), "--checkpoint", "none"])):
                log(f"{arch}: lslo {label.replace('_', ' ')} (beam {args.beam}, {len(DIRECTIONS.split(','))} "
                    "mixed directions)")
                out = d / f"eval-{label}"
                proc = lslo_process(["evaluate", *extra, "--directions", DIRECTIONS, "--max-segments",
                                     str(args.segments), "--beam", str(args.beam), "--out", str(out), "--quiet",
                                     "--device", "cpu"], d, label, args.threads)
                scores = json.loads((out / "scores.json").read_text())
                entry[label] = {**proc, "directions": len(scores["directions"])}
            lt, lo = entry["train_lslo"], entry["train_lora"]
            eb = entry["evaluate_base"]
            entry["ratios"] = {
                "peak RSS: lslo train / shared-LoRA train": round(lt["peak_rss_bytes"] / lo["peak_rss_bytes"], 3),
                "peak RSS: lslo train / frozen base (evaluate)": round(lt["peak_rss_bytes"] / eb["peak_rss_bytes"], 3),
                "peak RSS: lslo evaluate / base evaluate": round(entry["evaluate_lslo"]["peak_rss_bytes"]
                                                                 / eb["peak_rss_bytes"], 3),
                "update time: lslo / shared LoRA": round(lt["seconds_per_update_after_first"]
                                                         / lo["seconds_per_update_after_first"], 3)
                if lt["seconds_per_update_after_first"] and lo["seconds_per_update_after_first"] else None,
            }
            entry["finite_losses"] = all(x == x and abs(x) != float("inf") for x in lt["loss"] + lo["loss"])
            results[arch] = entry
    out = {"benchmark": "full_shape", "command": "python benchmarks/speed.py --full-shape " + " ".join(argv or []),
           "machine": machine(threads=args.threads),
           "reduced": args.reduced, "results": results}
    emit(out, args.json)
    return out


def log(msg: str) -> None:
    print(f"[full-shape] {msg}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_child":
        raise SystemExit(child(sys.argv[3:], Path(sys.argv[2])))
    main(sys.argv[1:])
