"""``lslo export-peft``: one direction of a run as a PEFT LoRA adapter."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``lslo export-peft RUN --src XX --tgt YY --out DIR [--checkpoint best|last]``."""
    p = subparsers.add_parser(
        "export-peft",
        help="write one direction as a standard PEFT LoRA adapter directory",
        description="Write the adapters of one direction as a PEFT LoRA adapter "
        "(PeftModel.from_pretrained(base, DIR) loads it without lslo).",
    )
    p.add_argument("run", help="run directory")
    p.add_argument("--src", required=True, help="source language code")
    p.add_argument("--tgt", required=True, help="target language code")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--keep-dead", action="store_true",
                   help="keep pruned-away rank components (default: drop them, lowering the rank)")
    p.set_defaults(func=cmd_export_peft)
    return p


def cmd_export_peft(args: argparse.Namespace) -> int:
    from lslo.training import RunError, load_run
    from lslo.tuner.peft_export import ExportError, export_peft

    cfg, model = load_run(args.run, checkpoint=args.checkpoint, device="cpu")
    if cfg.method == "full":
        raise RunError(f"{args.run}: a full fine-tuning run changes the base model; use `lslo merge` instead")
    try:
        out = export_peft(model, args.src, args.tgt, args.out, base_model=str(cfg.model),
                          drop_dead=not args.keep_dead)
    except ExportError as e:
        raise RunError(str(e)) from None
    print(f"wrote {out}: a PEFT LoRA adapter for {args.src}->{args.tgt} "
          f"(PeftModel.from_pretrained(AutoModelForSeq2SeqLM.from_pretrained({cfg.model!r}), {str(out)!r}))")
    return 0
