"""Pretrain the testbed's base model: a small M2M-100 on all directions of the pretraining corpus.

Three stages, each a subcommand of ``python -m lslo.testbed.pretrain``:

``prepare``  train the SentencePiece model (unigram, byte fallback, no normalisation) on a
             language-balanced sample of the pretraining text, package it as a real
             ``M2M100Tokenizer``, and tokenise every segment once (``tokens.npz``: per language
             a flat id array and per-segment offsets, -1 where the segment lacks the language).
``train``    train from scratch, or resume, in ``WORK``. Resumable at any point: every
             ``--save-minutes`` the model, optimiser and data position are written atomically
             to ``WORK/checkpoint`` (kill -9 loses at most that much). Each batch is a
             deterministic function of (seed, chunk number), so a resumed run sees exactly
             the batches an uninterrupted one would.
``export``   write the ``from_pretrained`` folder (model + tokenizer + ``PRETRAIN.json`` with
             the command, data hashes, tokens seen, loss curve, hardware and wall time).
             ``--portable`` also writes ``resume.json`` (step, data position, loss curve):
             with it, the exported weights (16-bit exports are small enough to commit) let a
             later session or another machine continue with ``train --from OUT`` (fresh
             optimiser, short re-warm-up).

Sampling (M2M-100 style): an unordered language pair is drawn with probability proportional
to n_pair ** (1/T) (n_pair: segments holding both languages; T = 5 as in the paper), then a
direction uniformly, then a segment of the pair uniformly. Sequences follow
:func:`lslo.tuner.languages.build_batch` (``__src__ x </s>`` -> ``__tgt__ y </s>``, decoder start
``</s>``); the target-language label is not a prediction target (fairseq's semantics).
Batches hold at most ``--max-tokens`` source + target tokens including padding; examples
are drawn in chunks of 64 batches, sorted by length within the chunk and the batches
shuffled, so little is padding.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lslo.errors import LSLoError

CKPT = "checkpoint"
SPM_NAME = "sentencepiece.bpe.model"


class PretrainError(LSLoError):
    """The pretraining inputs or the work folder are not usable."""


@dataclass
class Settings:
    """Everything that determines the base model (recorded in PRETRAIN.json)."""

    seed: int = 0
    vocab_size: int = 16000
    spm_lines_per_language: int = 40000
    d_model: int = 256
    encoder_layers: int = 4
    decoder_layers: int = 4
    ffn_dim: int = 1024
    heads: int = 4
    dropout: float = 0.1
    max_positions: int = 256
    max_length: int = 96  # tokens per side, language token and </s> included
    max_tokens: int = 4000  # source + target tokens per batch, padding included
    lr: float = 1.5e-3
    warmup: int = 1000
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.0
    label_smoothing: float = 0.1
    clip_norm: float = 1.0
    temperature: float = 5.0
    rewarm: int = 300  # warm-up steps after resuming from weights only (fresh optimiser)
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- corpus


def read_corpus(path: Path) -> tuple[list[str], list[str], list[dict[str, str]]]:
    """``(language codes, segment ids, [{code: text}])`` of a pretraining JSONL file."""
    ids, rows, codes = [], [], set()
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    rec = json.loads(line)
                    texts = rec["texts"]
                except (ValueError, KeyError, TypeError):
                    raise PretrainError(f"{path}:{n}: expected a JSON object with 'id' and 'texts'") from None
                ids.append(str(rec.get("id", n)))
                rows.append(texts)
                codes.update(texts)
    except OSError as e:
        raise PretrainError(f"{path}: {e.strerror or e}") from None
    if not rows:
        raise PretrainError(f"{path}: no segments")
    return sorted(codes), ids, rows


def spm_sample(codes: list[str], ids: list[str], rows: list[dict[str, str]], per_lang: int) -> list[str]:
    """A language-balanced, deterministic sample of lines: per language the ``per_lang``
    segments with the smallest hash of (id, language)."""
    out = []
    for c in codes:
        keyed = sorted((hashlib.sha256(f"{i}|{c}".encode()).digest(), r[c]) for i, r in zip(ids, rows) if c in r)
        out.extend(t for _, t in keyed[:per_lang])
    return out


def prepare(corpus: Path, work: Path, settings: Settings, tokenizer: Path | None = None) -> dict:
    """Tokenizer + ``tokens.npz`` in ``work``. With ``tokenizer`` (a folder holding
    ``sentencepiece.bpe.model``, e.g. the committed base), that SentencePiece model is reused
    instead of trained, so a new machine can continue from committed weights."""

    import sentencepiece as spm

    from lslo.testbed.tiny import m2m100_tokenizer_from_spm

    codes, ids, rows = read_corpus(corpus)
    work.mkdir(parents=True, exist_ok=True)
    tok_dir = work / "tokenizer"
    tok_dir.mkdir(exist_ok=True)
    lines = spm_sample(codes, ids, rows, settings.spm_lines_per_language)
    if tokenizer is not None:
        src = Path(tokenizer) / SPM_NAME
        if not src.is_file():
            raise PretrainError(f"--tokenizer {tokenizer}: no {SPM_NAME}")
        shutil.copyfile(src, tok_dir / SPM_NAME)
        print(f"sentencepiece: reusing {src}", file=sys.stderr, flush=True)
    else:
        print(f"sentencepiece: {len(lines)} lines, vocab {settings.vocab_size}", file=sys.stderr, flush=True)
        import io

        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_writer=buf, vocab_size=settings.vocab_size, model_type="unigram",
            character_coverage=0.9995, byte_fallback=True, normalization_rule_name="identity",
            input_sentence_size=len(lines), shuffle_input_sentence=False, num_threads=2, minloglevel=2,
            unk_id=3, bos_id=0, eos_id=2, pad_id=1, seed_sentencepiece_size=1000000,
        )
        (tok_dir / SPM_NAME).write_bytes(buf.getvalue())
    tok = m2m100_tokenizer_from_spm(tok_dir / SPM_NAME, tok_dir, check_ids=True)
    sp = spm.SentencePieceProcessor(model_file=str(tok_dir / SPM_NAME))
    arrays = {}
    for c in codes:
        idx = [i for i, r in enumerate(rows) if c in r]
        pieces = sp.encode([rows[i][c] for i in idx])
        offsets = np.full((len(rows), 2), -1, dtype=np.int32)
        flat = np.fromiter((p for ps in pieces for p in ps), dtype=np.uint16 if len(tok) < 65536 else np.int32)
        pos = 0
        for i, ps in zip(idx, pieces):
            offsets[i] = (pos, pos + len(ps))
            pos += len(ps)
        arrays[f"{c}.ids"] = flat
        arrays[f"{c}.off"] = offsets
        print(f"  {c}: {len(idx)} segments, {len(flat)} pieces", file=sys.stderr, flush=True)
    np.savez_compressed(work / "tokens.npz", **arrays)  # small enough to carry to a GPU machine
    meta = {"corpus": str(corpus), "corpus_sha256": _sha256(corpus), "codes": codes, "segments": len(rows),
            "spm_lines": len(lines), "vocab_size": len(tok), "pieces": {c: int(arrays[f"{c}.ids"].size) for c in codes}}
    (work / "prepare.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- sampling


class Sampler:
    """Deterministic temperature-sampled batches; chunk ``k`` depends only on (seed, k)."""

    CHUNK_BATCHES = 64

    def __init__(self, tokens_npz: Path, codes: list[str], settings: Settings):
        data = np.load(tokens_npz)
        self.codes = codes
        self.ids = {c: data[f"{c}.ids"] for c in codes}
        self.off = {c: data[f"{c}.off"] for c in codes}
        self.s = settings
        has = {c: self.off[c][:, 0] >= 0 for c in codes}
        self.pairs, self.members, sizes = [], [], []
        for i, a in enumerate(codes):
            for b in codes[i + 1:]:
                seg = np.nonzero(has[a] & has[b])[0]
                if len(seg):
                    self.pairs.append((a, b))
                    self.members.append(seg)
                    sizes.append(len(seg))
        p = np.asarray(sizes, dtype=np.float64) ** (1.0 / settings.temperature)
        self.probs = p / p.sum()
        self.sizes = sizes

    def piece(self, code: str, seg: int) -> np.ndarray:
        lo, hi = self.off[code][seg]
        return self.ids[code][lo:hi][: self.s.max_length - 2].astype(np.int64)

    def chunk(self, k: int) -> list[list[tuple[str, str, int]]]:
        rng = np.random.default_rng([self.s.seed, k])
        budget = self.s.max_tokens * self.CHUNK_BATCHES
        ex, used = [], 0
        while used < budget:
            pi = rng.choice(len(self.pairs), size=256, p=self.probs)
            flips = rng.integers(0, 2, size=256)
            for j, f in zip(pi, flips):
                a, b = self.pairs[j]
                src, tgt = (a, b) if f == 0 else (b, a)
                seg = int(self.members[j][rng.integers(len(self.members[j]))])
                n_src = len(self.piece(src, seg)) + 2
                n_tgt = len(self.piece(tgt, seg)) + 2
                ex.append((max(n_src, n_tgt), n_src + n_tgt, src, tgt, seg))
                used += n_src + n_tgt
        ex.sort(key=lambda e: (e[0], e[1]))
        batches, cur, width = [], [], 0
        for e in ex:
            w = max(width, e[0])
            if cur and 2 * w * (len(cur) + 1) > self.s.max_tokens:
                batches.append(cur)
                cur, w = [], e[0]
            cur.append((e[2], e[3], e[4]))
            width = w
        if cur:
            batches.append(cur)
        order = rng.permutation(len(batches))
        return [batches[i] for i in order]


# ----------------------------------------------------------------------------- model


def model_config(settings: Settings, vocab_size: int):
    from transformers import M2M100Config

    s = settings
    return M2M100Config(
        vocab_size=vocab_size, d_model=s.d_model, encoder_layers=s.encoder_layers, decoder_layers=s.decoder_layers,
        encoder_attention_heads=s.heads, decoder_attention_heads=s.heads, encoder_ffn_dim=s.ffn_dim,
        decoder_ffn_dim=s.ffn_dim, max_position_embeddings=s.max_positions, dropout=s.dropout,
        attention_dropout=0.0, activation_dropout=0.0, activation_function="relu", encoder_layerdrop=0.0,
        decoder_layerdrop=0.0, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
        scale_embedding=True, tie_word_embeddings=True,
    )


def fairseq_init(model, seed: int) -> None:
    """fairseq's transformer initialisation: embeddings N(0, d**-0.5) (padding row 0), linear
    layers Xavier-uniform with zero bias (HF's N(0, 0.02) is meant for wide models)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    emb = model.get_input_embeddings()
    d = emb.weight.size(1)
    with torch.no_grad():
        emb.weight.normal_(0.0, d ** -0.5, generator=gen)
        if emb.padding_idx is not None:
            emb.weight[emb.padding_idx].zero_()
        for module in model.modules():
            if isinstance(module, torch.nn.Linear) and module.weight is not emb.weight:
                bound = math.sqrt(6.0 / (module.in_features + module.out_features))
                module.weight.uniform_(-bound, bound, generator=gen)
                if module.bias is not None:
                    module.bias.zero_()


def loss_of(model, batch, label_smoothing: float):
    """(smoothed mean loss, summed NLL, target tokens); the target-language label is skipped and
    the output projection runs only where there is a label."""
    import torch
    import torch.nn.functional as F

    labels = batch["labels"].clone()
    labels[:, 0] = -100
    enc = model.get_encoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    hidden = model.get_decoder()(
        input_ids=batch["decoder_input_ids"], attention_mask=batch["decoder_attention_mask"],
        encoder_hidden_states=enc, encoder_attention_mask=batch["attention_mask"],
    ).last_hidden_state
    keep = labels != -100
    logits = model.get_output_embeddings()(hidden[keep]).float()
    target = labels[keep]
    loss = F.cross_entropy(logits, target, label_smoothing=label_smoothing)
    with torch.no_grad():
        nll = F.cross_entropy(logits, target, reduction="sum")
    return loss, float(nll), int(target.numel())


def lr_at(step: int, s: Settings, rewarm_from: int | None, cooldown: dict | None = None) -> float:
    """Inverse-sqrt schedule with linear warm-up; after a weights-only resume at ``rewarm_from``
    the rate ramps up again over ``s.rewarm`` steps (the fresh optimiser has no moments).

    ``cooldown`` ``{"from": F, "steps": N}`` ends the run warmup-stable-decay style: from update F
    the rate falls linearly from its value at F to 0 at F + N (the final anneal that an
    inverse-sqrt schedule never does)."""
    if cooldown is not None and step >= cooldown["from"]:
        start = lr_at(cooldown["from"], s, rewarm_from)
        return start * max(0.0, 1.0 - (step - cooldown["from"]) / cooldown["steps"])
    base = s.lr * min((step + 1) / s.warmup, math.sqrt(s.warmup / (step + 1)))
    if rewarm_from is not None and step < rewarm_from + s.rewarm:
        base *= (step - rewarm_from + 1) / s.rewarm
    return base


# ----------------------------------------------------------------------------- training


def unique_state(model, dtype=None) -> dict:
    """The state dict with each shared (tied) tensor once, under its first name."""
    seen, out = set(), {}
    for k, v in model.state_dict().items():
        if v.data_ptr() in seen:
            continue
        seen.add(v.data_ptr())
        out[k] = (v.detach() if dtype is None else v.detach().to(dtype)).contiguous()
    return out


def checkpoint_path(work: Path) -> Path:
    """The checkpoint folder, or the previous one when a kill came between the two renames of a
    save (:func:`lslo.training.checkpoints.atomic_write_dir` keeps it as ``.checkpoint.old``)."""
    final, old = work / CKPT, work / f".{CKPT}.old"
    if not (final / "state.json").is_file() and (old / "state.json").is_file():
        return old
    return final


def _save_atomic(work: Path, model, opt, state: dict) -> None:
    import torch
    from safetensors.torch import save_file

    from lslo.training.checkpoints import atomic_write_dir

    def write(tmp: Path) -> None:
        save_file(unique_state(model), str(tmp / "model.safetensors"))
        torch.save(opt.state_dict(), tmp / "optimizer.pt")
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(rng, tmp / "rng.pt")
        (tmp / "state.json").write_text(json.dumps(state, indent=1) + "\n")

    atomic_write_dir(work / CKPT, write)


def _load_weights(model, path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]  # one file or save_pretrained shards
    files = [f for f in files if f.name != "resume.safetensors"] or files
    if not files:
        raise PretrainError(f"{path}: no .safetensors weights")
    sd = {}
    for f in files:
        sd.update(load_file(str(f)))
    missing, unexpected = model.load_state_dict({k: v.to(torch.float32) for k, v in sd.items()}, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" or k.endswith("embed_tokens.weight"))]
    if missing or unexpected:
        raise PretrainError(f"{path}: weights do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.tie_weights()


def _initial_state(work: Path, settings: Settings | None, from_weights: Path | None) -> tuple[dict, str | None]:
    """(state, how it was resumed): the work folder's checkpoint, else an export with
    ``resume.json`` (``from_weights``), else a fresh start."""
    ckpt = checkpoint_path(work)
    if (ckpt / "state.json").is_file():
        return json.loads((ckpt / "state.json").read_text()), "checkpoint (weights + optimiser)"
    if from_weights is not None:
        fw = Path(from_weights)
        info = (fw if fw.is_dir() else fw.parent) / "resume.json"
        if not info.is_file():
            raise PretrainError(f"{info}: missing (the export of the weights to continue from writes it)")
        state = json.loads(info.read_text())["state"]
        state["rewarm_from"] = state["step"]
        if state.get("cooldown"):  # continuing a cooled-down base: back on the plain schedule
            state.setdefault("past_cooldowns", []).append(state.pop("cooldown"))
        return state, f"{fw} (16-bit weights, fresh optimiser, re-warm-up)"
    return {"settings": asdict(settings or Settings()), "step": 0, "chunk": 0, "in_chunk": 0, "tokens": 0,
            "target_tokens": 0, "wall_s": 0.0, "curve": [], "sessions": [], "rewarm_from": None}, None


def _settings_of(state: dict, overrides: dict | None) -> Settings:
    s = Settings(**{**asdict(Settings()), **state["settings"]})
    s.betas = tuple(s.betas)
    for key, value in (overrides or {}).items():  # e.g. a GPU run continues with larger batches
        if key in ("max_tokens", "lr") and value is not None:
            setattr(s, key, value)
    return s


class _Run:
    """One training session: the model, optimiser, sampler and state, and one update at a time."""

    def __init__(self, work: Path, state: dict, s: Settings, resumed: str | None, from_weights: Path | None,
                 device: str, bf16: bool, threads: int):
        import torch
        from transformers import AutoTokenizer, M2M100ForConditionalGeneration

        from lslo.tuner.languages import LanguageTokens, tokenizer_vocab_size

        meta = json.loads((work / "prepare.json").read_text())
        self.work, self.state, self.s, self.device, self.bf16 = work, state, s, device, bf16
        torch.set_num_threads(threads)
        torch.manual_seed(s.seed + state["step"])
        tok = AutoTokenizer.from_pretrained(str(work / "tokenizer"))
        self.ltok = LanguageTokens.from_tokenizer(tok, meta["codes"], {}, decoder_start_id=2)
        self.model = M2M100ForConditionalGeneration(model_config(s, tokenizer_vocab_size(tok)))
        fairseq_init(self.model, s.seed)
        self.model.to(device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=s.lr, betas=s.betas, eps=1e-8,
                                     weight_decay=s.weight_decay)
        ckpt = checkpoint_path(work)
        if resumed and resumed.startswith("checkpoint"):
            _load_weights(self.model, ckpt / "model.safetensors")
            self.opt.load_state_dict(torch.load(ckpt / "optimizer.pt", map_location=device, weights_only=True))
            if (ckpt / "rng.pt").is_file():  # dropout masks continue exactly where they stopped
                rng = torch.load(ckpt / "rng.pt", weights_only=True)
                if isinstance(rng, torch.Tensor):  # checkpoints before the CUDA state was kept
                    rng = {"cpu": rng}
                torch.set_rng_state(rng["cpu"])
                if "cuda" in rng and torch.cuda.is_available():
                    torch.cuda.set_rng_state_all(rng["cuda"])
        elif resumed:
            _load_weights(self.model, Path(from_weights))
        self.sampler = Sampler(work / "tokens.npz", meta["codes"], s)
        self.chunk = self.sampler.chunk(state["chunk"])
        self.window = list(state.get("window", (0.0, 0)))  # the log window continues across a resume
        self.window_start = (time.time(), state["tokens"])
        self.model.train()

    def update(self) -> None:
        """One optimiser step on the next batch of the deterministic stream."""
        import torch

        from lslo.tuner.languages import build_batch

        st, s = self.state, self.s
        if st["in_chunk"] >= len(self.chunk):
            st["chunk"], st["in_chunk"] = st["chunk"] + 1, 0
            self.chunk = self.sampler.chunk(st["chunk"])
        exs = self.chunk[st["in_chunk"]]
        piece = self.sampler.piece
        batch = build_batch(self.ltok, [piece(a, i).tolist() for a, _, i in exs], [a for a, _, _ in exs],
                            [b for _, b, _ in exs], [piece(b, i).tolist() for _, b, i in exs])
        batch = {k: v.to(self.device) for k, v in batch.items()}
        for g in self.opt.param_groups:
            g["lr"] = lr_at(st["step"], s, st.get("rewarm_from"), st.get("cooldown"))
        with torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16, enabled=self.bf16):
            loss, nll, ntok = loss_of(self.model, batch, s.label_smoothing)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.clip_norm)
        if torch.isfinite(gnorm):  # a non-finite update is skipped (the step still counts: the stream moves on)
            self.opt.step()
        st["step"] += 1
        st["in_chunk"] += 1
        st["tokens"] += int(batch["attention_mask"].sum() + batch["decoder_attention_mask"].sum())
        st["target_tokens"] += ntok
        self.window[0] += nll
        self.window[1] += ntok

    def log(self) -> None:
        st = self.state
        nll, ntok = self.window
        t0, tok0 = self.window_start
        rec = {"step": st["step"], "nll": round(nll / max(ntok, 1), 4), "lr": round(self.opt.param_groups[0]["lr"], 7),
               "tokens": st["tokens"]}
        st["curve"].append(rec)
        rate = (st["tokens"] - tok0) / max(time.time() - t0, 1e-9)
        print(f"step {st['step']}: nll {rec['nll']:.3f} lr {rec['lr']:.2e} {st['tokens'] / 1e6:.1f}M tokens, "
              f"{rate:.0f} tok/s", file=sys.stderr, flush=True)
        self.window = [0.0, 0]
        self.window_start = (time.time(), st["tokens"])

    def save(self) -> None:
        _save_atomic(self.work, self.model, self.opt,
                     {**self.state, "settings": asdict(self.s), "window": tuple(self.window)})


class _StopOnSignal:
    """SIGINT/SIGTERM set a flag checked between updates (an update is never cut in half); a
    second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict = {}

    def __enter__(self):
        import signal

        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            print("stopping after this update (Ctrl-C again to abort without saving)", file=sys.stderr, flush=True)

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread
                pass
        return self

    def __exit__(self, *exc):
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)


def train(work: Path, steps: int, minutes: float | None = None, save_minutes: float = 10.0, threads: int = 2,
          device: str = "cpu", bf16: bool = False, from_weights: Path | None = None,
          settings: Settings | None = None, log_every: int = 50, overrides: dict | None = None,
          cooldown: int | None = None) -> dict:
    """Train (or resume) until ``steps`` updates or ``minutes`` of wall time; returns the state.

    ``cooldown`` N starts the final linear decay of the learning rate to 0 over the next N updates
    (recorded in the state, so a resume continues it; training stops when it reaches 0).

    Ctrl-C (KeyboardInterrupt) stops after the current update and saves a checkpoint."""
    if not (work / "prepare.json").is_file():
        raise PretrainError(f"{work}: no prepare.json; run `prepare` first")
    if cooldown is not None and cooldown < 1:
        raise PretrainError(f"--cooldown: {cooldown}: expected a positive number of updates")
    state, resumed = _initial_state(work, settings, from_weights)
    if cooldown is not None:
        have = state.get("cooldown")
        if have is None:
            state["cooldown"] = {"from": state["step"], "steps": cooldown}
        elif have["steps"] != cooldown:
            raise PretrainError(f"--cooldown {cooldown}: {work} is already cooling down over {have['steps']} "
                                f"updates from step {have['from']}; resume with --cooldown {have['steps']} or none")
    if state.get("cooldown"):
        steps = min(steps, state["cooldown"]["from"] + state["cooldown"]["steps"])
    s = _settings_of(state, overrides)
    run = _Run(work, state, s, resumed, from_weights, device, bf16, threads)
    session = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "start_step": state["step"],
               "device": device, "threads": threads, "bf16": bf16, "host": platform.node(),
               "cpu": platform.processor() or platform.machine(), "max_tokens": s.max_tokens}
    if resumed:
        session["resumed_from"] = resumed
    if state.get("cooldown"):
        session["cooldown"] = dict(state["cooldown"])
    n_params = sum(p.numel() for p in run.model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters; step {state['step']} -> {steps}; "
          f"{len(run.sampler.pairs)} language pairs", file=sys.stderr, flush=True)
    t0 = last_save = time.time()
    stop = _StopOnSignal()
    with stop:  # Ctrl-C / SIGTERM: finish the current update, then save and return
        while (state["step"] < steps and not stop.requested
               and not (minutes is not None and time.time() - t0 > minutes * 60)):
            run.update()
            if state["step"] % log_every == 0:
                run.log()
            if time.time() - last_save > save_minutes * 60:
                state["wall_s"] += time.time() - last_save
                last_save = time.time()
                run.save()
    interrupted = stop.requested
    state["wall_s"] += time.time() - last_save
    session["end_step"] = state["step"]
    session["seconds"] = round(time.time() - t0, 1)
    state["sessions"].append(session)
    run.save()
    if interrupted:
        print(f"interrupted at step {state['step']}; checkpoint saved", file=sys.stderr)
    return state


# ----------------------------------------------------------------------------- export


def export(work: Path, out: Path, command: str, portable: bool = False, dtype: str = "float32",
           max_shard_size: str | None = None) -> dict:
    import torch
    from transformers import AutoTokenizer, M2M100ForConditionalGeneration

    from lslo.tuner.languages import tokenizer_vocab_size

    ckpt = work / CKPT
    if not (ckpt / "state.json").is_file():
        raise PretrainError(f"{work}: no checkpoint to export")
    state = json.loads((ckpt / "state.json").read_text())
    s = Settings(**{**asdict(Settings()), **state["settings"]})
    tok = AutoTokenizer.from_pretrained(str(work / "tokenizer"))
    model = M2M100ForConditionalGeneration(model_config(s, tokenizer_vocab_size(tok)))
    _load_weights(model, ckpt / "model.safetensors")
    model.config.dropout = s.dropout
    out.mkdir(parents=True, exist_ok=True)
    kw = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.to(getattr(torch, dtype)).save_pretrained(str(out), **kw)
    tok.save_pretrained(str(out))
    meta = json.loads((work / "prepare.json").read_text())
    info = {
        "command": command,
        "rebuild": [
            "python -m lslo.testbed.corpus --out data/testbed",
            "python -m lslo.testbed.pretrain prepare --corpus build/testbed/pretrain.jsonl --work build/base",
            f"python -m lslo.testbed.pretrain train --work build/base --steps {state['step']}",
            "python -m lslo.testbed.pretrain export --work build/base --out data/testbed/base",
        ],
        "settings": state["settings"],
        "data": {"corpus_sha256": meta["corpus_sha256"], "segments": meta["segments"], "pieces": meta["pieces"],
                 "spm_lines": meta["spm_lines"]},
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": state["step"],
        "tokens_seen": state["tokens"],
        "target_tokens_seen": state["target_tokens"],
        "train_wall_seconds": round(state["wall_s"], 1),
        "sessions": state["sessions"],
        "loss_curve": state["curve"],
        "dtype": dtype,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": __import__("transformers").__version__},
    }
    (out / "PRETRAIN.json").write_text(json.dumps(info, indent=1) + "\n")
    if portable:  # what `train --from OUT` needs to continue from these weights
        (out / "resume.json").write_text(json.dumps({"state": state}) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lslo.testbed.pretrain", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--vocab", type=int, default=Settings.vocab_size)
    p.add_argument("--tokenizer", type=Path, default=None,
                   help="reuse this folder's sentencepiece.bpe.model (e.g. data/testbed/base) instead of training one")
    t = sub.add_parser("train")
    t.add_argument("--work", type=Path, required=True)
    t.add_argument("--steps", type=int, required=True, help="train until this many updates in all")
    t.add_argument("--minutes", type=float, default=None, help="stop (with a checkpoint) after this wall time")
    t.add_argument("--save-minutes", type=float, default=10.0)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--device", default="cpu")
    t.add_argument("--bf16", action="store_true")
    t.add_argument("--from", dest="from_weights", type=Path, default=None,
                   help="start from an export with resume.json (e.g. data/testbed/base) when WORK has no checkpoint")
    for name in ("d_model", "encoder_layers", "decoder_layers", "ffn_dim", "max_tokens", "warmup"):
        t.add_argument("--" + name.replace("_", "-"), type=int, default=None)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--dropout", type=float, default=None)
    t.add_argument("--cooldown", type=int, default=None,
                   help="end the run: decay the learning rate linearly to 0 over this many more updates")
    e = sub.add_parser("export")
    e.add_argument("--work", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--portable", action="store_true")
    e.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    e.add_argument("--max-shard-size", default=None, help="e.g. 15MB: weights in files of at most this size")
    args = ap.parse_args(argv)
    command = "python -m lslo.testbed.pretrain " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    try:
        if args.cmd == "prepare":
            prepare(args.corpus, args.work, Settings(vocab_size=args.vocab), args.tokenizer)
        elif args.cmd == "train":
            s = Settings()
            for name in ("d_model", "encoder_layers", "decoder_layers", "ffn_dim", "max_tokens", "warmup", "lr",
                         "dropout"):
                if getattr(args, name) is not None:
                    setattr(s, name, getattr(args, name))
            train(args.work, args.steps, args.minutes, args.save_minutes, args.threads, args.device, args.bf16,
                  args.from_weights, s, overrides={"max_tokens": args.max_tokens, "lr": args.lr},
                  cooldown=args.cooldown)
        else:
            export(args.work, args.out, command, args.portable, args.dtype, args.max_shard_size)
    except LSLoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
