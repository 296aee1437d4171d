"""The README's quickstart (also the docs' quickstart page), run as written on the committed
testbed: train 40 updates, evaluate two directions, translate one line, serve one request.

The commands run from a fresh directory, with the config's path made absolute (the README runs
them from the clone's root); `make install && source ...` is the test's own environment."""

from __future__ import annotations

import io
import json
import sys

from docs_helpers import ROOT, code_blocks, lslo_commands, serve_once

from lslo.cli.main import main


def quickstart() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text[text.index("--8<-- [start:quickstart]"):text.index("--8<-- [end:quickstart]")]


def test_the_readme_quickstart_runs_as_written(tmp_path, monkeypatch, capsys):
    section = quickstart()
    monkeypatch.chdir(tmp_path)
    curl = next(b for _, b in code_blocks(section, ("bash",)) if "curl" in b)
    body = json.loads(curl.split("-d '", 1)[1].rsplit("'", 1)[0])
    ran = []
    for line, argv in lslo_commands(section):
        argv = [str(ROOT / a) if a.startswith("configs/") else a for a in argv]
        if argv[0] == "serve":
            out = serve_once(argv, body)
            assert isinstance(out["translatedText"], str) and out["translatedText"].strip()
        else:
            if line.startswith("echo "):
                monkeypatch.setattr(sys, "stdin", io.StringIO(line.split('"')[1] + "\n"))
            code = main(argv)
            captured = capsys.readouterr()
            assert code == 0, f"{line!r} exited {code}: {captured.err[-2000:]}"
            if argv[0] == "translate":
                assert captured.out.strip(), "translate printed nothing"
        ran.append(argv[0])
    assert ran == ["train", "evaluate", "translate", "serve"]
    scores = json.loads(next((tmp_path / "runs" / "quick").glob("eval-*/scores.json")).read_text())
    assert sorted(scores["directions"]) == ["de-en", "en-de"]
