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
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out directory as a whole")
    p.add_argument("--allow-same-language", action="store_true", help="export a direction whose source is its target")
    p.add_argument("--keep-dead", action="store_true",
                   help="keep pruned-away rank components (default: drop them, lowering the rank)")
    p.set_defaults(func=cmd_export_peft)
    return p


def cmd_export_peft(args: argparse.Namespace) -> int:
    import sys

    from lslo.cli.info import run_config_path
    from lslo.cli.outputs import check_output_dir, replace_dir, run_direction
    from lslo.training import RunError, load_run
    from lslo.training.config import RunConfig
    from lslo.tuner.peft_export import ExportError, export_peft

    cfg = RunConfig.load(run_config_path(args.run))
    if cfg.method == "full":
        raise RunError(f"{args.run}: a full fine-tuning run changes the base model; use `lslo merge` instead")
    out = check_output_dir(args.out, "--out", overwrite=args.overwrite,
                           protected={"the run's base model": cfg.model, "the run directory": args.run})
    src, tgt = run_direction(cfg, args.src, args.tgt, allow_same=args.allow_same_language, what="export-peft",
                             warn=lambda m: print(f"lslo export-peft: warning: {m}", file=sys.stderr))
    cfg, model = load_run(args.run, checkpoint=args.checkpoint, device="cpu")
    try:
        replace_dir(out, lambda tmp: export_peft(model, src, tgt, tmp, base_model=str(cfg.model),
                                                 drop_dead=not args.keep_dead))
    except ExportError as e:
        raise RunError(str(e)) from None
    print(f"wrote {out}: a PEFT LoRA adapter for {src}->{tgt} from checkpoint '{model.loaded_checkpoint}' "
          f"(PeftModel.from_pretrained(AutoModelForSeq2SeqLM.from_pretrained({cfg.model!r}, dtype=torch.float32), "
          f"{str(out)!r}))")
    return 0
