"""The demo page: `make demo`'s scores by resource group (``demo.json``, one run's
``demo_summary.json`` as committed) and how time and scores vary across machines
(``demo_runs.json``: every reported run, each with where it was reported)."""

from __future__ import annotations

from tools.docs.common import GENERATED, f2, load, signed, source, table
from tools.docs.quality import GROUPS, gname


def group_rows(d: dict) -> list[list[str]]:
    rows = []
    for g in [*GROUPS, "all"]:
        b, lo = d["base"][g], d["lslo"][g]
        rows.append([gname(g) if g != "all" else "**all**", str(b["directions"]), f2(b["chrf++"]), f2(lo["chrf++"]),
                     signed(lo["chrf++"] - b["chrf++"]), f2(b["spbleu"]), f2(lo["spbleu"]),
                     signed(lo["spbleu"] - b["spbleu"])])
    return rows


def minutes(s: float) -> str:
    return f"{int(s // 60)} min {int(round(s % 60))} s"


def runs_rows(runs: list[dict]) -> list[list[str]]:
    rows = []
    for r in runs:
        wall = minutes(r["wall_seconds"]) if r.get("wall_seconds") else "not recorded"
        ft = f"{r['fine_tuning_seconds']:.0f} s" if r.get("fine_tuning_seconds") else "not recorded"
        low = f2(r["low_low_chrf"]) if r.get("low_low_chrf") is not None else "not recorded"
        rows.append([r["processor"], r["date"], wall, ft, f2(r["all_chrf"]), low, r["reported_in"]])
    return rows


def spread_sentence(runs: list[dict], d: dict) -> str:
    alls = [r["all_chrf"] for r in runs]
    lows = [r["low_low_chrf"] for r in runs if r.get("low_low_chrf") is not None]
    walls = [r["wall_seconds"] for r in runs if r.get("wall_seconds")]
    base_all, base_low = d["base"]["all"]["chrf++"], d["base"]["low->low"]["chrf++"]
    return (f"Across {len(runs)} runs the all-directions chrF++ spans {f2(min(alls))} to {f2(max(alls))} "
            f"({signed(min(alls) - base_all)} to {signed(max(alls) - base_all)} over the base's {f2(base_all)}), "
            f"low→low {f2(min(lows))} to {f2(max(lows))} ({signed(min(lows) - base_low)} to "
            f"{signed(max(lows) - base_low)} against the base's {f2(base_low)}), and the wall time "
            f"{minutes(min(walls))} to {minutes(max(walls))}.")


def kept_sentence(d: dict) -> str:
    per = d["parameters"]["per_language"]
    by: dict[str, list[float]] = {}
    for v in per.values():
        by.setdefault(v["level"], []).append(v["percent_of_base"])
    parts = []
    for lvl in (x for x in ("high", "medium", "low") if x in by):
        lo, hi = f"{min(by[lvl]):.2f}", f"{max(by[lvl]):.2f}"
        parts.append(f"{lvl} {lo}%" if lo == hi else f"{lvl} {lo}-{hi}%")
    return (f"Each language's adapters are a small share of the base's {d['parameters']['base_parameters'] / 1e6:.1f}M "
            f"parameters ({', '.join(parts)}; all {len(per)} together {d['parameters']['trainable_percent']:.1f}%).")


def examples(d: dict) -> str:
    rows = [[f"`{e['direction']}`", e["source"], e["reference"], e["base"], e["lslo"]] for e in d["examples"]]
    return table(["direction", "source", "reference", "base", "LSLo"], rows, "lllll")


def demo_page() -> str:
    d, runs = load("demo"), load("demo_runs")["runs"]
    ph = d["phases_seconds"]
    below = [gname(g) for g in GROUPS if d["lslo"][g]["chrf++"] <= d["base"][g]["chrf++"]]
    above = len(GROUPS) - len(below)
    return f"""{GENERATED}
# The offline demo

`make demo` runs `python -m lslo.testbed.demo`: the [testbed base](../testbed.md) (11.5M
parameters), LSLo fine-tuning on all 132 directions of the software set's dev split with the
paper's ranks (2/2/8), positions and pruning (90% of B, cubic schedule), {d['steps']} updates, then
chrF++ and spBLEU on 36 directions x the first {d['segments']} devtest segments, before and after.
It is the [quality benchmark](quality.md)'s `lslo+prune` run.

{source('demo')}
Phases: base scores {ph['base scores']:.0f} s, fine-tuning {ph['fine-tuning']:.0f} s, scores after
{ph['scores after']:.0f} s; {minutes(d['seconds'])} in all.

{table(['group', 'dirs', 'base chrF++', 'LSLo chrF++', 'Δ', 'base spBLEU', 'LSLo spBLEU', 'Δ'], group_rows(d))}
LSLo ends above the base in {above} of {len(GROUPS)} groups in chrF++
{('(not above in ' + ', '.join(below) + ')') if below else ''}. Each group holds 192 segments, so a
difference under about 1 chrF++ in one group is within noise. {kept_sentence(d)}

What these numbers mean on an 11.5M-parameter base: the right domain words more often, still far
from a usable translation.

{examples(d)}
## Across machines

Runs are deterministic on one machine: seeded data order and initialisation and the same thread
count give every score identically on a rerun. Between processors the vector kernels round
differently, and 300 updates at learning rate 1e-2 amplify that, so the same command gives
slightly different scores. Every reported run of `make demo` (or of its `python -m
lslo.testbed.demo`), 2 cores each:

{source('demo_runs')}
{table(['processor', 'date', 'wall time', 'fine-tuning', 'all chrF++', 'low→low chrF++', 'reported in'],
       runs_rows(runs), 'lllrrrl')}
{spread_sentence(runs, d)} Read the demo's per-group scores with that margin.
"""


PAGES = {"docs/results/demo.md": demo_page}
