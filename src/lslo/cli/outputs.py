"""Where commands may write: never into a base model or a run they did not create, never over a
non-empty directory unless ``--overwrite``, and a replaced directory leaves no stale file.

Every command that writes a directory (``merge``, ``export-peft``, ``evaluate --out``, ``train
--output-dir``) asks :func:`check_output_dir` first and writes through :func:`replace_dir`: the
new content goes to a temporary sibling that is renamed into place, so an interrupted or failed
write (a full disk) leaves the old directory as it was and no temporary files behind.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from lslo.errors import LSLoError

MODEL_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


class OutputError(LSLoError):
    """An output path that a command must not write to (a one-line message naming it)."""


def is_run_dir(path: Path) -> bool:
    """An ``lslo train`` run directory (config.yaml and checkpoints/)."""
    return (path / "config.yaml").is_file() and (path / "checkpoints").is_dir()


def is_model_dir(path: Path) -> bool:
    """A Hugging Face model directory (its config.json next to weights)."""
    return (path / "config.json").is_file() and any((path / f).exists() for f in MODEL_FILES[1:])


def _inside(path: Path, other: Path) -> bool:
    return path == other or other in path.parents


def check_output_dir(out: str | Path, flag: str, *, overwrite: bool, protected: dict[str, str | Path] | None = None,
                     allow_run: bool = False, may_exist: Callable[[Path], bool] | None = None) -> Path:
    """Refuse an output directory the command must not write; returns it, resolved.

    Args:
        out: the directory asked for.
        flag: the option that named it, for the message (``--out``).
        overwrite: ``--overwrite`` was given: a non-empty directory may be replaced.
        protected: ``{what: path}`` never written into or replaced, whatever the flag (the run's
            base model, the run directory itself).
        allow_run: ``out`` may be a run directory (``train --overwrite``, which replaces its own run).
        may_exist: a non-empty directory for which this is true is fine without ``--overwrite``
            (e.g. ``evaluate``'s own earlier output without scores).
    """
    path = Path(out).expanduser()
    resolved = path.resolve()
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path}: is a file, expected a directory; give a directory path")
    for what, p in (protected or {}).items():
        p = Path(p).expanduser().resolve()
        if _inside(resolved, p):
            raise OutputError(f"{flag} {path}: is {'inside ' if resolved != p else ''}{what} ({p}); lslo never "
                              "writes there, whatever the flag: choose another directory")
        if resolved in p.parents:
            raise OutputError(f"{flag} {path}: holds {what} ({p}); replacing it would delete it: choose another "
                              "directory")
    home, cwd = Path.home().resolve(), Path.cwd().resolve()
    if resolved in (home, cwd, Path(resolved.anchor)) or resolved in cwd.parents:
        raise OutputError(f"{flag} {path}: is the current, home or root directory (or holds the current one); "
                          "give a directory of its own")
    if not allow_run and is_run_dir(resolved):
        raise OutputError(f"{flag} {path}: is a run directory; lslo never writes model files into a run: choose "
                          "another directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite and not (may_exist and may_exist(path)):
        n = sum(1 for _ in path.iterdir())
        raise OutputError(f"{flag} {path}: is not empty ({n} entr{'y' if n == 1 else 'ies'}); pass --overwrite to "
                          "replace it, or choose another directory")
    return resolved


def replace_dir(target: str | Path, write: Callable[[Path], object]) -> Path:
    """Write a directory through a temporary sibling and renames: the old one (if any) is replaced
    as a whole, so no stale file survives; a failed write leaves it untouched and removes the
    temporary directory."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        write(tmp)
        if target.exists():
            os.rename(target, old)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not target.exists():
            os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return target


def run_direction(cfg, src: str, tgt: str, *, allow_same: bool = False, warn: Callable[[str], None] | None = None,
                  what: str = "translate") -> tuple[str, str]:
    """The run's codes for ``src`` / ``tgt`` (any accepted form: the run's own, FLORES-101/200 or
    ``__xx__``); a source equal to the target is refused unless ``allow_same``; a direction the run
    did not train on (``data.directions``) is reported through ``warn``."""
    from lslo.tuner.langcodes import UnknownLanguageError, resolve_code
    from lslo.tuner.languages import LanguageError

    codes = list(cfg.lslo.codes)
    try:
        s, t = resolve_code(src, codes), resolve_code(tgt, codes)
    except UnknownLanguageError as e:
        raise LanguageError(str(e)) from None
    if s == t and not allow_same:
        raise OutputError(f"--src {src} --tgt {tgt}: the source is the target language; {what} needs two "
                          "languages (pass --allow-same-language to do it anyway)")
    if warn is not None and not trained_direction(cfg, s, t):
        warn(untrained_note(cfg, s, t))
    return s, t


def trained_direction(cfg, src: str, tgt: str) -> bool:
    """Whether the run trained on src->tgt (all directions unless ``data.directions`` limits them)."""
    trained = trained_directions(cfg)
    return src != tgt if trained is None else (src, tgt) in trained


def trained_directions(cfg) -> set[tuple[str, str]] | None:
    """The directions a run's adapters were trained on; None when that is every direction. A run
    that added languages (``--add-language``) trained the new ones here and kept the others' from
    its source run, where they were trained."""
    if not cfg.data.directions:
        return None
    from lslo.training import run_directions

    trained = set(run_directions(cfg))
    if cfg.trainable_languages is not None:
        new = set(cfg.trainable_languages)
        trained |= {(s, t) for s in cfg.lslo.codes for t in cfg.lslo.codes if s != t and not {s, t} & new}
    return trained


def untrained_note(cfg, src: str, tgt: str) -> str:
    return (f"{src}->{tgt} was not trained (the run trained {len(cfg.data.directions or [])} directions, "
            "data.directions); its adapters never saw this pair")


def protect_from_config(config: str | Path, out: str | Path | None, flag: str, overrides: list[str] | None = None) -> None:
    """For commands that write a directory of their own (``search``, ``sweep``): refuse one that is a
    file, the config's base model (or inside it), or another run directory."""
    if out is None:
        return
    from lslo.training.config import RunConfig

    try:
        model = RunConfig.load(config, overrides or []).model
    except LSLoError:
        return  # the command's own loading reports a bad config in its words
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path}: is a file, expected a directory; give a directory path")
    p = Path(model).expanduser().resolve()
    if model and p.exists() and _inside(path.expanduser().resolve(), p):
        raise OutputError(f"{flag} {path}: is inside the base model ({p}); lslo never writes there: choose "
                          "another directory")


def check_output_file(out: str | Path, flag: str, protected: dict[str, str | Path] | None = None) -> Path:
    """A file to write: never a directory, never inside a protected directory (a base model, a run's
    checkpoints)."""
    path = Path(out).expanduser()
    if path.is_dir():
        raise OutputError(f"{flag} {path}: is a directory, expected a file path")
    resolved = path.resolve()
    for what, p in (protected or {}).items():
        p = Path(p).expanduser().resolve()
        if p in resolved.parents:
            raise OutputError(f"{flag} {path}: is inside {what} ({p}); lslo never writes there: choose another path")
    return path
