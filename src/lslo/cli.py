"""The ``lslo`` command: train, evaluate, translate, info, merge, report, levels, sweep, search, export-peft."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _errors():
    from lslo.config import ConfigError
    from lslo.data.corpus import CorpusError
    from lslo.data.langcodes import UnknownLanguageError
    from lslo.languages import LanguageError
    from lslo.model import AdapterError
    from lslo.train import RunError

    return (ConfigError, CorpusError, UnknownLanguageError, LanguageError, AdapterError, RunError, FileNotFoundError)


# ------------------------------------------------------------------------ train
def cmd_train(args: argparse.Namespace) -> int:
    from lslo.run_config import RunConfig
    from lslo.train import RunError, Trainer

    if args.add_language:
        if not args.resume_from:
            raise RunError("--add-language needs --resume-from RUN (the run whose languages stay as they are)")
        cfg, run_dir = _add_language_config(args)
        trainer = Trainer(cfg, run_dir, device=args.device, quiet=args.quiet)
        result = trainer.train()
        print(json.dumps({"run_dir": str(run_dir), "added": cfg.trainable_languages, "steps": result.steps,
                          "directions": len(trainer.directions)}, indent=2))
        return 0
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.yaml").is_file():
            raise RunError(f"--resume {run_dir}: not a run directory (no config.yaml)")
        cfg = RunConfig.load(run_dir / "config.yaml", args.set)
    else:
        if not args.config:
            raise RunError("train: give a CONFIG.yaml, or --resume RUN")
        cfg = RunConfig.load(args.config, args.set)
        run_dir = Path(args.output_dir or cfg.output_dir)
        if (run_dir / "checkpoints").exists() and not args.overwrite:
            raise RunError(f"{run_dir}: already holds a run; use --resume {run_dir}, --overwrite or another output_dir")
        cfg.output_dir = str(run_dir)
    trainer = Trainer(cfg, run_dir, device=args.device, quiet=args.quiet)
    result = trainer.train(resume=bool(args.resume), stop_after_steps=args.stop_after_steps)
    if os.environ.get("RANK", "0") != "0":  # data parallel: rank 0 reports
        return 0
    if result.interrupted:
        print(f"stopped at step {result.steps}; continue with: lslo train --resume {run_dir}")
        return 0
    print(json.dumps({"run_dir": str(run_dir), "steps": result.steps, "epochs": result.epochs,
                      "first_train_loss": result.first_train_loss, "last_train_loss": result.last_train_loss,
                      "best_valid_loss": result.best_valid_loss}, indent=2))
    return 0


def _add_language_config(args: argparse.Namespace):
    """The run config for adding languages to a trained run: only the new adapters train."""
    import yaml

    from lslo.config import LEVELS, ConfigError, load_yaml
    from lslo.run_config import RunConfig, apply_override
    from lslo.train import RunError

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
    data["eval"]["directions"] = None  # evaluate everything, the new directions included
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


# --------------------------------------------------------------------- evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    from lslo.data.corpus import load_corpus
    from lslo.evaluate import SpBleu, evaluate_model, markdown_table, write_scores
    from lslo.train import load_run, run_directions

    cfg, model = load_run(args.run, checkpoint=args.checkpoint, device=args.device)
    data = args.data or cfg.data.path
    split = args.split or cfg.data.test_split
    corpus = load_corpus(data, split, cfg.lslo.codes, fmt=cfg.data.format, empty=cfg.data.empty)
    dirs = run_directions(cfg, args.directions.split(",") if args.directions else cfg.eval.directions,
                          training=False)
    spbleu = SpBleu(cfg.eval.spm_tokenizer, args.spm_model or cfg.eval.spm_model)
    scores = evaluate_model(
        model, corpus, dirs, beam=args.beam or cfg.eval.beam, batch_size=args.batch_size or cfg.eval.batch_size,
        max_new_tokens=cfg.eval.max_new_tokens, length_penalty=cfg.eval.length_penalty, spbleu=spbleu,
        max_segments=args.max_segments or cfg.eval.max_segments, quiet=args.quiet,
    )
    out = Path(args.out or Path(args.run) / f"eval-{split}-{args.checkpoint}")
    title = f"{cfg.method} ({args.checkpoint}) on {split}"
    write_scores(scores, out, title, codes=cfg.lslo.codes)
    print(markdown_table(scores, title))
    print(f"wrote {out}/scores.json, scores.md, heatmap.png, hyps/")
    return 0


# -------------------------------------------------------------------- translate
def cmd_translate(args: argparse.Namespace) -> int:
    from lslo.train import load_run

    _, model = load_run(args.run, checkpoint=args.checkpoint, device=args.device)
    if args.input:
        path = Path(args.input)
        if not path.is_file():
            raise FileNotFoundError(f"--input {path}: no such file")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise FileNotFoundError(f"--input {path}: not UTF-8 text (byte {e.start})") from None
    else:
        lines = sys.stdin.read().splitlines()
    out = model.translate(lines, [args.src] * len(lines), [args.tgt] * len(lines), batch_size=args.batch_size,
                          num_beams=args.beam, max_new_tokens=args.max_new_tokens)
    text = "\n".join(out) + ("\n" if out else "")
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


# ------------------------------------------------------------------------- info
def cmd_info(args: argparse.Namespace) -> int:
    from lslo.pruning import find_lslo_modules, format_sparsity_report, sparsity_report
    from lslo.train import load_run

    cfg, model = load_run(args.run, checkpoint=args.checkpoint, device="cpu")
    rep = model.parameter_report()
    sp = sparsity_report(find_lslo_modules(model), rep["base_parameters"]) if model.lslo_modules() else None
    if args.json:
        print(json.dumps({"config": cfg.to_dict(), "parameters": rep, "sparsity": sp}, indent=2, default=str))
        return 0
    print(f"run: {args.run}   method: {cfg.method}   model: {cfg.model}")
    print(f"languages: {', '.join(f'{c} ({cfg.lslo.language(c).level})' for c in cfg.lslo.codes)}")
    print(f"encoder routing: {' '.join(r[0].upper() for r in model.encoder_routing)}   "
          f"decoder routing: {' '.join(r[0].upper() for r in model.decoder_routing)}   (S=source, T=target)")
    print(f"positions: encoder {cfg.lslo.encoder_positions}  decoder {cfg.lslo.decoder_positions}")
    print(f"base parameters: {rep['base_parameters']:,}   trainable: {rep['trainable_parameters']:,} "
          f"({rep['trainable_percent']:.3f}%)")
    print(f"{'language':<10}{'level':<8}{'rank':>5}{'parameters':>14}{'% of base':>11}")
    for code, row in rep["per_language"].items():
        print(f"{code:<10}{row['level']:<8}{row['rank']:>5}{row['parameters']:>14,}{row['percent_of_base']:>10.3f}%")
    if sp is not None:
        print()
        print(format_sparsity_report(sp))
    return 0


# ------------------------------------------------------------------------ merge
def cmd_merge(args: argparse.Namespace) -> int:
    from lslo.train import load_run

    _, model = load_run(args.run, checkpoint=args.checkpoint, device="cpu")
    out = model.save_merged(args.src, args.tgt, args.out)
    print(f"wrote {out}: a plain model for {args.src}->{args.tgt} (AutoModelForSeq2SeqLM.from_pretrained)")
    return 0


# ------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lslo", description="Language-specific LoRA for multilingual NMT.")
    sub = p.add_subparsers(dest="command", required=True)

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

    e = sub.add_parser("evaluate", help="beam search in every direction; spBLEU / chrF++ per direction and group",
                       description="Translate a test split in every direction and score it.")
    e.add_argument("run", help="run directory")
    e.add_argument("--data", help="corpus path (default: data.path of the run)")
    e.add_argument("--split", help="split to evaluate (default: data.test_split, e.g. devtest)")
    e.add_argument("--checkpoint", default="best", choices=["best", "last", "none"],
                   help="which weights; 'none' evaluates the base model (adapters at zero)")
    e.add_argument("--directions", help="comma-separated list, e.g. en-fr,fr-en (default: all)")
    e.add_argument("--beam", type=int, help="beam size (default: eval.beam, 5)")
    e.add_argument("--batch-size", type=int)
    e.add_argument("--max-segments", type=int, help="only the first N segments of every direction")
    e.add_argument("--spm-model", help="SentencePiece model for spBLEU when sacrebleu's flores model is absent")
    e.add_argument("--out", help="output directory (default: RUN/eval-SPLIT-CHECKPOINT)")
    e.add_argument("--device")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    tr = sub.add_parser("translate", help="translate stdin (or a file) from --src to --tgt",
                        description="Translate lines with a trained run.")
    tr.add_argument("run")
    tr.add_argument("--src", required=True)
    tr.add_argument("--tgt", required=True)
    tr.add_argument("--input", help="input file (default: stdin)")
    tr.add_argument("--output", help="output file (default: stdout)")
    tr.add_argument("--checkpoint", default="best", choices=["best", "last", "none"])
    tr.add_argument("--beam", type=int, default=5)
    tr.add_argument("--batch-size", type=int, default=32)
    tr.add_argument("--max-new-tokens", type=int, default=200)
    tr.add_argument("--device")
    tr.set_defaults(func=cmd_translate)

    i = sub.add_parser("info", help="config, trainable parameters per language, sparsity",
                       description="Show what a run trains: parameters per language and what survived pruning.")
    i.add_argument("run")
    i.add_argument("--checkpoint", default="best", choices=["best", "last", "none"])
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=cmd_info)

    m = sub.add_parser("merge", help="fold one direction into a plain Hugging Face model directory",
                       description="Write a model for one direction that loads without lslo.")
    m.add_argument("run")
    m.add_argument("--src", required=True)
    m.add_argument("--tgt", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--checkpoint", default="best", choices=["best", "last"])
    m.set_defaults(func=cmd_merge)

    from lslo.levels import add_levels_parser
    from lslo.report import add_report_parser
    from lslo.sweep import add_sweep_parser

    add_report_parser(sub)
    add_levels_parser(sub)
    add_sweep_parser(sub)

    from lslo.export import add_export_parser
    from lslo.search import add_search_parser

    add_search_parser(sub)
    add_export_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars are noise next to ours
    hf_logging.set_verbosity_error()
    try:
        return args.func(args)
    except _errors() as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"lslo: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
