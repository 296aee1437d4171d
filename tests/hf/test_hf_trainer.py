"""LSLo in transformers' Seq2SeqTrainer with default arguments: pruning callback, adapter-only
checkpoints in lslo's format, reload, load_best_model_at_end, exact resume, accumulation,
activation checkpointing and bf16 autocast."""

from __future__ import annotations

import json

import pytest
import torch
from hf_helpers import batch_for, logits, make_model, multiway, quiet_transformers, training_args
from safetensors import safe_open

quiet_transformers()


def _trainer(model, out, train, callbacks=(), eval_dataset=None, compute_metrics=None, **args):
    from transformers import Seq2SeqTrainer

    from lslo.hf import LSLoCollator

    return Seq2SeqTrainer(model=model, args=training_args(out, **args), train_dataset=train,
                          eval_dataset=eval_dataset, data_collator=LSLoCollator(model),
                          compute_metrics=compute_metrics, callbacks=list(callbacks))


def _pruning(**fields):
    from lslo.hf import PruningCallback

    return PruningCallback({"unit": "step", "start": 0, "duration": 2, "frequency": 1, "final_ratio": 0.5, **fields})


def _adapters(directory):
    from lslo.tuner.serialization import read_adapter_state

    return read_adapter_state(directory)  # checks the sha256 recorded in adapter_config.json


def _same_state(a, b) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_trainer_with_default_arguments_prunes_saves_adapters_only_and_reloads(m2m_dir, tmp_path):
    from lslo.hf import TRAINER_INDEX, LSLoForSeq2SeqLM, direction_stream
    from lslo.tuner.model import LSLoModel

    model = make_model(m2m_dir)
    base_before = {k: v.clone() for k, v in model.lslo.base.named_parameters() if not k.endswith(("lora_A", "lora_BT"))}
    train = direction_stream(multiway(12), model, seed=1)  # the Trainer's default batch size: 8
    trainer = _trainer(model, tmp_path / "out", train, [_pruning()], max_steps=3, save_steps=3, learning_rate=1e-2)
    trainer.train()

    ckpt = tmp_path / "out" / "checkpoint-3"
    files = sorted(p.name for p in ckpt.iterdir())
    assert "adapters.safetensors" in files and "adapter_config.json" in files and TRAINER_INDEX in files
    assert not any(name.startswith(("model.safetensors", "pytorch_model", "adapter_model")) for name in files if
                   name != TRAINER_INDEX)
    modules = set(model.lslo.lslo_modules())
    with safe_open(str(ckpt / "adapters.safetensors"), "pt") as f:  # only adapter tensors, none of the base
        keys = list(f.keys())
        assert f.metadata().get("format") == "lslo"
    assert keys and all(any(k.startswith(m + ".") for m in modules) for k in keys)
    meta = json.loads((ckpt / "adapter_config.json").read_text())
    assert meta["format"] == "lslo" and len(meta["weights_sha256"]) == 64
    saved = _adapters(ckpt)
    assert _same_state(saved, model.lslo.adapter_state())

    # the pruning callback ran lslo's Pruner: half of each layer's B entries masked, exactly zero
    for m in model.lslo.lslo_modules().values():
        assert not m.mask_BT.all()
        assert bool((m.lora_BT[~m.mask_BT] == 0).all())
    masked = sum(int((~m.mask_BT).sum()) for m in model.lslo.lslo_modules().values())
    total = sum(m.mask_BT.numel() for m in model.lslo.lslo_modules().values())
    assert masked / total == pytest.approx(0.5, abs=0.02)
    assert any(k.endswith("mask_B") for k in saved)
    # the frozen base did not move
    assert all(torch.equal(v, dict(model.lslo.base.named_parameters())[k]) for k, v in base_before.items())

    trainer.save_model(str(tmp_path / "final"))
    assert (tmp_path / "final" / "adapters.safetensors").is_file()
    batch = batch_for(model)
    want = logits(model, batch)
    for reloaded in (LSLoModel.from_pretrained(tmp_path / "final", base=str(m2m_dir)),
                     LSLoForSeq2SeqLM.from_pretrained(ckpt, base=str(m2m_dir))):
        assert torch.equal(logits(reloaded, batch), want)


def test_resume_from_checkpoint_continues_exactly(m2m_dir, tmp_path):
    from lslo.hf import direction_stream

    args = dict(max_steps=6, save_steps=2, learning_rate=5e-3, seed=3, logging_steps=1)

    from transformers import TrainerCallback

    class Steps(TrainerCallback):
        def __init__(self):
            self.steps = []

        def on_step_end(self, args, state, control, **kwargs):
            self.steps.append(state.global_step)

    def run(out, resume=None):
        model = make_model(m2m_dir)
        steps = Steps()
        trainer = _trainer(model, out, direction_stream(multiway(10), model, seed=2, batch_size=4),
                           [_pruning(duration=4, frequency=2), steps], per_device_train_batch_size=4, **args)
        trainer.train(resume_from_checkpoint=resume)
        losses = {h["step"]: h["loss"] for h in trainer.state.log_history if "loss" in h}
        return model.lslo.adapter_state(), losses, steps.steps

    full, full_losses, _ = run(tmp_path / "a")
    # 60 examples a epoch, 15 batches of 4: the run resumes in the middle of epoch 0, between pruning points
    resumed, resumed_losses, steps = run(tmp_path / "b", resume=str(tmp_path / "a" / "checkpoint-2"))
    assert steps == [3, 4, 5, 6]
    assert sorted(resumed_losses) == sorted(full_losses) == [1, 2, 3, 4, 5, 6]
    assert all(resumed_losses[s] == full_losses[s] for s in steps)
    assert _same_state(full, resumed)


