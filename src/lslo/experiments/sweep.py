"""Ablation sweeps: rank settings x position sets on the same data (the paper's ablations).

    lslo sweep CONFIG --ranks 2/2/8,8/8/8,2/2/2 --positions all,attention,ffn \\
        [--set key=value ...] --out DIR

Every variant is the run config with ``lslo.ranks`` and ``lslo.{encoder,decoder}_positions``
replaced; it is trained with ``lslo.training.trainer.Trainer`` and evaluated with
``lslo.evaluation.evaluate.evaluate_model`` in its own run directory ``DIR/<variant>/`` (a normal run
directory: ``lslo evaluate / info / report`` work on it). The sweep is resumable: a variant
whose evaluation (``DIR/<variant>/eval-<split>-<checkpoint>/scores.json``) exists is skipped,
a trained but unevaluated one is only evaluated, an interrupted one resumes from its last
checkpoint. A variant directory holding a different config is an error (``--overwrite``
retrains it).

Ranks: ``H/M/L`` (high/medium/low, e.g. ``2/2/8``, the paper), a single ``R`` (every level),
or ``config`` (as configured). Positions: ``all`` (the paper: encoder q,k,v,fc1,fc2; decoder
q,k,v,cross_q,cross_k,cross_v,fc1,fc2), ``attention`` (q,k,v, plus cross_q,k,v in the decoder),
``ffn`` (fc1,fc2), ``config``, or an explicit ``+``-joined list such as ``q+v+fc1`` (cross_*
positions go to the decoder only). ``--design grid`` (default) runs every rank setting with
every position set; ``--design axes`` runs the rank settings with the first position set and
the position sets with the first rank setting, as the paper's one-factor ablations.

The result is ONE markdown table (printed, and written to ``DIR/sweep.md``; everything to
``DIR/sweep.json``): variant, trainable % of the base model, surviving parameters per language
by resource level (% of base), and spBLEU / chrF++ per group of directions and overall.
"""

from __future__ import annotations

import gc
import json
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lslo.tuner.config import DECODER_POSITIONS, ENCODER_POSITIONS, LEVELS, ConfigError

__all__ = [
    "POSITION_PRESETS",
    "Variant",
    "make_variants",
    "parse_positions",
    "parse_ranks",
    "run_sweep",
    "sweep_table",
]

PAPER_ENCODER = ["q", "k", "v", "fc1", "fc2"]
PAPER_DECODER = ["q", "k", "v", "cross_q", "cross_k", "cross_v", "fc1", "fc2"]
POSITION_PRESETS: dict[str, tuple[list[str], list[str]]] = {
    "all": (PAPER_ENCODER, PAPER_DECODER),
    "attention": (["q", "k", "v"], ["q", "k", "v", "cross_q", "cross_k", "cross_v"]),
    "ffn": (["fc1", "fc2"], ["fc1", "fc2"]),
}
_GROUP_LEVELS = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class Variant:
    """One point of the sweep. ``ranks``/positions None = as in the config."""

    name: str
    ranks_label: str
    positions_label: str
    ranks: dict[str, int] | None
    encoder_positions: list[str] | None
    decoder_positions: list[str] | None


# --------------------------------------------------------------------------- parsing


def parse_ranks(text: str) -> tuple[str, dict[str, int] | None]:
    """'2/2/8' -> ('r2-2-8', {high: 2, medium: 2, low: 8}); '4' -> every level 4; 'config' -> None."""
    text = text.strip()
    if text == "config":
        return "rconfig", None
    parts = text.split("/")
    if len(parts) == 1:
        parts = parts * 3
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) >= 1 for p in parts):
        raise ConfigError(f"--ranks {text!r}: expected HIGH/MEDIUM/LOW ranks (e.g. 2/2/8), one rank, or 'config'")
    values = [int(p) for p in parts]
    return "r" + "-".join(str(v) for v in values), dict(zip(LEVELS, values))


