"""Side-by-side speed and memory of LSLo against one shared LoRA, PEFT LoRA, the loop reference, the base.

Everything runs in ONE process on the same random-weight M2M-100 (the real 418M shapes:
d_model 1024, FFN 4096, 16 heads; a small vocabulary and fewer layers so it fits a CPU),
with interleaved repetitions (the variant order rotates every repetition) and medians.
Prints one JSON document to stdout; progress goes to stderr.

    python benchmarks/speed.py                      # CPU defaults: 2+2 layers, 1 thread, CPU-time clock
    python benchmarks/speed.py --quick              # smoke run
    python benchmarks/speed.py --device cuda --dtype bf16 --layers 12 --batch 48 --src-len 32
    python benchmarks/speed.py --full-shape         # real 418M / NLLB-600M shapes through lslo train/evaluate
                                                    # (benchmarks/full_shape.py; its options follow)

Variants of a training step (forward + backward + Adam step) on a batch that mixes 12
languages (every sentence its own direction):
  lslo          LSLo, ranks 2/2/8 (high/medium/low), positions and routing as the paper
  shared_lora   one plain rank-8 LoRA on the same modules (benchmarks/_baselines.py)
  peft_lora     PEFT LoRA rank 8 (alpha 8: scale 1) on the same modules
  reference     LSLo through forward_reference (Python loop over the languages in the batch)
  lslo_100      LSLo with 100 languages (fake codes), same batch shape, routed among the 100
  base          the frozen base alone: forward + backward to the embeddings, no optimizer
Beam search (beam 5) of a batch mixing 6 directions, fixed output length:
  gen_lslo      unmerged LSLo (per-sentence routing inside generate)
  gen_base      the base model
  gen_merged    model.merge(src, tgt): one direction folded into the weights
  (all three through transformers' generate; gen_lean_lslo and gen_lean_base: unmerged LSLo and the
  base through lslo's own beam search, lslo.decoding, the end-of-sentence token suppressed so the
  output length is fixed there too)
Memory of a training step: the peak allocated during forward+backward+Adam step above what was
allocated before it (CUDA: torch.cuda.max_memory_allocated; CPU: the profiler's allocator
events), plus the bytes autograd saves for backward (unique storages, parameters and buffers
excluded) and the adapters' parameter + Adam-state bytes, reported separately.

Timing: on CPU the default is 1 torch thread and process CPU time (time.process_time), which
other processes sharing the cores disturb far less than wall time; --threads 0 --clock wall
gives wall time with torch's default threads. On CUDA: wall time with synchronisation.
All adapters get small random B (LoRA starts at B = 0) so every update is live.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _baselines import cpu_peak_bytes, inject_shared_lora, peft_lora, saved_tensor_bytes  # noqa: E402
from _machine import machine  # noqa: E402

from lslo.tuner.config import LSLoConfig  # noqa: E402
from lslo.tuner.model import LSLoModel  # noqa: E402

GOALS = {
    "lslo/shared_lora": 1.10,
    "lslo/peft_lora": 1.05,
    "lslo_100/lslo_12": 1.10,
    "gen_unmerged/base": 1.25,
    "gen_merged/base": 1.02,
    "gen_lean_unmerged/base": 1.25,
    "mem lslo/shared_lora": 1.05,
}
LEVEL_CYCLE = ("high",) * 4 + ("medium",) * 4 + ("low",) * 4  # 12 languages: 4/4/4 as the paper


CLOCK = time.perf_counter  # main() switches to time.process_time for --clock cpu


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--layers", type=int, default=None, help="encoder and decoder layers each (default 2; quick 1)")
    p.add_argument("--repeats", type=int, default=None, help="timed repetitions per variant (default 7; quick 2)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (cuda when available)")
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="bf16 = autocast, fp32 parameters")
    p.add_argument("--batch", type=int, default=12, help="sentences per training batch (12 languages mixed)")
    p.add_argument("--src-len", type=int, default=None, help="source tokens per sentence (default 16; quick 8)")
    p.add_argument("--tgt-len", type=int, default=None, help="target tokens per sentence (default = src-len)")
    p.add_argument("--vocab", type=int, default=8000, help="vocabulary size (the real model has 128112)")
    p.add_argument("--gen-batch", type=int, default=6, help="sentences in the generation batch (6 directions)")
    p.add_argument("--gen-tokens", type=int, default=None, help="generated tokens (default 8; quick 4)")
    p.add_argument("--beams", type=int, default=5)
    p.add_argument("--optimizer", choices=("fused", "foreach", "plain"), default="fused",
                   help="Adam implementation for every variant (fused falls back to foreach where unsupported)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default 1 on CPU: steadier on a shared machine; 0 = torch default)")
    p.add_argument("--clock", choices=("auto", "wall", "cpu"), default="auto",
                   help="wall = time.perf_counter; cpu = time.process_time (CPU seconds of this process: "
                   "insensitive to other processes taking the cores; valid with 1 thread on CPU). "
                   "auto = cpu on CPU with 1 thread, else wall")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    a.layers = a.layers or (1 if a.quick else 2)
    a.repeats = a.repeats or (2 if a.quick else 7)
    a.src_len = a.src_len or (8 if a.quick else 16)
    a.tgt_len = a.tgt_len or a.src_len
    a.gen_tokens = a.gen_tokens or (4 if a.quick else 8)
    if a.device == "auto":
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    if a.threads is None:
        a.threads = 1 if a.device == "cpu" else 0
    if a.clock == "auto":
        a.clock = "cpu" if a.device == "cpu" and a.threads == 1 else "wall"
    if a.clock == "cpu" and a.device != "cpu":
        p.error("--clock cpu measures host CPU time; use --clock wall with an accelerator")
    return a


# ----------------------------------------------------------------------------- setup
def m2m_config(args):
    from transformers import M2M100Config

    return M2M100Config(
        vocab_size=args.vocab, d_model=1024, encoder_layers=args.layers, decoder_layers=args.layers,
        encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096,
        max_position_embeddings=1024, dropout=0.1, attention_dropout=0.1, activation_dropout=0.0,
        encoder_layerdrop=0.0, decoder_layerdrop=0.0,  # LayerDrop would skip layers at random: noise
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
    )


def lslo_config(n_langs: int) -> LSLoConfig:
    langs = [{"code": f"x{i:03d}", "level": LEVEL_CYCLE[i % 12]} for i in range(n_langs)]
    return LSLoConfig.from_dict({"languages": langs})


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(args, device: torch.device):
    if args.dtype == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class TrainVariant:
    """One training-step variant: how to run the loss, which parameters Adam updates."""

    def __init__(self, name, model, params, optimizer, route=None, before=None, after=None):
        self.name, self.model, self.params = name, model, params
        self.route = route  # (lslo_model, src, tgt) or None
        self.before, self.after = before, after  # switch a shared model into this variant and back
        self.opt = make_adam(params, optimizer) if params else None

    def loss(self, batch):
        ctx = self.route[0].route(self.route[1], self.route[2]) if self.route else contextlib.nullcontext()
        with ctx:
            return self.model(**batch).loss

    def step(self, batch, args, device):
        """One step; returns (forward, backward, optimizer) seconds."""
        if self.before:
            self.before()
        try:
            if self.opt:
                self.opt.zero_grad(set_to_none=True)
            sync(device)
            t0 = CLOCK()
            with autocast(args, device):
                loss = self.loss(batch)
            sync(device)
            t1 = CLOCK()
            loss.backward()
            sync(device)
            t2 = CLOCK()
            if self.opt:
                self.opt.step()
            sync(device)
            t3 = CLOCK()
        finally:
            if self.after:
                self.after()
        return t1 - t0, t2 - t1, t3 - t2


def make_adam(params, kind: str) -> torch.optim.Optimizer:
    kw = dict(lr=1e-5, betas=(0.9, 0.98), eps=1e-8)
    if kind == "fused":
        try:
            opt = torch.optim.Adam(params, fused=True, **kw)
            return opt
        except (RuntimeError, TypeError, ValueError):
            kind = "foreach"
    return torch.optim.Adam(params, foreach=(kind == "foreach"), **kw)


def use_reference(model: LSLoModel, on: bool) -> None:
    for m in model.lslo_modules().values():
        if on:
            m.forward = m.forward_reference
        elif "forward" in m.__dict__:
            del m.forward


def embeddings_require_grad(model) -> None:
    """The frozen base needs something to backpropagate to: its embedding outputs."""
    for mod in model.modules():
        if isinstance(mod, torch.nn.Embedding):
            mod.register_forward_hook(lambda mod, inp, out: out.requires_grad_(True))


def state_bytes(params, opt) -> int:
    n = sum(p.numel() * p.element_size() for p in params)
    if opt is not None:
        for st in opt.state.values():
            n += sum(v.numel() * v.element_size() for v in st.values() if torch.is_tensor(v) and v.dim() > 0)
    return n


# ----------------------------------------------------------------------------- main
@dataclass
class Setup:
    """The models, batches and variants every phase of the benchmark shares."""

    args: argparse.Namespace
    device: torch.device
    pristine: nn.Module
    lslo: LSLoModel
    names: list[str]
    variants: list[TrainVariant]
    batch: dict
    src12: torch.Tensor
    tgt12: torch.Tensor
    g: torch.Generator


def build(args: argparse.Namespace) -> Setup:
    """The base (random weights, 418M shapes), the adapted variants (LSLo at 12 and 100 languages,
    shared LoRA, PEFT LoRA, the plain base) and a training batch of 12 directions."""
    from transformers import M2M100ForConditionalGeneration

    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    log(f"building base model: {args.layers}+{args.layers} layers, d=1024, ffn=4096, vocab={args.vocab}")
    pristine = M2M100ForConditionalGeneration(m2m_config(args)).to(device)
    for p in pristine.parameters():
        p.requires_grad_(False)

    def fresh():
        return copy.deepcopy(pristine)

    lslo = LSLoModel(fresh(), lslo_config(12)).to(device).train()
    names = list(lslo.lslo_modules())
    lslo100 = LSLoModel(fresh(), lslo_config(100)).to(device).train()
    shared_model = fresh().train()
    shared_params = inject_shared_lora(shared_model, names, rank=8)
    peft_model, peft_params = peft_lora(fresh(), names, rank=8)
    peft_model.train()
    n_peft = sum(1 for n, _ in peft_model.named_modules() if n.endswith(".lora_A.default"))
    n_shared = len(shared_params) // 2
    if not n_peft == n_shared == len(names):
        raise RuntimeError(f"adapted modules differ: lslo {len(names)}, shared {n_shared}, peft {n_peft}")
    base_model = fresh().train()
    embeddings_require_grad(base_model)
    # B starts at zero (LoRA init); give every adapter small random B so the updates are live
    with torch.no_grad():
        for model in (lslo, lslo100, shared_model, peft_model):
            for name, p in model.named_parameters():
                if p.requires_grad and "lora_B" in name:
                    p.normal_(0.0, 0.02, generator=None)
    # the training batch: 12 sentences, 12 source languages, 12 different directions
    g = torch.Generator().manual_seed(args.seed)
    B, S, T = args.batch, args.src_len, args.tgt_len
    src12 = torch.arange(B) % 12
    tgt12 = (src12 + 1 + torch.arange(B) // 12) % 12  # src != tgt, every direction distinct for B <= 132
    perm = torch.randperm(100, generator=g)
    src100, tgt100 = perm[src12], perm[12 + tgt12]
    batch = {
        "input_ids": torch.randint(4, args.vocab - 128, (B, S), generator=g).to(device),
        "attention_mask": torch.ones(B, S, dtype=torch.long, device=device),
        "labels": torch.randint(4, args.vocab - 128, (B, T), generator=g).to(device),  # decoder inputs: shifted
    }
    lslo_params = list(lslo.adapter_parameters())
    variants = [
        TrainVariant("lslo", lslo.base, lslo_params, args.optimizer, route=(lslo, src12, tgt12)),
        TrainVariant("shared_lora", shared_model, shared_params, args.optimizer),
        TrainVariant("peft_lora", peft_model, peft_params, args.optimizer),
        TrainVariant("reference", lslo.base, lslo_params, args.optimizer, route=(lslo, src12, tgt12),
                     before=lambda: use_reference(lslo, True), after=lambda: use_reference(lslo, False)),
        TrainVariant("lslo_100", lslo100.base, list(lslo100.adapter_parameters()), args.optimizer,
                     route=(lslo100, src100, tgt100)),
        TrainVariant("base", base_model, [], args.optimizer),
    ]
    return Setup(args, device, pristine, lslo, names, variants, batch, src12, tgt12, g)


def check(st: Setup) -> dict:
    """Correctness guard: the reference and the fast path agree on this batch (same weights, no
    dropout), and the adapters change the loss."""
    v, batch = st.variants[0], st.batch
    st.lslo.eval()
    with torch.no_grad(), autocast(st.args, st.device):
        fast_loss = v.loss(batch).float()
        use_reference(st.lslo, True)
        ref_loss = v.loss(batch).float()
        use_reference(st.lslo, False)
        st.pristine.eval()
        base_loss = st.pristine(**batch).loss.float()
    st.lslo.train()
    return {"fast_vs_reference_loss_abs_diff": float((fast_loss - ref_loss).abs()),
            "lslo_vs_base_loss_abs_diff": float((fast_loss - base_loss).abs())}


def time_training(st: Setup) -> dict:
    """Training steps of every variant, interleaved (the order rotated per repetition), in ms."""
    args, variants = st.args, st.variants
    log(f"training steps: {len(variants)} variants x ({args.warmup} warmup + {args.repeats} timed)")
    raw = {v.name: [] for v in variants}
    phases = {v.name: {"forward": [], "backward": [], "optimizer": []} for v in variants}
    for _ in range(args.warmup):
        for v in variants:
            v.step(st.batch, args, st.device)
    for rep in range(args.repeats):
        order = variants[rep % len(variants):] + variants[: rep % len(variants)]
        for v in order:
            f, b, o = v.step(st.batch, args, st.device)
            raw[v.name].append(1e3 * (f + b + o))
            for k, t in zip(("forward", "backward", "optimizer"), (f, b, o)):
                phases[v.name][k].append(1e3 * t)
        log(f"  rep {rep + 1}/{args.repeats}: " + ", ".join(f"{k} {raw[k][-1]:.0f}ms" for k in raw))
    return {"raw": raw, "median": {k: statistics.median(v) for k, v in raw.items()},
            "min": {k: min(v) for k, v in raw.items()},
            "phase_median": {k: {p: statistics.median(t) for p, t in ph.items()} for k, ph in phases.items()}}


def measure_memory(st: Setup) -> dict:
    """Saved-for-backward bytes, the step's peak and the adapter + Adam state of every variant."""
    log("memory")
    args, device, batch = st.args, st.device, st.batch
    mem: dict[str, int] = {}
    mem_saved: dict[str, int] = {}
    static = {}
    for v in st.variants:
        if v.name in ("reference",):
            continue
        model_tensors = [*v.model.parameters(), *v.model.buffers()]
        if v.opt:
            v.opt.zero_grad(set_to_none=True)
        with autocast(args, device):
            loss, nbytes = saved_tensor_bytes(lambda v=v: v.loss(batch), model_tensors)
        loss.backward()
        mem_saved[v.name] = nbytes
        log(f"  {v.name}: saved {nbytes / 2**20:.1f} MiB")
        del loss
        if v.opt:
            v.opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            sync(device)
            torch.cuda.reset_peak_memory_stats(device)
            start = torch.cuda.memory_allocated(device)
            v.step(batch, args, device)
            mem[v.name] = torch.cuda.max_memory_allocated(device) - start
        else:
            mem[v.name] = cpu_peak_bytes(lambda v=v: v.step(batch, args, device))
        log(f"  {v.name}: step peak {mem[v.name] / 2**20:.1f} MiB")
        static[v.name] = state_bytes(v.params, v.opt)
    method = (
        "torch.cuda.max_memory_allocated during forward+backward+Adam step, minus memory allocated before it"
        if device.type == "cuda"
        else "peak host memory allocated by torch during forward+backward+Adam step above what was allocated "
        "before it (torch.profiler profile_memory allocator events, 'Total Allocated')"
    )
    return {"method": method, "step_peak_bytes": mem, "saved_for_backward_bytes": mem_saved,
            "adapter_parameter_and_adam_state_bytes": static,
            "note": "LSLo packs every language's pair without padding: its parameters and Adam state grow "
            "with the sum of the ranks (benchmarks/memory.py); these are listed separately"}


