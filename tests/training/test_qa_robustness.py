"""The new-user QA classes: runs that work from any directory, outputs that never clobber, the
environment failing in one line, saying what actually happened, one set of language codes, no
language token in exported text, and a server that says why it cannot start."""

from __future__ import annotations

import errno
import io
import json
import shutil
import socket
import sys

import pytest
import yaml
from conftest import write_run_config

from lslo.cli.main import main


def one_line_error(capsys, code, *needles):
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [x for x in err.strip().splitlines() if not x.startswith("lslo: warning")]
    assert "Traceback" not in err and len(lines) == 1, err
    for n in needles:
        assert n in err, err
    return err


@pytest.fixture(scope="module")
def project(m2m_dir, flores_dir, tmp_path_factory):
    """A user's project: model, data and config side by side, with paths relative to the config."""
    root = tmp_path_factory.mktemp("proj")
    shutil.copytree(m2m_dir, root / "model")
    shutil.copytree(flores_dir, root / "data" / "flores101_dataset")
    (root / "configs").mkdir()
    cfg = write_run_config(root / "configs" / "c.yaml", "../model", "../data/flores101_dataset", "runs/r1",
                           epochs=1, langs=("en", "fr", "ha"))
    return root, cfg


@pytest.fixture(scope="module")
def run(project, tmp_path_factory):
    """Trained from the project directory, with every path relative."""
    root, cfg = project
    old = __import__("os").getcwd()
    __import__("os").chdir(root)
    try:
        assert main(["train", "configs/c.yaml", "--quiet"]) == 0
    finally:
        __import__("os").chdir(old)
    return root / "runs" / "r1"


# ----------------------------------------------------------------------------- 1. runs that travel
def test_relative_config_paths_are_read_from_the_config_and_the_run_stores_them_absolute(project, run):
    root, _ = project
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"] == str((root / "model").resolve())
    assert saved["data"]["path"] == str((root / "data" / "flores101_dataset").resolve())
    assert saved["output_dir"] == str(run.resolve())
    assert saved["written_paths"] == {"model": "../model", "data.path": "../data/flores101_dataset"}


def test_a_run_works_from_any_directory(run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["info", str(run)]) == 0
    assert "checkpoint: best" in capsys.readouterr().out
    assert main(["evaluate", str(run), "--max-segments", "2", "--quiet", "--out", str(tmp_path / "ev")]) == 0
    assert main(["merge", str(run), "--src", "en", "--tgt", "fr", "--out", str(tmp_path / "m")]) == 0
    from lslo.tuner.model import LSLoModel

    model = LSLoModel.from_pretrained(run)  # the run directory itself: best, saying so
    assert model.loaded_checkpoint == "best" and "loading checkpoint 'best'" in capsys.readouterr().err


def test_from_pretrained_of_a_run_without_best_takes_last_and_says_why(m2m_dir, flores_dir, tmp_path, capsys):
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, tmp_path / "r", max_steps=1)
    assert main(["train", str(cfg), "--quiet"]) == 0
    from lslo.tuner.model import LSLoModel

    capsys.readouterr()
    model = LSLoModel.from_pretrained(tmp_path / "r")
    assert model.loaded_checkpoint == "last" and "no 'best' checkpoint" in capsys.readouterr().err
    # info and serve say "last", never "(best)"
    assert main(["info", str(tmp_path / "r")]) == 0
    assert "checkpoint: last (the run has no 'best' checkpoint)" in capsys.readouterr().out


