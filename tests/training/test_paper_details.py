"""Training and evaluation details that change results (issue: paper-faithful training details)."""

from __future__ import annotations

import torch
from conftest import write_run_config

from lslo.cli.main import main
from lslo.evaluation.metrics import SpBleu, default_spm_tokenizer
from lslo.training import RunConfig, Trainer
from lslo.tuner.languages import LanguageTokens, build_batch


def _tokens(with_token: bool = True) -> LanguageTokens:
    return LanguageTokens(["en", "fr"], [100, 101] if with_token else [None, None], eos_id=2, pad_id=1,
                          decoder_start_id=2)


def test_target_language_token_is_forced_not_predicted():
    b = build_batch(_tokens(), [[5, 6], [7]], ["en", "fr"], ["fr", "en"], [[8, 9, 10], [11]])
    assert b["decoder_input_ids"][0, :2].tolist() == [2, 101]  # forced as the first decoder input
    assert b["labels"][:, 0].tolist() == [-100, -100]  # ... and never a prediction target
    assert b["labels"][0, 1:].tolist() == [8, 9, 10, 2]  # the real tokens and the final EOS are
    kept = build_batch(_tokens(), [[5]], ["en"], ["fr"], [[8]], label_language_token=True)
    assert kept["labels"][0].tolist() == [101, 8, 2]
    # a model without language tokens (Marian): the first label is a real token and stays
    none = build_batch(_tokens(False), [[5]], ["en"], ["fr"], [[8, 9]])
    assert none["labels"][0].tolist() == [8, 9, 2]


def test_trainer_loss_skips_the_language_token(m2m_dir, flores_dir, tmp_path):
    cfg_path = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, tmp_path / "run", max_steps=1)
    counts = {}
    for flag in (False, True):
        cfg = RunConfig.load(cfg_path, [f"train.predict_language_token={str(flag).lower()}"])
        tr = Trainer(cfg, tmp_path / f"r{flag}", device="cpu", quiet=True)
        tr.setup()
        tr.sampler.set_epoch(0)
        batch = tr.train_data.batch(tr.model, next(iter(tr.sampler)))
        counts[flag] = int((batch["labels"] != -100).sum())
        n_rows = batch["labels"].shape[0]
    assert counts[True] - counts[False] == n_rows  # exactly one label (the language token) per sentence


def test_spbleu_tokenizer_follows_the_model_family(m2m_dir, nllb_dir, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    assert default_spm_tokenizer(AutoTokenizer.from_pretrained(str(m2m_dir))) == "flores101"
    assert default_spm_tokenizer(AutoTokenizer.from_pretrained(str(nllb_dir))) == "flores200"
    monkeypatch.setenv("SACREBLEU", str(tmp_path / "none"))  # no sacrebleu model on disk
    spm = m2m_dir / "sentencepiece.bpe.model"
    s = SpBleu.for_model("auto", AutoTokenizer.from_pretrained(str(m2m_dir)), str(spm))
    assert "instead-of:flores101" in s.signature  # the signature says which model stood in for which
    assert "instead-of:flores200" in SpBleu.for_model("flores200", None, str(spm)).signature
    assert RunConfig.from_dict({"model": "x", "lslo": {"languages": ["en", "fr"]},
                                "data": {"path": "d"}}).eval.spm_tokenizer == "auto"


def test_best_checkpoint_holds_what_was_validated(m2m_dir, flores_dir, tmp_path, monkeypatch):
    """Validation runs after the epoch's pruning step, so 'best' is saved exactly as validated."""
    prune = {"unit": "epoch", "start": 0, "duration": 2, "final_ratio": 0.6}
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, tmp_path / "run", epochs=2, pruning=prune)
    seen = []
    original = Trainer.validate

    def spy(self):
        loss = original(self)
        kept = sum(int(m.mask_BT.sum()) for m in self.model.lslo_modules().values())
        seen.append((loss, kept, self.pruner.current_ratio))
        return loss

    monkeypatch.setattr(Trainer, "validate", spy)
    assert main(["train", str(cfg), "--quiet"]) == 0
    from lslo.training import load_run

    _, best = load_run(tmp_path / "run", checkpoint="best")
    kept_best = sum(int(m.mask_BT.sum()) for m in best.lslo_modules().values())
    final = [s for s in seen if s[2] >= 0.6 - 1e-9]
    assert final, seen
    best_seen = min(final, key=lambda s: s[0])
    assert kept_best == best_seen[1]
    assert torch.isfinite(torch.tensor(best_seen[0]))


