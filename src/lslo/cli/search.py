"""``lslo search``: learn the per-layer routing by weight learning."""

from __future__ import annotations

import argparse
import json
import sys


def cmd_search(args: argparse.Namespace) -> int:
    from lslo.cli.outputs import protect_from_config
    from lslo.search import run_search
    from lslo.tuner.layer import SHARED

    protect_from_config(args.config, args.output_dir, "--output-dir", list(args.set or []))

    overrides = list(args.set or [])
    if args.per_position:
        overrides.append("search.per_position=true")
    if args.include_shared:
        overrides.append("search.include_shared=true")
    if args.temperature is not None:
        overrides.append(f"search.temperature={args.temperature}")
    if args.logit_lr is not None:
        overrides.append(f"search.logit_lr={args.logit_lr}")
    if args.max_steps is not None:
        overrides.append(f"search.train.max_steps={args.max_steps}")
    result = run_search(args.config, overrides, output_dir=args.output_dir, overwrite=args.overwrite,
                        device=args.device, quiet=args.quiet)
    if "files" not in result:  # not the main process of a data-parallel run
        return 0

    def line(side: str) -> str:
        out = []
        for e in result[side]:
            c = e["route"][0].upper()
            out.append(c.lower() if e["winner"] == SHARED else c)
        return " ".join(out)

    print(f"encoder routing: {line('encoder')}   decoder routing: {line('decoder')}   "
          "(S=source, T=target; lower case: the shared LoRA won, mapped to the closer side)")
    for side in ("encoder", "decoder"):
        ws = "  ".join(
            f"{e['layer'] + 1}:" + "/".join(f"{e['weights'][c]:.2f}" for c in result["choices"]) for e in result[side]
        )
        print(f"{side} weights ({'/'.join(result['choices'])}): {ws}")
    for note in result.get("ties", []):
        print(f"lslo search: warning: tie: {note}", file=sys.stderr)
    print(json.dumps({"run_dir": result["run_dir"], "steps": result["steps"], "files": result["files"]}, indent=2))
    print(f"next: lslo train {result['files']['result']}")
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    s = subparsers.add_parser(
        "search", help="learn per-layer source/target routing by weight learning (the paper's architecture learning)",
        description="Give every adapted layer a source- and a target-indexed LSLo mixed by learnable softmax "
                    "weights, fine-tune briefly, keep the side with the larger weight per layer. Writes "
                    "routing.yaml, search_result.yaml (a run config for `lslo train`), routing_weights.json/.png.",
    )
    s.add_argument("config", help="run config YAML, optionally with a search: section")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set search.train.max_steps=200 (repeatable)")
    s.add_argument("--output-dir", help="search directory (default: search.output_dir, else <output_dir>-search)")
    s.add_argument("--overwrite", action="store_true", help="reuse an existing search directory")
    s.add_argument("--per-position", action="store_true", help="one mixing weight per position (search.per_position)")
    s.add_argument("--include-shared", action="store_true", help="a third, shared LoRA choice (search.include_shared)")
    s.add_argument("--temperature", type=float, help="softmax temperature of the mixing weights")
    s.add_argument("--logit-lr", type=float, help="learning rate of the mixing logits (default: train.lr)")
    s.add_argument("--max-steps", type=int, help="search budget in updates (search.train.max_steps)")
    s.add_argument("--device", help="cpu | cuda (default: cuda when available)")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_search)
    return s
