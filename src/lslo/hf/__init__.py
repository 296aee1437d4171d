"""LSLo inside the Hugging Face training stack: ``Seq2SeqTrainer``/``Trainer``, ``datasets``, PEFT names.

::

    from lslo.hf import (LSLoForSeq2SeqLM, LSLoCollator, PruningCallback, DirectionMetrics,
                         direction_stream, direction_eval_set)

    model = LSLoForSeq2SeqLM.from_base(base, lslo_config, tokenizer)     # or get_lslo_model(...)
    train = direction_stream(dataset, model, batch_size=args.per_device_train_batch_size)
    valid = direction_eval_set(dev, model, batch_size=args.per_device_eval_batch_size)
    trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=train, eval_dataset=valid,
                             data_collator=LSLoCollator(model),
                             compute_metrics=DirectionMetrics(valid, model),
                             callbacks=[PruningCallback({"unit": "step", "start": 0, "duration": 100})])

Checkpoints hold the adapters only, in lslo's format (``adapters.safetensors`` +
``adapter_config.json``); ``LSLoModel.from_pretrained(checkpoint)`` and ``lslo evaluate`` read
them. ``datasets`` and ``peft`` are optional (``pip install 'lslo[hf]'``).
"""

from lslo.hf.data import DirectionEvalSet, DirectionStream, LSLoCollator, direction_eval_set, direction_stream
from lslo.hf.metrics import DirectionMetrics
from lslo.hf.model import TRAINER_INDEX, LSLoForSeq2SeqLM, TrainerInputError, as_lslo_model, get_lslo_model
from lslo.hf.peft import peft_support
from lslo.hf.pruning import PruningCallback

__all__ = [
    "TRAINER_INDEX",
    "DirectionEvalSet",
    "DirectionMetrics",
    "DirectionStream",
    "LSLoCollator",
    "LSLoForSeq2SeqLM",
    "PruningCallback",
    "TrainerInputError",
    "as_lslo_model",
    "direction_eval_set",
    "direction_stream",
    "get_lslo_model",
    "peft_support",
]