def test_exported_peft_adapter_names_the_absolute_base_and_loads_it_in_float32(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export-peft", str(run), "--src", "en", "--tgt", "fr", "--out", "peft"]) == 0
    conf = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    base = conf["base_model_name_or_path"]
    assert base.startswith("/") and (__import__("pathlib").Path(base) / "config.json").is_file()
    assert "dtype=torch.float32" in (tmp_path / "peft" / "README.md").read_text()


# ----------------------------------------------------------------------- 2. never overwrite by surprise
def test_merge_and_export_refuse_a_non_empty_out_and_replace_it_whole_with_overwrite(run, tmp_path, capsys):
    out = tmp_path / "other_model"
    out.mkdir()
    (out / "model.safetensors.index.json").write_text("{}")  # another model's shard index
    for cmd in (["merge", str(run), "--src", "en", "--tgt", "fr"], ["export-peft", str(run), "--src", "en",
                                                                     "--tgt", "fr"]):
        one_line_error(capsys, main([*cmd, "--out", str(out)]), "not empty", "--overwrite")
        assert (out / "model.safetensors.index.json").is_file()
    assert main(["merge", str(run), "--src", "en", "--tgt", "fr", "--out", str(out), "--overwrite"]) == 0
    assert not (out / "model.safetensors.index.json").exists()  # no stale file survives
    assert (out / "lslo_direction.json").is_file()
    assert not list(tmp_path.glob(".other_model*"))  # no temporary directory left


def test_nothing_is_ever_written_into_the_base_model_or_a_run(project, run, tmp_path, capsys):
    root, _ = project
    base = root / "model"
    before = {p.name: p.stat().st_mtime_ns for p in base.iterdir()}
    for target, needle in ((base, "base model"), (run, "run directory"), (run / "checkpoints", "run directory"),
                           (base / "sub", "base model")):
        for cmd in ("merge", "export-peft"):
            one_line_error(capsys, main([cmd, str(run), "--src", "en", "--tgt", "fr", "--out", str(target),
                                         "--overwrite"]), needle)
    one_line_error(capsys, main(["evaluate", str(run), "--out", str(base), "--overwrite"]), "base model")
    assert {p.name: p.stat().st_mtime_ns for p in base.iterdir()} == before


def test_train_overwrite_removes_the_earlier_runs_scores_and_scores_name_their_checkpoint(m2m_dir, flores_dir,
                                                                                           tmp_path, capsys):
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, tmp_path / "r", max_steps=2)
    assert main(["train", str(cfg), "--quiet"]) == 0
    assert main(["evaluate", str(tmp_path / "r"), "--max-segments", "1", "--quiet"]) == 0
    ev = tmp_path / "r" / "eval-devtest-last"
    first = json.loads((ev / "scores.json").read_text())["evaluated"]
    assert len(first["checkpoint_sha256"]) == 64 and first["checkpoint_time"]
    assert main(["train", str(cfg), "--quiet", "--overwrite", "--set", "train.seed=9"]) == 0
    assert not ev.exists()  # the earlier run's scores are gone with it
    assert main(["evaluate", str(tmp_path / "r"), "--max-segments", "1", "--quiet"]) == 0
    assert json.loads((ev / "scores.json").read_text())["evaluated"]["checkpoint_sha256"] != first["checkpoint_sha256"]


# ------------------------------------------------------------------- 3. the environment, in one line
@pytest.mark.parametrize("cmd", ["merge", "export-peft", "evaluate", "train"])
def test_output_that_is_a_file(run, project, tmp_path, capsys, cmd):
    f = tmp_path / "afile"
    f.write_text("x")
    if cmd == "train":
        args = ["train", str(project[1]), "--output-dir", str(f), "--quiet"]
    elif cmd == "evaluate":
        args = ["evaluate", str(run), "--out", str(f)]
    else:
        args = [cmd, str(run), "--src", "en", "--tgt", "fr", "--out", str(f)]
    one_line_error(capsys, main(args), str(f), "is a file")
    assert f.read_text() == "x"


def test_a_read_only_filesystem_is_one_line(run, tmp_path, capsys, monkeypatch):
    from lslo.cli import outputs

    def refuse(target, write):
        raise OSError(errno.EROFS, "Read-only file system", str(target))

    monkeypatch.setattr(outputs, "replace_dir", refuse)
    one_line_error(capsys, main(["merge", str(run), "--src", "en", "--tgt", "fr", "--out", str(tmp_path / "ro")]),
                   str(tmp_path / "ro"), "read-only file system")


def test_a_full_disk_while_checkpointing_keeps_the_last_good_checkpoint_and_no_temporary_files(
        m2m_dir, flores_dir, tmp_path, capsys, monkeypatch):
    import torch

    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, tmp_path / "r", epochs=1,
                           save_every_steps=1)
    assert main(["train", str(cfg), "--quiet", "--stop-after-steps", "1"]) == 130
    last = tmp_path / "r" / "checkpoints" / "last"
    good = {p.name: p.read_bytes() for p in last.iterdir()}
    real_save = torch.save

    def full_disk(obj, f, *a, **k):
        if str(f).endswith("trainer_state.pt"):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4416 vs 4310")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", full_disk)
    err = one_line_error(capsys, main(["train", "--resume", str(tmp_path / "r"), "--quiet"]), "writing failed",
                         "no space left", "kept intact")
    assert "checkpoints/last" in err
    assert {p.name: p.read_bytes() for p in last.iterdir()} == good
    assert [p.name for p in (tmp_path / "r" / "checkpoints").iterdir()] == ["last"]  # no .last.tmp


