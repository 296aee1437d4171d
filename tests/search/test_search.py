"""Architecture learning for routing (the paper's weight learning): the mixing layer, the decision, and `lslo search` end to end."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
import yaml
from conftest import lslo_config, randomize_adapters, segments, write_run_config
from torch import nn

from lslo.cli.search import add_parser as add_search_parser
from lslo.search import (
    DualLSLoLinear,
    SearchConfig,
    SearchModel,
    decide,
    load_search_config,
    routing_decision,
)
from lslo.tuner.config import ConfigError
from lslo.tuner.layer import Router
from lslo.tuner.model import SHARED


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny ops: one intra-op thread is several times faster than two on a shared, loaded CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _dual(choices=("source", "target"), d_in=5, d_out=4, ranks=(2, 2, 3), temperature=1.0, seed=0):
    torch.manual_seed(seed)
    base = nn.Linear(d_in, d_out)
    router = Router()
    logits = nn.Parameter(torch.zeros(len(choices)))
    m = DualLSLoLinear(base, list(ranks), [1.0] * len(ranks), ("a", "b", "c"), router, logits, side="encoder",
                       layer=0, position="fc1", name="enc.0.fc1", choices=choices, shared_rank=2,
                       temperature=temperature)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for a in m.adapters.values():
            a.lora_A.copy_(torch.randn(a.lora_A.shape, generator=g))
            a.lora_BT.copy_(torch.randn(a.lora_BT.shape, generator=g))
    return m, router


@pytest.mark.parametrize("shared", [False, True])
def test_dual_output_is_base_plus_weighted_deltas(shared):
    choices = ("source", "target", SHARED) if shared else ("source", "target")
    m, router = _dual(choices, temperature=2.0)
    with torch.no_grad():
        m.logits.copy_(torch.tensor([0.7, -0.4, 0.2][: len(choices)]))
    src, tgt = torch.tensor([0, 2, 1]), torch.tensor([1, 0, 2])
    x = torch.randn(3, 6, 5)
    router.set(src, tgt)
    out = m(x)
    w = torch.softmax(m.logits.detach() / 2.0, dim=0)
    ad = m.adapters
    for n in range(3):
        expect = m.base(x[n]) + w[0] * x[n] @ ad["source"].delta_weight(int(src[n])).T
        expect = expect + w[1] * x[n] @ ad["target"].delta_weight(int(tgt[n])).T
        if shared:
            expect = expect + w[2] * x[n] @ ad[SHARED].delta_weight(0).T
        torch.testing.assert_close(out[n], expect, atol=1e-5, rtol=1e-5)
    # beam-expanded rows (sentence i owns rows i*k .. i*k+k-1) use their sentence's languages
    k = 2
    out_k = m(x.repeat_interleave(k, 0))
    torch.testing.assert_close(out_k, out.repeat_interleave(k, 0), atol=1e-5, rtol=1e-5)
    # the logits are trained; the frozen base is not
    out.sum().backward()
    assert m.logits.grad is not None and m.logits.grad.abs().sum() > 0
    assert m.base.weight.grad is None and not m.base.weight.requires_grad


def _synthetic_task(depends_on: str, seed: int = 0, steps: int = 150) -> list[float]:
    """Sentences from 4 languages, random (independent) source and target language; the regression target
    is a rank-2 linear map of x chosen by ONE of the two languages. Only the Dual layer is trained."""
    g = torch.Generator().manual_seed(seed)
    n_lang, d, r, n, t = 4, 8, 2, 96, 3
    maps = torch.randn(n_lang, d, r, generator=g) @ torch.randn(n_lang, r, d, generator=g) / d**0.5
    x = torch.randn(n, t, d, generator=g)
    src = torch.randint(0, n_lang, (n,), generator=g)
    tgt = torch.randint(0, n_lang, (n,), generator=g)
    lang = tgt if depends_on == "target" else src
    y = torch.einsum("ntd,nod->nto", x, maps[lang])
    torch.manual_seed(seed)
    base = nn.Linear(d, d, bias=False)
    nn.init.zeros_(base.weight)
    router = Router()
    logits = nn.Parameter(torch.zeros(2))
    m = DualLSLoLinear(base, [r] * n_lang, [1.0] * n_lang, tuple("abcd"), router, logits, side="encoder", layer=0,
                       position="fc1", name="l0")
    adapters = [p for p in m.parameters() if p.requires_grad and p is not logits]
    opt = torch.optim.Adam([{"params": adapters}, {"params": [logits], "lr": 0.05}], lr=0.02)
    router.set(src, tgt)
    first = None
    for _ in range(steps):
        opt.zero_grad()
        loss = ((m(x) - y) ** 2).mean()
        first = float(loss.detach()) if first is None else first
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.05 * first  # the task was learned
    return m.mixing_weights().tolist()


def test_weight_learning_picks_the_language_the_task_depends_on():
    w_src, w_tgt = _synthetic_task("target")
    assert w_tgt > 0.9 > 0.1 > w_src
    w_src, w_tgt = _synthetic_task("source")
    assert w_src > 0.9 > 0.1 > w_tgt


def test_routing_decision_shared_ties_and_per_position():
    raw = {
        "encoder": {
            0: {"q": {"source": 0.6, "target": 0.3, SHARED: 0.1}, "fc1": {"source": 0.5, "target": 0.1, SHARED: 0.4}},
            1: {"q": {"source": 0.2, "target": 0.3, SHARED: 0.5}, "fc1": {"source": 0.1, "target": 0.2, SHARED: 0.7}},
        },
        "decoder": {
            0: {"q": {"source": 0.1, "target": 0.8, SHARED: 0.1}, "fc1": {"source": 0.45, "target": 0.1, SHARED: 0.45}},
        },
    }
    res = routing_decision(raw, ("source", "target", SHARED), {"encoder": ["source", "target"], "decoder": ["target"]},
                           per_position=True)
    assert res["encoder_routing"] == ["source", "target"]  # layer 1: shared won, target is the closer side
    assert [e["winner"] for e in res["encoder"]] == ["source", SHARED]
    assert res["shared_won"] == {"encoder": [1], "decoder": []}
    assert res["encoder"][1]["shared_won"] is True
    assert res["decoder"][0]["winner"] == "target"  # summed weights decide: 0.9 vs 0.55
    assert res["decoder"][0]["majority"] == "target"  # fc1 ties source/shared -> neither beats the q vote
    assert res["per_position_routing"]["encoder"] == {"q": ["source", SHARED], "fc1": ["source", SHARED]}
    assert res["decoder"][0]["positions"]["fc1"]["route"] == "source"
    torch.testing.assert_close(torch.tensor(sum(res["encoder"][0]["weights"].values())), torch.tensor(1.0))
    # exact ties (e.g. untrained logits) keep the config's default routing
    assert decide({"source": 0.5, "target": 0.5}, "target") == "target"
    assert decide({"source": 0.5, "target": 0.5}, "source") == "source"


def test_search_model_routes_saves_and_translates_like_lslo(m2m_dir, tmp_path):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from lslo.pruning import find_lslo_modules

    tok = AutoTokenizer.from_pretrained(str(m2m_dir))
    cfg = lslo_config()
    model = SearchModel(AutoModelForSeq2SeqLM.from_pretrained(str(m2m_dir)), cfg, tok,
                        search=SearchConfig(include_shared=True)).eval()
    duals = model.dual_modules()
    assert len(duals) == 2 * 5 + 2 * 8  # 2+2 layers, paper positions
    assert len(model.lslo_modules()) == 3 * len(duals) == len(find_lslo_modules(model))
    assert len(model.mixing_parameters()) == 4  # one per (side, layer)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert all(id(p) in trainable for p in model.mixing_parameters())
    rep = model.parameter_report()
    assert SHARED in rep["per_language"] and rep["mixing_parameters"] == 4 * 3

    # at init (B = 0) the model is the base model
    base = AutoModelForSeq2SeqLM.from_pretrained(str(m2m_dir)).eval()
    ids = tok(segments("en", 2), return_tensors="pt", padding=True)
    dec = torch.tensor([[2, 5, 6], [2, 7, 8]])
    with torch.no_grad():
        ref = base(**ids, decoder_input_ids=dec).logits
        got = model(["en", "fr"], ["ha", "en"], **ids, decoder_input_ids=dec).logits
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)

    # a batch that mixes directions translates like one direction at a time (beam search)
    randomize_adapters(model, seed=2)
    with torch.no_grad():
        for i, p in enumerate(model.mixing_parameters()):
            p.copy_(torch.tensor([0.3 * i, -0.2, 0.1]))
    texts, srcs, tgts = segments("en", 2) + segments("ha", 1), ["en", "en", "ha"], ["fr", "ha", "en"]
    mixed = model.translate(texts, srcs, tgts, num_beams=2, max_new_tokens=5)
    single = [model.translate([t], [s], [g], num_beams=2, max_new_tokens=5)[0] for t, s, g in zip(texts, srcs, tgts)]
    assert mixed == single

    # save / load keeps adapters and mixing logits
    model.save_adapters(tmp_path / "ckpt")
    other = SearchModel(AutoModelForSeq2SeqLM.from_pretrained(str(m2m_dir)), cfg, tok,
                        search=SearchConfig(include_shared=True))
    other.load_adapters(tmp_path / "ckpt")
    for k, v in model.mixing_logits().items():
        torch.testing.assert_close(other.mixing_logits()[k], v)
    for name, m in model.lslo_modules().items():
        torch.testing.assert_close(other.lslo_modules()[name].lora_BT, m.lora_BT)


def _search_config(tmp_path, m2m_dir, flores_dir, search):
    path = write_run_config(tmp_path / "s.yaml", m2m_dir, flores_dir, tmp_path / "final", epochs=2)
    data = yaml.safe_load(path.read_text())
    data["search"] = search
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _run_cli(argv):
    p = argparse.ArgumentParser(prog="lslo")
    add_search_parser(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    return args.func(args)


def test_search_cli_end_to_end_then_train(m2m_dir, flores_dir, tmp_path, capsys):
    from lslo.cli.main import main
    from lslo.training import load_run
    from lslo.training.config import RunConfig

    cfg = _search_config(tmp_path, m2m_dir, flores_dir, {"include_shared": True, "logit_lr": 0.1,
                                                         "train": {"max_steps": 3, "warmup_steps": 1}})
    assert _run_cli(["search", str(cfg), "--per-position", "--quiet"]) == 0
    out = capsys.readouterr().out
    run = tmp_path / "final-search"
    assert "next: lslo train" in out and str(run / "search_result.yaml") in out
    for f in ("routing.yaml", "search_result.yaml", "routing_weights.json", "config.yaml", "metrics.csv",
              "checkpoints/last/mixing.safetensors"):
        assert (run / f).exists(), f
    assert (run / "routing_weights.png").stat().st_size > 1000
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["max_steps"] == 3  # the search budget

    res = json.loads((run / "routing_weights.json").read_text())
    assert res["steps"] == 3 and res["choices"] == ["source", "target", SHARED]
    assert len(res["encoder"]) == 2 and len(res["decoder"]) == 2
    assert set(res["per_position_routing"]["decoder"]) == {"q", "k", "v", "cross_q", "cross_k", "cross_v", "fc1", "fc2"}
    for e in res["encoder"] + res["decoder"]:
        assert set(e["positions"]) and abs(sum(e["weights"].values()) - 1) < 1e-5
        assert e["route"] in ("source", "target") and e["winner"] in res["choices"]
    logits = torch.tensor(list(res["logits"].values()))
    assert logits.shape == (2 * 5 + 2 * 8, 3) and logits.abs().max() > 1e-3  # the logits were trained

    routing = yaml.safe_load((run / "routing.yaml").read_text())["lslo"]
    assert routing == {"encoder_routing": res["encoder_routing"], "decoder_routing": res["decoder_routing"]}
    final = RunConfig.load(run / "search_result.yaml")
    assert final.lslo.encoder_routing == res["encoder_routing"]
    assert final.output_dir == str(tmp_path / "final") and final.train.max_steps is None  # input's own budget
    assert "search" not in yaml.safe_load((run / "search_result.yaml").read_text())

    assert main(["train", str(run / "search_result.yaml"), "--set", "train.max_steps=1", "--quiet"]) == 0
    _, model = load_run(tmp_path / "final")
    assert model.encoder_routing == res["encoder_routing"] and model.decoder_routing == res["decoder_routing"]

    # a second search into the same directory needs --overwrite
    assert cfg.exists()
    with pytest.raises(Exception, match="already holds a run"):
        _run_cli(["search", str(cfg), "--quiet"])


def test_search_config_errors(m2m_dir, flores_dir, tmp_path):
    cfg = _search_config(tmp_path, m2m_dir, flores_dir, {"per_positon": True})
    with pytest.raises(ConfigError, match=r"search\.per_positon: unknown field"):
        load_search_config(cfg)
    with pytest.raises(ConfigError, match=r"search\.train\.max_stepz: unknown field"):
        load_search_config(cfg, ["search={train: {max_stepz: 3}}"])
    with pytest.raises(ConfigError, match=r"search\.temperature: expected a positive number"):
        load_search_config(cfg, ["search={temperature: 0}"])
    with pytest.raises(ConfigError, match="expected 'lslo'"):
        load_search_config(cfg, ["search=null", "method=lora"])
    run_cfg, search, data = load_search_config(cfg, ["search={train: {max_steps: 3}, include_shared: true}"])
    assert run_cfg.train.max_steps == 3 and search.choices == ("source", "target", SHARED)
    assert "search" not in data and "max_steps" not in data["train"]


def test_shipped_search_config_and_result_files(tmp_path):
    from pathlib import Path

    from lslo.search.run import write_results
    from lslo.training.config import RunConfig

    files = sorted((Path(__file__).resolve().parents[2] / "configs").glob("search-*.yaml"))
    assert files
    for path in files:
        cfg, search, data = load_search_config(path)
        assert cfg.train.max_steps and data.get("train", {}).get("max_steps") is None  # search budget only
        # a 12+12-layer result written into this config: lists replace the dict routing of the paper config
        raw = {side: {i: {"q": {"source": 0.2 + 0.05 * i, "target": 0.8 - 0.05 * i}} for i in range(12)}
               for side in ("encoder", "decoder")}
        res = routing_decision(raw, ("source", "target"), {"encoder": ["source"] * 12, "decoder": ["target"] * 12},
                               per_position=False)
        out = tmp_path / path.stem
        write_results(res, data, search, out)
        final = RunConfig.load(out / "search_result.yaml")
        assert final.lslo.encoder_routing == ["target"] * 6 + ["source"] * 6
        assert final.output_dir == data["output_dir"] and final.pruning.enabled == cfg.pruning.enabled


def test_cli_wiring(capsys):
    from lslo.cli.main import build_parser, main

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert "search" in sub.choices
    assert main(["search", "/nonexistent.yaml"]) == 2
    assert "no such config file" in capsys.readouterr().err


def test_search_can_start_from_a_trained_lslo_run(m2m_dir, flores_dir, tmp_path):
    """init_from in a search config: each layer of the source run fills the side it was routed by."""
    from conftest import write_run_config

    from lslo.cli.main import main
    from lslo.training import load_run

    src_run = tmp_path / "src"
    cfg = write_run_config(tmp_path / "src.yaml", m2m_dir, flores_dir, src_run, max_steps=2)
    assert main(["train", str(cfg), "--quiet"]) == 0
    _, trained = load_run(src_run)
    search_cfg = _search_config(tmp_path, m2m_dir, flores_dir, {"train": {"max_steps": 1}})
    data = yaml.safe_load(search_cfg.read_text())
    data["init_from"] = str(src_run)
    data["lslo"]["languages"] = yaml.safe_load(cfg.read_text())["lslo"]["languages"]
    search_cfg.write_text(yaml.safe_dump(data))
    from lslo.search import SearchTrainer, load_search_config

    run_cfg, search, _ = load_search_config(search_cfg, [])
    tr = SearchTrainer(run_cfg, tmp_path / "s", search, device="cpu", quiet=True)
    tr.setup()  # loads init_from; raised TypeError before
    plain = trained.lslo_modules()
    filled = 0
    for dual in tr.model.dual_modules().values():
        route = trained.encoder_routing if dual.side == "encoder" else trained.decoder_routing
        side = route[dual.layer]
        src_m = plain[dual.name]
        assert torch.equal(dual.adapters[side].lora_BT, src_m.lora_BT)
        other = "target" if side == "source" else "source"
        assert not dual.adapters[other].lora_BT.any()  # the other side keeps its zero init
        filled += int(src_m.lora_BT.any())
    assert filled > 0
