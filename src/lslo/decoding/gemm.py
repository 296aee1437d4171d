"""Which matrix-multiply library runs a frozen model's linear layers at inference, per machine.

torch runs every ``nn.Linear`` through its BLAS (MKL on x86 builds) whatever the processor, while
CTranslate2 uses MKL only on Intel processors and oneDNN elsewhere, with weights pre-packed once
(``cpu_is_genuine_intel()`` in its ``src/cpu/backend.cc``). ``pack_linears(model, mode)`` sets the
path of every float32 CPU ``nn.Linear``, through :data:`GEMMS`:

- ``reference``: torch's own ``F.linear``; translations are token-identical to transformers'
  ``generate`` (the tests hold the lean search to that). The library's default.
- ``onednn``: oneDNN with the weight pre-packed once in its blocked layout (the path torch's
  inductor takes for frozen weights: ``mkldnn._reorder_linear_weight`` /
  ``mkldnn._linear_pointwise``). One-row calls (a gemv) stay on ``reference``. Its rounding
  differs from MKL's in the last bits (about 1e-6 relative), so a beam may tie-break differently:
  the tests bound the change on the testbed (chrF++ and the share of identical translations).
- ``auto``: CTranslate2's rule: ``reference`` (MKL) on a GenuineIntel processor, ``onednn`` on
  any other. Measured end to end by ``benchmarks/engines.py`` (engine ``lslo-onednn``); the docs'
  engines page has the numbers and the processors they were measured on. The CLI's default
  (``eval.gemm``).

Only inference uses the packed weight: with gradients enabled, or once the weight has been changed
in place (its version counter moved), a layer runs ``F.linear`` again. The packed copy is one more
copy of each weight (``packed_bytes``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from lslo.errors import LSLoError

GEMMS = ("reference", "onednn", "auto")


class GemmError(LSLoError):
    """A GEMM path that this machine or torch build cannot take."""


def onednn_available() -> bool:
    """True when this torch build has oneDNN's packed linear (x86 and Arm CPU builds)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")


def cpu_vendor(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The processor's vendor id (``GenuineIntel``, ``AuthenticAMD``, ...), or ``unknown``."""
    try:
        for line in Path(cpuinfo).read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def resolve(mode: str, vendor: str | None = None) -> str:
    """The path ``mode`` takes on this machine: ``auto`` becomes ``reference`` on Intel (and where
    oneDNN's packed linear is missing), else ``onednn``."""
    if mode not in GEMMS:
        raise GemmError(f"gemm: expected {' | '.join(GEMMS)}, got {mode!r}")
    if mode != "auto":
        return mode
    vendor = vendor or cpu_vendor()
    return "reference" if vendor == "GenuineIntel" or not onednn_available() else "onednn"


class PackedLinear(nn.Linear):
    """An ``nn.Linear`` whose inference calls of two or more rows run oneDNN on a pre-packed weight.

    Its parameters and state dict are the ``nn.Linear``'s own (saving, merging and LSLo's wrappers
    see no difference); ``_packed`` is an extra, unsaved copy of the weight in oneDNN's layout."""

    _packed: torch.Tensor | None
    _weight_version: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self._packed is None or torch.is_grad_enabled() or self.weight._version != self._weight_version
                or x.numel() <= x.shape[-1]):
            return F.linear(x, self.weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x, self._packed, self.bias, "none", [], "")


def _candidates(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if type(m) in (nn.Linear, PackedLinear)
            and m.weight.dtype == torch.float32 and m.weight.device.type == "cpu"]


def pack_linears(model: nn.Module, mode: str = "auto") -> dict:
    """Set the GEMM path of ``model``'s float32 CPU ``nn.Linear`` layers in place (again with
    ``reference`` to undo); returns ``mode``, the path it took (``gemm``), ``layers`` and
    ``packed_bytes``."""
    path = resolve(mode)
    if path == "onednn" and not onednn_available():
        raise GemmError("gemm onednn: this torch build has no oneDNN packed linear; use reference")
    layers = _candidates(model)
    packs: dict[int, torch.Tensor] = {}
    for m in layers:
        if path == "reference":
            if isinstance(m, PackedLinear):
                m.__class__, m._packed = nn.Linear, None
            continue
        if id(m.weight) not in packs:  # a weight shared by two layers is packed once
            packs[id(m.weight)] = torch.ops.mkldnn._reorder_linear_weight(m.weight.detach(), 64)
        m.__class__ = PackedLinear
        m._packed, m._weight_version = packs[id(m.weight)], m.weight._version
    return {"mode": mode, "gemm": path, "layers": len(layers),
            "packed_bytes": sum(p.numel() * p.element_size() for p in packs.values())}


def gemm_library(path: str) -> str:
    """The library and version a path multiplies with, from torch's build record (for benchmark
    records and logs): ``oneDNN 3.12.0`` or ``MKL 2024.2``."""
    import re

    show = torch.__config__.show()
    if path == "onednn":
        found = re.search(r"MKL-DNN v([0-9.]+)", show)
        return "oneDNN " + found.group(1) if found else "oneDNN"
    found = re.search(r"Math Kernel Library Version ([0-9.]+)", show)
    return ("MKL " + found.group(1)) if found else "torch's BLAS"