def test_non_utf8_stdin_for_translate_is_one_line(run, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"caf\xe9 au lait\n"), encoding="utf-8"))
    one_line_error(capsys, main(["translate", str(run), "--src", "en", "--tgt", "fr"]), "stdin", "not UTF-8",
                   "byte 3")


def test_empty_evaluation_sets_are_one_line(run, tmp_path, capsys):
    empty = tmp_path / "flores101_dataset" / "devtest"
    empty.mkdir(parents=True)
    for code in ("eng", "fra", "hau"):
        (empty / f"{code}.devtest").write_text("")
    one_line_error(capsys, main(["evaluate", str(run), "--data", str(empty.parent), "--split", "devtest"]),
                   "no segments to evaluate")
    tsv = tmp_path / "head.tsv"
    tsv.write_text("en\tfr\n")
    one_line_error(capsys, main(["evaluate", str(run), "--data", str(tsv)]), str(tsv), "no segments")


# --------------------------------------------------------------------- 4. say what actually happened
def test_a_pruning_schedule_longer_than_training_is_said_and_the_report_does_not_call_it_a_finding(
        m2m_dir, flores_dir, tmp_path, capsys):
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, tmp_path / "r", epochs=1,
                           pruning={"start": 2, "duration": 10})
    assert main(["train", str(cfg), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "pruning never runs" in err and "pruning.start" in err
    assert main(["report", str(tmp_path / "r"), "--checkpoint", "last"]) == 0
    out = capsys.readouterr().out
    assert "Nothing was pruned" in out and "low / high" not in out
    cfg = write_run_config(tmp_path / "c2.yaml", m2m_dir, flores_dir, tmp_path / "r2", epochs=2,
                           pruning={"start": 1, "duration": 2})
    assert main(["train", str(cfg), "--quiet"]) == 0
    assert "pruning will not finish" in capsys.readouterr().err


def test_resuming_a_finished_run_says_so_and_changes_nothing(run, capsys):
    before = {p: p.stat().st_mtime_ns for p in (run / "checkpoints").rglob("*") if p.is_file()}
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert "already finished" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in (run / "checkpoints").rglob("*") if p.is_file()} == before


def test_source_equal_to_target_is_refused_unless_asked(run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n"))
    one_line_error(capsys, main(["translate", str(run), "--src", "en", "--tgt", "eng"]), "source is the target",
                   "--allow-same-language")
    one_line_error(capsys, main(["merge", str(run), "--src", "fr", "--tgt", "fr", "--out", str(tmp_path / "m")]),
                   "--allow-same-language")
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n"))
    assert main(["translate", str(run), "--src", "en", "--tgt", "en", "--allow-same-language"]) == 0


def test_untrained_directions_are_not_scored_by_default_and_translate_warns(m2m_dir, flores_dir, tmp_path, capsys,
                                                                             monkeypatch):
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, tmp_path / "r", max_steps=2)
    assert main(["train", str(cfg), "--quiet", "--set", "data.directions=[en-fr, fr-en]"]) == 0
    assert main(["evaluate", str(tmp_path / "r"), "--max-segments", "1"]) == 0
    assert "scoring the 2 trained directions" in capsys.readouterr().err
    scores = json.loads((tmp_path / "r" / "eval-devtest-last" / "scores.json").read_text())
    assert set(scores["directions"]) == {"en-fr", "fr-en"}
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n"))
    assert main(["translate", str(tmp_path / "r"), "--src", "en", "--tgt", "ha"]) == 0
    assert "en->ha was not trained" in capsys.readouterr().err


def test_ties_in_levels_say_which_way_they_went(project, tmp_path, capsys):
    counts = tmp_path / "counts.tsv"
    counts.write_text("{en: 100, fr: 50, ha: 50}\n")
    assert main(["levels", str(project[1]), "--counts", str(counts), "--split", "2,1,0"]) == 0
    err = capsys.readouterr().err
    assert "tie: fr and ha all have 50" in err and "fr -> high" in err and "ha -> medium" in err


def test_search_ties_are_reported():
    from lslo.search.decision import routing_decision

    raw = {"encoder": {0: {"q": {"source": 0.5, "target": 0.5}}}, "decoder": {0: {"q": {"source": 0.2, "target": 0.8}}}}
    out = routing_decision(raw, ("source", "target"), {"encoder": ["target"], "decoder": ["target"]}, False)
    assert out["encoder_routing"] == ["target"]
    assert out["ties"] == ["encoder layer 1: source 0.5000 vs target 0.5000 (equal at the printed precision); "
                           "routed target (the config's default)"]


# --------------------------------------------------------------------------- 5. one set of codes
def test_every_entry_point_accepts_flores_and_token_codes(m2m_dir, run, tmp_path, capsys):
    from lslo.training import RunConfig, load_run

    cfg = RunConfig.from_dict({"model": str(m2m_dir), "data": {"path": "x"},
                               "lslo": {"languages": [{"code": "eng_Latn"}, {"code": "__fr__"}, "hau"]}})
    assert cfg.lslo.codes == ["en", "fr", "ha"]
    assert main(["merge", str(run), "--src", "eng", "--tgt", "fra_Latn", "--out", str(tmp_path / "m")]) == 0
    assert json.loads((tmp_path / "m" / "lslo_direction.json").read_text()) == {"src": "en", "tgt": "fr"}
    assert main(["export-peft", str(run), "--src", "__en__", "--tgt", "hau", "--out", str(tmp_path / "p")]) == 0
    _, model = load_run(run, "best", device="cpu")
    a = model.translate(["The cat sleeps."], ["eng_Latn"], ["__fr__"], num_beams=1, max_new_tokens=5)
    b = model.translate(["The cat sleeps."], ["en"], ["fr"], num_beams=1, max_new_tokens=5)
    assert a == b


# ------------------------------------------------------------------------ 6. no language token leaks
def test_a_merged_model_decoded_with_plain_transformers_shows_no_language_token(run, tmp_path):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    assert main(["merge", str(run), "--src", "en", "--tgt", "fr", "--out", str(tmp_path / "m")]) == 0
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert "__fr__" in tok.all_special_tokens
    model = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "m", dtype=torch.float32).eval()
    out = model.generate(**tok(["The cat sleeps."], return_tensors="pt"), max_new_tokens=6, num_beams=1)
    assert int(out[0, 1]) == tok.convert_tokens_to_ids("__fr__")  # the language token is generated ...
    assert "__" not in tok.batch_decode(out, skip_special_tokens=True)[0]  # ... and never printed