def parse_positions(text: str) -> tuple[str, list[str] | None, list[str] | None]:
    """A preset (all / attention / ffn / config) or 'q+v+fc1' -> (label, encoder, decoder positions)."""
    text = text.strip()
    if text == "config":
        return "config", None, None
    if text in POSITION_PRESETS:
        enc, dec = POSITION_PRESETS[text]
        return text, list(enc), list(dec)
    items = [p.strip() for p in text.split("+") if p.strip()]
    bad = [p for p in items if p not in DECODER_POSITIONS]
    if not items or bad:
        raise ConfigError(
            f"--positions {text!r}: expected {', '.join([*POSITION_PRESETS, 'config'])} or a '+'-joined list of "
            f"{', '.join(DECODER_POSITIONS)}" + (f" (unknown: {', '.join(bad)})" if bad else "")
        )
    if len(set(items)) != len(items):
        raise ConfigError(f"--positions {text!r}: duplicate positions")
    enc = [p for p in ENCODER_POSITIONS if p in items]
    dec = [p for p in DECODER_POSITIONS if p in items]
    return "+".join(dec), enc, dec


def split_list(text: str) -> list[str]:
    return [x for x in (s.strip() for s in text.split(",")) if x]


def make_variants(ranks: list[str], positions: list[str], design: str = "grid") -> list[Variant]:
    """The variants of a sweep, in a stable order (ranks outer, positions inner for ``grid``)."""
    if not ranks or not positions:
        raise ConfigError("sweep: give at least one rank setting and one position set")
    if design not in ("grid", "axes"):
        raise ConfigError(f"--design: expected grid or axes, got {design!r}")
    pr = [parse_ranks(r) for r in ranks]
    pp = [parse_positions(p) for p in positions]
    if design == "grid":
        pairs = [(r, p) for r in pr for p in pp]
    else:
        pairs = [(r, pp[0]) for r in pr] + [(pr[0], p) for p in pp[1:]]
    out, seen = [], set()
    for (rl, rv), (pl, enc, dec) in pairs:
        name = f"{rl}_{pl}"
        if name in seen:
            continue
        seen.add(name)
        out.append(Variant(name, rl, pl, rv, enc, dec))
    return out


# --------------------------------------------------------------------------- running


def variant_config(base: Any, variant: Variant, run_dir: Path) -> Any:
    """The base RunConfig with the variant's ranks / positions (a new, validated object)."""
    from lslo.training.config import RunConfig
    from lslo.tuner.config import LSLoConfig

    data = base.to_dict()
    lslo = data["lslo"]
    if variant.ranks is not None:
        lslo["ranks"] = dict(variant.ranks)
    if variant.encoder_positions is not None:
        lslo["encoder_positions"] = list(variant.encoder_positions)
        lslo["decoder_positions"] = list(variant.decoder_positions or [])
    data["output_dir"] = str(run_dir)
    try:
        LSLoConfig.from_dict(lslo, where="lslo")
        return RunConfig.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"variant {variant.name}: {e}") from None


