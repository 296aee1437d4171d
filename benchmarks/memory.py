"""Adapter memory for many languages: packed storage against the padded layout it replaced.

lslo 0.1 stacked every language's A/B padded to the largest rank, so with the paper's ranks
(2/2/8) two thirds of the languages stored 4x what they use, and gradients, Adam's two moments
and the pruning masks grew with it. Adapters are now packed (R = sum of the ranks rows). This
benchmark measures, in one run, for 12, 50 and 100 languages with the paper's mixed ranks
(languages cycle high/medium/low: 1/3 at rank 8, 2/3 at rank 2):

- adapter parameter + Adam state bytes (measured on the tensors after an Adam step) and the mask
  bytes, for ``packed`` (today) and ``padded`` (every language stored at r_max: exactly the
  bytes of lslo 0.1's (L, r_max, d) stacks), against the unpadded sum;
- the peak memory of one training step (forward + backward + Adam) and its CPU time (median);
- the same byte counts at the full M2M-100 418M depth (12+12 layers), counted on a model built
  on the meta device (no memory, no weights).

    python benchmarks/memory.py --json benchmarks/results/memory.json
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _baselines import cpu_peak_bytes  # noqa: E402
from _machine import machine  # noqa: E402
from _report import emit  # noqa: E402

from lslo.tuner.config import LSLoConfig  # noqa: E402
from lslo.tuner.model import LSLoModel  # noqa: E402

LEVELS = ("high", "medium", "low")  # cycled: 1/3 of the languages at each level
RANKS = {"high": 2, "medium": 2, "low": 8}  # the paper's


def m2m_config(layers: int, vocab: int):
    from transformers import M2M100Config

    return M2M100Config(vocab_size=vocab, d_model=1024, encoder_layers=layers, decoder_layers=layers,
                        encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096,
                        decoder_ffn_dim=4096, max_position_embeddings=1024, dropout=0.0, attention_dropout=0.0,
                        encoder_layerdrop=0.0, decoder_layerdrop=0.0, pad_token_id=1, bos_token_id=0,
                        eos_token_id=2, decoder_start_token_id=2)


def lslo_config(n: int, padded: bool) -> LSLoConfig:
    langs = []
    for i in range(n):
        level = LEVELS[i % 3]
        entry = {"code": f"x{i:03d}", "level": level}
        if padded:
            entry["rank"] = max(RANKS.values())
        langs.append(entry)
    return LSLoConfig.from_dict({"languages": langs, "ranks": dict(RANKS)})


def unpadded_elements(model: LSLoModel, n: int) -> int:
    """sum over adapted modules and languages of r_l (d_in + d_out): what the ranks really need."""
    ranks = [RANKS[LEVELS[i % 3]] for i in range(n)]
    return sum(r * (m.in_features + m.out_features) for m in model.lslo_modules().values() for r in ranks)


def adapter_bytes(model: LSLoModel, opt: torch.optim.Optimizer | None) -> dict[str, int]:
    params = list(model.adapter_parameters())
    p = sum(t.numel() * t.element_size() for t in params)
    adam = 0
    if opt is not None:
        for st in opt.state.values():
            adam += sum(v.numel() * v.element_size() for v in st.values() if torch.is_tensor(v) and v.dim() > 0)
    masks = sum(getattr(m, name).numel() * getattr(m, name).element_size()
                for m in model.lslo_modules().values() for _, name in m.param_masks())
    return {"parameters": p, "adam_state": adam, "masks": masks, "parameters_and_adam": p + adam}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--languages", default="12,50,100")
    ap.add_argument("--layers", type=int, default=2, help="encoder and decoder layers for the measured steps")
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--batch", type=int, default=12, help="sentences, each its own direction")
    ap.add_argument("--len", type=int, default=16, help="tokens per source and target sentence")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--full-depth", type=int, default=12, help="layers for the meta-device byte count (0: skip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    from transformers import M2M100ForConditionalGeneration
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    pristine = M2M100ForConditionalGeneration(m2m_config(args.layers, args.vocab))
    for p in pristine.parameters():
        p.requires_grad_(False)
    counts = [int(x) for x in args.languages.split(",")]
    g = torch.Generator().manual_seed(args.seed)
    B, S = args.batch, args.len
    batch = {"input_ids": torch.randint(3, args.vocab, (B, S), generator=g),
             "attention_mask": torch.ones(B, S, dtype=torch.long),
             "labels": torch.randint(3, args.vocab, (B, S), generator=g)}
    rows = []
    for n in counts:
        # every sentence its own direction; both levels' ranks are in the batch
        src = torch.tensor([(7 * i) % n for i in range(B)])
        tgt = torch.tensor([(7 * i + 5) % n for i in range(B)])
        for layout in ("packed", "padded"):
            model = LSLoModel(copy.deepcopy(pristine), lslo_config(n, layout == "padded")).train()
            with torch.no_grad():
                for m in model.lslo_modules().values():
                    m.lora_BT.normal_(0.0, 0.02, generator=g)
            params = list(model.adapter_parameters())
            opt = torch.optim.Adam(params, lr=1e-5)

            def step(model=model, opt=opt, src=src, tgt=tgt):
                opt.zero_grad(set_to_none=True)
                with model.route(src, tgt):
                    loss = model.base(**batch).loss
                loss.backward()
                opt.step()

            step()  # Adam's state exists from here on
            times = []
            for _ in range(args.repeats):
                t0 = time.process_time()
                step()
                times.append(1000 * (time.process_time() - t0))
            peak = cpu_peak_bytes(step)
            nb = adapter_bytes(model, opt)
            need = unpadded_elements(model, n) * 4 * 3  # fp32 parameter + Adam's exp_avg + exp_avg_sq
            rows.append({"languages": n, "layout": layout, **nb, "unpadded_sum_parameters_and_adam": need,
                         "ratio_to_unpadded": round(nb["parameters_and_adam"] / need, 3),
                         "step_peak_bytes": peak, "step_ms_median": round(statistics.median(times), 1)})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            del model, opt

    def row(n, layout):
        return next(r for r in rows if r["languages"] == n and r["layout"] == layout)

    summary = {}
    for n in counts:
        pk, pd = row(n, "packed"), row(n, "padded")
        summary[str(n)] = {
            "packed/unpadded (params+Adam)": pk["ratio_to_unpadded"],
            "padded/unpadded (params+Adam)": pd["ratio_to_unpadded"],
            "packed/padded step peak": round(pk["step_peak_bytes"] / pd["step_peak_bytes"], 3),
            "packed/padded step time": round(pk["step_ms_median"] / pd["step_ms_median"], 3),
        }
    base = summary[str(counts[0])]
    growth = {f"step peak {n}/{counts[0]} languages": {
        layout: round(row(n, layout)["step_peak_bytes"] / row(counts[0], layout)["step_peak_bytes"], 2)
        for layout in ("packed", "padded")} for n in counts[1:]}

    full = {}
    if args.full_depth:
        with torch.device("meta"):
            meta_base = M2M100ForConditionalGeneration(m2m_config(args.full_depth, 128112))
        for n in counts:
            entry = full.setdefault(str(n), {})
            for layout in ("packed", "padded"):
                model = LSLoModel(copy.deepcopy(meta_base), lslo_config(n, layout == "padded"))
                params = sum(p.numel() for p in model.adapter_parameters())
                entry[layout] = {"adapter_parameters": params, "parameters_and_adam_bytes": params * 4 * 3,
                                 "mask_bytes": params}
            entry["unpadded_parameters"] = unpadded_elements(model, n)
            for layout in ("packed", "padded"):
                entry[f"{layout}/unpadded"] = round(entry[layout]["adapter_parameters"] / entry["unpadded_parameters"], 3)
    out = {
        "benchmark": "memory", "command": "python benchmarks/memory.py " + " ".join(argv or sys.argv[1:]),
        "machine": machine(threads=1),
        "setup": {"model": f"M2M-100 418M shapes (d_model 1024, FFN 4096), {args.layers}+{args.layers} layers, "
                  f"vocabulary {args.vocab}, random weights", "ranks": RANKS, "levels": "cycled high/medium/low",
                  "batch": f"{B} sentences x {S} tokens, every sentence its own direction",
                  "padded": "every language stored at r_max = 8: the bytes of lslo 0.1's padded stacks",
                  "step_peak": "torch.profiler allocator peak during forward+backward+Adam above what was allocated",
                  "step_time": f"median of {args.repeats} steps, process CPU time, 1 thread"},
        "rows": rows, "summary": summary, "growth": growth, "full_depth_418M": full,
        "goals": {"packed params+Adam <= 1.1x unpadded": all(v["packed/unpadded (params+Adam)"] <= 1.1
                                                             for v in summary.values()),
                  "packed step time vs padded (12 languages)": base["packed/padded step time"]},
    }
    emit(out, args.json)
    return out


if __name__ == "__main__":
    main()
