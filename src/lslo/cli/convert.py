"""``lslo convert``: a fairseq M2M-100-family checkpoint to a Hugging Face directory, and back."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``lslo convert fairseq CHECKPOINT --out DIR`` and ``lslo convert to-fairseq MODEL --out DIR``."""
    p = subparsers.add_parser(
        "convert", help="convert a fairseq M2M-100 / FLORES-101 checkpoint to a Hugging Face directory (and back)",
        description="Read fairseq checkpoints without fairseq (torch.load, weights only where the file allows; "
                    "never running code from it) and write a Hugging Face M2M100ForConditionalGeneration "
                    "directory whose tokenizer gives fairseq's dictionary ids.")
    sub = p.add_subparsers(dest="direction", required=True)
    f = sub.add_parser("fairseq", help="fairseq model.pt + dict.txt + SentencePiece model -> Hugging Face directory",
                       description="The files default to those next to CHECKPOINT (dict.txt, sentencepiece.bpe.model "
                                   "or the one *.model, language_pairs.txt); the language list, which fixes the ids "
                                   "of the __xx__ tokens, comes from --langs, --lang-dict or --lang-pairs, else "
                                   "language_pairs.txt, else the checkpoint's own task settings.")
    f.add_argument("checkpoint", help="fairseq checkpoint (model.pt)")
    f.add_argument("--out", required=True, help="output directory (a Hugging Face model directory)")
    f.add_argument("--dict", dest="dict_path", default=None, help="fairseq dictionary (default: dict.txt next to it)")
    f.add_argument("--spm", dest="spm_path", default=None, help="SentencePiece model (default: the one next to it)")
    langs = f.add_mutually_exclusive_group()
    langs.add_argument("--langs", default=None, help="languages in fairseq's order, comma-separated (fairseq --langs)")
    langs.add_argument("--lang-dict", default=None, help="file with one language per line (fairseq --lang-dict)")
    langs.add_argument("--lang-pairs", default=None,
                       help="language pairs file or list (fairseq --lang-pairs: languages sorted, as fairseq does)")
    f.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                   help="dtype of the saved weights (lslo trains in float32 whatever it loads)")
    f.add_argument("--overwrite", action="store_true", help="replace a non-empty --out directory as a whole")
    f.set_defaults(func=cmd_from_fairseq)
    t = sub.add_parser("to-fairseq", help="Hugging Face M2M-100 directory -> fairseq model.pt, dict.txt, SentencePiece",
                       description="Write model.pt (fairseq's transformer keys, settings as args), dict.txt (the whole "
                                   "vocabulary, as M2M-100's fixed dictionary), sentencepiece.bpe.model, "
                                   "language_pairs.txt and languages.txt (fairseq --lang-dict).")
    t.add_argument("model", help="Hugging Face M2M-100 model directory (with its tokenizer)")
    t.add_argument("--out", required=True, help="output directory")
    t.add_argument("--langs", default=None, help="languages, comma-separated (default: every __xx__ token, in id order)")
    t.add_argument("--overwrite", action="store_true", help="replace a non-empty --out directory as a whole")
    t.set_defaults(func=cmd_to_fairseq)
    return p


def cmd_from_fairseq(args: argparse.Namespace) -> int:
    from lslo.cli.outputs import check_output_dir, replace_dir
    from lslo.convert import convert_fairseq

    out = check_output_dir(args.out, "--out", overwrite=args.overwrite)
    summary: dict = {}
    replace_dir(out, lambda tmp: summary.update(convert_fairseq(
        args.checkpoint, tmp, dict_path=args.dict_path, spm_path=args.spm_path, langs=args.langs,
        lang_dict=args.lang_dict, lang_pairs=args.lang_pairs, dtype=args.dtype)))
    print(f"wrote {out}: M2M100ForConditionalGeneration, {summary['parameters']:,} parameters "
          f"({summary['encoder_layers']}+{summary['decoder_layers']} layers, d_model {summary['d_model']}, "
          f"vocabulary {summary['vocab_size']:,}), {summary['tokenizer_class']} with {len(summary['languages'])} "
          f"language tokens (__{summary['languages'][0]}__ = {summary['language_token_ids'][summary['languages'][0]]})")
    print(f"use it: lslo train CONFIG --set model={out}")
    return 0


def cmd_to_fairseq(args: argparse.Namespace) -> int:
    from lslo.cli.outputs import check_output_dir, replace_dir
    from lslo.convert import export_fairseq

    out = check_output_dir(args.out, "--out", overwrite=args.overwrite, protected={"the model": args.model})
    langs = [x.strip() for x in args.langs.split(",")] if args.langs else None
    summary: dict = {}
    replace_dir(out, lambda tmp: summary.update(export_fairseq(args.model, tmp, langs)))
    print(f"wrote {out}: model.pt, dict.txt, sentencepiece.bpe.model, language_pairs.txt "
          f"({len(summary['languages'])} languages, vocabulary {summary['vocab_size']:,})")
    return 0
