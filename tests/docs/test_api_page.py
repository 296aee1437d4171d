"""The Python API page's snippet runs as written (paths swapped for a tiny saved M2M-100); every
configuration field has the help text the configuration reference is generated from."""

from __future__ import annotations

import re
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "docs" / "reference" / "api.md"


def test_python_api_snippet_runs(m2m_dir, tmp_path, monkeypatch):
    text = API.read_text(encoding="utf-8")
    section = text[text.index("## In ten lines"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "from lslo import" in code
    code = code.replace("/models/m2m100_418M", str(m2m_dir))
    monkeypatch.chdir(tmp_path)  # adapters/ and the merged model are written here
    env: dict = {}
    exec(compile(code, str(API), "exec"), env)
    model = env["model"]
    assert (tmp_path / "adapters" / "adapter_config.json").is_file()
    assert (tmp_path / "m2m100-en-wo" / "config.json").is_file()
    assert type(model).__name__ == "LSLoModel" and model.config.codes == ["en", "fr", "wo"]


def test_every_config_field_has_help():
    import dataclasses

    from lslo.training.config import RunConfig

    def walk(obj, where):
        for f in dataclasses.fields(obj):
            assert f.metadata.get("help"), f"{where}{f.name}: no help text"
            v = getattr(obj, f.name)
            if dataclasses.is_dataclass(v):
                walk(v, f"{where}{f.name}.")

    walk(RunConfig(), "")
