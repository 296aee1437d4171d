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


def test_the_configuration_reference_is_current():
    from lslo.training.config import reference_yaml

    text = README.read_text(encoding="utf-8")
    section = text[text.index("<summary>lslo config --defaults</summary>"):]
    copy = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    assert copy == reference_yaml(), "README's configuration reference is stale: paste `lslo config --defaults`"


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
