"""Resource levels assigned automatically (levels come from the config, or from the
amount of training data per language, or from the base model's own chrF++ per language).

A level decides a language's rank (paper: high = 2, medium = 2, low = 8). Two sources:

- ``levels_from_counts({lang: amount})``: most data = high. The amount is whatever
  measures a language's resources (pre-training sentences, in-house corpus size...);
  a multi-way corpus such as FLORES has the same number of segments in every language,
  so it cannot be counted from the fine-tuning data itself.
- ``levels_from_scores({lang: score})``: best base-model score = high. The per-language
  score is the mean chrF++ of every direction into and out of the language
  (``language_scores``), read from the ``scores.json`` that
  ``lslo evaluate RUN --checkpoint none [--split dev]`` writes for the untouched base model.

Either way languages are ranked by value, highest first, ties broken by language code
(so the result does not depend on dict order), and cut into high / medium / low by
``split`` (fractions of the languages, default thirds; boundaries at
round-half-up(n * cumulative fraction)) or by ``thresholds`` (value >= high_min: high,
>= medium_min: medium, else low).

``apply_levels(config_dict, levels)`` writes the levels into a run (or LSLo) config's
``lslo.languages``; ``lslo levels CONFIG --counts ... | --scores ... --out NEW.yaml`` does
it from the command line.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lslo.tuner.config import LEVELS, ConfigError

__all__ = [
    "apply_levels",
    "assign_levels",
    "language_scores",
    "levels_from_counts",
    "levels_from_scores",
    "parse_split",
]

DEFAULT_SPLIT = (1 / 3, 1 / 3, 1 / 3)
_EPS = 1e-9


def check_values(values: Mapping[str, Any], what: str) -> dict[str, float]:
    if not isinstance(values, Mapping) or not values:
        raise ValueError(f"{what}: expected a non-empty mapping language -> number")
    out = {}
    for code, v in values.items():
        if not isinstance(code, str) or not code:
            raise ValueError(f"{what}: language codes must be non-empty strings, got {code!r}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{what}[{code}]: expected a finite number, got {v!r}")
        out[code] = float(v)
    return out


def _check_split(split: Sequence[float]) -> tuple[float, float, float]:
    if len(split) != 3:
        raise ValueError(f"split: expected 3 numbers (high, medium, low), got {list(split)!r}")
    for x in split:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
            raise ValueError(f"split: expected non-negative numbers, got {list(split)!r}")
    total = float(sum(split))
    if total <= 0:
        raise ValueError(f"split: expected at least one positive share, got {list(split)!r}")
    return tuple(float(x) / total for x in split)  # type: ignore[return-value]


def assign_levels(
    values: Mapping[str, float],
    split: Sequence[float] = DEFAULT_SPLIT,
    thresholds: Sequence[float] | None = None,
    what: str = "values",
) -> dict[str, str]:
    """{lang: level}: the highest values are 'high'. Keys come back in ranking order.

    ``split``: shares of languages (normalised, so ``(4, 4, 4)`` = thirds) for high,
    medium, low; with n languages the boundaries are round-half-up(n * cumulative share).
    ``thresholds`` (high_min, medium_min), when given, replaces ``split``.
    Ties: equal values are ranked by language code.
    """
    vals = check_values(values, what)
    ranked = sorted(vals, key=lambda c: (-vals[c], c))
    if thresholds is not None:
        if len(thresholds) != 2:
            raise ValueError(f"thresholds: expected (high_min, medium_min), got {list(thresholds)!r}")
        hi, med = (float(x) for x in thresholds)
        if not (math.isfinite(hi) and math.isfinite(med)) or hi < med:
            raise ValueError(f"thresholds: expected finite high_min >= medium_min, got {list(thresholds)!r}")
        return {c: "high" if vals[c] >= hi else "medium" if vals[c] >= med else "low" for c in ranked}
    shares = _check_split(split)
    n = len(ranked)
    b1 = min(n, math.floor(n * shares[0] + 0.5 + _EPS))
    b2 = max(b1, min(n, math.floor(n * (shares[0] + shares[1]) + 0.5 + _EPS)))
    return {c: "high" if i < b1 else "medium" if i < b2 else "low" for i, c in enumerate(ranked)}


def tie_notes(values: Mapping[str, float], levels: Mapping[str, str]) -> list[str]:
    """One line per group of languages with equal values that ended in different levels: the tie
    was broken by language code, and the line says which way it went."""
    groups: dict[float, list[str]] = {}
    for code in levels:
        groups.setdefault(float(values[code]), []).append(code)
    notes = []
    for value, codes in groups.items():
        if len({levels[c] for c in codes}) > 1:
            went = ", ".join(f"{c} -> {levels[c]}" for c in codes)
            notes.append(f"tie: {' and '.join(codes)} all have {value:g}; broken by language code: {went} "
                         "(use --thresholds or different --split shares to decide it yourself)")
    return notes


def levels_from_counts(
    counts: Mapping[str, float],
    split: Sequence[float] = DEFAULT_SPLIT,
    thresholds: Sequence[float] | None = None,
) -> dict[str, str]:
    """Levels from the amount of data per language: most data = high (see ``assign_levels``)."""
    vals = check_values(counts, "counts")
    negative = [c for c, v in vals.items() if v < 0]
    if negative:
        raise ValueError(f"counts[{negative[0]}]: expected an amount >= 0, got {counts[negative[0]]!r}")
    return assign_levels(vals, split, thresholds, what="counts")


def language_scores(
    scores: Mapping[str, Any] | str | Path, metric: str = "chrf++", languages: Sequence[str] | None = None
) -> dict[str, float]:
    """Per-language score: mean ``metric`` over every direction into or out of the language.

    ``scores``: the dict of an ``evaluate_model`` result / ``scores.json``, or the path of a
    ``scores.json`` (or of the directory holding it). Each direction counts once for its
    source and once for its target. ``languages`` restricts (and orders) the result.
    """
    if isinstance(scores, (str, Path)):
        path = Path(scores)
        if path.is_dir():
            path = path / "scores.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no scores.json (run: lslo evaluate RUN --checkpoint none)")
        scores = json.loads(path.read_text(encoding="utf-8"))
    dirs = scores.get("directions") if isinstance(scores, Mapping) else None
    if not isinstance(dirs, Mapping) or not dirs:
        raise ValueError("scores: expected an evaluation result with a non-empty 'directions' mapping")
    sums: dict[str, list[float]] = {}
    for name, row in dirs.items():
        if metric not in row:
            have = sorted(k for k in row if k not in ("src", "tgt", "group", "segments"))
            raise ValueError(f"scores: direction {name} has no {metric!r} (has: {', '.join(have)})")
        for code in (row["src"], row["tgt"]):
            sums.setdefault(code, []).append(float(row[metric]))
    codes = list(languages) if languages is not None else sorted(sums)
    missing = [c for c in codes if c not in sums]
    if missing:
        raise ValueError(f"scores: no direction into or out of {', '.join(missing)}")
    return {c: sum(sums[c]) / len(sums[c]) for c in codes}


def levels_from_scores(
    scores: Mapping[str, Any] | str | Path,
    split: Sequence[float] = DEFAULT_SPLIT,
    thresholds: Sequence[float] | None = None,
    metric: str = "chrf++",
) -> dict[str, str]:
    """Levels from the base model's quality per language: best score = high.

    ``scores``: {lang: score}, or an evaluation result / ``scores.json`` path, turned into
    per-language scores by ``language_scores`` (mean ``metric`` into and out of each language).
    """
    if isinstance(scores, (str, Path)) or (isinstance(scores, Mapping) and "directions" in scores):
        scores = language_scores(scores, metric)
    return assign_levels(scores, split, thresholds, what="scores")


def apply_levels(config: Mapping[str, Any], levels: Mapping[str, str], strict: bool = True) -> dict[str, Any]:
    """A copy of a run config mapping (or a bare LSLo mapping) with ``levels`` written in.

    Each entry of ``lslo.languages`` (a code string or a mapping) gets ``level``; every
    other field (rank, token) is kept. With no languages configured, they are created in
    the order of ``levels``. ``strict``: every configured language needs a level, and every
    level a configured language.
    """
    bad = {c: v for c, v in levels.items() if v not in LEVELS}
    if bad:
        code = next(iter(bad))
        raise ConfigError(f"levels[{code}]: expected one of {'/'.join(LEVELS)}, got {bad[code]!r}")
    data = copy.deepcopy(dict(config))
    lslo = data if "languages" in data and "lslo" not in data else data.setdefault("lslo", {})
    if lslo is None:
        lslo = data["lslo"] = {}
    langs = lslo.get("languages") or []
    if not isinstance(langs, list):
        raise ConfigError("lslo.languages: expected a list")
    if not langs:
        lslo["languages"] = [{"code": c, "level": v} for c, v in levels.items()]
        return data
    out, seen = [], []
    for i, item in enumerate(langs):
        entry = {"code": item} if isinstance(item, str) else dict(item) if isinstance(item, Mapping) else None
        if entry is None or "code" not in entry:
            raise ConfigError(f"lslo.languages[{i}]: expected a code or a mapping with 'code', got {item!r}")
        code = entry["code"]
        seen.append(code)
        if code in levels:
            entry["level"] = levels[code]
        elif strict:
            raise ConfigError(f"levels: no level for configured language {code!r}")
        out.append(entry)
    extra = [c for c in levels if c not in seen]
    if extra and strict:
        raise ConfigError(f"levels: {', '.join(extra)} not configured in lslo.languages ({', '.join(seen)})")
    lslo["languages"] = out
    return data


# --------------------------------------------------------------------------- CLI


def parse_split(text: str) -> tuple[float, float, float]:
    """'1/3,1/3,1/3' or '4,4,4' or '0.25,0.5,0.25' -> normalised shares."""
    parts = [p.strip() for p in text.split(",")]
    try:
        nums = []
        for p in parts:
            if "/" in p:
                a, b = p.split("/", 1)
                nums.append(float(a) / float(b))
            else:
                nums.append(float(p))
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"--split {text!r}: expected three numbers, e.g. 1/3,1/3,1/3 or 4,4,4") from None
    try:
        return _check_split(nums)
    except ValueError as e:
        raise ConfigError(f"--split {text!r}: {e}") from None


def read_counts(text: str) -> dict[str, float]:
    """A JSON/YAML file {lang: amount}, or inline 'en=1000,fr=200'."""
    import yaml

    path = Path(text)
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))  # YAML is a superset of JSON
        except yaml.YAMLError:
            raise ConfigError(f"--counts {path}: not valid JSON/YAML") from None
        if not isinstance(data, dict):
            raise ConfigError(f"--counts {path}: expected a mapping language -> amount")
        return data
    if "=" not in text:
        raise ConfigError(f"--counts {text!r}: no such file, and not of the form en=1000,fr=200")
    out: dict[str, float] = {}
    for item in text.split(","):
        code, _, raw = item.partition("=")
        try:
            out[code.strip()] = float(raw)
        except ValueError:
            raise ConfigError(f"--counts {item!r}: expected LANG=NUMBER") from None
    return out

