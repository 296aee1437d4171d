"""Results pages on cost: training-step speed (``speed.json``), memory for many languages
(``memory.json``), generation engines (``engines*.json``, ``generation.json``,
``profile_generation.json``), serving (``serve*.json``) and full-size shapes (``full_shape.json``).
Every number comes from the JSON; the prose around it only names what was measured."""

from __future__ import annotations

from tools.docs.common import GENERATED, f2, gib, load, mib, source, table

SPEED_ROWS = {
    "lslo/shared_lora": "LSLo step / shared-LoRA step (rank 8, same modules)",
    "lslo/peft_lora": "LSLo step / PEFT LoRA step (rank 8, same modules)",
    "lslo_100/lslo_12": "LSLo with 100 languages / with 12",
    "gen_unmerged/base": "beam search, unmerged LSLo / base (transformers' `generate`)",
    "gen_lean_unmerged/base": "beam search, unmerged LSLo / base (lslo's own search)",
    "gen_merged/base": "beam search, merged single-direction model / base",
    "mem lslo/shared_lora": "peak memory of a step: LSLo / shared LoRA",
}


def _goal_number(goal: str) -> float:
    return float(goal.split()[-1])


def speed_goal_rows(doc: dict) -> list[list[str]]:
    rows = []
    for key, r in doc["ratios"].items():
        if r["met"]:
            verdict = "met"
        else:
            verdict = f"**missed by {r['value'] - _goal_number(r['goal']):.3f}**"
        rows.append([SPEED_ROWS.get(key, key), f"{r['value']:.3f}", r["goal"].replace("<=", "≤"), verdict])
    return rows


def speed_page() -> str:
    d = load("speed")
    tm, other, mem = d["train_step_ms"]["median"], d["other_ratios"], d["memory"]["step_peak_bytes"]
    missed = [k for k, r in d["ratios"].items() if not r["met"]]
    verdict = ("every goal is met" if d["all_goals_met"] else
               f"**not every goal is met** (`all_goals_met: false`; missed: {', '.join(missed)})")
    steps = table(["variant", "median step (ms)", "forward", "backward", "optimizer"],
                  [[k, f"{tm[k]:.1f}", *(f"{d['train_step_ms']['phase_median'][k][p]:.1f}"
                                         for p in ("forward", "backward", "optimizer"))] for k in tm])
    gm = d["generation_ms"]["median"]
    return f"""{GENERATED}
# Speed of a training step

`make bench` runs `python benchmarks/speed.py`: variants of one training step side by side in one
process, interleaved repetitions, medians. Model: M2M-100 418M layer shapes (d_model 1024, FFN
4096, 16 heads) with random weights, {d['config']['encoder_layers']}+{d['config']['decoder_layers']} layers and a
vocabulary of {d['config']['vocab_size']:,} so that it runs on a CPU; a batch of
{d['config']['train_batch']['sentences']} sentences x {d['config']['train_batch']['src_tokens']} tokens
covering {d['config']['train_batch']['languages_in_batch']} languages; {d['config']['optimizer']};
{d['config']['clock']}.

{source('speed')}
In this run {verdict}.

{table(['ratio (same run)', 'value', 'goal', 'verdict'], speed_goal_rows(d), 'lrrl')}
- The loop-over-languages reference implementation takes {other['reference/lslo']:.2f}x LSLo's step
  time; LSLo takes {other['lslo/base']:.2f}x the frozen base's forward and backward.
- With 100 languages the extra time is the optimizer over 100 languages' parameters, not the
  routing: forward and backward alone are {other['forward+backward only: lslo_100/lslo_12']:.3f}x
  those with 12 languages. The minimum over repeats gives {other['min of repeats: lslo_100/lslo_12']:.3f}x.
- A step's peak memory grows {other['step peak memory: lslo_100/lslo_12']:.2f}x from 12 to 100 languages
  ({mib(mem['lslo'])} to {mib(mem['lslo_100'])}). [Memory for many languages](memory.md) measures the
  same growth with another script and gets another number; that page says why.
- lslo's own beam search is {other['lean search speedup: gen_lslo/gen_lean_lslo']:.2f}x transformers'
  `generate` on this shape (unmerged LSLo, {gm['gen_lean_lslo']:.1f} against {gm['gen_lslo']:.1f} ms):
  the end-of-sentence token is suppressed, so no sentence ends early and the gain is per-step work.

{steps}
!!! note "GPU"
    `benchmarks/speed.py --device cuda --dtype bf16` times the same variants on a GPU (these are
    flags of the benchmark; `lslo train` takes `--set train.precision=bf16`). No GPU result is in
    `benchmarks/results/`: the bf16 numerics are tested on the CPU only.
"""