GEN_DIRS = [(0, 4), (4, 8), (8, 0), (1, 9), (5, 2), (10, 6)]


def generation_variants(st: Setup) -> dict:
    """Beam search on a batch mixing 6 directions: LSLo unmerged, the base, one merged direction
    (transformers' generate), and lslo's lean search on LSLo and on the base."""
    from lslo import decoding

    args, device, lslo = st.args, st.device, st.lslo
    gb = args.gen_batch
    gsrc = torch.tensor([GEN_DIRS[i % 6][0] for i in range(gb)])
    gtgt = torch.tensor([GEN_DIRS[i % 6][1] for i in range(gb)])
    lang_tok = args.vocab - 100  # fake language tokens at the end of the vocabulary
    inputs = {
        "input_ids": torch.randint(4, args.vocab - 128, (gb, args.src_len), generator=st.g).to(device),
        "attention_mask": torch.ones(gb, args.src_len, dtype=torch.long, device=device),
        "decoder_input_ids": torch.stack([torch.full((gb,), 2), lang_tok + gtgt], 1).to(device),
    }
    kw = dict(num_beams=args.beams, max_new_tokens=args.gen_tokens, min_new_tokens=args.gen_tokens, do_sample=False,
              pad_token_id=1, eos_token_id=2, decoder_start_token_id=2, forced_bos_token_id=None)
    lslo.eval()
    merged = lslo.merge(lslo.config.codes[GEN_DIRS[0][0]], lslo.config.codes[GEN_DIRS[0][1]]).eval()
    base = st.pristine.eval()
    lean_kw = dict(num_beams=args.beams, max_new_tokens=args.gen_tokens, pad_token_id=1, eos_token_id=2,
                   suppress_tokens=[2])

    def gen_lslo():
        with lslo.route(gsrc, gtgt):
            return lslo.base.generate(**inputs, **kw)

    def gen_lean(model, on_active=None):
        why = decoding.unsupported(model, lean_kw)
        if why:
            raise SystemExit(f"speed.py: the lean search cannot run here: {why}")
        return decoding.generate(model, inputs["input_ids"], inputs["attention_mask"], inputs["decoder_input_ids"],
                                 lean_kw, on_active)

    def gen_lean_lslo():
        with lslo.route(gsrc, gtgt):
            src, tgt = lslo.router.src, lslo.router.tgt

            def on_active(ids):  # finished sentences left the batch: the routing follows (as LSLoModel.generate)
                lslo.router.set(src.index_select(0, ids), tgt.index_select(0, ids))

            return gen_lean(lslo.base, on_active)

    return {"gen_lslo": gen_lslo, "gen_base": lambda: base.generate(**inputs, **kw),
            "gen_merged": lambda: merged.generate(**inputs, **kw), "gen_lean_lslo": gen_lean_lslo,
            "gen_lean_base": lambda: gen_lean(base)}


