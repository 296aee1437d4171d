"""Fine-tune LSLo with transformers' Seq2SeqTrainer, a datasets.Dataset and lslo's pruning callback.

The offline testbed (the 11.5M-parameter mini M2M-100 in data/testbed/base, the UI text of VLC,
Inkscape and GIMP in 12 languages) driven by the Hugging Face stack. It takes the model, the LSLo
layout (ranks by resource level, source-routed lower encoder layers), the data, the optimiser
settings, the pruning and the evaluation settings from ``configs/testbed-software-lang12.yaml``,
but trains a short schedule of its own: 3 epochs of 1,600 sentences in batches of 16 (100 updates
an epoch), 30 warm-up updates, the config's gradual pruning (cubic, layer-wise, 90% of B by the end
of epoch 2) as a TrainerCallback; then beam search on the first 10 devtest segments of every
direction, scored with chrF++ and spBLEU per direction and resource group by ``compute_metrics``.
It is not the run ``lslo train configs/testbed-software-lang12.yaml`` makes (batches of 2,000
tokens, an epoch of one draw per training segment and direction, 100 warm-up updates, validation
after every epoch and best/last checkpoints), which ``lslo evaluate`` then scores on all of devtest.

    python examples/hf_trainer.py                        # 3 epochs of 100 updates, then scores
    python examples/hf_trainer.py --eval-base            # the base model's scores first, too
    python examples/hf_trainer.py --languages en,de,fr --max-steps 4 --train-segments 16 \\
        --eval-segments 2 --output /tmp/hf-tiny          # a smoke run: seconds

Writes OUTPUT/adapters (lslo's adapter files: LSLoModel.from_pretrained reads them),
OUTPUT/trainer (the Trainer's checkpoint of the last epoch) and OUTPUT/eval (scores.json,
scores.md, heatmap.png, hyps/, as ``lslo evaluate`` writes them; OUTPUT/eval-base with
``--eval-base``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import datasets
import torch
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

from lslo.evaluation import write_scores
from lslo.hf import (
    DirectionMetrics,
    LSLoCollator,
    PruningCallback,
    direction_eval_set,
    direction_stream,
    get_lslo_model,
)
from lslo.training import RunConfig
from lslo.training.checkpoints import load_base
from lslo.training.data import load_splits
from lslo.tuner.config import LSLoConfig
from lslo.tuner.langcodes import to_flores200

ROOT = Path(__file__).resolve().parents[1]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "testbed-software-lang12.yaml"),
                   help="an lslo run config: model, LSLo layout, data, pruning and evaluation settings")
    p.add_argument("--output", default="runs/hf-trainer", help="where the Trainer, adapters and scores go")
    p.add_argument("--languages", help="comma-separated subset of the config's languages (default: all)")
    p.add_argument("--epochs", type=int, default=3, help="epochs (the config's pruning counts them)")
    p.add_argument("--epoch-size", type=int, default=1600, help="sentences drawn per epoch")
    p.add_argument("--max-steps", type=int, default=-1, help="stop after this many updates (a smoke run)")
    p.add_argument("--batch-size", type=int, default=16, help="sentences per update")
    p.add_argument("--train-segments", type=int, help="train on the first N segments only")
    p.add_argument("--eval-segments", type=int, default=10, help="segments per direction to evaluate")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the config's)")
    p.add_argument("--warmup", type=int, default=30, help="warm-up updates (linear, then inverse square root)")
    p.add_argument("--eval-base", action="store_true", help="also score the base model before training")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.output)
    cfg = RunConfig.load(args.config)
    codes = args.languages.split(",") if args.languages else cfg.lslo.codes

    # the model: the config's LSLo layout, restricted to the chosen languages
    layout = cfg.lslo.to_dict()
    layout["languages"] = [lang for lang in layout["languages"] if lang["code"] in codes]
    base, tokenizer = load_base(cfg, dropout=cfg.train.dropout)
    model = get_lslo_model(base, LSLoConfig.from_dict(layout), tokenizer)
    model.print_trainable_parameters()

    # datasets in: one column per language, named as in facebook/flores (sentence_eng_Latn, ...)
    splits = load_splits(cfg)  # the config's train (dev minus a held-out part) and test (devtest) splits
    train_corpus = splits["train"].subset(codes)
    if args.train_segments:
        train_corpus = train_corpus.select(train_corpus.ids[: args.train_segments])
    train_ds, test_ds = (
        datasets.Dataset.from_dict({"id": c.ids, **{f"sentence_{to_flores200(lang)}": c.texts[lang] for lang in codes}})
        for c in (train_corpus, splits["test"])
    )

    # mixed directions out: lslo train's temperature sampler, and lslo evaluate's batches
    train = direction_stream(train_ds, model, batch_size=args.batch_size, temperature=cfg.train.temperature,
                             seed=cfg.train.seed, epoch_size=args.epoch_size, max_length=cfg.data.max_length)
    test = direction_eval_set(test_ds, model, batch_size=cfg.eval.batch_size, max_segments=args.eval_segments)
    model.generation_config.num_beams = cfg.eval.beam
    model.generation_config.max_new_tokens = cfg.eval.max_new_tokens
    metrics = DirectionMetrics(test, model, spm_model=cfg.eval.spm_model)

    training_args = Seq2SeqTrainingArguments(
        output_dir=str(out / "trainer"),
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=cfg.eval.batch_size,  # = the eval set's batch size: lslo evaluate's batches
        learning_rate=args.lr or cfg.train.lr,
        lr_scheduler_type="inverse_sqrt",
        warmup_steps=args.warmup,
        adam_beta1=cfg.train.adam_betas[0],
        adam_beta2=cfg.train.adam_betas[1],
        adam_epsilon=cfg.train.adam_eps,
        weight_decay=cfg.train.weight_decay,
        label_smoothing_factor=cfg.train.label_smoothing,
        seed=cfg.train.seed,
        predict_with_generate=True,
        save_strategy="epoch",
        save_total_limit=1,
        logging_steps=10,
        dataloader_pin_memory=False,
    )
    trainer = Seq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=test,
        data_collator=LSLoCollator(model, max_length=cfg.data.max_length),
        compute_metrics=metrics,
        callbacks=[PruningCallback(cfg.pruning if cfg.pruning.enabled else {"start": 0, "duration": 2})],
    )
    if args.eval_base:  # the adapters start at zero (B = 0): this is the base model's score
        trainer.data_collator = LSLoCollator(model)
        base_chrf = trainer.evaluate(metric_key_prefix="base")["base_chrf++"]
        write_scores(metrics.last, out / "eval-base", title="base", codes=list(codes))
        trainer.data_collator = LSLoCollator(model, max_length=cfg.data.max_length)
        print(f"base model: chrF++ {base_chrf:.2f} (all directions)")
    trainer.train()
    trainer.save_model(str(out / "adapters"))
    # evaluation sentences are never cut (lslo evaluate cuts none): a collator without max_length
    trainer.data_collator = LSLoCollator(model)
    result = trainer.evaluate()
    scores = metrics.last
    write_scores(scores, out / "eval", title="hf_trainer", codes=list(codes))
    print(json.dumps({k: round(v, 2) for k, v in result.items() if k.count("/") == 0 or "->" in k}, indent=1))
    print(f"adapters: {out / 'adapters'}   scores: {out / 'eval' / 'scores.md'}")
    return scores


if __name__ == "__main__":
    main(sys.argv[1:])
