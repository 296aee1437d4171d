"""Evaluation and translation a user can point anywhere: partial test sets, TSV/JSONL, a record
of what was scored, one set of options for evaluate and translate."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import segments, write_run_config

from lslo.cli.main import main


@pytest.fixture(scope="module")
def trained(m2m_dir, flores_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("ev")
    run = d / "run"
    cfg = write_run_config(d / "c.yaml", m2m_dir, flores_dir, run, epochs=1, langs=("en", "fr", "ha"))
    assert main(["train", str(cfg), "--quiet"]) == 0
    return run, cfg


def test_partial_test_set_scores_what_is_there(trained, flores_dir, tmp_path, capsys):
    run, _ = trained
    part = tmp_path / "flores101_dataset"
    shutil.copytree(flores_dir, part)
    for split in ("dev", "devtest"):
        (part / split / f"hau.{split}").unlink()  # no Hausa in this test set
    assert main(["evaluate", str(run), "--data", str(part), "--split", "devtest"]) == 0
    cap = capsys.readouterr()
    assert "skipped 4 direction(s)" in cap.err and "en-ha" in cap.err
    out = run / "eval-flores101_dataset-devtest-best"
    scores = json.loads((out / "scores.json").read_text())
    assert set(scores["directions"]) == {"en-fr", "fr-en"}
    ev = scores["evaluated"]
    assert ev["data"] == str(part) and ev["split"] == "devtest" and ev["segments"] == 6
    assert ev["skipped_directions"] == ["en-ha", "fr-ha", "ha-en", "ha-fr"]
    # --directions is honoured, and a second evaluation into the same folder needs --overwrite
    assert main(["evaluate", str(run), "--data", str(part), "--split", "devtest", "--directions", "fr-en",
                 "--overwrite", "--quiet"]) == 0
    assert set(json.loads((out / "scores.json").read_text())["directions"]) == {"fr-en"}
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(part), "--split", "devtest", "--quiet"]) == 2
    assert "already holds scores; pass --overwrite" in capsys.readouterr().err


def test_tsv_and_jsonl_test_sets(trained, tmp_path):
    run, _ = trained
    tsv = tmp_path / "test.tsv"
    tsv.write_text("en\tfr\n" + "".join(f"{a}\t{b}\n" for a, b in zip(segments("en", 5), segments("fr", 5))))
    assert main(["evaluate", str(run), "--data", str(tsv), "--quiet"]) == 0
    scores = json.loads((run / "eval-test.tsv-all-best" / "scores.json").read_text())
    assert set(scores["directions"]) == {"en-fr", "fr-en"} and scores["evaluated"]["segments"] == 5
    jl = tmp_path / "t.jsonl"
    jl.write_text("".join(json.dumps({"en": a, "ha": b}) + "\n" for a, b in zip(segments("en", 4), segments("ha", 4))))
    assert main(["evaluate", str(run), "--data", str(jl), "--quiet"]) == 0
    assert set(json.loads((run / "eval-t.jsonl-all-best" / "scores.json").read_text())["directions"]) == {"en-ha", "ha-en"}
    assert main(["evaluate", str(run), "--data", str(jl), "--split", "devtest", "--quiet"]) == 2


def test_checkpoint_actually_used_is_recorded(m2m_dir, flores_dir, tmp_path, capsys):
    run = tmp_path / "nv"
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, run, max_steps=1)
    data = cfg.read_text().replace("valid_ratio: 0.2", "valid_ratio: 0.0")
    cfg.write_text(data)
    assert main(["train", str(cfg), "--quiet"]) == 0  # no validation split: no 'best'
    assert main(["evaluate", str(run), "--quiet"]) == 0
    scores = json.loads((run / "eval-devtest-last" / "scores.json").read_text())
    assert scores["evaluated"]["checkpoint"] == "last" and scores["evaluated"]["checkpoint_asked"] == "best"
    assert "(last ('best' asked; the run has none))" in (run / "eval-devtest-last" / "scores.md").read_text()


def test_base_model_of_a_config(trained, tmp_path):
    _, cfg = trained
    out = tmp_path / "base-eval"
    assert main(["evaluate", str(cfg), "--checkpoint", "none", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "scores.json").read_text())["evaluated"]["checkpoint"] == "none"
    assert main(["evaluate", str(cfg), "--quiet"]) == 2  # a config has no trained weights


def test_translate_accepts_corpus_codes_and_shares_evaluate_defaults(trained, tmp_path, capsys):
    run, _ = trained
    src = tmp_path / "in.txt"
    src.write_text("\n".join(segments("en", 2)) + "\n")
    outs = []
    for s, t in (("en", "fr"), ("eng", "fra"), ("eng_Latn", "fra_Latn"), ("__en__", "__fr__")):
        o = tmp_path / f"{s}.txt"
        assert main(["translate", str(run), "--src", s, "--tgt", t, "--input", str(src), "--output", str(o)]) == 0
        outs.append(o.read_text())
    assert len(set(outs)) == 1
    capsys.readouterr()
    assert main(["translate", str(run), "--src", "de", "--tgt", "fr", "--input", str(src)]) == 2
    assert "not one of the run's languages" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["evaluate", "RUN", "--beam", "0"], ["evaluate", "RUN", "--max-segments", "0"],
                                  ["translate", "RUN", "--src", "en", "--tgt", "fr", "--beam", "0"],
                                  ["translate", "RUN", "--src", "en", "--tgt", "fr", "--max-new-tokens", "0"],
                                  ["evaluate", "RUN", "--device", "bogus"], ["evaluate", "RUN", "--device", "cuda:0"]])
def test_bad_options_are_one_line_errors(trained, argv, capsys):
    import torch

    if "cuda:0" in argv and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    run, _ = trained
    argv = [str(run) if a == "RUN" else a for a in argv]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse usage errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "expected an integer >= 1" in err or "--device" in err


@pytest.mark.parametrize("device", ["bogus", "cuda"])
def test_train_bad_device_is_a_one_line_error(m2m_dir, flores_dir, tmp_path, capsys, device):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, tmp_path / "r", max_steps=1)
    assert main(["train", str(cfg), "--device", device, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--device" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_both_engines_translate_and_evaluate_alike(trained, tmp_path, monkeypatch):
    """`--engine transformers` (transformers' generate) and the default lean search give the same
    translations and scores; the engine each used is the one asked for."""
    from lslo.tuner.model import LSLoModel

    run, _ = trained
    used = []
    original = LSLoModel.generate

    def spy(self, *a, **kw):
        out = original(self, *a, **kw)
        used.append(self.last_engine[0])
        return out

    monkeypatch.setattr(LSLoModel, "generate", spy)
    src = tmp_path / "in.txt"
    src.write_text("\n".join(segments("en", 3)) + "\n")
    texts = {}
    for engine in ("lslo", "transformers"):
        o = tmp_path / f"{engine}.txt"
        used.clear()
        assert main(["translate", str(run), "--src", "en", "--tgt", "fr", "--input", str(src), "--output", str(o),
                     "--engine", engine]) == 0
        assert set(used) == {engine}
        texts[engine] = o.read_text()
        out = tmp_path / f"eval-{engine}"
        assert main(["evaluate", str(run), "--engine", engine, "--out", str(out), "--quiet"]) == 0
        texts[engine + "-scores"] = json.loads((out / "scores.json").read_text())["groups"]
    assert texts["lslo"] == texts["transformers"] and texts["lslo-scores"] == texts["transformers-scores"]


def test_an_unknown_engine_in_the_config_is_one_line(m2m_dir, flores_dir, tmp_path, capsys):
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, tmp_path / "r", max_steps=1)
    cfg.write_text(cfg.read_text() + "\neval:\n  engine: ctranslate2\n" if "\neval:" not in cfg.read_text()
                   else cfg.read_text().replace("\neval:\n", "\neval:\n  engine: ctranslate2\n"))
    assert main(["train", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "eval.engine: expected lslo or transformers, got 'ctranslate2'" in err[0]


def test_quantize_int8_translates_with_float32_adapters_and_is_recorded(trained, tmp_path, monkeypatch):
    """`--quantize int8`: the base's linear layers become int8 ones, the LSLo adapters stay float32
    parameters, translations come out, and the scores say how they were made."""
    import torch

    from lslo.decoding.quantize import Int8Linear
    from lslo.tuner.model import LSLoModel

    run, _ = trained
    seen = {}
    original = LSLoModel.generate

    def spy(self, *a, **kw):
        seen["float_linears"] = sum(type(m) is torch.nn.Linear for m in self.base.modules())
        seen["quantized"] = sum(isinstance(m, Int8Linear) for m in self.base.modules())
        seen["adapter_dtypes"] = {m.lora_A.dtype for m in self.lslo_modules().values()}
        return original(self, *a, **kw)

    monkeypatch.setattr(LSLoModel, "generate", spy)
    src = tmp_path / "in.txt"
    src.write_text("\n".join(segments("en", 2)) + "\n")
    o = tmp_path / "int8.txt"
    assert main(["translate", str(run), "--src", "en", "--tgt", "fr", "--input", str(src), "--output", str(o),
                 "--quantize", "int8"]) == 0
    assert len(o.read_text().splitlines()) == 2
    assert seen["float_linears"] == 0 and seen["quantized"] > 0 and seen["adapter_dtypes"] == {torch.float32}
    out = tmp_path / "eval-int8"
    assert main(["evaluate", str(run), "--quantize", "int8", "--engine", "transformers", "--out", str(out),
                 "--quiet"]) == 0
    evaluated = json.loads((out / "scores.json").read_text())["evaluated"]
    assert evaluated["quantize"] == "int8" and evaluated["engine"] == "transformers"


def test_quantize_on_a_gpu_device_is_one_line(tmp_path):
    from torch import nn

    from lslo.decoding.quantize import QuantizeError, quantize_int8

    with pytest.raises(QuantizeError, match="no nn.Linear"):
        quantize_int8(nn.Sequential(nn.ReLU()))
    meta = nn.Linear(2, 2, device="meta")
    with pytest.raises(QuantizeError, match="runs on the CPU; the model is on meta"):
        quantize_int8(meta)


def test_gemm_and_early_stopping_reach_the_search_and_are_recorded(trained, tmp_path, monkeypatch):
    """`--gemm onednn --early-stopping`: the base's linears are packed for oneDNN and the search stops
    by CTranslate2's rule; `--gemm reference --no-early-stopping` undoes both; scores record them."""
    import torch

    from lslo.decoding import gemm
    from lslo.tuner.model import LSLoModel

    if not gemm.onednn_available():
        pytest.skip("this torch build has no oneDNN packed linear")
    run, _ = trained
    seen = []
    original = LSLoModel.generate

    def spy(self, *a, **kw):
        seen.append((kw.get("early_stopping"), sum(isinstance(m, gemm.PackedLinear) for m in self.base.modules()),
                     sum(type(m) is torch.nn.Linear for m in self.base.modules())))
        return original(self, *a, **kw)

    monkeypatch.setattr(LSLoModel, "generate", spy)
    src = tmp_path / "in.txt"
    src.write_text("\n".join(segments("en", 2)) + "\n")
    assert main(["translate", str(run), "--src", "en", "--tgt", "fr", "--input", str(src), "--output",
                 str(tmp_path / "o.txt"), "--gemm", "onednn", "--early-stopping"]) == 0
    assert seen and all(e is True and packed > 0 and plain == 0 for e, packed, plain in seen)
    seen.clear()
    out = tmp_path / "eval"
    assert main(["evaluate", str(run), "--gemm", "reference", "--no-early-stopping", "--out", str(out),
                 "--quiet"]) == 0
    assert seen and all(e is False and packed == 0 for e, packed, _ in seen)
    evaluated = json.loads((out / "scores.json").read_text())["evaluated"]
    assert evaluated["gemm"] == "reference" and evaluated["early_stopping"] is False


@pytest.mark.parametrize("field, value, message", [
    ("gemm", "mkl", "eval.gemm: expected reference | onednn | auto, got 'mkl'"),
    ("early_stopping", "sometimes", "eval.early_stopping: expected true/false, got 'sometimes'"),
])
def test_a_bad_gemm_or_stopping_rule_in_the_config_is_one_line(m2m_dir, flores_dir, tmp_path, capsys, field,
                                                               value, message):
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, tmp_path / "r", max_steps=1)
    text = cfg.read_text()
    line = f"  {field}: {value}\n"
    cfg.write_text(text.replace("\neval:\n", "\neval:\n" + line) if "\neval:" in text else text + "\neval:\n" + line)
    assert main(["train", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
