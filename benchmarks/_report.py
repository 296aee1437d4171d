"""What every benchmark does with its result: print the JSON, and write it to --json when given."""

from __future__ import annotations

import json
from pathlib import Path


def emit(doc: dict, path: str | None) -> None:
    text = json.dumps(doc, indent=1)
    print(text)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n", encoding="utf-8")