def memory_rows(d: dict) -> list[list[str]]:
    by = {(r["languages"], r["layout"]): r for r in d["rows"]}
    rows = []
    for n in sorted({r["languages"] for r in d["rows"]}):
        pk, pd = by[(n, "packed")], by[(n, "padded")]
        rows.append([str(n), mib(pd["parameters_and_adam"]), mib(pk["parameters_and_adam"]),
                     f"{pk['ratio_to_unpadded']:.3f}", mib(pd["step_peak_bytes"]), mib(pk["step_peak_bytes"]),
                     f"{pk['step_ms_median'] / pd['step_ms_median']:.2f}"])
    return rows


def full_depth_sentence(d: dict) -> str:
    parts = [f"{gib(v['padded']['parameters_and_adam_bytes'])} padded against "
             f"{gib(v['packed']['parameters_and_adam_bytes'])} packed for {n} languages"
             for n, v in d["full_depth_418M"].items()]
    return "; ".join(parts)


def memory_page() -> str:
    d, s = load("memory"), load("speed")
    g = d["growth"]["step peak 100/12 languages"]
    speed_growth = s["other_ratios"]["step peak memory: lslo_100/lslo_12"]
    head = ["languages", "params + Adam, padded", "packed", "packed / unpadded sum", "step peak, padded",
            "packed", "step time packed / padded"]
    return f"""{GENERATED}
# Memory for many languages

Each language's adapter pair is stored at its own rank: language *l* owns rows
`offset_l .. offset_l + r_l` of one table per layer, so parameters, gradients, both Adam moments
and the pruning masks grow with the sum of the ranks, not with the number of languages times the
largest rank. "Padded" below stores every language at rank 8 (the largest of the paper's 2/2/8),
for comparison. `python benchmarks/memory.py`: M2M-100 418M layer shapes, 2+2 layers, a
12-sentence batch of 12 directions, {d['setup']['levels']} levels (ranks 2/2/8), {d['setup']['step_time']}.

{source('memory')}
{table(head, memory_rows(d))}
Parameters + Adam state are exactly the unpadded sum. From 12 to 100 languages a step's peak
grows {g['packed']:.2f}x packed against {g['padded']:.2f}x padded. At the full 418M depth (12+12
layers, the paper's positions, counted on the meta device) parameters + Adam take
{full_depth_sentence(d)}.

!!! note "Why [the speed page](speed.md) says {speed_growth:.2f}x for the same growth"
    The two scripts measure different steps. `benchmarks/speed.py` uses fused Adam and gives its
    12 languages 4 high, 4 medium and 4 low (its 100 languages repeat that pattern); `benchmarks/memory.py` uses plain Adam and cycles the
    levels high/medium/low, one language at a time. Both count Adam's own buffers in the step
    peak. Which of the two differences makes {speed_growth:.2f}x against {g['packed']:.2f}x has not
    been isolated; both numbers are measured, and neither script corrects the other.
"""


ENGINE_NAMES = {
    "lslo": "**lslo** (LSLo, mixed directions, lean search)",
    "lslo-onednn": "lslo `--gemm onednn`",
    "lslo-int8": "lslo `--quantize int8`",
    "lslo-hf": "lslo `--engine transformers`",
    "transformers": "lslo `--engine transformers`",
    "hf-base": "transformers `generate`, plain base",
    "ct2-float32": "CTranslate2 float32",
    "ct2-int8": "CTranslate2 int8",
}


