"""predict_with_generate on mixed-direction batches + DirectionMetrics = lslo evaluate's numbers."""

from __future__ import annotations

import pytest
from hf_helpers import make_model, multiway, quiet_transformers, training_args

quiet_transformers()


def test_compute_metrics_equals_lslo_evaluate(m2m_dir, tmp_path):
    from transformers import Seq2SeqTrainer

    from lslo.data.corpus import read_dataset
    from lslo.evaluation import SpBleu, evaluate_model
    from lslo.hf import DirectionMetrics, LSLoCollator, TrainerInputError, direction_eval_set

    model = make_model(m2m_dir, seed=5)
    dev = multiway(5, offset=7)
    valid = direction_eval_set(dev, model, batch_size=4)
    spm = str(m2m_dir / "sentencepiece.bpe.model")
    metrics = DirectionMetrics(valid, model, spm_model=spm)
    model.generation_config.num_beams = 2
    model.generation_config.max_new_tokens = 8
    trainer = Seq2SeqTrainer(model=model, args=training_args(tmp_path / "out", predict_with_generate=True,
                                                             per_device_eval_batch_size=4),
                             eval_dataset=valid, data_collator=LSLoCollator(model), compute_metrics=metrics)
    out = trainer.evaluate()

    want = evaluate_model(model.lslo, read_dataset(dev), valid.directions, beam=2, batch_size=4, max_new_tokens=8,
                          spbleu=SpBleu.for_model("auto", model.lslo.tokenizer, spm), quiet=True)
    assert metrics.last == want  # hypotheses, per-direction and per-group scores, signatures
    assert "spm:sentencepiece.bpe.model" in want["signatures"]["spbleu"] and want["signatures"]["chrf++"].endswith("beam:2")
    assert len(valid.directions) == 6 and sum(h != "" for hs in want["hypotheses"].values() for h in hs) > 0
    assert out["eval_chrf++"] == pytest.approx(want["groups"]["all"]["chrf++"])
    assert out["eval_spbleu/high->medium"] == pytest.approx(want["groups"]["high->medium"]["spbleu"])
    assert out["eval_chrf++/de-en"] == pytest.approx(want["directions"]["de-en"]["chrf++"])
    assert "eval_loss" in out

    # every sentence of a mixed batch starts with its own target token
    batch = LSLoCollator(model)([valid[k] for k in range(4)])
    generated = model.generate(**batch)
    tokens = model.lslo.language_tokens()
    assert generated[:, 1].tolist() == [tokens.token_ids[i] for i in batch["tgt_lang"].tolist()]
    assert len(set(batch["tgt_lang"].tolist())) > 1

    with pytest.raises(TrainerInputError) as e:
        metrics(generated[:2])
    assert "2 predictions for an eval set of 30 rows" in str(e.value)
