"""``lslo evaluate`` and ``lslo translate``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_evaluate(args: argparse.Namespace) -> int:
    from lslo.data.corpus import load_corpus
    from lslo.evaluation import SpBleu, evaluate_model, markdown_table, write_scores
    from lslo.training import load_run, run_directions

    cfg, model = load_run(args.run, checkpoint=args.checkpoint, device=args.device)
    data = args.data or cfg.data.path
    split = args.split or cfg.data.test_split
    corpus = load_corpus(data, split, cfg.lslo.codes, fmt=cfg.data.format, empty=cfg.data.empty)
    dirs = run_directions(cfg, args.directions.split(",") if args.directions else cfg.eval.directions,
                          training=False)
    spbleu = SpBleu.for_model(cfg.eval.spm_tokenizer, model.tokenizer, args.spm_model or cfg.eval.spm_model)
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


def cmd_translate(args: argparse.Namespace) -> int:
    from lslo.training import load_run

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


def add_parser(sub) -> None:
    """Register ``lslo evaluate`` and ``lslo translate``."""
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