def engine_table(results: dict) -> str:
    rows = [[ENGINE_NAMES.get(k, k), f2(r["segments_per_s"]),
             str(r["decoder_row_steps"]) if r.get("decoder_row_steps") else "-",
             str(r.get("generated_tokens", "-")), f"{r['peak_rss_mb']:.0f}", f"{100 * r['identical_to_lslo']:.1f}%",
             f2(r["chrf++"]) if "chrf++" in r else "-"] for k, r in results.items()]
    return table(["engine", "segments/s", "decoder row-steps", "generated tokens", "peak RSS MB",
                  "identical to lslo", "chrF++"], rows)


def rule_effect_table(effect: dict) -> str:
    rows = [[ENGINE_NAMES.get(k, k), f"{v['speedup']:.3f}x", f"{v.get('row_steps_ratio', 0):.3f}",
             f"{v['chrf++_change']:+.2f}" if "chrf++_change" in v else "-"] for k, v in effect.items()]
    return table(["engine", "speed, true / false", "row-steps, true / false", "chrF++ change"], rows)


def memory_section() -> str:
    m = load("generation_memory")
    st, res = m["settings"], m["results"]
    rows = [[ENGINE_NAMES.get(k, k), mib(r["allocated_bytes"]), f"{r['resident_growth_mb']:.0f} MB",
             f"{r['peak_rss_mb']:.0f} MB", f"{r['seconds']:.0f}"] for k, r in res.items()]
    lslo = res["lslo"]
    return f"""## Memory at the M2M-100 418M shape

`python benchmarks/generation_memory.py`: one `translate` batch of {st['batch']} sentences mixing
directions, beam {st['beam']}, at most {st['new_tokens']} new tokens, on the random-weight 418M model
(most sentences run to the limit: the cache's worst case). Allocated: the peak of glibc's in-use
heap bytes during the call, above the level before it. Resident: the growth of the peak resident set.

{source('generation_memory')}
{table(["engine", "allocated (peak)", "resident growth", "peak RSS", "seconds"], rows)}
lslo's self-attention cache ends at {mib(lslo['cache_bytes'])}, against
{mib(lslo['cache_bytes_if_sized_for_the_limit'])} sized for the length limit up front. Here they are
equal, because random weights run every sentence to the limit; with real outputs the cache stops at
the longest output (to the next power of two times 32 positions). Ratios lslo / other:
{", ".join(f"{k}: allocated {v['allocated']:.2f}, resident {v['resident']:.2f}" for k, v in m["ratios"].items())}.
"""


def generation_table() -> str:
    rows = [[str(r["beams"]), f2(r["lslo_cache_s"]), f2(r["transformers_cache_s"]),
             f"{r['lslo_cache_segments_per_s']:.1f} / {r['transformers_cache_segments_per_s']:.1f}",
             f"{r['speedup']:.2f}x", "yes" if r["identical_translations"] else "**no**"]
            for r in load("generation")["results"]]
    return table(["beams", "lslo's cache (s)", "transformers' cache (s)", "segments/s, lslo / transformers",
                  "speedup", "identical translations"], rows)


def profile_table() -> str:
    p = load("profile_generation")
    rows = [[k.strip(), f"{v['seconds']:.3f}", f"{100 * v['share_of_wall']:.1f}%"] for k, v in p["regions"].items()]
    return table(["region", "seconds", "share of wall time"], rows)


def onednn_418m(rb: dict) -> str:
    """The `--gemm onednn` line of the 418M section, with its ratio to CTranslate2 (empty without that engine)."""
    if "lslo/lslo-onednn" not in rb or "lslo/ct2-float32" not in rb:
        return ""
    speed = 1 / rb["lslo/lslo-onednn"]
    return (f"- `--gemm onednn` is {speed:.2f}x lslo's MKL path here, so "
            f"{rb['lslo/ct2-float32'] * speed:.2f}x CTranslate2 float32, at the cost of a second copy of the\n"
            "  weights (peak RSS below). `--gemm auto` keeps MKL on Intel all the same: on the testbed's\n"
            "  shapes oneDNN is slower (above).\n")


