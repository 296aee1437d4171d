"""What every benchmark does with its result: print the JSON, and write it to --json when given.

Every result records the day it was measured (``date``, UTC) and, in its ``machine`` block, the
processor's model name (``processor``): the docs' results pages print both next to the numbers.
"""

from __future__ import annotations

import datetime
import json
import platform
from pathlib import Path


def processor() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s ``model name`` on Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def emit(doc: dict, path: str | None) -> None:
    doc.setdefault("date", datetime.datetime.now(datetime.timezone.utc).date().isoformat())
    if isinstance(doc.get("machine"), dict):
        doc["machine"].setdefault("processor", processor())
    text = json.dumps(doc, indent=1)
    print(text)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n", encoding="utf-8")
