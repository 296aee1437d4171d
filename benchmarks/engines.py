"""lslo's mixed-direction generation against CTranslate2 on the same base, side by side.

    python benchmarks/engines.py [--shape testbed|m2m100_418M] [--segments 64] [--beam 4]
                                 [--rules false,true] [--repeats 3] [--threads 2]
                                 [--json benchmarks/results/engines.json]

Engines (``--engines``), each run in its own process, alternating, ``--repeats`` times (medians),
under each stopping rule of ``--rules``: ``false`` is transformers' default ``early_stopping=False``
(a sentence goes on while a running beam could still beat its finished ones), ``true`` is
``early_stopping=True`` (a sentence stops once it has ``beam`` finished hypotheses), CTranslate2's
rule. CTranslate2 has only its own, so it runs under ``true`` only, and lslo is compared with it
there, at equal work. Each row counts the work done: ``decoder_row_steps`` (beam rows advanced one
token, summed over steps, counted at the first decoder layer; lslo and transformers' engines) and
``generated_tokens`` (of the returned translations, every engine); ``rule_effect`` gives what
``true`` changes per engine (speed, row-steps, chrF++).

- ``lslo``: ``LSLoModel.translate`` with LSLo adapters on every paper position (unmerged, at their
  zero init, so they cost what trained ones cost and leave the base's output), one batch mixing
  directions, lslo's lean beam search (``lslo.decoding``): the path of ``lslo translate``,
  ``evaluate`` and ``serve``;
- ``lslo-onednn``: ``lslo`` with its float32 linears on oneDNN with pre-packed weights
  (``--gemm onednn``; ``lslo`` itself runs ``--gemm reference``, torch's MKL path);
- ``lslo-int8``: ``lslo`` with the base's linear layers quantised to dynamic int8 (``--quantize
  int8``; the adapters stay float32);
- ``lslo-hf``: the same model and batches through transformers' ``generate`` with lslo's
  beam-search cache (``engine="transformers"``; lslo's generation before the lean search);
- ``hf-base``: the same batches through transformers' ``generate`` on the plain base (no adapters,
  transformers' own beam-search cache);
- ``ct2-float32`` / ``ct2-int8``: CTranslate2 on the base converted by its own
  ``TransformersConverter``, one target prefix per sentence (``__de__``), ``compute_type`` float32
  or int8.

The ``machine`` block names the processor, its vector extensions and the GEMM library of each
side (``benchmarks/_machine.py``). All engines get the same segments (``--segments`` random (segment, direction) pairs of the test
split, seeded, every direction of the config possible), beam size, length limit and length penalty,
and report segments/s, generated tokens/s, peak RSS, the share of translations identical to
``lslo``'s and chrF++ against the references (``--shape testbed`` only: the 418M shape has random
weights, so only its speed means anything).

The CTranslate2 converter reads the language tokens from the tokenizer's special tokens; tokenizers
saved by lslo before the language tokens were marked special (``lslo.testbed.tiny``) lose them in
the conversion ("vocabulary has size 16008 but the model expected 16108"), so the benchmark
converts a copy whose tokenizer config marks them (``mark_language_tokens_special``) when needed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

ENGINES = ("lslo", "lslo-onednn", "lslo-int8", "lslo-hf", "hf-base", "ct2-float32", "ct2-int8")
RULES = {"false": False, "true": True}  # early_stopping: transformers' default, CTranslate2's rule


def pick(corpus, codes: list[str], n: int, seed: int) -> list[dict]:
    """``n`` seeded (segment, direction) pairs with their references."""
    rng = random.Random(seed)
    dirs = [(s, t) for s in codes for t in codes if s != t]
    out = []
    for _ in range(n):
        s, t = rng.choice(dirs)
        i = rng.randrange(len(corpus))
        out.append({"src": s, "tgt": t, "text": corpus.texts[s][i], "ref": corpus.texts[t][i]})
    return out


def lslo_layout(cfg) -> dict:
    return cfg.lslo.to_dict()


# --------------------------------------------------------------------------- workers (own process)
def worker(engine: str, work: dict, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    texts = [w["text"] for w in work["items"]]
    src = [w["src"] for w in work["items"]]
    tgt = [w["tgt"] for w in work["items"]]
    g = work["gen"]
    rule = RULES[work["rule"]]
    steps = {"row_steps": 0, "calls": 0}
    if engine in ("lslo", "lslo-onednn", "lslo-int8", "lslo-hf", "hf-base"):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        from lslo.tuner import LSLoConfig, LSLoModel

        base = AutoModelForSeq2SeqLM.from_pretrained(work["base"], dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(work["base"])
        layout = dict(work["lslo"])
        if engine == "hf-base":
            layout.update(encoder_positions=[], decoder_positions=[])
        model = LSLoModel(base, LSLoConfig.from_dict(layout), tok).eval()
        if engine == "lslo-int8":
            from lslo.decoding.quantize import quantize_int8

            quantize_int8(model)
        from lslo.decoding.gemm import pack_linears

        pack_linears(model, "onednn" if engine == "lslo-onednn" else "reference")
        count_decoder_rows(model.base.model.decoder, steps)

        def run(tx, s, t):
            return model.translate(tx, s, t, batch_size=g["batch_size"], max_tokens=g["max_tokens"],
                                   num_beams=g["beam"], max_new_tokens=g["max_new_tokens"],
                                   length_penalty=g["length_penalty"], beam_cache=engine == "lslo-hf",
                                   early_stopping=rule,
                                   engine="transformers" if engine in ("lslo-hf", "hf-base") else "lslo")
    else:
        import ctranslate2
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(work["base"])
        translator = ctranslate2.Translator(work["ct2"], device="cpu", compute_type=engine.split("-")[1],
                                            inter_threads=1, intra_threads=threads)

        def run(tx, s, t):
            return ct2_translate(translator, tok, tx, s, t, beam=g["beam"], max_new_tokens=g["max_new_tokens"],
                                 length_penalty=g["length_penalty"], batch_size=g["batch_size"],
                                 max_source_tokens=g["max_source_tokens"])

    def count(outs):
        return sum(len(x) for x in tok(outs, add_special_tokens=False)["input_ids"])

    run(texts[:2], src[:2], tgt[:2])  # warm-up: first-call allocations and lazy init stay out of the time
    steps.update(row_steps=0, calls=0)
    t0 = time.perf_counter()
    outs = run(texts, src, tgt)
    seconds = time.perf_counter() - t0
    return {"engine": engine, "rule": work["rule"], "seconds": seconds, "outputs": outs,
            "generated_tokens": count(outs), "decoder_row_steps": steps["row_steps"] if steps["calls"] else None,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def ct2_translate(translator, tok, texts, src, tgt, *, beam: int, max_new_tokens: int, length_penalty: float,
                  batch_size: int, max_source_tokens: int = 1022) -> list[str]:
    """Translate with a CTranslate2 translator of an M2M-100 model: the source language token, the
    source pieces and the end token in, the target language token as the prefix, the best
    hypothesis decoded back to text (the same tokenizer on both sides)."""
    sources = [[f"__{s}__", *tok.convert_ids_to_tokens(tok(x, add_special_tokens=False)["input_ids"][:max_source_tokens]),
                tok.eos_token] for x, s in zip(texts, src)]
    res = translator.translate_batch(sources, target_prefix=[[f"__{t}__"] for t in tgt], beam_size=beam,
                                     max_decoding_length=max_new_tokens + 1, length_penalty=length_penalty,
                                     max_batch_size=batch_size, batch_type="examples")
    return [tok.decode(tok.convert_tokens_to_ids(r.hypotheses[0][1:]), skip_special_tokens=True).strip() for r in res]


def count_decoder_rows(decoder, steps: dict) -> None:
    """Count the work of a decoding: every decoder layer-0 self-attention call adds its rows x new
    positions (a beam row advanced by one token is one row-step), on lslo's search and on
    transformers' generate alike (both call the layer's own ``q_proj``)."""
    def hook(_module, args):
        x = args[0]
        steps["row_steps"] += x.numel() // x.shape[-1]
        steps["calls"] += 1

    decoder.layers[0].self_attn.q_proj.register_forward_pre_hook(hook)


def in_process(engine: str, work_path: Path, threads: int) -> dict:
    out = work_path.with_name(f"{engine}.json")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", engine, "--work",
                           str(work_path), "--threads", str(threads), "--result", str(out)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not out.is_file():
        raise SystemExit(f"engines.py: {engine} failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return json.loads(out.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- models
def convert_ct2(base: Path, out: Path) -> dict:
    """CTranslate2's own converter on ``base``; a copy with the language tokens marked special when
    the tokenizer does not mark them (the documented workaround, see the module docstring)."""
    from ctranslate2.converters import TransformersConverter
    from transformers import AutoTokenizer

    from lslo.testbed.tiny import mark_language_tokens_special

    src, patched = base, False
    if "__en__" not in AutoTokenizer.from_pretrained(str(base)).all_special_tokens:
        src = out.with_name(out.name + "-source")
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(base, src)
        patched = mark_language_tokens_special(src)
    t0 = time.perf_counter()
    TransformersConverter(str(src)).convert(str(out), force=True)
    return {"convert_s": round(time.perf_counter() - t0, 1), "tokenizer_patched": patched}


def build_418m(out: Path, corpus: Path, seed: int) -> None:
    """A random-weight M2M-100 418M (its published config.json shape and 128,112-token vocabulary)
    with an M2M-100 tokenizer whose vocabulary is padded to that size, so the output projection
    costs what the real one costs and CTranslate2's converter accepts the pair."""
    import torch
    from full_shape import ARCHS, LANGS
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    from lslo.data import load_corpus
    from lslo.testbed.tiny import m2m100_tokenizer_from_spm, train_sentencepiece

    shape = dict(ARCHS["m2m100_418M"])
    texts = load_corpus(corpus, "dev", [c for c, _ in LANGS])
    sample = [t for c in texts.languages for t in texts.texts[c][:400]]
    out.mkdir(parents=True, exist_ok=True)
    spm = train_sentencepiece(sample, out / "sentencepiece.bpe", 2000)
    m2m100_tokenizer_from_spm(spm, out, model_vocab_size=shape["vocab_size"])
    torch.manual_seed(seed)
    M2M100ForConditionalGeneration(M2M100Config(**shape)).save_pretrained(str(out))


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "testbed-wesnoth-lang12.yaml"))
    p.add_argument("--shape", choices=["testbed", "m2m100_418M"], default="testbed")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--rules", default="false,true", help="stopping rules (early_stopping) to run every engine "
                   "under: false (transformers' default), true (CTranslate2's; CTranslate2 runs only this one)")
    p.add_argument("--segments", type=int, default=64)
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=4096, help="padded source tokens per lslo batch")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base", help="base model directory (default: the config's model)")
    p.add_argument("--work-dir", default=str(ROOT / "runs" / "engines"))
    p.add_argument("--json")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        res = worker(args.worker, json.loads(Path(args.work).read_text(encoding="utf-8")), args.threads)
        Path(args.result).write_text(json.dumps(res), encoding="utf-8")
        return 0
    engines = [e for e in args.engines.split(",") if e]
    bad = [e for e in engines if e not in ENGINES]
    if bad or "lslo" not in engines:
        raise SystemExit(f"engines.py: error: --engines: expected some of {', '.join(ENGINES)} including lslo, "
                         f"got {args.engines!r}")
    rules = [r for r in args.rules.split(",") if r]
    if not rules or any(r not in RULES for r in rules):
        raise SystemExit(f"engines.py: error: --rules: expected false, true or false,true, got {args.rules!r}")
    from _machine import machine
    from _report import emit

    from lslo.data import load_corpus
    from lslo.training.config import RunConfig

    cfg = RunConfig.load(args.config)
    codes = list(cfg.lslo.codes)
    work_dir = Path(args.work_dir) / args.shape
    work_dir.mkdir(parents=True, exist_ok=True)
    if args.shape == "testbed":
        base = Path(args.base or cfg.model)
    else:
        base = work_dir / "base"
        if not (base / "config.json").is_file():
            build_418m(base, Path(cfg.data.path), args.seed)
    corpus = load_corpus(cfg.data.path, cfg.data.test_split, codes)
    items = pick(corpus, codes, args.segments, args.seed)
    conversion = None
    if any(e.startswith("ct2") for e in engines):
        conversion = convert_ct2(base, work_dir / "ct2")
    work = {"base": str(base), "ct2": str(work_dir / "ct2"), "lslo": lslo_layout(cfg), "items": items,
            "gen": {"beam": args.beam, "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size,
                    "max_tokens": args.max_tokens, "length_penalty": cfg.eval.length_penalty,
                    "max_source_tokens": 1022}}
    runs = measure(engines, rules, work, work_dir, args)
    refs = [w["ref"] for w in items]
    by_rule = {r: summarize(runs, r, refs, args) for r in rules}
    doc = {"benchmark": "engines", "command": "python benchmarks/engines.py " + " ".join(argv or sys.argv[1:]),
           "machine": machine(threads=args.threads, ctranslate2=True),
           "shape": args.shape, "base": str(base), "conversion": conversion,
           "settings": {"segments": args.segments, "directions": len({(w["src"], w["tgt"]) for w in items}),
                        "beam": args.beam, "max_new_tokens": args.max_new_tokens,
                        "length_penalty": cfg.eval.length_penalty, "repeats": args.repeats,
                        "rules": {r: f"early_stopping={RULES[r]}" for r in rules}},
           "rules": by_rule}
    if set(rules) == {"false", "true"}:
        doc["rule_effect"] = rule_effect(by_rule)
    emit(doc, args.json)
    return 0


def measure(engines: list[str], rules: list[str], work: dict, work_dir: Path, args) -> dict:
    """Every (rule, engine) in its own process, alternating, ``args.repeats`` times; CTranslate2 only
    under its own rule (``true``): it has no other."""
    pairs = [(r, e) for r in rules for e in engines if r == "true" or not e.startswith("ct2")]
    runs: dict[tuple[str, str], list[dict]] = {p: [] for p in pairs}
    for k in range(args.repeats):  # alternating: a slow phase of the machine hits every engine alike
        for rule, e in pairs:
            path = work_dir / f"work-{rule}.json"
            path.write_text(json.dumps({**work, "rule": rule}), encoding="utf-8")
            runs[(rule, e)].append(in_process(e, path, args.threads))
            print(f"engines.py: repeat {k + 1}: early_stopping={rule} {e} "
                  f"{args.segments / runs[(rule, e)][-1]['seconds']:.2f} seg/s", file=sys.stderr, flush=True)
    return runs


def summarize(runs: dict, rule: str, refs: list[str], args) -> dict:
    """One rule's rows (medians over repeats), ratios of lslo to every other engine, and int8's
    chrF++ change."""
    from sacrebleu.metrics import CHRF

    mine = {e: rs for (r, e), rs in runs.items() if r == rule}
    ref_out = mine["lslo"][0]["outputs"]
    rows = {}
    for e, rs in mine.items():
        sec = statistics.median(x["seconds"] for x in rs)
        outs = rs[0]["outputs"]
        rows[e] = {"seconds": round(sec, 2), "segments_per_s": round(args.segments / sec, 2),
                   "generated_tokens": rs[0]["generated_tokens"],
                   "generated_tokens_per_s": round(statistics.median(x["generated_tokens"] / x["seconds"] for x in rs), 1),
                   "decoder_row_steps": rs[0]["decoder_row_steps"],
                   "peak_rss_mb": max(x["peak_rss_mb"] for x in rs),
                   "identical_to_lslo": round(sum(a == b for a, b in zip(outs, ref_out)) / len(outs), 3),
                   "runs_s": [round(x["seconds"], 2) for x in rs]}
        if args.shape == "testbed":
            rows[e]["chrf++"] = round(CHRF(word_order=2).corpus_score(outs, [refs]).score, 2)
    ratios = {f"lslo/{e}": round(rows["lslo"]["segments_per_s"] / rows[e]["segments_per_s"], 3)
              for e in rows if e != "lslo"}
    if "lslo-int8" in rows and "ct2-int8" in rows:
        ratios["lslo-int8/ct2-int8"] = round(rows["lslo-int8"]["segments_per_s"] / rows["ct2-int8"]["segments_per_s"], 3)
    out = {"results": rows, "speed_ratios": ratios}
    int8 = {f"{q}-{f}": round(rows[q]["chrf++"] - rows[f]["chrf++"], 2)
            for q, f in (("lslo-int8", "lslo"), ("ct2-int8", "ct2-float32"))
            if q in rows and f in rows and "chrf++" in rows[q]}
    if int8:
        out["int8_chrf_change"] = int8
    return out


def rule_effect(by_rule: dict) -> dict:
    """What ``early_stopping=True`` changes for each engine run under both rules: speed ratio,
    decoder row-steps ratio, chrF++ change, and the share of translations that stay the same."""
    out = {}
    for e, slow in by_rule["false"]["results"].items():
        fast = by_rule["true"]["results"].get(e)
        if not fast:
            continue
        out[e] = {"speedup": round(fast["segments_per_s"] / slow["segments_per_s"], 3)}
        if slow.get("decoder_row_steps") and fast.get("decoder_row_steps"):
            out[e]["row_steps_ratio"] = round(fast["decoder_row_steps"] / slow["decoder_row_steps"], 3)
        if "chrf++" in slow:
            out[e]["chrf++_change"] = round(fast["chrf++"] - slow["chrf++"], 2)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