def _one_update_grads(cfg_path, tmp_path, precision, scale_loss=1.0):
    cfg = RunConfig.load(cfg_path, [f"train.precision={precision}"])
    tr = Trainer(cfg, tmp_path / f"g-{precision}", device="cpu", quiet=True)
    tr.setup()
    tr.sampler.set_epoch(0)
    group = [next(iter(tr.sampler))]
    import lslo.training.trainer as T

    real = T.forward_loss

    def tiny(model, batch, smoothing):  # shrink the loss as a big batch's token normalisation would
        loss, n = real(model, batch, smoothing)
        return loss * scale_loss, n

    T.forward_loss = tiny
    try:
        captured = {}
        orig_step = tr.scaler.step

        def grab(opt, *a, **k):
            captured.update({n: p.grad.detach().clone() for n, p in tr.model.named_parameters()
                             if p.requires_grad and p.grad is not None})
            return orig_step(opt, *a, **k)

        tr.scaler.step = grab
        with torch.no_grad():  # B != 0 so that A's and B's gradients are both non-trivial
            for m in tr.model.lslo_modules().values():
                m.lora_BT.normal_(0, 0.02, generator=torch.Generator().manual_seed(0))
        tr._update(group)
    finally:
        T.forward_loss = real
    return captured, tr


def test_fp16_uses_loss_scaling_and_small_gradients_survive(m2m_dir, flores_dir, tmp_path):
    cfg_path = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, tmp_path / "run", max_steps=1)
    g32, _ = _one_update_grads(cfg_path, tmp_path, "fp32")
    g16, tr = _one_update_grads(cfg_path, tmp_path, "fp16")
    assert tr.scaler.is_enabled() and tr.scaler.get_scale() > 1

    def nonzero(grads):
        return sum(int((g != 0).sum()) for g in grads.values())

    assert nonzero(g32) > 0 and nonzero(g16) >= 0.99 * nonzero(g32)
    # the same update without loss scaling: most small adapter gradients flush to 0 in fp16
    real = torch.amp.GradScaler
    try:
        torch.amp.GradScaler = lambda device, enabled: real(device, enabled=False)
        unscaled, _ = _one_update_grads(cfg_path, tmp_path, "fp16")
    finally:
        torch.amp.GradScaler = real
    assert nonzero(unscaled) < 0.6 * nonzero(g32)
    # and the unscaled fp16 gradients agree with fp32 in size
    n32 = torch.sqrt(sum((g.double() ** 2).sum() for g in g32.values()))
    n16 = torch.sqrt(sum((g.double() ** 2).sum() for g in g16.values()))
    assert abs(float(n16 / n32) - 1) < 0.05


def test_nonfinite_updates_are_skipped_then_training_stops(m2m_dir, flores_dir, tmp_path, capsys, monkeypatch):
    import lslo.training.trainer as T

    run = tmp_path / "run"
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, run, epochs=4, save_every_steps=1)
    real = T.forward_loss
    calls = {"n": 0}

    def nan_after_two_updates(model, batch, smoothing):
        calls["n"] += 1
        loss, n = real(model, batch, smoothing)
        return (loss * float("nan") if calls["n"] > 4 else loss), n  # update_freq 2: 2 good updates

    monkeypatch.setattr(T, "forward_loss", nan_after_two_updates)
    code = main(["train", str(cfg), "--quiet", "--set", "train.max_nonfinite_updates=3"])
    err = capsys.readouterr().err
    assert code == 2 and "training diverged: 3 updates in a row" in err and "Traceback" not in err
    from lslo.training import load_run

    _, model = load_run(run, checkpoint="last")
    assert all(torch.isfinite(p).all() for p in model.adapter_parameters())
    state = torch.load(run / "checkpoints" / "last" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 2  # the skipped updates did not count
