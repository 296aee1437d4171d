"""Whether LSLo can be registered as a PEFT method with the installed PEFT, and why not.

PEFT's public registration, ``peft.utils.peft_types.register_peft_method(name=..., config_cls=...,
model_cls=...)``, only accepts a ``name`` whose upper-case form is already a member of the enum
``peft.utils.peft_types.PeftType`` (it raises ``ValueError: Unknown PEFT type LSLO, please add an
entry to peft.utils.peft_types.PeftType``). ``PeftType`` is a closed ``enum.Enum`` inside PEFT, so
a package outside PEFT cannot add a method; ``get_peft_model``, ``PeftConfig.from_pretrained``
and ``PeftModel.from_pretrained`` look methods up by that enum. (Routing itself would not be the
obstacle: ``PeftModelForSeq2SeqLM.forward``/``generate`` pass unknown keyword arguments such as
``src_lang``/``tgt_lang`` on to the tuner. PEFT's own per-sample routing, LoRA's
``adapter_names``, cannot stand in: it picks one adapter per sentence for every layer, where LSLo
routes the encoder by source and the decoder by target language, and it raises "Cannot pass
`adapter_names` when the model is in training mode".)

So lslo offers PEFT's method names on its own models instead (``LSLoModel`` and
``lslo.hf.LSLoForSeq2SeqLM``): ``get_lslo_model`` (``get_peft_model``),
``print_trainable_parameters``, ``get_nb_trainable_parameters``, ``save_pretrained`` and
``from_pretrained``; ``lslo export-peft`` still writes a plain PEFT LoRA adapter for one direction.
"""

from __future__ import annotations

from typing import Any

METHOD = "lslo"


def peft_support() -> dict[str, Any]:
    """``{"peft": version or None, "registrable": bool, "reason": str}`` for the installed PEFT.

    ``registrable`` is True only when PEFT's ``register_peft_method`` would accept the name
    ``lslo``; this lslo version ships no PEFT tuner class either way (see the module docstring)."""
    try:
        import peft
        from peft.utils.peft_types import PeftType
    except ImportError:
        return {"peft": None, "registrable": False, "reason": "peft is not installed (pip install 'lslo[hf]')"}
    version = getattr(peft, "__version__", "?")
    try:
        from peft.utils.peft_types import register_peft_method  # noqa: F401
    except ImportError:
        return {"peft": version, "registrable": False,
                "reason": f"peft {version} has no peft.utils.peft_types.register_peft_method"}
    if METHOD.upper() not in PeftType.__members__:
        return {"peft": version, "registrable": False,
                "reason": f"peft {version}: register_peft_method only accepts names already in the closed enum "
                          f"peft.utils.peft_types.PeftType, which has no {METHOD.upper()} member"}
    return {"peft": version, "registrable": True,
            "reason": f"peft {version} knows a {METHOD.upper()} type, but this lslo version has no PEFT tuner for it"}


__all__ = ["peft_support"]