def test_the_testbed_tokenizer_marks_language_tokens_special(tmp_path):
    from lslo.testbed.tiny import mark_language_tokens_special

    base = __import__("pathlib").Path(__file__).resolve().parents[2] / "data" / "testbed" / "base"
    if not (base / "tokenizer_config.json").is_file():
        pytest.skip("no testbed base")
    for f in ("tokenizer_config.json", "vocab.json", "sentencepiece.bpe.model"):
        shutil.copy(base / f, tmp_path / f)
    from transformers import AutoTokenizer

    ref = AutoTokenizer.from_pretrained(base)
    assert "__de__" in ref.all_special_tokens  # the committed base's tokenizer, as a real M2M-100's
    assert mark_language_tokens_special(tmp_path) is False  # already marked: unchanged
    data = json.loads((tmp_path / "tokenizer_config.json").read_text())
    data["extra_special_tokens"] = []  # as lslo saved tokenizers before
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(data))
    assert "__de__" not in AutoTokenizer.from_pretrained(tmp_path).all_special_tokens
    assert mark_language_tokens_special(tmp_path) is True
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert "__de__" in tok.all_special_tokens
    assert tok.convert_tokens_to_ids("__de__") == ref.convert_tokens_to_ids("__de__") == 16016
    assert tok("Open the file")["input_ids"] == ref("Open the file")["input_ids"]


# ------------------------------------------------------------------------ 7. the server and --version
def test_serve_on_a_busy_port_or_an_unknown_host_is_one_line(run, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        err = one_line_error(capsys, main(["serve", str(run), "--port", str(port)]), f"127.0.0.1:{port}",
                             "--port")
        assert "on http://" not in err
    one_line_error(capsys, main(["serve", str(run), "--host", "no-such-host.invalid", "--port", "8"]),
                   "--host no-such-host.invalid")


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("lslo ")


def test_search_sweep_levels_and_translate_never_write_into_the_base(project, run, tmp_path, capsys):
    root, cfg = project
    base = root / "model"
    one_line_error(capsys, main(["search", str(cfg), "--output-dir", str(base / "s")]), "inside the base model")
    one_line_error(capsys, main(["sweep", str(cfg), "--ranks", "2/2/8", "--out", str(base / "w")]),
                   "inside the base model")
    one_line_error(capsys, main(["levels", str(cfg), "--counts", "en=100,fr=50,ha=10", "--out",
                                 str(base / "config.json")]), "base model")
    one_line_error(capsys, main(["translate", str(run), "--src", "en", "--tgt", "fr", "--output",
                                 str(base / "x.txt")]), "base model")
    assert not (base / "s").exists() and not (base / "w").exists() and not (base / "x.txt").exists()