def engines_page() -> str:
    d, big = load("engines"), load("engines_418m")
    st, rules = d["settings"], d["rules"]
    fast, slow = rules["true"], rules["false"]
    r, rb = fast["speed_ratios"], big["rules"]["true"]["speed_ratios"]
    res, eff = fast["results"], d["rule_effect"]
    ch = fast["int8_chrf_change"]
    goal = lambda x: "met" if x >= 1.0 else "missed"  # noqa: E731
    return f"""{GENERATED}
# Generation engines

`python benchmarks/engines.py` translates the same {st['segments']} mixed-direction Wesnoth devtest
segments ({st['directions']} directions, seeded) with beam {st['beam']}, at most {st['max_new_tokens']}
new tokens and length penalty {st['length_penalty']}, each engine in its own process, alternating,
{st['repeats']} repeats, medians, under both stopping rules. `lslo` is `LSLoModel.translate` with
LSLo on every paper position (unmerged, at zero, so the adapters cost what trained ones cost) and
lslo's own beam search (`lslo.decoding`, the default engine) on torch's MKL path
(`--gemm reference`). `lslo-hf` is the same model through transformers' `generate`. CTranslate2
runs the base converted by its own `TransformersConverter` (no adapters). The settings are
explained in [the generation guide](../guides/generation.md).

## At equal work: CTranslate2's stopping rule (`early_stopping=True`)

CTranslate2 finishes a sentence once it holds `beam` finished hypotheses, which is
`early_stopping=True`. Every engine runs this rule here.

{source('engines')}
{engine_table(res)}
- Against CTranslate2 float32, lslo runs at **{r['lslo/ct2-float32']:.2f}x** at equal work (goal
  ≥ 1.0: {goal(r['lslo/ct2-float32'])}).
- Under the same rule, {100 * res['ct2-float32']['identical_to_lslo']:.0f}% of CTranslate2's translations
  equal lslo's; the others differ in at least
  one token.
- lslo's own search is **{r['lslo/lslo-hf']:.2f}x** its transformers path and **{r['lslo/hf-base']:.2f}x**
  transformers' `generate` on the plain base, with the same translations. It also runs fewer decoder
  row-steps ({res['lslo']['decoder_row_steps']} against {res['lslo-hf']['decoder_row_steps']}),
  because finished sentences leave the batch.
- int8: lslo int8 runs at {r['lslo-int8/ct2-int8']:.2f}x CTranslate2 int8 (goal ≥ 1.0:
  {goal(r['lslo-int8/ct2-int8'])}) and at {1 / r['lslo/lslo-int8']:.2f}x lslo float32.
  - It changes chrF++ by {ch['lslo-int8-lslo']:+.2f} against float32;
    {100 * res['lslo-int8']['identical_to_lslo']:.1f}% of its translations stay identical.
  - CTranslate2 int8 changes chrF++ by {ch['ct2-int8-ct2-float32']:+.2f};
    {100 * res['ct2-int8']['identical_to_lslo']:.1f}% of its translations equal lslo float32's.
- `--gemm onednn` (oneDNN on pre-packed weights) runs at {1 / r['lslo/lslo-onednn']:.2f}x torch's MKL
  path on this processor, with {100 * res['lslo-onednn']['identical_to_lslo']:.1f}% identical
  translations. `--gemm auto` therefore keeps MKL on Intel. On other vendors it takes oneDNN, as
  CTranslate2 does; no AMD processor has measured this page yet.

## transformers' default rule (`early_stopping=False`)

Under this rule a sentence goes on while a running beam could still win. CTranslate2 has no such
rule, so it does not run here.

{engine_table(slow["results"])}
What `early_stopping=True` changes, per engine:

{rule_effect_table(eff)}
On this sample the rule saves {100 * (1 - eff['lslo']['row_steps_ratio']):.1f}% of lslo's decoder
row-steps, at {eff['lslo']['chrf++_change']:+.2f} chrF++. It stays off by default (transformers'
behaviour); `--early-stopping` turns it on.

## At the M2M-100 418M shape

Random weights (so sentences run to the length limit, and both rules do the same work),
{big['settings']['segments']} segments, {big['settings']['max_new_tokens']} new tokens,
{big['settings']['repeats']} repeats, `early_stopping=True`:

- lslo is {rb['lslo/lslo-hf']:.2f}x its transformers path and {rb['lslo/ct2-float32']:.2f}x CTranslate2
  float32 (goal ≥ 1.0: {goal(rb['lslo/ct2-float32'])}).
- lslo int8 is {rb['lslo-int8/ct2-int8']:.2f}x CTranslate2 int8 (goal ≥ 1.0:
  {goal(rb['lslo-int8/ct2-int8'])}) and {1 / rb['lslo/lslo-int8']:.2f}x lslo float32.
{onednn_418m(rb)}
{source('engines_418m')}
{engine_table(big["rules"]["true"]["results"])}
{memory_section()}
## The beam-search cache on transformers' path

After every beam step, transformers reorders the whole cache by beam. That includes the
cross-attention keys and values, although a sentence's beams share them. On transformers' path
(`--engine transformers`), `LSLoModel.generate` passes a cache that reorders only the
self-attention part (`lslo.tuner.beam_cache.BeamSearchCache`).

`python benchmarks/generation.py` times `translate` of
{load('generation')['settings']['segments']} mixed segments with this cache and with transformers' own.

{source('generation')}
{generation_table()}
## Where the time goes in lslo's search

`python benchmarks/profile_generation.py`: one `translate` of the same segments under
torch.profiler ({load('profile_generation')['wall_s_profiled']:.2f} s profiled wall time).

{source('profile_generation')}
{profile_table()}"""