def time_generation(st: Setup) -> dict:
    """Every generation variant, interleaved and rotated, ``2 x repeats`` times, in ms."""
    log("generation")
    args, device = st.args, st.device
    for v in st.variants:  # free training state before generation
        if v.opt:
            v.opt.zero_grad(set_to_none=True)
    variants = generation_variants(st)
    raw = {k: [] for k in variants}
    shapes = {}
    with torch.no_grad(), autocast(args, device):
        for k, fn in variants.items():
            for _ in range(args.warmup):
                shapes[k] = list(fn().shape)
        names = list(variants)
        for rep in range(2 * args.repeats):
            for k in names[rep % len(names):] + names[: rep % len(names)]:
                sync(device)
                t0 = CLOCK()
                variants[k]()
                sync(device)
                raw[k].append(1e3 * (CLOCK() - t0))
    median = {k: statistics.median(v) for k, v in raw.items()}
    log("  " + ", ".join(f"{k} {v:.0f}ms" for k, v in median.items()))
    return {"raw": raw, "median": median, "min": {k: min(v) for k, v in raw.items()}, "shapes": shapes,
            "repeats": 2 * args.repeats}


def speed_ratios(train: dict, gen: dict, mem: dict) -> tuple[dict, dict]:
    """The goal ratios (each with its goal and whether it is met) and the informative ones."""
    tm, tmin, gm, gmin = train["median"], train["min"], gen["median"], gen["min"]
    peak, saved = mem["step_peak_bytes"], mem["saved_for_backward_bytes"]
    values = {
        "lslo/shared_lora": tm["lslo"] / tm["shared_lora"],
        "lslo/peft_lora": tm["lslo"] / tm["peft_lora"],
        "lslo_100/lslo_12": tm["lslo_100"] / tm["lslo"],
        "gen_unmerged/base": gm["gen_lslo"] / gm["gen_base"],
        "gen_merged/base": gm["gen_merged"] / gm["gen_base"],
        "gen_lean_unmerged/base": gm["gen_lean_lslo"] / gm["gen_lean_base"],
        "mem lslo/shared_lora": peak["lslo"] / peak["shared_lora"],
    }
    ratios = {k: {"value": round(v, 4), "goal": f"<= {GOALS[k]}", "met": bool(v <= GOALS[k])} for k, v in values.items()}
    fb = {k: ph["forward"] + ph["backward"] for k, ph in train["phase_median"].items()}
    info = {
        "reference/lslo": tm["reference"] / tm["lslo"],
        "lslo/base": tm["lslo"] / tm["base"],
        "forward+backward only: lslo/shared_lora": fb["lslo"] / fb["shared_lora"],
        "forward+backward only: lslo/peft_lora": fb["lslo"] / fb["peft_lora"],
        "forward+backward only: lslo_100/lslo_12": fb["lslo_100"] / fb["lslo"],
        "saved-for-backward bytes: lslo/shared_lora": saved["lslo"] / saved["shared_lora"],
        "step peak memory: lslo_100/lslo_12": peak["lslo_100"] / peak["lslo"],
        "min of repeats: lslo/shared_lora": tmin["lslo"] / tmin["shared_lora"],
        "min of repeats: lslo/peft_lora": tmin["lslo"] / tmin["peft_lora"],
        "min of repeats: lslo_100/lslo_12": tmin["lslo_100"] / tmin["lslo"],
        "min of repeats: gen_unmerged/base": gmin["gen_lslo"] / gmin["gen_base"],
        "min of repeats: gen_merged/base": gmin["gen_merged"] / gmin["gen_base"],
        "lean search speedup: gen_lslo/gen_lean_lslo": gm["gen_lslo"] / gm["gen_lean_lslo"],
    }
    return ratios, {k: round(v, 4) for k, v in info.items()}