def test_load_best_model_at_end_restores_the_best_adapters_after_pruning_ends(m2m_dir, tmp_path):
    from lslo.hf import direction_eval_set, direction_stream

    model = make_model(m2m_dir)
    scores = iter([3.0, 2.0, 1.0])  # evaluations at steps 2, 4, 6: step 2 scores best

    def metric(_):
        return {"score": next(scores)}

    trainer = _trainer(
        model, tmp_path / "out", direction_stream(multiway(12), model, seed=1, batch_size=4),
        [_pruning(duration=4, frequency=2)], eval_dataset=direction_eval_set(multiway(2, offset=20), model),
        compute_metrics=metric, max_steps=6, per_device_train_batch_size=4, learning_rate=1e-2,
        eval_strategy="steps", eval_steps=2, save_steps=2, load_best_model_at_end=True,
        metric_for_best_model="score", greater_is_better=True)
    trainer.train()
    # step 2 was evaluated before the schedule ended (step 4): not a fair best; step 4 is the best after it
    assert trainer.state.best_model_checkpoint.endswith("checkpoint-4")
    best, last = _adapters(tmp_path / "out" / "checkpoint-4"), _adapters(tmp_path / "out" / "checkpoint-6")
    state = model.lslo.adapter_state()
    assert _same_state(state, best) and not _same_state(state, last)


def _rows():
    from conftest import segments

    return [{"src_lang": s, "tgt_lang": t, "src": segments(s, 8)[k], "tgt": segments(t, 8, 2)[k]}
            for k, (s, t) in enumerate([("en", "fr"), ("fr", "de"), ("de", "en"), ("en", "de")] * 2)]


def _update(model_dir, out, **args):
    model = make_model(model_dir)
    # plain SGD: the update is lr x the gradient, so equal updates mean equal gradients (Adam's first
    # step, ~lr x sign(gradient), would hide a wrongly scaled loss)
    trainer = _trainer(model, out, _rows(), max_steps=1, learning_rate=1.0, optim="sgd",
                       train_sampling_strategy="sequential", **args)
    trainer.train()
    return model, model.lslo.adapter_state()


def test_gradient_accumulation_and_activation_checkpointing_give_the_same_update(m2m_dir, tmp_path):
    _, one = _update(m2m_dir, tmp_path / "one", per_device_train_batch_size=8)
    start = make_model(m2m_dir).lslo.adapter_state()
    assert not _same_state(one, start)  # the update moved the adapters
    _, accumulated = _update(m2m_dir, tmp_path / "acc", per_device_train_batch_size=4, gradient_accumulation_steps=2)
    model, checkpointed = _update(m2m_dir, tmp_path / "ckpt", per_device_train_batch_size=8,
                                  gradient_checkpointing=True)
    assert model.is_gradient_checkpointing  # the layers were recomputed in backward, routed as in forward
    for other in (accumulated, checkpointed):
        assert set(other) == set(one)
        for k in one:
            torch.testing.assert_close(other[k] - start[k], one[k] - start[k], rtol=1e-4, atol=1e-7)


def test_bf16_autocast_on_cpu_trains(m2m_dir, tmp_path):
    start = make_model(m2m_dir).lslo.adapter_state()
    _, state = _update(m2m_dir, tmp_path / "bf16", per_device_train_batch_size=8, bf16=True, use_cpu=True)
    assert all(torch.isfinite(v).all() for v in state.values())
    assert not _same_state(state, start)


def test_pruning_by_epoch_prunes_at_complete_epochs_only(m2m_dir, tmp_path):
    from lslo.hf import PruningCallback, direction_stream
    from lslo.pruning import cubic_ratio

    def masked_share(model):
        mods = model.lslo.lslo_modules().values()
        return sum(int((~m.mask_BT).sum()) for m in mods) / sum(m.mask_BT.numel() for m in mods)

    config = {"unit": "epoch", "start": 0, "duration": 2, "final_ratio": 0.6}
    for steps, want in ((2, 0.0), (None, cubic_ratio(1, 0, 2, 0.6))):  # an epoch is 3 batches of 4
        model = make_model(m2m_dir)
        limit = {"max_steps": steps} if steps else {"num_train_epochs": 1}
        callback = PruningCallback(config)
        trainer = _trainer(model, tmp_path / f"out{steps}", direction_stream(multiway(2), model, batch_size=4),
                           [callback], per_device_train_batch_size=4, **limit)
        trainer.train()
        assert masked_share(model) == pytest.approx(want, abs=0.02)
        assert callback.pruner.current_ratio == pytest.approx(want)
