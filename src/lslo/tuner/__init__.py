"""The core: configuration, routing, the LSLo layer, injection into a model, storage, export.

Nothing here imports training, evaluation, reporting, experiments, the CLI or the testbed.
"""

from lslo.tuner.config import ConfigError, LanguageSpec, LSLoConfig
from lslo.tuner.languages import LanguageError, LanguageTokens, build_batch, encode_batch
from lslo.tuner.layer import LSLoLinear, Router, routed_lora
from lslo.tuner.model import AdapterError, LSLoModel

__all__ = [
    "AdapterError",
    "ConfigError",
    "LSLoConfig",
    "LSLoLinear",
    "LSLoModel",
    "LanguageError",
    "LanguageSpec",
    "LanguageTokens",
    "Router",
    "build_batch",
    "encode_batch",
    "routed_lora",
]
