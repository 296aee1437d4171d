"""The README's Python API snippet runs as written (paths swapped for a tiny saved M2M-100)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_api_snippet_runs(m2m_dir, tmp_path, monkeypatch):
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "from lslo import" in code
    code = code.replace("/models/m2m100_418M", str(m2m_dir))
    monkeypatch.chdir(tmp_path)  # adapters/ and the merged model are written here
    env: dict = {}
    exec(compile(code, str(README), "exec"), env)
    model = env["model"]
    assert (tmp_path / "adapters" / "adapter_config.json").is_file()
    assert (tmp_path / "m2m100-en-wo" / "config.json").is_file()
    assert type(model).__name__ == "LSLoModel" and model.config.codes == ["en", "fr", "wo"]
