"""``lslo evaluate`` and ``lslo translate``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (0 or a negative number is a usage error, not a default)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def evaluation_corpus(cfg, data: str | None, split: str | None):
    """(corpus of the run's languages present in the data, data label, split label).

    FLORES directories may hold only some of the run's languages; TSV/JSONL files are read
    whole (``--split`` is for FLORES only); without ``--data`` a run trained with
    ``data.split_ratios`` is scored on its own test part."""
    from lslo.data.corpus import CorpusError, load_corpus, read_flores
    from lslo.training import load_splits

    d = cfg.data
    fmt = d.format if data is None else "auto"  # another corpus than the run's: tell its format by its name
    if data is None and d.split_ratios:
        return load_splits(cfg)["test"], str(d.path), "test (data.split_ratios)"
    path = Path(data or d.path)
    if path.is_dir() and fmt in ("auto", "flores"):
        split = split or d.test_split
        if split is None:
            raise CorpusError(f"{path}: a FLORES directory needs --split (dev or devtest)")
        corpus = read_flores(path, split, None, empty=d.empty)  # every language file that is there
    else:
        if split is not None and path.is_file():
            raise CorpusError(f"--split {split}: {path} is a {path.suffix or 'plain'} file; --split applies "
                              "to FLORES directories (a TSV/JSONL file is scored whole)")
        corpus = load_corpus(path, None, None, fmt=fmt, empty=d.empty)
        split = "all"
    if len(corpus) == 0:
        raise CorpusError(f"{path}: no segments to evaluate (its {split} data is empty: empty files, or a TSV "
                          "with a header and no rows); point --data at a corpus with segments")
    present = [c for c in cfg.lslo.codes if c in corpus.languages]
    if len(present) < 2:
        raise CorpusError(f"{path}: holds {len(present)} of the run's languages ({', '.join(cfg.lslo.codes)}); "
                          "need at least two")
    return corpus.subset(present), str(path), split


def _output_dir(args: argparse.Namespace, cfg, data_label: str, split: str, used: str) -> Path:
    """``--out``, else RUN/eval-[DATA-]SPLIT-CHECKPOINT; for a config file (the base model alone,
    ``--checkpoint none``) OUTPUT_DIR-eval-[DATA-]SPLIT-none next to where its run would go (the
    config's ``output_dir``, e.g. runs/NAME-eval-devtest-none), never next to the config file."""
    if args.out:
        return Path(args.out)
    run = Path(args.run)
    same_data = args.data is None or Path(args.data).resolve() == Path(cfg.data.path).resolve()
    tag = split.split(" ")[0] if same_data else f"{Path(data_label).name}-{split}"
    if run.is_dir():
        return run / f"eval-{tag}-{used}"
    target = Path(cfg.output_dir)
    return target.with_name(f"{target.name}-eval-{tag}-{used}")


def checkpoint_identity(run: str, used: str) -> dict:
    """The evaluated weights' sha256 and time, so scores of a replaced checkpoint are detectable."""
    import datetime
    import json

    if used == "none" or not Path(run).is_dir():
        return {}
    from lslo.training import checkpoint_dir

    ckpt = checkpoint_dir(Path(run), used)
    meta = json.loads((ckpt / "adapter_config.json").read_text(encoding="utf-8"))
    mtime = datetime.datetime.fromtimestamp((ckpt / "adapter_config.json").stat().st_mtime, datetime.timezone.utc)
    return {"checkpoint_sha256": meta.get("weights_sha256"), "checkpoint_time": mtime.isoformat(timespec="seconds")}


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """``--engine``, ``--quantize``, ``--gemm`` and ``--early-stopping`` of translate, evaluate, serve."""
    from lslo.decoding.gemm import GEMMS
    from lslo.decoding.quantize import QUANTIZE
    from lslo.tuner.model import ENGINES

    parser.add_argument("--engine", choices=ENGINES, help="generation engine: lslo (lean beam search) | "
                        "transformers (its generate); default: the run's eval.engine")
    parser.add_argument("--quantize", choices=QUANTIZE, help="none | int8: int8 linear layers on the CPU, a scale "
                        "per row and per token (LSLo adapters stay float32); default: the run's eval.quantize")
    parser.add_argument("--gemm", choices=GEMMS, help="matrix library of float32 linear layers on the CPU: auto "
                        "(MKL on Intel, pre-packed oneDNN elsewhere) | reference (token-identical to "
                        "transformers) | onednn; default: the run's eval.gemm")
    parser.add_argument("--early-stopping", action=argparse.BooleanOptionalAction, default=None,
                        help="stop a sentence once it has beam finished hypotheses (CTranslate2's rule; fewer "
                        "steps) instead of transformers' default; default: the run's eval.early_stopping")


def inference_settings(args: argparse.Namespace, cfg, model) -> dict:
    """``--engine``/``--quantize``/``--gemm``/``--early-stopping`` (else the run's eval section)
    applied to a loaded model: the generate keywords (``engine``, ``early_stopping``), the model's
    linear layers quantised or packed when asked, and what was chosen (``quantize``, ``gemm``)."""
    e = cfg.eval
    quantize = getattr(args, "quantize", None) or e.quantize
    if quantize == "int8":
        from lslo.decoding.quantize import quantize_int8

        quantize_int8(model)
    gemm = getattr(args, "gemm", None) or e.gemm
    path = "int8" if quantize == "int8" else "reference"
    if quantize != "int8" and next(model.parameters()).device.type == "cpu":
        from lslo.decoding.gemm import pack_linears

        path = pack_linears(model, gemm)["gemm"]
    early = getattr(args, "early_stopping", None)
    return {"engine": getattr(args, "engine", None) or e.engine, "quantize": quantize, "gemm": path,
            "early_stopping": e.early_stopping if early is None else early}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from lslo.cli.outputs import check_output_dir, replace_dir, trained_directions
    from lslo.data.corpus import CorpusError
    from lslo.evaluation import SpBleu, evaluate_model, markdown_table, write_scores
    from lslo.training import load_run, run_directions

    cfg, model = load_run(args.run, checkpoint=args.checkpoint, device=args.device)
    inference = inference_settings(args, cfg, model)
    corpus, data_label, split = evaluation_corpus(cfg, args.data, args.split)
    used = model.loaded_checkpoint
    out = _output_dir(args, cfg, data_label, split, used)
    if (out / "scores.json").exists() and not args.overwrite:  # before hours of beam search, not after
        raise CorpusError(f"{out}: already holds scores; pass --overwrite or --out DIR")
    # never into the base model or over someone else's files (checked before the beam search too)
    check_output_dir(out, "--out", overwrite=args.overwrite, protected={"the run's base model": cfg.model})
    asked = args.directions.split(",") if args.directions and args.directions != "all" else None
    if asked is None and args.directions != "all":
        asked = cfg.eval.directions
        trained = trained_directions(cfg) if args.checkpoint != "none" else None
        if asked is None and trained is not None:
            asked = sorted(f"{s}-{t}" for s, t in trained)  # what the run trained (--directions all: every one)
            if not args.quiet:
                print(f"lslo evaluate: scoring the {len(asked)} trained directions (data.directions); "
                      "--directions all scores every direction", file=sys.stderr)
    wanted = run_directions(cfg, asked, training=False)
    dirs = [(s, t) for s, t in wanted if s in corpus.languages and t in corpus.languages]
    skipped = [f"{s}-{t}" for s, t in wanted if (s, t) not in dirs]
    if not dirs:
        raise CorpusError(f"{data_label}: none of the {len(wanted)} requested directions has both languages "
                          f"(present: {', '.join(corpus.languages)})")
    if skipped and not args.quiet:
        print(f"lslo evaluate: skipped {len(skipped)} direction(s) whose languages are not in {data_label}: "
              f"{', '.join(skipped[:12])}{' ...' if len(skipped) > 12 else ''}", file=sys.stderr)
    e = cfg.eval
    spbleu = SpBleu.for_model(e.spm_tokenizer, model.tokenizer, args.spm_model or e.spm_model)
    scores = evaluate_model(
        model, corpus, dirs, beam=args.beam or e.beam, batch_size=args.batch_size or e.batch_size,
        max_new_tokens=args.max_new_tokens or e.max_new_tokens, length_penalty=e.length_penalty, spbleu=spbleu,
        engine=inference["engine"], early_stopping=inference["early_stopping"],
        max_segments=args.max_segments or e.max_segments, quiet=args.quiet,
    )
    scores["evaluated"] = {"run": str(args.run), "data": data_label, "split": split, "checkpoint": used,
                           "checkpoint_asked": args.checkpoint, "segments": len(corpus),
                           "languages": list(corpus.languages), "skipped_directions": skipped, **inference}
    note = f" ('{args.checkpoint}' asked; the run has none)" if used != args.checkpoint else ""
    title = f"{cfg.method} ({used}{note}) on {Path(data_label).name} {split}"
    scores["evaluated"].update(checkpoint_identity(args.run, used))
    replace_dir(out, lambda tmp: write_scores(scores, tmp, title, codes=list(corpus.languages)))
    print(markdown_table(scores, title))
    print(f"wrote {out}/scores.json, scores.md, heatmap.png, hyps/")
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from lslo.cli.outputs import OutputError, check_output_file, run_direction
    from lslo.training import load_run

    cfg, model = load_run(args.run, checkpoint=args.checkpoint, device=args.device)
    inference = inference_settings(args, cfg, model)
    src, tgt = run_direction(cfg, args.src, args.tgt, allow_same=args.allow_same_language,
                             warn=lambda m: print(f"lslo translate: warning: {m}", file=sys.stderr))
    if args.output:
        check_output_file(args.output, "--output", {"the run's base model": cfg.model,
                                                    "the run's checkpoints": Path(args.run) / "checkpoints"})
    if args.input:
        path = Path(args.input)
        if not path.is_file():
            raise FileNotFoundError(f"--input {path}: no such file")
        raw, where = path.read_bytes(), f"--input {path}"
    else:
        stdin = getattr(sys.stdin, "buffer", None)  # a text-only stream (tests, embedding) has no bytes
        raw, where = (stdin.read() if stdin is not None else sys.stdin.read().encode("utf-8")), "stdin"
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise OutputError(f"{where}: not UTF-8 text (byte {e.start}: {raw[e.start:e.start + 1]!r}); convert it "
                          "first, e.g. iconv -f LATIN1 -t UTF-8") from None
    e = cfg.eval
    out = model.translate(lines, [src] * len(lines), [tgt] * len(lines), batch_size=args.batch_size or e.batch_size,
                          num_beams=args.beam or e.beam, max_new_tokens=args.max_new_tokens or e.max_new_tokens,
                          length_penalty=e.length_penalty, engine=inference["engine"],
                          early_stopping=inference["early_stopping"])
    text = "\n".join(out) + ("\n" if out else "")
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def add_parser(sub) -> None:
    """Register ``lslo evaluate`` and ``lslo translate``."""
    e = sub.add_parser("evaluate", help="beam search in every direction; spBLEU / chrF++ per direction and group",
                       description="Translate a test split in every direction and score it.")
    e.add_argument("run", help="run directory (or a run config file, with --checkpoint none: its base model)")
    e.add_argument("--data", help="corpus path (default: data.path of the run)")
    e.add_argument("--split", help="split to evaluate (default: data.test_split, e.g. devtest)")
    e.add_argument("--checkpoint", default="best", choices=["best", "last", "none"],
                   help="which weights; 'none' evaluates the base model (adapters at zero)")
    e.add_argument("--directions", help="comma-separated list, e.g. en-fr,fr-en, or 'all' (default: eval.directions, "
                   "else the directions the run trained on)")
    e.add_argument("--beam", type=positive_int, help="beam size (default: the run's eval.beam)")
    e.add_argument("--batch-size", type=positive_int, help="sentences per batch (default: the run's eval.batch_size)")
    e.add_argument("--max-new-tokens", type=positive_int, help="longest translation in tokens (default: the run's eval.max_new_tokens)")
    add_inference_arguments(e)
    e.add_argument("--max-segments", type=positive_int, help="only the first N segments of every direction")
    e.add_argument("--spm-model", help="SentencePiece model for spBLEU when sacrebleu's flores model is absent")
    e.add_argument("--out", help="output directory (default: RUN/eval-[DATA-]SPLIT-CHECKPOINT)")
    e.add_argument("--overwrite", action="store_true", help="replace the scores already in the output directory")
    e.add_argument("--device")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    tr = sub.add_parser("translate", help="translate stdin (or a file) from --src to --tgt",
                        description="Translate lines with a trained run.")
    tr.add_argument("run", help="run directory (or a run config file, with --checkpoint none)")
    tr.add_argument("--src", required=True, help="source language: the run's code, FLORES-101/200 or __xx__")
    tr.add_argument("--tgt", required=True, help="target language (as --src)")
    tr.add_argument("--input", help="input file (default: stdin)")
    tr.add_argument("--output", help="output file (default: stdout)")
    tr.add_argument("--checkpoint", default="best", choices=["best", "last", "none"])
    tr.add_argument("--beam", type=positive_int, help="beam size (default: the run's eval.beam)")
    tr.add_argument("--batch-size", type=positive_int, help="sentences per batch (default: the run's eval.batch_size)")
    tr.add_argument("--max-new-tokens", type=positive_int, help="longest translation in tokens (default: the run's eval.max_new_tokens)")
    add_inference_arguments(tr)
    tr.add_argument("--allow-same-language", action="store_true", help="translate when --src equals --tgt")
    tr.add_argument("--device")
    tr.set_defaults(func=cmd_translate)