SERVER_NAMES = {
    "mixed": "dynamic mixed batching (`lslo serve`)",
    "single": "batch size 1",
    "direction": "one direction per batch",
    "peft": "PEFT, one LoRA per direction, mixed-adapter batches (as shipped)",
    "peft-cache": "PEFT, the same, + lslo's beam cache",
    "mixed-hf-cache": "dynamic mixed batching with transformers' beam cache",
    "mixed-auto": "dynamic mixed batching, every source `auto` (detected by the server)",
}


def serve_table(doc: dict) -> str:
    rows = [[str(r["clients"]), SERVER_NAMES.get(r["mode"], r["mode"]), f2(r["segments_per_s"]),
             f"{r['p50_ms'] / 1000:.2f} / {r['p95_ms'] / 1000:.2f} / {r['p99_ms'] / 1000:.2f}",
             f"{r['mean_batch_segments']:.1f} / {r['mean_batch_directions']:.1f}"] for r in doc["results"]]
    return table(["clients", "server", "segments/s", "latency p50 / p95 / p99 (s)",
                  "segments / directions per batch"], rows, "rlrrr")


def soak_rows(doc: dict) -> list[list[str]]:
    rows = []
    for s in doc["soak"]:
        what = " ".join(s["serve_args"]) or "no trim (`--trim-interval 0`)"
        if s["env"]:
            what = "glibc thresholds fixed: " + ", ".join(f"`{k}={v}`" for k, v in s["env"].items())
        rate = [x["segments_per_s"] for x in s["samples"] if "segments_per_s" in x]
        rows.append([what, str(s["requests"]), f"{s['rss_after_first_30s_mb']:.0f} MB", f"{s['rss_end_mb']:.0f} MB",
                     f"{s['rss_growth_after_warmup_mb']:+.1f} MB", f"{sum(rate) / len(rate):.1f}"])
    return rows


def detection_section() -> str:
    d = load("language_id")
    rows = []
    for r in d["detectors"]:
        ui, se = r["ui"], r["sentence"]
        rows.append([f"`{r['detector']}`" + (" (default)" if r["detector"] == "lingua" else ""),
                     f"{100 * ui['accuracy']:.1f}%", f"{ui['worst_language']} {100 * ui['per_language'][ui['worst_language']]:.0f}%",
                     f"{100 * se['accuracy']:.2f}%", f"{ui['ms_per_text']:.2f} / {se['ms_per_text']:.2f}",
                     f"{r['rss_mb']:.0f} MB"])
    ui_n, se_n = d["detectors"][0]["ui"]["texts"], d["detectors"][0]["sentence"]["texts"]
    return f"""## Language detection (`source: "auto"`, `/detect`)

`python benchmarks/language_id.py`: each detector restricted to the testbed's {len(d['languages'])} languages, as
the server restricts it to a run's, labels {ui_n:,} short UI strings (software devtest, 1-4 words) and
{se_n:,} sentences (held-out help devtest, 8 words or more), {d['per_language']} of each per language.

{source('language_id')}
{table(['detector', 'UI strings', 'worst language (UI)', 'sentences', 'ms per text (UI / sentence)', 'memory'], rows)}
`--detector` picks one (`lslo serve --detector langid`); the default is the most accurate on UI
strings, the hard case (sentences are near-perfect for all), and also the largest in memory: its
models load on the first `auto` or `/detect` request, so a server that never detects never pays
for them. Where memory is tight, `langid` keeps most of the accuracy at a tenth of the memory.
"""


