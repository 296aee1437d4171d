"""Shared helpers of the Hugging Face integration tests: a tiny LSLo model and a multi-way dataset."""

from __future__ import annotations

import torch
from conftest import LEVELS, segments

LANGS3 = ("en", "fr", "de")


def make_model(model_dir, langs=LANGS3, seed: int = 0, **lslo):
    """A fresh LSLoForSeq2SeqLM on the tiny saved model (adapter B initialised non-zero, seeded)."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from lslo.hf import LSLoForSeq2SeqLM
    from lslo.tuner.config import LSLoConfig

    config = LSLoConfig.from_dict({"languages": [{"code": c, "level": LEVELS[c]} for c in langs], **lslo})
    base = AutoModelForSeq2SeqLM.from_pretrained(str(model_dir))
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    torch.manual_seed(seed)
    model = LSLoForSeq2SeqLM.from_base(base, config, tok)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.lslo.lslo_modules().values():
            m.lora_BT.copy_(torch.randn(m.lora_BT.shape, generator=g) * 0.1)
    return model


def multiway(n: int = 12, langs=LANGS3, offset: int = 0):
    """A one-column-per-language ``datasets.Dataset`` (with an id column)."""
    import datasets

    return datasets.Dataset.from_dict({"id": [f"s{k + offset}" for k in range(n)],
                                       **{lang: segments(lang, n, offset) for lang in langs}})


def training_args(out, **overrides):
    """Seq2SeqTrainingArguments with default values except where a test must choose (no reporting
    integrations, no progress bars in the test log)."""
    from transformers import Seq2SeqTrainingArguments

    return Seq2SeqTrainingArguments(output_dir=str(out), disable_tqdm=True, **overrides)


def batch_for(model, n: int = 4):
    """A fixed mixed-direction batch for comparing logits."""
    from lslo.hf import LSLoCollator

    rows = [{"src_lang": s, "tgt_lang": t, "src": segments(s, n)[k], "tgt": segments(t, n)[k]}
            for k, (s, t) in enumerate([("en", "fr"), ("fr", "de"), ("de", "en"), ("en", "de")][:n])]
    return LSLoCollator(model).__call__(rows)


def logits(model, batch):
    from lslo.hf import as_lslo_model

    lslo = as_lslo_model(model).eval()
    with torch.no_grad():
        return lslo(batch["src_lang"], batch["tgt_lang"], input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"], decoder_input_ids=batch["decoder_input_ids"],
                    decoder_attention_mask=batch["decoder_attention_mask"]).logits


def quiet_transformers() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()
