"""``lslo train``: fine-tune from a config, resume a run, or add a language."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def has_checkpoint(run_dir: Path) -> bool:
    """True when ``run_dir`` holds a checkpoint ``--resume`` can continue from."""
    from lslo.training import RunError, checkpoint_dir

    try:
        return (checkpoint_dir(run_dir, "last") / "trainer_state.pt").is_file()
    except RunError:
        return False


def cmd_train(args: argparse.Namespace) -> int:
    from lslo.cli.outputs import check_output_dir
    from lslo.reporting import report_after_training
    from lslo.training import RunError, Trainer
    from lslo.training.config import RunConfig
    from lslo.tuner.config import load_yaml

    if args.add_language:
        if not args.resume_from:
            raise RunError("--add-language needs --resume-from RUN (the run whose languages stay as they are)")
        cfg, run_dir = _add_language_config(args)
        trainer = Trainer(cfg, run_dir, device=args.device, quiet=args.quiet, finish_hooks=[report_after_training])
        result = trainer.train()
        if result.interrupted:
            print(f"stopped at step {result.steps}; continue with: lslo train --resume {run_dir}")
            return 130
        print(json.dumps({"run_dir": str(run_dir), "added": cfg.trainable_languages, "steps": result.steps,
                          "directions": len(trainer.directions)}, indent=2))
        return 0
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.yaml").is_file():
            raise RunError(f"--resume {run_dir}: not a run directory (no config.yaml)")
        if not has_checkpoint(run_dir):
            raise RunError(f"--resume {run_dir}: no complete checkpoint to continue from (killed before the first "
                           f"one was written); start it again with: lslo train {run_dir / 'config.yaml'} "
                           f"--output-dir {run_dir}")
        overrides = list(args.set)
        raw = load_yaml(run_dir / "config.yaml")
        if isinstance(raw, dict) and "predict_language_token" not in (raw.get("train") or {}):
            # a run started before this option existed trained (and validated) with the language
            # token as a label: it continues with the same objective, so losses stay comparable
            overrides.insert(0, "train.predict_language_token=true")
        cfg = RunConfig.load(run_dir / "config.yaml", overrides)
    else:
        if not args.config:
            raise RunError("train: give a CONFIG.yaml, or --resume RUN")
        cfg = RunConfig.load(args.config, args.set)
        run_dir = Path(args.output_dir or cfg.output_dir)
        flag = "--output-dir" if args.output_dir else "output_dir"
        if run_dir.is_dir() and not args.overwrite and not (run_dir / "config.yaml").is_file():
            # a directory of something else: its files are never mixed with a run's
            check_output_dir(run_dir, flag, overwrite=False, protected={"the base model": cfg.model})
        check_output_dir(run_dir, flag, overwrite=True, allow_run=True, protected={"the base model": cfg.model})
        if has_checkpoint(run_dir) and not args.overwrite:
            raise RunError(f"{run_dir}: already holds a run; use --resume {run_dir}, --overwrite or another output_dir")
        if (run_dir / "checkpoints").exists() and not has_checkpoint(run_dir):
            # killed before its first checkpoint was complete: nothing to resume, so start again
            print(f"lslo: {run_dir} has no complete checkpoint (killed before the first one?); starting afresh",
                  file=sys.stderr)
        cfg.output_dir = str(run_dir)
    trainer = Trainer(cfg, run_dir, device=args.device, quiet=args.quiet, finish_hooks=[report_after_training])
    result = trainer.train(resume=bool(args.resume), stop_after_steps=args.stop_after_steps)
    if os.environ.get("RANK", "0") != "0":  # data parallel: rank 0 reports
        return 0
    if result.interrupted:
        print(f"stopped at step {result.steps}; continue with: lslo train --resume {run_dir}")
        return 130  # stopped by Ctrl-C / SIGTERM (checkpoint saved): not a finished run
    if result.already_finished:
        t = cfg.train
        end = f"train.max_steps={t.max_steps}" if t.max_steps and result.steps >= t.max_steps else \
            f"train.epochs={t.epochs}"
        print(f"lslo train: {run_dir} already finished (epoch {result.epochs}, step {result.steps}, {end}); nothing "
              f"to train. To train longer: lslo train --resume {run_dir} --set train.epochs=N (or train.max_steps=N)",
              file=sys.stderr)
    print(json.dumps({"run_dir": str(run_dir), "steps": result.steps, "epochs": result.epochs,
                      "first_train_loss": result.first_train_loss, "last_train_loss": result.last_train_loss,
                      "best_valid_loss": result.best_valid_loss}, indent=2))
    return 0


def _add_language_config(args: argparse.Namespace):
    """The run config for adding languages to a trained run: only the new adapters train."""
    import yaml

    from lslo.training import RunError
    from lslo.training.config import RunConfig, apply_override
    from lslo.tuner.config import LEVELS, ConfigError, load_yaml

    src = Path(args.resume_from)
    if not (src / "config.yaml").is_file():
        raise RunError(f"--resume-from {src}: not a run directory (no config.yaml)")
    data = load_yaml(src / "config.yaml")
    codes = [lang["code"] for lang in data["lslo"]["languages"]]
    new = []
    for item in args.add_language:
        code, _, level = item.partition(":")
        level = level or "low"
        if level not in LEVELS:
            raise ConfigError(f"--add-language {item}: level must be one of {'/'.join(LEVELS)}")
        if code in codes:
            raise ConfigError(f"--add-language {code}: the run already has this language")
        data["lslo"]["languages"].append({"code": code, "level": level})
        new.append(code)
    all_codes = codes + new
    data["data"]["directions"] = [f"{s}-{t}" for s in all_codes for t in all_codes
                                  if s != t and (s in new or t in new)]
    # evaluate everything, the new directions included (the others were trained by the source run)
    data["eval"]["directions"] = [f"{s}-{t}" for s in all_codes for t in all_codes if s != t]
    data["init_from"] = str(src)
    data["trainable_languages"] = new
    data.setdefault("pruning", {})["enabled"] = False
    run_dir = Path(args.output_dir or f"{src}-add-{'-'.join(new)}")
    data["output_dir"] = str(run_dir)
    for item in args.set:
        apply_override(data, item)
    cfg = RunConfig.from_dict(yaml.safe_load(yaml.safe_dump(data)))
    if (run_dir / "checkpoints").exists() and not args.overwrite:
        raise RunError(f"{run_dir}: already holds a run; use --overwrite or another --output-dir")
    return cfg, run_dir


def add_parser(sub) -> None:
    """Register ``lslo train``."""
    t = sub.add_parser("train", help="fine-tune (lslo | lora | full) from a YAML config, or resume a run",
                       description="Fine-tune a seq2seq model on all directions of a multi-way corpus.")
    t.add_argument("config", nargs="?", help="run config YAML (see configs/)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set train.lr=0.001 (repeatable)")
    t.add_argument("--resume", metavar="RUN", help="continue an interrupted run from its last checkpoint")
    t.add_argument("--output-dir", help="run directory (default: output_dir of the config)")
    t.add_argument("--overwrite", action="store_true", help="reuse an existing run directory")
    t.add_argument("--device", help="cpu | cuda (default: cuda when available)")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("--resume-from", metavar="RUN", help="start from a trained run (with --add-language)")
    t.add_argument("--add-language", action="append", default=[], metavar="CODE[:LEVEL]",
                   help="add a language to --resume-from RUN: only its adapters train, on the directions "
                        "involving it; the other languages stay bit-identical (repeatable)")
    t.add_argument("--stop-after-steps", type=int, help=argparse.SUPPRESS)
    t.set_defaults(func=cmd_train)