def splitting_section() -> str:
    d = load("sentence_split")
    rows = [[f"`{r['splitter']}`" + (" (default)" if r["splitter"] == "sentencex" else ""),
             f"{100 * r['exact']:.1f}%", f"{r['worst_language']} {100 * r['per_language'][r['worst_language']]:.0f}%",
             f"{r['ms_per_paragraph']:.3f}"] for r in d["splitters"]]
    best = max(d["splitters"], key=lambda r: r["exact"])
    sx = next(r for r in d["splitters"] if r["splitter"] == "sentencex")
    return f"""## Sentence splitting

`python benchmarks/sentence_split.py`: {d['splitters'][0]['paragraphs']:,} paragraphs of
{d['sentences_per_paragraph']} single-sentence help segments (held-out devtest, all
{len(d['languages'])} languages); a paragraph counts when the splitter returns exactly its sentences.

{source('sentence_split')}
{table(['splitter', 'paragraphs split exactly', 'worst language', 'ms per paragraph'], rows)}
The default is `sentencex`: {100 * (best['exact'] - sx['exact']):.1f} points from the most exact here
(`{best['splitter']}`) at {best['ms_per_paragraph'] / max(sx['ms_per_paragraph'], 1e-9):.0f}x its speed, with rules
for every language (pysbd has 23 and falls back to English rules for the rest, here id, tr and vi).
"""


def auto_sentence(d: dict) -> str:
    auto = [r for r in d["results"] if r["mode"] == "mixed-auto"]
    if not auto:
        return ""
    ratios = ", ".join(f"{d['ratios'][f'mixed/mixed-auto@{c}']:.2f} at {c}" for c in (r["clients"] for r in auto)
                       if f"mixed/mixed-auto@{c}" in d["ratios"])
    acc = ", ".join(f"{100 * r['detection_accuracy']:.1f}%" for r in auto)
    agree = ", ".join(f"{100 * v:.1f}%" for k, v in d["agreement_with_mixed"].items() if k.startswith("mixed-auto"))
    return (f"With every source sent as `auto`, throughput with named sources / with `auto` is {ratios} clients "
            f"(above 1: detection costs that much). The server detected the segment's own language in {acc} of "
            f"requests, and its translations equal the named-source server's in {agree} (the rest were "
            "detected as another language).\n")


def rss_range(sk: dict) -> str:
    """The RSS samples after the first 30 s: their lowest and highest (a batch in flight holds more)."""
    later = [x["rss_mb"] for x in sk.get("samples", []) if x.get("t_s", 0) > 30]
    if not later:
        return ""
    return (f"The samples after the first 30 s lie between {min(later):.0f} and {max(later):.0f} MB: the "
            "resident memory rises while a large batch is in flight and falls back after it.")


def stale_warning(doc: dict) -> str:
    if doc.get("engine"):
        return ""
    return ("!!! warning \"Measured on transformers' path\"\n"
            "    These results were measured with transformers' `generate` and lslo's beam-search cache,\n"
            "    before `lslo serve` used lslo's own beam search (the default now; 1.78x faster on the same\n"
            "    segments in [Generation engines](engines.md)). Read them as lower bounds until\n"
            "    `benchmarks/serve.py` is run again.\n")


