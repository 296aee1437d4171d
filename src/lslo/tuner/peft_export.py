"""Export one translation direction of an LSLo model as a standard PEFT LoRA adapter.

For a direction src -> tgt every LSLo layer contributes exactly one LoRA pair:
source-indexed layers src's, target-indexed layers tgt's. That is an ordinary
LoRA with a rank per module, so it can be written in PEFT's format:

- ``target_modules``: the exact (full) names of the adapted modules, so nothing
  else (output projections, other layers) is touched;
- ``r``: the most common rank, ``rank_pattern`` for the other modules;
- ``lora_alpha`` / ``alpha_pattern``: alpha = s_l * r per module, so PEFT's
  scaling alpha / r equals lslo's s_l (s_l = 1 in the paper: alpha = r);
- pruning: masks are applied, and rank-one components that pruning left dead
  (an A row or a B column with no kept entry) are dropped, which lowers that
  module's rank; a module with no live component is left out entirely.

The directory also holds the tokenizer (``src_lang`` set to the source language
where the tokenizer has one), ``lslo_direction.json`` and a README.md.

    from peft import PeftModel
    from transformers import AutoModelForSeq2SeqLM
    model = PeftModel.from_pretrained(AutoModelForSeq2SeqLM.from_pretrained(BASE), OUT_DIR)
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lslo.errors import LSLoError

if TYPE_CHECKING:  # torch/transformers load lazily: `lslo --help` builds this module's parser
    import torch

    from lslo.tuner.model import LSLoModel

__all__ = ["ExportError", "export_peft", "peft_lora_for_direction"]

PEFT_WEIGHTS = "adapter_model.safetensors"
PEFT_CONFIG = "adapter_config.json"
DIRECTION_FILE = "lslo_direction.json"


class ExportError(LSLoError):
    """The model or direction cannot be exported as a PEFT adapter."""


def _number(x: float) -> int | float:
    """An int when x is integral (PEFT's configs usually hold ints), else the float."""
    return int(round(x)) if abs(x - round(x)) < 1e-9 else float(x)


def _most_common(values: list) -> Any:
    """Most frequent value; ties go to the smallest."""
    counts = Counter(values)
    return min(counts, key=lambda v: (-counts[v], v))


def peft_lora_for_direction(
    model: LSLoModel, src: str, tgt: str, drop_dead: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(PEFT state dict, LoRA config fields) for direction src -> tgt.

    The state dict uses the keys PEFT saves (``base_model.model.<module>.lora_A.weight``,
    ``...lora_B.weight``: no adapter name), float32 on CPU. The config fields are
    ``target_modules``, ``r``, ``rank_pattern``, ``lora_alpha``, ``alpha_pattern`` (and
    ``skipped_modules``: adapted modules with nothing left after pruning).
    """
    import torch

    with torch.no_grad():
        return _peft_lora_for_direction(model, src, tgt, drop_dead)


def _peft_lora_for_direction(model, src, tgt, drop_dead):
    from lslo.pruning import compact_component

    modules = model.lslo_modules()
    if not modules:
        raise ExportError("export: the model has no LSLo layers (full fine-tuning cannot be exported as LoRA)")
    si, ti = model.lang_ids([src, tgt]).tolist()
    if model.shared:
        si = ti = 0
    state: dict[str, torch.Tensor] = {}
    ranks: dict[str, int] = {}
    alphas: dict[str, float] = {}
    skipped: list[str] = []
    for name, m in modules.items():
        lang = si if m.routing == "source" else ti
        a_l, b_l = m.A_of(lang).float(), m.B_of(lang).float()
        ma, mb = m.mask_A_of(lang), m.mask_B_of(lang)
        if drop_dead:
            a_l, b_l, _ = compact_component(a_l, b_l, ma, mb)
        else:
            a_l, b_l = a_l.masked_fill(~ma, 0), b_l.masked_fill(~mb, 0)
        rr = a_l.shape[0]
        if rr == 0:  # nothing survives: the update is zero, leave the module unadapted
            skipped.append(name)
            continue
        state[f"base_model.model.{name}.lora_A.weight"] = a_l.detach().cpu().contiguous()
        state[f"base_model.model.{name}.lora_B.weight"] = b_l.detach().cpu().contiguous()
        ranks[name] = rr
        # PEFT scaling alpha / r == s_l; rounding hides float32 noise (alpha/3*3 = 4.0000001)
        alphas[name] = round(float(m.scale[lang]) * rr, 6)
    if not ranks:
        raise ExportError(f"export: every LSLo layer of {src}->{tgt} is pruned away; nothing to export")
    r0 = _most_common(list(ranks.values()))
    alpha0 = _most_common([alphas[n] for n, r in ranks.items() if r == r0])
    fields = {
        "target_modules": sorted(ranks),
        "r": r0,
        "rank_pattern": {n: r for n, r in ranks.items() if r != r0},
        "lora_alpha": _number(alpha0),
        "alpha_pattern": {n: _number(a) for n, a in alphas.items() if a != alpha0},
        "skipped_modules": skipped,
    }
    return state, fields


def _base_path(model: LSLoModel) -> str:
    return str(getattr(getattr(model.base, "config", None), "_name_or_path", "") or "")


def export_peft(
    model: LSLoModel,
    src: str,
    tgt: str,
    out_dir: str | Path,
    *,
    base_model: str | None = None,
    drop_dead: bool = True,
) -> Path:
    """Write a PEFT LoRA adapter directory for src -> tgt (see the module docstring)."""
    from safetensors.torch import save_file

    from lslo.tuner.model import tokenizer_lang_code

    src, tgt = model.resolve_language(src), model.resolve_language(tgt)
    state, fields = peft_lora_for_direction(model, src, tgt, drop_dead=drop_dead)
    skipped = fields.pop("skipped_modules")
    base = base_model if base_model is not None else _base_path(model)
    if base and not Path(base).is_absolute() and Path(base).exists():  # loads from any directory
        base = str(Path(base).resolve())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_lora_config(out, fields, base)
    save_file(state, str(out / PEFT_WEIGHTS), metadata={"format": "pt"})

    tok_id = None
    src_lang_code = None
    if model.tokens is not None:
        tok_id = model.tokens.token_id(tgt)
    if model.tokenizer is not None:
        tok = copy.deepcopy(model.tokenizer)
        if hasattr(tok, "src_lang") and model.tokens is not None and model.tokens.token_id(src) is not None:
            with contextlib.suppress(Exception):  # best effort: tokenizers name languages differently
                src_lang_code = tokenizer_lang_code(tok, model.tokens, src)
                tok.src_lang = src_lang_code
        tok.save_pretrained(str(out))
    ranks = [fields["r"], *fields["rank_pattern"].values()]
    info = {
        "format": "peft-lora",
        "exported_by": "lslo",
        "src": src,
        "tgt": tgt,
        "base_model": base,
        "forced_bos_token_id": tok_id,
        "tokenizer_src_lang": src_lang_code,
        "modules": len(fields["target_modules"]),
        "pruned_away_modules": skipped,
        "rank_min": min(ranks),
        "rank_max": max(ranks),
    }
    (out / DIRECTION_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "README.md").write_text(_readme(info, fields), encoding="utf-8")
    return out


def _write_lora_config(out: Path, fields: dict[str, Any], base: str) -> None:
    """adapter_config.json through peft's own LoraConfig when peft is installed, else by hand."""
    common = {
        "task_type": "SEQ_2_SEQ_LM",
        "base_model_name_or_path": base or None,
        "lora_dropout": 0.0,
        "bias": "none",
        "inference_mode": True,
        **fields,
    }
    try:
        from peft import LoraConfig
    except ImportError:  # the minimal set of fields every peft >= 0.5 reads
        data = {"peft_type": "LORA", "fan_in_fan_out": False, "use_rslora": False, "init_lora_weights": True,
                "modules_to_save": None, "layers_to_transform": None, "layers_pattern": None, **common}
        (out / PEFT_CONFIG).write_text(json.dumps(data, indent=2), encoding="utf-8")
        return
    LoraConfig(**common).save_pretrained(str(out))


def _readme(info: dict[str, Any], fields: dict[str, Any]) -> str:
    base = info["base_model"] or "<base model directory>"
    bos = info["forced_bos_token_id"]
    gen = f"forced_bos_token_id={bos}, " if bos is not None else ""
    lines = [
        f"# LSLo adapter {info['src']} -> {info['tgt']} (PEFT LoRA)",
        "",
        "Exported by `lslo export-peft` from a language-specific LoRA (LSLo) model: the",
        f"source-indexed layers carry `{info['src']}`'s adapters, the target-indexed layers `{info['tgt']}`'s.",
        "It is a plain PEFT LoRA adapter for this one direction; lslo is not needed to use it.",
        "",
        f"- base model: `{base}`",
        f"- direction: `{info['src']}` -> `{info['tgt']}`",
        f"- adapted modules: {info['modules']}, rank {info['rank_min']}..{info['rank_max']} "
        f"(r={fields['r']}, others in rank_pattern); lora_alpha = s_l * r, so alpha / r is lslo's scale",
    ]
    if info["pruned_away_modules"]:
        lines.append(f"- modules pruned away entirely (left unadapted): {len(info['pruned_away_modules'])}")
    if bos is not None:
        lines.append(f"- target language token id: {bos} (force it as the first generated token)")
    if info["tokenizer_src_lang"]:
        lines.append(f"- the tokenizer here has src_lang = `{info['tokenizer_src_lang']}`")
    lines += [
        "",
        "```python",
        "from peft import PeftModel",
        "import torch",
        "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer",
        "",
        "# float32, as lslo trained and exported it (transformers 5 would otherwise keep the file's dtype)",
        f'base = AutoModelForSeq2SeqLM.from_pretrained("{base}", dtype=torch.float32)',
        'model = PeftModel.from_pretrained(base, "THIS_DIR").eval()',
        'tok = AutoTokenizer.from_pretrained("THIS_DIR")',
        'batch = tok(["..."], return_tensors="pt")',
        f"out = model.generate(**batch, {gen}num_beams=5, max_new_tokens=200)",
        "print(tok.batch_decode(out, skip_special_tokens=True))",
        "```",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


