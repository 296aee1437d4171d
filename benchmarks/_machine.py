"""The ``machine`` block every benchmark JSON carries: which processor, which libraries, how many threads.

    from _machine import machine
    doc = {..., "machine": machine(threads=2, ctranslate2=True)}

Speed depends on the processor (vendor, model, vector extensions) and on the matrix library torch
and CTranslate2 call on it, so every result names them, spelled one way:

- ``vendor`` (``GenuineIntel``, ``AuthenticAMD``), ``processor`` (the model name), ``arch``;
- ``isa``: the vector extensions that decide which kernels run (AVX2, AVX-512 and its VNNI/BF16,
  AMX), from ``/proc/cpuinfo``'s flags, and torch's own ``cpu_capability``;
- ``cores`` (logical CPUs the process may use) and ``threads`` (torch threads of the run);
- ``torch``, and ``gemm``: the library lslo's float32 linears use here (``eval.gemm: auto``'s
  choice for this vendor, with its version) and, with ``ctranslate2=True``, CTranslate2's version
  and the library it picks for this vendor (MKL on Intel, oneDNN elsewhere).
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

ISA = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def cpuinfo(path: str = "/proc/cpuinfo") -> dict[str, str]:
    """The first processor's fields of ``/proc/cpuinfo`` (empty where there is none)."""
    out: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for line in text.split("\n\n")[0].splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            out[key.strip()] = value.strip()
    return out


def cores() -> int:
    """Logical CPUs this process may run on (its affinity), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def machine(threads: int | None = None, ctranslate2: bool = False, **extra) -> dict:
    """The ``machine`` block; ``extra`` keys are added as given (a GPU name, a device)."""
    info = cpuinfo()
    flags = set(info.get("flags", "").split())
    vendor = info.get("vendor_id", "unknown")
    doc: dict = {"vendor": vendor, "processor": info.get("model name") or platform.processor() or platform.machine(),
                 "arch": platform.machine(), "isa": [f for f in ISA if f in flags], "cores": cores()}
    if threads is not None:
        doc["threads"] = threads
    try:
        import torch

        from lslo.decoding.gemm import gemm_library, resolve

        path = resolve("auto", vendor)
        doc.update(torch=torch.__version__, cpu_capability=torch.backends.cpu.get_cpu_capability(),
                   gemm={"lslo_auto": path, "library": gemm_library(path)})
    except ImportError:
        pass
    if ctranslate2:
        try:
            from importlib.metadata import version

            forced = os.environ.get("CT2_USE_MKL")  # CTranslate2's own override of its vendor rule
            mkl = forced not in ("0", "false") if forced is not None else vendor == "GenuineIntel"
            doc["ctranslate2"] = {"version": version("ctranslate2"), "library": "MKL" if mkl else "oneDNN"}
        except Exception:
            doc["ctranslate2"] = None
    doc.update(extra)
    return doc