def _first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            d = _first_difference(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
            if d:
                return d
        return None
    return None if a == b else f"{prefix}: {a!r} here, {b!r} in the run"


def _config_conflict(cfg: Any, run_dir: Path) -> str | None:
    from lslo.training.config import RunConfig

    saved = RunConfig.load(run_dir / "config.yaml").to_dict()
    mine = cfg.to_dict()
    saved.pop("output_dir", None)
    mine.pop("output_dir", None)
    return _first_difference(mine, saved)


def _has_checkpoint(run_dir: Path) -> bool:
    from lslo.training import RunError, checkpoint_dir

    try:
        checkpoint_dir(run_dir, "last")
        return True
    except RunError:
        return False


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # pragma: no cover - best effort
        pass


class _EvalData:
    """The test corpus, loaded once for every variant (the data config is shared)."""

    def __init__(self) -> None:
        self.key: Any = None
        self.corpus: Any = None
        self.split = ""

    def get(self, cfg: Any):
        from lslo.data.corpus import load_corpus
        from lslo.training import load_splits

        d = cfg.data
        key = (d.path, d.format, d.test_split, d.empty, json.dumps(d.split_ratios, sort_keys=True),
               tuple(cfg.lslo.codes))
        if key != self.key:
            if d.split_ratios:
                self.corpus, self.split = load_splits(cfg)["test"], "test"
            else:
                if not d.test_split:
                    raise ConfigError("data.test_split: a sweep evaluates every variant; set a test split")
                self.corpus = load_corpus(d.path, d.test_split, cfg.lslo.codes, fmt=d.format, empty=d.empty)
                self.split = d.test_split
            self.key = key
        return self.corpus, self.split


def eval_dir_name(cfg: Any, checkpoint: str) -> str:
    split = "test" if cfg.data.split_ratios else cfg.data.test_split
    return f"eval-{split}-{checkpoint}"


def _per_level(parameters: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Mean surviving parameters per language, by level, from a run's parameters.json."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for code, row in parameters.get("per_language", {}).items():
        groups.setdefault(row["level"], []).append({"code": code, **row})
    order = {lvl: i for i, lvl in enumerate(LEVELS)}
    out = {}
    for level in sorted(groups, key=lambda x: (order.get(x, 9), x)):
        rows = groups[level]
        out[level] = {
            "languages": [r["code"] for r in rows],
            "parameters_mean": sum(r["parameters"] for r in rows) / len(rows),
            "percent_of_base_mean": sum(r["percent_of_base"] for r in rows) / len(rows),
            "rank_mean": sum(r["rank"] for r in rows) / len(rows),
        }
    return out


def run_variant(
    base_cfg: Any,
    variant: Variant,
    out_dir: Path,
    *,
    checkpoint: str = "best",
    device: str | None = None,
    quiet: bool = False,
    report: bool = True,
    overwrite: bool = False,
    eval_data: _EvalData | None = None,
    log=None,
) -> dict[str, Any]:
    """Train (or resume) and evaluate one variant; skip what is already done. Returns its row."""
    from lslo.evaluation import SpBleu, evaluate_model, write_scores
    from lslo.training import RunError, Trainer, load_run, run_directions

    log = log or (lambda msg: None)
    run_dir = out_dir / variant.name
    cfg = variant_config(base_cfg, variant, run_dir)
    eval_dir = run_dir / eval_dir_name(cfg, checkpoint)
    scores_path = eval_dir / "scores.json"
    params_path = run_dir / "parameters.json"
    if (run_dir / "config.yaml").is_file():
        conflict = _config_conflict(cfg, run_dir)
        if conflict and not overwrite:
            raise RunError(f"{run_dir}: holds a run with another config ({conflict}); use --overwrite or another --out")
        if conflict:
            shutil.rmtree(run_dir)
    elif run_dir.exists() and overwrite:
        shutil.rmtree(run_dir)
    status = "skipped"
    timing: dict[str, float] = {}
    if not (params_path.is_file() and scores_path.is_file()):
        if not params_path.is_file():
            resume = _has_checkpoint(run_dir)
            if not resume and run_dir.exists():
                shutil.rmtree(run_dir)  # died before its first checkpoint: nothing to keep
            log(f"[{variant.name}] {'resuming' if resume else 'training'} in {run_dir}")
            t0 = time.time()
            trainer = Trainer(cfg, run_dir, device=device, quiet=quiet)
            result = trainer.train(resume=resume)
            del trainer
            _free_memory()
            timing["train_s"] = round(time.time() - t0, 1)
            if result.interrupted:
                return {"variant": variant.name, "status": "interrupted", "run_dir": str(run_dir)}
            status = "trained"
        else:
            status = "evaluated"
        log(f"[{variant.name}] evaluating ({checkpoint})")
        t0 = time.time()
        cfg_run, model = load_run(run_dir, checkpoint=checkpoint, device=device)
        corpus, split = (eval_data or _EvalData()).get(cfg_run)
        e = cfg_run.eval
        scores = evaluate_model(
            model, corpus, run_directions(cfg_run, e.directions), beam=e.beam, batch_size=e.batch_size,
            max_new_tokens=e.max_new_tokens, length_penalty=e.length_penalty, engine=e.engine,
            early_stopping=e.early_stopping,
            spbleu=SpBleu.for_model(e.spm_tokenizer, model.tokenizer, e.spm_model), max_segments=e.max_segments, quiet=quiet,
        )
        write_scores(scores, eval_dir, f"{variant.name} ({checkpoint}) on {split}", codes=cfg_run.lslo.codes)
        if report:
            from lslo.reporting.report import write_run_report

            write_run_report(run_dir, model)
        del model
        _free_memory()
        timing["eval_s"] = round(time.time() - t0, 1)
    else:
        log(f"[{variant.name}] done already: {scores_path}")
    parameters = json.loads(params_path.read_text(encoding="utf-8"))
    scores = json.loads(scores_path.read_text(encoding="utf-8"))
    return {
        "variant": variant.name,
        "ranks": variant.ranks_label[1:].replace("-", "/"),
        "positions": variant.positions_label,
        "encoder_positions": cfg.lslo.encoder_positions,
        "decoder_positions": cfg.lslo.decoder_positions,
        "level_ranks": dict(cfg.lslo.ranks),
        "status": status,
        "run_dir": str(run_dir),
        "scores": str(scores_path),
        "method": parameters.get("method"),
        "trainable_parameters": parameters.get("trainable_parameters"),
        "trainable_percent": parameters.get("trainable_percent"),
        "per_level": _per_level(parameters),
        "groups": scores["groups"],
        "signatures": scores["signatures"],
        **timing,
    }


# --------------------------------------------------------------------------- table


def _group_key(name: str) -> tuple[int, int, str]:
    if name == "all":
        return (9, 9, name)
    a, _, b = name.partition("->")
    return (_GROUP_LEVELS.get(a, 5), _GROUP_LEVELS.get(b, 5), name)


def sweep_table(rows: list[dict[str, Any]], title: str = "") -> str:
    """ONE markdown table: a row per variant; group cells are 'spBLEU / chrF++' (chrF++ alone without spBLEU)."""
    rows = [r for r in rows if "groups" in r]
    metrics = [m for m in ("spbleu", "chrf++") if rows and all(m in r["signatures"] for r in rows)]
    groups = sorted({g for r in rows for g in r["groups"]}, key=_group_key)
    levels = sorted({lv for r in rows for lv in r["per_level"]}, key=lambda x: (LEVELS.index(x) if x in LEVELS else 9, x))
    metric_label = " / ".join({"spbleu": "spBLEU", "chrf++": "chrF++"}[m] for m in metrics)
    lines = [f"### {title}", ""] if title else []
    head = ["variant", "ranks h/m/l", "positions", "trainable %"]
    head += [f"{lv} params/lang %" for lv in levels] + groups
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---|---|---|" + "---:|" * (1 + len(levels) + len(groups)))
    for r in rows:
        cells = [r["variant"], r["ranks"], r["positions"], _pct(r.get("trainable_percent"))]
        cells += [_pct(r["per_level"][lv]["percent_of_base_mean"]) if lv in r["per_level"] else "–" for lv in levels]
        for g in groups:
            row = r["groups"].get(g)
            cells.append(" / ".join(f"{row[m]:.2f}" for m in metrics) if row else "–")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Group cells: {metric_label} averaged over the directions of the group; params/lang: surviving "
                 "adapter parameters per language of the level, mean, % of the base model.")
    return "\n".join(lines) + "\n"


def _pct(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:.3f}" if v >= 0.01 or v == 0 else f"{v:.2e}"


# --------------------------------------------------------------------------- driver


def run_sweep(
    config: str | Path,
    ranks: list[str],
    positions: list[str],
    out: str | Path,
    *,
    overrides: list[str] | None = None,
    design: str = "grid",
    checkpoint: str = "best",
    device: str | None = None,
    quiet: bool = False,
    report: bool = True,
    overwrite: bool = False,
    log=None,
) -> dict[str, Any]:
    """Run every variant (skipping finished ones); write ``OUT/sweep.json`` and ``OUT/sweep.md``."""
    from lslo.training.config import RunConfig

    base = RunConfig.load(config, overrides or [])
    variants = make_variants(ranks, positions, design)
    if any(lang.rank is not None for lang in base.lslo.languages) and any(v.ranks for v in variants):
        warnings.warn("sweep: some languages have an explicit rank in the config; it overrides the swept "
                      "level ranks for those languages", stacklevel=2)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    eval_data = _EvalData()
    rows = []
    interrupted = False
    for v in variants:
        row = run_variant(base, v, out, checkpoint=checkpoint, device=device, quiet=quiet, report=report,
                          overwrite=overwrite, eval_data=eval_data, log=log)
        if row["status"] == "interrupted":
            interrupted = True
            break
        rows.append(row)
    title = f"sweep of {Path(config).name}" + (f" ({' '.join(overrides)})" if overrides else "")
    table = sweep_table(rows, title)
    result = {
        "config": str(config),
        "overrides": list(overrides or []),
        "design": design,
        "checkpoint": checkpoint,
        "variants": rows,
        "pending": [v.name for v in variants[len(rows):]],
        "interrupted": interrupted,
        "table": table,
    }
    if rows:
        sig = rows[0]["signatures"]
        md = table + "\n" + "\n".join(f"- {m}: `{s}`" for m, s in sig.items()) + "\n"
        (out / "sweep.md").write_text(md, encoding="utf-8")
    (out / "sweep.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    return result

