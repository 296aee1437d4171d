"""bf16 autocast against fp32 on one LSLo training batch: loss and adapter gradients.

The same random-weight M2M-100 (418M layer shapes by default), the same mixed 12-language batch,
one forward + backward in fp32 and one under bf16 autocast (fp32 parameters, as `lslo train`
uses bf16); prints the loss difference and, over all adapter gradients, the relative L2 error
and the cosine similarity, plus the worst module.

    python benchmarks/bf16_check.py --device cuda --layers 12        # on a GPU
    python benchmarks/bf16_check.py --layers 1 --vocab 2000           # a CPU smoke run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import emit  # noqa: E402

from lslo.tuner.config import LSLoConfig  # noqa: E402
from lslo.tuner.model import LSLoModel  # noqa: E402

LEVELS = ("high",) * 4 + ("medium",) * 4 + ("low",) * 4


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=128112)
    ap.add_argument("--batch", type=int, default=48, help="sentences (every one its own direction of 12 languages)")
    ap.add_argument("--len", type=int, default=42, help="source and target tokens each (48 x 2 x 42 = 4032)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    dev = torch.device(args.device)
    torch.manual_seed(args.seed)
    cfg = M2M100Config(vocab_size=args.vocab, d_model=1024, encoder_layers=args.layers, decoder_layers=args.layers,
                       encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096,
                       decoder_ffn_dim=4096, max_position_embeddings=1024, dropout=0.0, attention_dropout=0.0,
                       encoder_layerdrop=0.0, decoder_layerdrop=0.0, scale_embedding=True, pad_token_id=1,
                       bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
    base = M2M100ForConditionalGeneration(cfg)
    langs = [{"code": f"x{i:02d}", "level": LEVELS[i]} for i in range(12)]
    model = LSLoModel(base, LSLoConfig.from_dict({"languages": langs})).to(dev).train()
    g = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for m in model.lslo_modules().values():
            m.lora_BT.normal_(0.0, 0.02, generator=g)  # B = 0 at init would leave A's gradient at zero
    B, S = args.batch, args.len
    batch = {"input_ids": torch.randint(3, args.vocab, (B, S), generator=g).to(dev),
             "attention_mask": torch.ones(B, S, dtype=torch.long, device=dev),
             "labels": torch.randint(3, args.vocab, (B, S), generator=g).to(dev)}
    src = (torch.arange(B) % 12).to(dev)
    tgt = ((torch.arange(B) * 5 + 7) % 12).to(dev)
    results = {}
    for mode in ("fp32", "bf16"):
        model.zero_grad(set_to_none=True)
        ctx = torch.autocast(dev.type, dtype=torch.bfloat16) if mode == "bf16" else torch.autocast(dev.type,
                                                                                                    enabled=False)
        with model.route(src, tgt), ctx:
            loss = model.base(**batch).loss
        loss.backward()
        results[mode] = (float(loss.detach()), {n: p.grad.detach().float().clone() for n, p in model.named_parameters()
                                       if p.grad is not None})
    (l32, g32), (l16, g16) = results["fp32"], results["bf16"]
    a = torch.cat([g32[n].flatten() for n in g32])
    b = torch.cat([g16[n].flatten() for n in g32])
    per = {n: float((g16[n] - g32[n]).norm() / g32[n].norm().clamp_min(1e-30)) for n in g32}
    worst = max(per, key=per.get)
    out = {"device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "layers": args.layers, "vocab": args.vocab, "tokens": 2 * B * S,
           "loss_fp32": l32, "loss_bf16": l16, "loss_abs_diff": abs(l32 - l16),
           "grad_rel_l2_error": float((b - a).norm() / a.norm()),
           "grad_cosine": float(torch.nn.functional.cosine_similarity(a, b, dim=0)),
           "worst_module": worst, "worst_module_rel_l2_error": per[worst], "gradient_tensors": len(g32)}
    emit(out, args.json)
    return out


if __name__ == "__main__":
    main()
