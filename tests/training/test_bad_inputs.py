"""Bad input: a clear one-line error naming the file, field or value; never a traceback, never
silent acceptance, never lost data."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import yaml
from conftest import segments, write_run_config

from lslo.cli.main import main
from lslo.data.corpus import CorpusError, load_corpus
from lslo.training import RunConfig


def one_line_error(capsys, code, *needles):
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err, err


@pytest.fixture()
def cfg(m2m_dir, flores_dir, tmp_path):
    return write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, tmp_path / "run", max_steps=1)


@pytest.mark.parametrize("override,needle", [
    ("train.dropout=2", "train.dropout"),
    ("train.temperature=0", "train.temperature"),
    ("train.max_steps=-5", "train.max_steps"),
    ("train.warmup_steps=-1", "train.warmup_steps"),
    ("lslo.languages=[{code: en}]", "at least two languages"),
    ("eval.batch_size=0", "eval.batch_size"),
    ("train.=3", "dotted key"),
])
def test_bad_fields_are_one_line_errors(cfg, capsys, override, needle):
    one_line_error(capsys, main(["train", str(cfg), "--set", override, "--quiet"]), needle)


@pytest.mark.parametrize("text", ["- a\n- b\n", "42\n"])
def test_set_on_a_list_or_scalar_config(tmp_path, capsys, text):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    one_line_error(capsys, main(["train", str(bad), "--set", "train.lr=0.1"]), "bad.yaml", "mapping")


def test_exponent_floats_are_numbers(cfg):
    data = yaml.safe_load(cfg.read_text())
    data["train"]["lr"] = "LR"
    cfg.write_text(yaml.safe_dump(data).replace("LR", "1e-3"))  # as a user types it, unquoted
    assert "lr: 1e-3" in cfg.read_text()
    assert RunConfig.load(cfg).train.lr == pytest.approx(1e-3)
    assert RunConfig.load(cfg, ["train.lr=2e-4"]).train.lr == pytest.approx(2e-4)


def test_split_ratios_give_the_sizes_asked_for(m2m_dir, tmp_path):
    from lslo.training import load_splits

    tsv = tmp_path / "all.tsv"
    tsv.write_text("en\tfr\n" + "".join(f"e{i} x\tf{i} y\n" for i in range(400)))
    base = {"model": str(m2m_dir), "lslo": {"languages": ["en", "fr"]}, "data": {"path": str(tsv)}}
    for ratios, valid_ratio in (({"train": 0.8, "test": 0.2}, 0.05), ({"train": 0.7, "valid": 0.1, "test": 0.2}, 0.05),
                                ({"train": 0.9, "test": 0.1}, 0.0)):
        data = json.loads(json.dumps(base))
        data["data"].update(split_ratios=ratios, valid_ratio=valid_ratio)
        parts = load_splits(RunConfig.from_dict(data))
        n = {k: len(v) if v is not None else 0 for k, v in parts.items()}
        assert sum(n.values()) == 400
        want_valid = 400 * ratios.get("valid", ratios["train"] * valid_ratio)
        assert abs(n["valid"] - want_valid) <= 0.35 * want_valid + 3, (ratios, n)
        assert abs(n["test"] - 400 * ratios["test"]) <= 0.25 * 400 * ratios["test"], (ratios, n)


def test_corrupt_checkpoint_files_name_the_file(cfg, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--quiet"]) == 0
    last = run / "checkpoints" / "last"
    saved = {p.name: p.read_bytes() for p in last.iterdir()}
    (last / "adapters.safetensors").write_bytes(b"")
    one_line_error(capsys, main(["evaluate", str(run), "--checkpoint", "last", "--quiet"]), "adapters.safetensors")
    data = bytearray(saved["adapters.safetensors"])
    data[-7] ^= 0x40  # one flipped bit inside a tensor: only the checksum can tell
    (last / "adapters.safetensors").write_bytes(bytes(data))
    one_line_error(capsys, main(["evaluate", str(run), "--checkpoint", "last", "--quiet"]), "sha256 does not match")
    (last / "adapters.safetensors").write_bytes(saved["adapters.safetensors"])
    (last / "adapter_config.json").write_text("{not json")
    one_line_error(capsys, main(["evaluate", str(run), "--checkpoint", "last", "--quiet"]), "adapter_config.json",
                   "malformed JSON")
    (last / "adapter_config.json").write_bytes(saved["adapter_config.json"])
    (last / "trainer_state.pt").write_bytes(saved["trainer_state.pt"][:100])
    one_line_error(capsys, main(["train", "--resume", str(run), "--set", "train.max_steps=3", "--quiet"]),
                   "trainer_state.pt", "corrupt or truncated")


def test_kill_during_the_first_checkpoint_can_be_started_again(cfg, tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints" / ".last.tmp").mkdir(parents=True)  # what a kill mid-write leaves
    shutil.copy(cfg, run / "config.yaml")
    one_line_error(capsys, main(["train", "--resume", str(run), "--quiet"]), "no complete checkpoint")
    assert main(["train", str(cfg), "--quiet"]) == 0  # not "already holds a run"
    assert (run / "checkpoints" / "last" / "trainer_state.pt").is_file()


def test_resume_leaves_no_duplicate_metric_rows(m2m_dir, flores_dir, tmp_path):
    run = tmp_path / "run"
    cfg = write_run_config(tmp_path / "c.yaml", m2m_dir, flores_dir, run, epochs=1, save_every_steps=2)
    assert main(["train", str(cfg), "--quiet", "--stop-after-steps", "2"]) == 130  # Ctrl-C-like stop: 130
    with (run / "metrics.csv").open("a", newline="") as f:  # a row logged after the checkpoint, then a kill
        csv.writer(f).writerow(["train", 3, 0, "1.0", "", "", 10, "1.0"])
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    with (run / "metrics.csv").open() as f:
        steps = [(r["kind"], r["step"]) for r in csv.DictReader(f)]
    assert len(steps) == len(set(steps)), steps


def test_corpus_bytes_that_lose_data(tmp_path):
    dup = tmp_path / "d.jsonl"
    dup.write_text('{"en": "a b", "fr": "c d", "en": "e f"}\n')
    with pytest.raises(CorpusError, match=r"d.jsonl:1: key 'en' appears twice"):
        load_corpus(dup)
    nul = tmp_path / "n.tsv"
    nul.write_bytes(b"en\tfr\nab\tcd\nx\x00y\tz\n")
    with pytest.raises(CorpusError, match=r"n.tsv:3: NUL byte"):
        load_corpus(nul)
    bom = tmp_path / "b.tsv"
    bom.write_bytes("\ufeffen\tfr\nab\tcd\n\ufeffef\tgh\n".encode())
    with pytest.raises(CorpusError, match=r"b.tsv:3: byte-order mark"):
        load_corpus(bom)
    ok = tmp_path / "ok.tsv"
    ok.write_bytes("\ufeffen\tfr\nab\tcd\n".encode())  # a BOM opening the file is fine
    assert load_corpus(ok).texts["en"] == ["ab"]


def test_broken_pipe_is_quiet(cfg, tmp_path):
    import subprocess
    import sys

    run = tmp_path / "run"
    assert main(["train", str(cfg), "--quiet"]) == 0
    p = subprocess.run(f"{sys.executable} -m lslo info {run} | head -1", shell=True, capture_output=True, text=True)
    assert p.stdout.startswith("run:") and "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr


def test_translate_reads_segments(cfg, tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--quiet"]) == 0
    src = tmp_path / "in.txt"
    src.write_text("\n".join(segments("en", 2)) + "\n")
    assert main(["translate", str(run), "--src", "en", "--tgt", "fr", "--input", str(src),
                 "--output", str(tmp_path / "o.txt"), "--max-new-tokens", "4"]) == 0
    assert len((tmp_path / "o.txt").read_text().splitlines()) == 2


def test_review_fixes_resume_and_restart(cfg, tmp_path, capsys, monkeypatch):
    """fp16 may be switched on at resume; a fresh start clears an earlier attempt's files;
    evaluate refuses an occupied output folder before translating anything."""
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--quiet"]) == 0
    assert main(["train", "--resume", str(run), "--set", "train.precision=fp16", "--set", "train.max_steps=2",
                 "--quiet"]) == 0  # the fp32 run saved an empty scaler state
    (run / "checkpoints" / "best").mkdir(exist_ok=True)
    (run / "checkpoints" / "best" / "stale").write_text("x")
    assert main(["train", str(cfg), "--overwrite", "--quiet"]) == 0
    assert not (run / "checkpoints" / "best" / "stale").exists()
    with (run / "metrics.csv").open() as f:
        steps = [r["step"] for r in csv.DictReader(f) if r["kind"] == "train"]
    assert steps == ["1"]  # the first attempt's rows are gone
    assert main(["evaluate", str(run), "--quiet"]) == 0
    import lslo.cli.evaluate as E

    monkeypatch.setattr("lslo.evaluation.evaluate_model", lambda *a, **k: pytest.fail("translated before refusing"))
    assert E is not None
    one_line_error(capsys, main(["evaluate", str(run), "--quiet"]), "already holds scores")


def test_an_old_run_resumes_with_its_own_objective(tmp_path, monkeypatch):
    from pathlib import Path

    from lslo.training import Trainer

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "run_v0_1"
    shutil.copytree(fixture, tmp_path / "fx")
    monkeypatch.chdir(tmp_path / "fx")
    seen = {}
    real = Trainer.__init__

    def spy(self, cfg, *a, **k):
        seen["predict"] = cfg.train.predict_language_token
        real(self, cfg, *a, **k)

    monkeypatch.setattr(Trainer, "__init__", spy)
    assert main(["train", "--resume", "run", "--set", "train.epochs=3", "--quiet"]) == 0
    assert seen["predict"] is True  # trained before the option existed: the language token stays a label


def test_padded_optimizer_state_of_an_old_checkpoint_is_packed_like_the_parameters(m2m_dir):
    """lslo 0.1 kept Adam's moments in (L, r_max, d) stacks; resuming packs them row for row."""
    import torch
    from conftest import load_lslo

    from lslo.training.trainer import _packed_optimizer_state

    model = load_lslo(m2m_dir, seed=3)
    params = list(model.adapter_parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    for p in params:
        p.grad = torch.randn_like(p)
    opt.step()
    packed = {k: {n: t.clone() for n, t in v.items()} for k, v in opt.state_dict()["state"].items()}
    old = opt.state_dict()
    for i, p in enumerate(params):  # write the state as lslo 0.1 did: padded per language
        m = next(m for m in model.lslo_modules().values() if any(p is q for q, _ in m.param_masks()))
        L, r_max = len(m.languages), int(m.ranks.max())
        for name in ("exp_avg", "exp_avg_sq"):
            t = old["state"][i][name]
            pad = torch.zeros(L, r_max, t.shape[1]) if p is m.lora_A else torch.zeros(L, t.shape[1], r_max)
            for lang, r in enumerate(m.ranks.tolist()):
                rows = t[m.rows(lang)]
                if p is m.lora_A:
                    pad[lang, :r] = rows
                else:
                    pad[lang, :, :r] = rows.T
            old["state"][i][name] = pad
    fixed = _packed_optimizer_state(old, opt, model)
    for i in packed:
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(fixed["state"][i][name], packed[i][name])
    opt.load_state_dict(fixed)
    opt.step()  # loads and steps with the packed shapes