def serving_page() -> str:
    d, soak, bc = load("serve"), load("serve_soak_side_by_side"), load("serve_beam_cache")
    g, sk = d["goals"], d["soak"]
    goals = "; ".join(f"{k.replace('>=', '≥')}: {v:.2f}" for k, v in g.items() if v is not None)
    fails = ", ".join(f"{n} x {k}" for k, n in sk["failures"].items()) or "none"
    return f"""{GENERATED}
# Serving

`python benchmarks/serve.py`: real HTTP on loopback (uvicorn and httpx), the testbed base in
float32 with LSLo adapters at the paper's ranks given small random values (so every direction's
adapters do work), {d['model']['languages']} languages, all {d['model']['directions']} directions,
beam {d['settings']['beam']}, at most {d['settings']['max_new_tokens']} new tokens. Each request is one
Wesnoth devtest segment in a random direction; C clients send back to back. The PEFT server holds
one LoRA per direction exported from the same LSLo model and runs PEFT's mixed-adapter `generate`
on the same batches.

{stale_warning(d)}
{source('serve')}
{serve_table(d)}
Goals: {goals}. Every server's translations equal the mixed server's
({100 * min(v for k, v in d['agreement_with_mixed'].items() if not k.startswith('mixed-auto')):.0f}% agreement).
{auto_sentence(d)}
## Soak

`lslo serve` as a subprocess with its defaults, {sk['clients']} clients of mixed traffic for
{sk['minutes']:.0f} minutes: {sk['requests']:,} requests, {sk['errors']} errors ({fails}); RSS
{sk['rss_start_mb']:.0f} MB at the start, {sk['rss_after_first_30s_mb']:.0f} MB after 30 s,
{sk['rss_end_mb']:.0f} MB at the end ({sk['rss_growth_after_warmup_mb']:+.1f} MB after warm-up); exit code
{sk['sigterm_exit_code']} on SIGTERM. {rss_range(sk)}

## Why `--trim-interval 1` is the default

Three servers side by side, {soak['soak'][0]['minutes']:.0f} minutes each, {soak['soak'][0]['clients']} clients:

{source('serve_soak_side_by_side')}
{table(['server', 'requests', 'RSS after 30 s', 'RSS at the end', 'growth after warm-up', 'segments/s'],
       soak_rows(soak))}
Giving freed heap memory back to the OS after batches (`malloc_trim`) keeps the resident memory
flat at the same throughput; fixing glibc's thresholds by environment also keeps it flat, at a
lower throughput.

## The beam-search cache in the server

{source('serve_beam_cache')}
{serve_table(bc)}
Mixed batching at 64 clients is {bc['ratios']['mixed/mixed-hf-cache@64']:.2f}x faster with lslo's beam
cache than with transformers' own, with identical translations.

{pool_section()}
{detection_section()}
{splitting_section()}"""


def pool_section() -> str:
    d = load("serve_pool")
    rows = []
    for k, run in d["runs"].items():
        for a, b in zip(run["lslo"]["results"], run["ct2-pool"]["results"]):
            c = a["clients"]
            rows.append([k, str(c), f"{f2(a['segments_per_s'])} / {f2(b['segments_per_s'])}",
                         f"{run['ratios'][f'throughput_lslo/pool@{c}']:.2f}x",
                         f"{a['p50_ms'] / 1000:.2f} / {a['p95_ms'] / 1000:.2f}",
                         f"{b['p50_ms'] / 1000:.2f} / {b['p95_ms'] / 1000:.2f}",
                         f"{run['lslo']['peak_rss_mb']:.0f} / {run['ct2-pool']['peak_rss_mb']:.0f} MB",
                         f"{run['ratios']['memory_lslo/pool']:.2f}", f"{100 * run['ratios'][f'identical@{c}']:.0f}%"])
    st = d["settings"]
    return f"""## Against a CTranslate2 pool of merged directions

`python benchmarks/serve_pool.py`: what a user who wants CTranslate2's speed with fine-tuned weights
would deploy instead. Each of K directions is merged (`lslo merge`) and converted by CTranslate2's
converter; one float32 translator per direction sits behind the same HTTP front, with
one-direction batches. lslo serves all K from one model, with mixed batches. Both sides use
CTranslate2's stopping rule, beam {st['beam']} and at most {st['max_new_tokens']} new tokens. Each side
is its own process; memory is that process's peak resident set.

{source('serve_pool')}
{table(["K directions", "clients", "segments/s, lslo / pool", "lslo / pool", "lslo p50 / p95 (s)",
        "pool p50 / p95 (s)", "peak RSS, lslo / pool", "memory, lslo / pool", "identical"], rows, "rrrrrrrrr")}
Goal: lslo at least 1.5x the pool's throughput at a tenth of its memory, at K = 12 and 132.
{pool_verdict(d)}

"identical" is the share of requests with the same translation on both sides. It is lower than
between lslo and CTranslate2 on the plain base (engines page). A merged direction translated by
lslo's own search equals the unmerged LSLo model on a 24-segment en-es check, so the differences most likely
come from CTranslate2 and torch computing the randomly perturbed weights differently. This was not
investigated further.
"""