def describe(st: Setup, gen: dict) -> dict:
    """The report's ``config`` block: what was measured, in words and numbers."""
    args, lslo = st.args, st.lslo
    opt_desc = {k: v for k, v in st.variants[0].opt.defaults.items() if k in ("fused", "foreach", "betas", "eps", "lr")}
    return {
        "model": "M2M100ForConditionalGeneration, random weights, 418M shapes (d_model 1024, FFN 4096, 16 heads)",
        "encoder_layers": args.layers,
        "decoder_layers": args.layers,
        "vocab_size": args.vocab,
        "vocab_note": "the real M2M-100 vocabulary is 128112; a smaller one saves memory and time "
        "in the embedding/output layer, which is the same in every variant",
        "base_parameters": sum(p.numel() for p in st.pristine.parameters()),
        "dtype": args.dtype + (" (autocast, fp32 parameters)" if args.dtype == "bf16" else ""),
        "train_batch": {"sentences": args.batch, "src_tokens": args.src_len, "tgt_tokens": args.tgt_len,
                        "languages_in_batch": int(torch.unique(torch.cat([st.src12, st.tgt12])).numel())},
        "lslo": {"ranks": "high 2 / medium 2 / low 8 (4/4/4 languages)", "positions": {
            "encoder": lslo.config.encoder_positions, "decoder": lslo.config.decoder_positions},
            "encoder_routing": lslo.encoder_routing, "decoder_routing": lslo.decoder_routing,
            "adapted_modules": len(st.names)},
        "shared_lora": "plain rank-8 LoRA (SharedLoRALinear, benchmarks/_baselines.py), same modules, scale 1",
        "peft_lora": f"peft LoraConfig(r=8, lora_alpha=8, lora_dropout=0), same {len(st.names)} modules",
        "base": "frozen base, forward + backward to the embedding outputs, no optimizer",
        "optimizer": f"torch.optim.Adam {opt_desc} for every variant (the same for all)",
        "generation": {"sentences": args.gen_batch, "directions": 6, "beams": args.beams,
                       "new_tokens": args.gen_tokens, "output_shape": gen["shapes"].get("gen_lslo"),
                       "merged_direction": [lslo.config.codes[GEN_DIRS[0][0]], lslo.config.codes[GEN_DIRS[0][1]]]},
        "repeats": args.repeats,
        "generation_repeats": gen["repeats"],
        "warmup": args.warmup,
        "interleaved": "every repetition runs every variant once, the order rotated",
        "clock": "time.process_time (CPU seconds of this process, 1 torch thread)" if args.clock == "cpu"
        else "time.perf_counter (wall)",
    }


