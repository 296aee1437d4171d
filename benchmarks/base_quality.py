"""Score the testbed base model (no fine-tuning) through `lslo evaluate`, beam 4, on two sets:

* the held-out text of its own pretraining domain (LibreOffice help segments never trained on):
  all 12 high<->high directions, plus a fixed subset of 36 directions covering every resource
  group equally (4 per source-level x target-level group, every language 3 times as source and
  3 times as target), for the all-directions estimate;
* the fine-tuning domain's devtest (Wesnoth campaign fiction), the same 36 directions.

Prints one JSON object (also written to --json) with chrF++ and spBLEU per group, the
signatures, and 5 example translations per resource group of the held-out set.

    python benchmarks/base_quality.py --config configs/testbed-wesnoth-lang12.yaml --segments 40
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lslo.cli.main import main as lslo  # noqa: E402
from lslo.testbed.demo import demo_directions  # noqa: E402
from lslo.training import RunConfig  # noqa: E402

HIGH_HIGH_GOAL = 45.0
ALL_GOAL = 30.0


def levels_of(cfg: RunConfig) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"high": [], "medium": [], "low": []}
    for lang in cfg.lslo.languages:
        out[lang.level].append(lang.code)
    return out


def run_eval(config: str, data: str, dirs: list[tuple[str, str]], segments: int, out: Path) -> dict:
    argv = ["evaluate", config, "--checkpoint", "none", "--data", data, "--split", "devtest", "--beam", "4",
            "--directions", ",".join(f"{s}-{t}" for s, t in dirs), "--max-segments", str(segments),
            "--out", str(out), "--overwrite", "--quiet"]
    if lslo(argv) != 0:
        raise SystemExit(f"base_quality: `lslo {' '.join(argv)}` failed")
    return json.loads((out / "scores.json").read_text(encoding="utf-8"))


def examples(out: Path, data: Path, flores: dict[str, str], groups: dict[str, str], n: int = 5) -> dict:
    """First segment of up to ``n`` directions per group: source, reference, hypothesis."""
    got: dict[str, list] = {}
    for name, group in sorted(groups.items()):
        if len(got.setdefault(group, [])) >= n:
            continue
        s, t = name.split("-")
        src = (data / "flores200_dataset" / "devtest" / f"{flores[s]}.devtest").read_text().split("\n")[0]
        ref = (data / "flores200_dataset" / "devtest" / f"{flores[t]}.devtest").read_text().split("\n")[0]
        hyp = (out / "hyps" / f"{name}.txt").read_text().split("\n")[0]
        got[group].append({"direction": name, "source": src, "reference": ref, "base": hyp})
    return got


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "testbed-wesnoth-lang12.yaml"))
    ap.add_argument("--heldout", default=str(ROOT / "data" / "testbed" / "heldout"))
    ap.add_argument("--finetune", default=str(ROOT / "data" / "testbed" / "wesnoth"))
    ap.add_argument("--segments", type=int, default=40, help="first N devtest segments of every direction")
    ap.add_argument("--json", default=None, help="also write the result here")
    args = ap.parse_args(argv)
    cfg = RunConfig.load(args.config)
    levels = levels_of(cfg)
    balanced = demo_directions(levels)
    high = [(s, t) for s in levels["high"] for t in levels["high"] if s != t]
    dirs = list(dict.fromkeys(balanced + high))
    manifest = json.loads((Path(args.heldout).parent / "MANIFEST.json").read_text(encoding="utf-8"))
    flores = {lang["code"]: lang["flores"] for lang in manifest["languages"]}
    with tempfile.TemporaryDirectory() as tmp:
        held = run_eval(args.config, args.heldout, dirs, args.segments, Path(tmp) / "held")
        bal = {f"{s}-{t}" for s, t in balanced}
        groups = {k: v["group"] for k, v in held["directions"].items() if k in bal}
        ex = examples(Path(tmp) / "held", Path(args.heldout), flores, groups)
        fine = run_eval(args.config, args.finetune, balanced, args.segments, Path(tmp) / "fine")

    def summary(scores: dict, names: set[str]) -> dict:
        rows = [v for k, v in scores["directions"].items() if k in names]
        by: dict[str, list] = {}
        for r in rows:
            by.setdefault(r["group"], []).append(r)
        metrics = [m for m in ("chrf++", "spbleu") if rows and m in rows[0]]
        out = {g: {m: round(sum(r[m] for r in rs) / len(rs), 2) for m in metrics} | {"directions": len(rs)}
               for g, rs in sorted(by.items())}
        out["all"] = {m: round(sum(r[m] for r in rows) / len(rows), 2) for m in metrics} | {"directions": len(rows)}
        return out

    hh = {f"{s}-{t}" for s, t in high}
    result = {
        "config": args.config, "segments_per_direction": args.segments, "beam": 4,
        "heldout_pretraining_domain": {"high->high (all 12)": summary(held, hh)["all"],
                                       "balanced 36": summary(held, bal)},
        "finetune_domain_devtest": {"balanced 36": summary(fine, bal)},
        "goals": {"heldout high->high chrF++ >= ": HIGH_HIGH_GOAL, "heldout all chrF++ >= ": ALL_GOAL},
        "signatures": held["signatures"],
        "examples_heldout": ex,
    }
    result["goals_met"] = {
        "high->high": result["heldout_pretraining_domain"]["high->high (all 12)"]["chrf++"] >= HIGH_HIGH_GOAL,
        "all": result["heldout_pretraining_domain"]["balanced 36"]["all"]["chrf++"] >= ALL_GOAL,
    }
    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
