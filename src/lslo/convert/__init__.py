"""Checkpoint conversion between fairseq and Hugging Face, without fairseq.

``checkpoint`` (reading ``model.pt`` safely) and ``dictionary`` (fairseq's ``dict.txt`` and the
language tokens) <- ``fairseq`` (a fairseq M2M-100-family checkpoint -> a Hugging Face
``M2M100ForConditionalGeneration`` directory with its tokenizer) and ``to_fairseq`` (the way back).
"""

from lslo.convert.checkpoint import CheckpointError, load_checkpoint, model_args
from lslo.convert.dictionary import FairseqVocab, read_dict_file, read_languages
from lslo.convert.fairseq import convert_fairseq
from lslo.convert.to_fairseq import export_fairseq

__all__ = ["CheckpointError", "FairseqVocab", "convert_fairseq", "export_fairseq", "load_checkpoint", "model_args",
           "read_dict_file", "read_languages"]
