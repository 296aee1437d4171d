"""The own-data guide (docs/guides/own-data.md), run as written: its configuration and every lslo
command, in order, on a tiny saved M2M-100 and a six-language FLORES-101 directory.

Only the paths are swapped (the guide's /models and /data for the test's), translations stop after
16 new tokens (the random tiny model never ends a sentence, and the guide's 200 would only cost
time), and the multi-process launchers (accelerate, torchrun) are left out: data parallel training
has its own test (tests/training/test_distributed.py)."""

from __future__ import annotations

import io
import json
import sys

import yaml
from docs_helpers import ROOT, code_blocks, lslo_commands, serve_once

from lslo.cli.main import main

GUIDE = ROOT / "docs" / "guides" / "own-data.md"


def test_the_own_data_guide_runs_as_written(m2m_dir, flores_dir, tmp_path, monkeypatch, capsys):
    text = GUIDE.read_text(encoding="utf-8")
    swap = {"/models/m2m100_418M": str(m2m_dir), "/data/flores101_dataset": str(flores_dir),
            "/data/flores200_dataset": str(flores_dir),
            "/models/flores101_spm.model": str(m2m_dir / "sentencepiece.bpe.model")}

    def swapped(s: str) -> str:
        for k, v in swap.items():
            s = s.replace(k, v)
        return s

    monkeypatch.chdir(tmp_path)
    config = code_blocks(text, ("yaml",))[0][1]
    cfg = yaml.safe_load(swapped(config))
    cfg["eval"]["max_new_tokens"] = 16
    (tmp_path / "my-run.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    curl = next(b for _, b in code_blocks(text, ("bash",)) if "curl" in b)
    body = json.loads(curl.split("-d '", 1)[1].rsplit("'", 1)[0])

    ran = []
    for line, argv in lslo_commands(text):
        if line.split()[0] in ("accelerate", "torchrun"):
            continue
        argv = [swapped(a) for a in argv]
        if argv[0] == "serve":
            out = serve_once(argv, body)
            assert isinstance(out["translatedText"], list) and len(out["translatedText"]) == len(body["q"])
        else:
            if line.startswith("echo "):
                monkeypatch.setattr(sys, "stdin", io.StringIO(line.split('"')[1] + "\n"))
            code = main(argv)
            assert code == 0, f"{line!r} exited {code}: {capsys.readouterr().err[-2000:]}"
        ran.append(argv[0])
    assert ran.count("train") >= 3 and {"evaluate", "levels", "info", "report", "translate", "serve"} <= set(ran)

    run = tmp_path / "runs" / "my-run"
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert [lang["code"] for lang in cfg["lslo"]["languages"]] == ["en", "fr", "de", "zh", "ha"]
    scores = json.loads((run / "eval-devtest-best" / "scores.json").read_text())
    assert "spbleu" in scores["signatures"] and len(scores["directions"]) == 20
    levels = yaml.safe_load((tmp_path / "my-run-levels.yaml").read_text())
    assert {lang["level"] for lang in levels["lslo"]["languages"]} <= {"high", "medium", "low"}
    added = yaml.safe_load((tmp_path / "runs" / "my-run-yo" / "config.yaml").read_text())
    assert added["trainable_languages"] == ["yo"]