def main(argv=None) -> dict:
    global CLOCK
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--full-shape" in argv:  # real M2M-100 418M / NLLB-600M shapes through lslo train/evaluate
        from full_shape import main as full_shape

        return full_shape([a for a in argv if a != "--full-shape"])
    args = parse_args(argv)
    t_start = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    import transformers

    transformers.logging.set_verbosity_error()
    st = build(args)
    guard = check(st)
    train = time_training(st)
    mem = measure_memory(st)
    gen = time_generation(st)
    ratios, info = speed_ratios(train, gen, mem)
    device = st.device
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    rounded = {k: {m: {n: [round(t, 2) for t in v] if isinstance(v, list) else round(v, 2) for n, v in d[m].items()}
                   for m in ("raw", "median", "min")} for k, d in (("train", train), ("gen", gen))}
    report = {
        "machine": machine(threads=torch.get_num_threads(), transformers=transformers.__version__, peft=_version("peft"),
                           python=platform.python_version(), device=str(device), device_name=dev_name,
                           load_average_at_start=_loadavg()),
        "config": describe(st, gen),
        "check": guard,
        "train_step_ms": {**rounded["train"], "phase_median": {
            k: {p: round(t, 2) for p, t in ph.items()} for k, ph in train["phase_median"].items()}},
        "generation_ms": rounded["gen"],
        "memory": mem,
        "ratios": ratios,
        "other_ratios": info,
        "all_goals_met": all(r["met"] for r in ratios.values()),
        "total_seconds": round(time.perf_counter() - t_start, 1),
    }
    print(json.dumps(report, indent=2))
    return report


def _version(pkg: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(pkg)
    except Exception:
        return None


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


if __name__ == "__main__":
    main()