def pool_verdict(d: dict) -> str:
    out = []
    for k in ("12", "132"):
        run = d["runs"].get(k)
        if not run:
            continue
        r = run["ratios"]
        thr = min(v for n, v in r.items() if n.startswith("throughput"))
        ok = thr >= 1.5 and r["memory_lslo/pool"] <= 0.1
        out.append(f"At K = {k}: throughput {thr:.2f}x or better, memory {r['memory_lslo/pool']:.2f} "
                   f"({'met' if ok else 'missed'}).")
    return " ".join(out)


def shape_rows(d: dict) -> list[list[str]]:
    rows = []
    for name, r in d["results"].items():
        tl, tr, el, eb = r["train_lslo"], r["train_lora"], r["evaluate_lslo"], r["evaluate_base"]
        rows.append([name, f"{r['parameters'] / 1e6:.1f}M", f"{tl['seconds_per_update_after_first']:.1f} s",
                     f"{tr['seconds_per_update_after_first']:.1f} s", gib(tl["peak_rss_bytes"]),
                     f"{gib(tr['peak_rss_bytes'])} ({tl['peak_rss_bytes'] / tr['peak_rss_bytes']:.3f}x)",
                     f"{gib(el['peak_rss_bytes'])} / {gib(eb['peak_rss_bytes'])}",
                     f"{el['seconds']:.0f} / {eb['seconds']:.0f} s", f"{tl['trainable_percent']:.2f}%"])
    return rows


def full_shape_page() -> str:
    d = load("full_shape")
    ok = all(r["finite_losses"] for r in d["results"].values())
    head = ["model", "parameters (as built)", "s / update, LSLo", "shared LoRA (r 8)", "peak RSS, LSLo train",
            "shared LoRA train", "peak RSS, evaluate LSLo / base", "time, evaluate LSLo / base",
            "LSLo trainable share"]
    return f"""{GENERATED}
# Full-size shapes

`python benchmarks/speed.py --full-shape` builds random-weight models from the published configs
(M2M-100 418M and NLLB-200-distilled-600M: 12+12 layers, d_model 1024, their full vocabularies;
nothing is downloaded), saves them with a real tokenizer of the family, and runs `lslo train` (the
paper's positions, routing and ranks 2/2/8, 12 languages, gradual pruning reaching 90% of B within
the run) and `lslo evaluate` (beam 4, 6 mixed directions x 2 segments), each in its own process,
on the Wesnoth dev split, 3 updates.

{source('full_shape')}
{table(head, shape_rows(d))}
Losses are {'finite in every run' if ok else '**not finite in every run**'}. An LSLo training process
needs the shared LoRA's memory plus a few percent; the trainable share is that of 12 languages
together, before pruning. Per-update times over 2 timed updates on 2 cores are a sanity check, not
a speed measurement. M2M-100 "418M" counts
{d['results']['m2m100_418M']['parameters'] / 1e6:.1f}M parameters as transformers builds it; the name
is the checkpoint's.
"""


PAGES = {
    "docs/results/speed.md": speed_page,
    "docs/results/memory.md": memory_page,
    "docs/results/engines.md": engines_page,
    "docs/results/serving.md": serving_page,
    "docs/results/full-shape.md": full_shape_page,
}
