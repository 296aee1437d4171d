"""Gradual magnitude pruning: schedule, pools, monotone masks, optimizer safety, reporting."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from lslo.pruning import (
    Pruner,
    PruningConfig,
    compact_component,
    compact_module,
    cubic_ratio,
    format_sparsity_report,
    sparsity_report,
)

LANGS = ("en", "fr", "wo")


class FakeLSLo(nn.Module):
    """The duck-typed layout of ``LSLoLinear`` that the pruner relies on."""

    def __init__(
        self,
        d_in,
        d_out,
        ranks,
        *,
        side="encoder",
        layer=0,
        position="q",
        routing="source",
        languages=LANGS,
        seed=0,
        lang_scale=None,
    ):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        L, r_max = len(ranks), max(ranks)
        self.side, self.layer, self.position, self.routing = side, layer, position, routing
        self.languages = tuple(languages)
        self.name = f"model.{side}.layers.{layer}.{position}"
        self.register_buffer("ranks", torch.tensor(ranks, dtype=torch.long))
        valid = torch.arange(r_max)[None, :] < self.ranks[:, None]
        A = torch.randn(L, r_max, d_in, generator=g)
        B = torch.randn(L, d_out, r_max, generator=g)
        if lang_scale is not None:
            s = torch.tensor(lang_scale, dtype=torch.float32)
            A, B = A * s[:, None, None], B * s[:, None, None]
        self.register_buffer("mask_A", valid[:, :, None].expand(L, r_max, d_in).clone())
        self.register_buffer("mask_B", valid[:, None, :].expand(L, d_out, r_max).clone())
        self.lora_A = nn.Parameter(A * self.mask_A)
        self.lora_B = nn.Parameter(B * self.mask_B)

    # the LSLoModule protocol over this padded (L, r_max, d) layout: the pruner works on any layout
    def A_of(self, lang):
        return self.lora_A[lang, : int(self.ranks[lang])]

    def B_of(self, lang):
        return self.lora_B[lang, :, : int(self.ranks[lang])]

    def mask_A_of(self, lang):
        return self.mask_A[lang, : int(self.ranks[lang])]

    def mask_B_of(self, lang):
        return self.mask_B[lang, :, : int(self.ranks[lang])]

    def param_masks(self):
        return (self.lora_A, "mask_A"), (self.lora_B, "mask_B")

    def valid(self):
        r_max = self.lora_A.shape[1]
        v = torch.arange(r_max)[None, :] < self.ranks[:, None]
        return v[:, :, None].expand_as(self.lora_A), v[:, None, :].expand_as(self.lora_B)


def make_modules(ranks=(2, 2, 4), layers=2, positions=("q", "fc1"), lang_scale=None, d=6):
    mods, seed = [], 0
    for side in ("encoder", "decoder"):
        for layer in range(layers):
            for pos in positions:
                d_out = 2 * d if pos == "fc1" else d
                mods.append(
                    FakeLSLo(
                        d,
                        d_out,
                        list(ranks),
                        side=side,
                        layer=layer,
                        position=pos,
                        seed=seed,
                        lang_scale=lang_scale,
                    )
                )
                seed += 1
    return mods


def cfg(**kw):
    base = dict(enabled=True, start=2, duration=10, final_ratio=0.9, unit="epoch", frequency=1)
    base.update(kw)
    return PruningConfig(**base)


def loss_fn(mods, x):
    """Moves every valid entry: a product term plus a pull of every entry toward 1."""
    total = 0.0
    for m in mods:
        for lang in range(len(m.languages)):
            y = x[:, : m.lora_A.shape[2]] @ m.lora_A[lang].T @ m.lora_B[lang].T
            total = total + (y - 1.0).pow(2).mean()
        total = total + (m.lora_A - 1.0).pow(2).sum() + (m.lora_B - 1.0).pow(2).sum()
    return total


# ---------------------------------------------------------------- schedule


def test_cubic_schedule_numbers():
    r = lambda t: cubic_ratio(t, start=2, duration=10, final=0.9)  # noqa: E731
    assert r(0) == 0.0 and r(1.99) == 0.0
    assert r(2) == 0.0
    assert r(3) == pytest.approx(0.2439, abs=1e-4)
    assert r(10) == pytest.approx(0.8928, abs=1e-4)
    assert r(12) == pytest.approx(0.9)
    assert r(15) == pytest.approx(0.9)
    vals = [r(t) for t in range(0, 16)]
    assert vals == sorted(vals)
    assert cubic_ratio(5, start=2, duration=0, final=0.5) == 0.5


def test_default_config_is_paper_setting_but_disabled():
    c = PruningConfig()
    assert (c.enabled, c.start, c.duration, c.final_ratio, c.unit, c.frequency) == (
        False,
        2,
        10,
        0.9,
        "epoch",
        1,
    )
    assert (c.granularity, c.matrices, c.structured) == ("layer", "B", False)
    assert PruningConfig.from_dict(c.to_dict()) == c
    assert Pruner(make_modules(), c).step(10) == 0.0


def test_step_prunes_only_at_schedule_points():
    mods = make_modules()
    p = Pruner(mods, cfg(unit="step", start=10, duration=100, frequency=25))
    assert p.schedule_point(9) is None
    assert p.schedule_point(10) == 10 and p.schedule_point(34) == 10 and p.schedule_point(35) == 35
    assert p.schedule_point(109) == 85
    assert p.schedule_point(500) == 110
    assert p.step(5) == 0.0
    r = p.step(40)
    assert r == pytest.approx(p.ratio_at(35))
    before = [m.mask_B.clone() for m in mods]
    assert p.step(50) == pytest.approx(p.ratio_at(35))  # not due: masks untouched
    assert all(torch.equal(a, m.mask_B) for a, m in zip(before, mods))
    assert p.step(1000) == pytest.approx(0.9)
    assert p.time_from_steps(123) == 123.0
    pe = Pruner(mods, cfg())
    assert pe.time_from_steps(300, steps_per_epoch=100) == 3.0


# ---------------------------------------------------------------- pools and counts


def _pool_counts(mods, key, matrix="B"):
    """(#pruned valid, #valid) per pool key function of (module, lang)."""
    out = {}
    for m in mods:
        vA, vB = m.valid()
        for lang, code in enumerate(m.languages):
            mask, valid = (m.mask_B, vB) if matrix == "B" else (m.mask_A, vA)
            v = valid[lang]
            k = key(m, code)
            c = out.setdefault(k, [0, 0])
            c[0] += int((~mask[lang] & v).sum())
            c[1] += int(v.sum())
    return out


@pytest.mark.parametrize(
    "granularity,key",
    [
        ("layer", lambda m, code: (m.side, m.layer)),
        ("language", lambda m, code: code),
        ("global", lambda m, code: "all"),
    ],
)
@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.77])
def test_exact_count_per_pool(granularity, key, ratio):
    mods = make_modules()
    p = Pruner(mods, cfg(granularity=granularity))
    p.prune_to(ratio)
    counts = _pool_counts(mods, key)
    assert len(counts) == {"layer": 4, "language": 3, "global": 1}[granularity]
    for pruned, n in counts.values():
        assert pruned == round(ratio * n)
    for pruned, _ in _pool_counts(mods, key, "A").values():  # matrices="B": A untouched
        assert pruned == 0
    for m in mods:  # pruned entries are exactly zero, and they are the smallest |w| of the pool
        assert torch.all(m.lora_B[~m.mask_B] == 0)


def test_matrices_ab_prunes_a_and_b_each_to_the_ratio():
    mods = make_modules()
    Pruner(mods, cfg(matrices="AB")).prune_to(0.6)
    for mat in ("A", "B"):
        for pruned, n in _pool_counts(mods, lambda m, c: (m.side, m.layer), mat).values():
            assert pruned == round(0.6 * n)


def test_smallest_magnitudes_pruned_with_deterministic_ties():
    m = FakeLSLo(3, 4, [2, 2], languages=("en", "fr"))
    with torch.no_grad():
        m.lora_B.fill_(1.0)  # all ties
        m.lora_B[0, 0, 0] = 0.1
        m.lora_B[1, 3, 1] = -0.05
    Pruner([m], cfg()).prune_to(0.25)  # 16 valid -> 4 pruned
    flat = (~m.mask_B).reshape(-1).nonzero().flatten().tolist()
    # the two smallest, then ties in pool order: language 0 row-major first
    assert not m.mask_B[1, 3, 1] and not m.mask_B[0, 0, 0]
    assert flat == [0, 1, 2, 15]


def test_masks_are_monotone_when_ratio_drops_and_weights_change():
    mods = make_modules()
    p = Pruner(mods, cfg())
    p.prune_to(0.6)
    first = [m.mask_B.clone() for m in mods]
    with torch.no_grad():
        for m in mods:  # pruned entries become the largest: still must not come back
            m.lora_B.add_(torch.where(m.mask_B, 0.0, 100.0))
    p.prune_to(0.3)
    assert all(torch.equal(a, m.mask_B) for a, m in zip(first, mods))
    p.prune_to(0.8)
    for a, m in zip(first, mods):
        assert not torch.any(m.mask_B & ~a)  # subset of the old kept set
    for pruned, n in _pool_counts(mods, lambda m, c: (m.side, m.layer)).values():
        assert pruned == round(0.8 * n)
    assert all(torch.all(m.lora_B[~m.mask_B] == 0) for m in mods)


def test_padding_is_never_counted_nor_pruned():
    mods = make_modules(ranks=(1, 3, 4))
    p = Pruner(mods, cfg(matrices="AB", granularity="language"))
    p.prune_to(0.5)
    for m in mods:
        vA, vB = m.valid()
        assert not torch.any(m.mask_A & ~vA) and not torch.any(m.mask_B & ~vB)
        assert torch.all(m.lora_A[~vA] == 0) and torch.all(m.lora_B[~vB] == 0)
    rep = sparsity_report(mods, base_param_count=10_000)
    for code, r in zip(LANGS, (1, 3, 4)):
        valid = sum(r * (m.lora_A.shape[2] + m.lora_B.shape[1]) for m in mods)
        assert rep["languages"][code]["total"] == valid
        assert rep["languages"][code]["rank"] == r
        # exactly half of each language's valid A and B entries survive (round per pool)
        nA = sum(r * m.lora_A.shape[2] for m in mods)
        nB = sum(r * m.lora_B.shape[1] for m in mods)
        assert rep["languages"][code]["surviving"] == (nA - round(0.5 * nA)) + (nB - round(0.5 * nB))


# ---------------------------------------------------------------- cross-language vs language-wise


def _kept_per_language(mods):
    out = {}
    for m in mods:
        for lang, code in enumerate(m.languages):
            out[code] = out.get(code, 0) + int(m.mask_B[lang].sum())
    return out


def test_layerwise_cross_language_lets_large_language_keep_more():
    scale = [10.0, 1.0, 1.0]  # "en" weights are 10x larger
    mods = make_modules(ranks=(3, 3, 3), lang_scale=scale)
    Pruner(mods, cfg(granularity="layer")).prune_to(0.6)
    kept = _kept_per_language(mods)
    assert kept["en"] > kept["fr"] and kept["en"] > kept["wo"]
    total_valid_per_lang = sum(m.lora_B[0].numel() for m in mods)
    assert kept["en"] > 0.9 * total_valid_per_lang  # it dominates the shared pools

    mods = make_modules(ranks=(3, 3, 3), lang_scale=scale)
    Pruner(mods, cfg(granularity="language")).prune_to(0.6)
    kept = _kept_per_language(mods)
    assert kept["en"] == kept["fr"] == kept["wo"] == total_valid_per_lang - round(0.6 * total_valid_per_lang)


# ---------------------------------------------------------------- optimizer safety and resume


@pytest.mark.parametrize("opt_cls", [torch.optim.Adam, torch.optim.AdamW])
def test_pruned_entries_stay_zero_through_adam(opt_cls):
    torch.manual_seed(0)
    x = torch.randn(5, 12)

    def run(attach):
        mods = make_modules()
        params = [p for m in mods for p in m.parameters()]
        opt = opt_cls(params, lr=1e-2, weight_decay=0.01)
        pruner = Pruner(mods, cfg(matrices="AB"))
        if attach:
            pruner.attach(opt)
        for _ in range(3):  # build up non-zero Adam state on every entry first
            opt.zero_grad()
            loss_fn(mods, x).backward()
            opt.step()
        pruner.prune_to(0.5)
        for _ in range(20):
            opt.zero_grad()
            loss_fn(mods, x).backward()
            opt.step()
        return mods, opt

    mods, opt = run(attach=True)
    for m in mods:
        for p, mask in ((m.lora_A, m.mask_A), (m.lora_B, m.mask_B)):
            assert torch.all(p[~mask] == 0)
            assert torch.all(p[mask] != 0)  # kept entries did move
            for name in ("exp_avg", "exp_avg_sq"):
                assert torch.all(opt.state[p][name][~mask] == 0)
    # without attach, Adam momentum resurrects pruned weights: the test above is meaningful
    mods, _ = run(attach=False)
    assert any(torch.any(m.lora_B[~m.mask_B] != 0) for m in mods)


def test_resume_continues_identically():
    torch.manual_seed(0)
    x = torch.randn(5, 12)
    config = cfg(unit="step", start=2, duration=12, frequency=3, final_ratio=0.7, matrices="AB")

    def setup():
        mods = make_modules()
        model = nn.ModuleList(mods)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        pruner = Pruner(model, config)
        pruner.attach(opt)
        return model, opt, pruner

    def train(model, opt, pruner, steps):
        for s in steps:
            opt.zero_grad()
            loss_fn(list(model), x).backward()
            opt.step()
            pruner.step(s + 1)

    ref, ref_opt, ref_pruner = setup()
    train(ref, ref_opt, ref_pruner, range(20))

    a, a_opt, a_pruner = setup()
    train(a, a_opt, a_pruner, range(8))
    ckpt = copy.deepcopy(
        {"model": a.state_dict(), "opt": a_opt.state_dict(), "pruner": a_pruner.state_dict()}
    )
    b, b_opt, b_pruner = setup()
    b.load_state_dict(ckpt["model"])
    b_opt.load_state_dict(ckpt["opt"])
    b_pruner.load_state_dict(ckpt["pruner"])
    assert b_pruner.last_time == a_pruner.last_time
    train(b, b_opt, b_pruner, range(8, 20))

    for m_ref, m_b in zip(ref, b):
        assert torch.equal(m_ref.mask_A, m_b.mask_A) and torch.equal(m_ref.mask_B, m_b.mask_B)
        assert torch.equal(m_ref.lora_A, m_b.lora_A) and torch.equal(m_ref.lora_B, m_b.lora_B)
    assert b_pruner.current_ratio == pytest.approx(0.7)


def test_pruner_state_restores_masks_without_model_buffers():
    mods = make_modules()
    p = Pruner(mods, cfg())
    p.prune_to(0.5)
    state = p.state_dict()
    fresh = make_modules()
    q = Pruner(fresh, cfg())
    q.load_state_dict(state)
    for m, f in zip(mods, fresh):
        assert torch.equal(m.mask_B, f.mask_B)
        assert torch.all(f.lora_B[~f.mask_B] == 0)


def test_pruner_finds_modules_in_a_model():
    mods = make_modules()
    model = nn.Sequential(nn.Linear(2, 2), nn.ModuleList(mods))
    assert Pruner(model, cfg()).modules == mods


# ---------------------------------------------------------------- structured pruning and compaction


def test_structured_lowers_effective_rank_and_compacts_exactly():
    mods = make_modules(ranks=(4, 4, 8))
    before = sparsity_report(mods, 1000)
    p = Pruner(mods, cfg(structured=True, granularity="language"))
    p.prune_to(0.0, component_ratio=0.5)
    after = sparsity_report(mods, 1000)
    for lang, code in enumerate(LANGS):
        assert (
            after["languages"][code]["effective_rank_mean"] < before["languages"][code]["effective_rank_mean"]
        )
        # language pools: exactly round(0.5 * n) of each language's components are dead
        n = sum(int(m.ranks[lang]) for m in mods)
        assert after["languages"][code]["effective_rank_mean"] * len(mods) == pytest.approx(
            n - round(0.5 * n)
        )
    for m in mods:  # a pruned component clears its A row and its B column together
        alive = m.mask_A.any(dim=2)  # (L, r_max)
        assert torch.equal(alive, m.mask_B.any(dim=1))
        assert torch.equal(m.mask_A, alive[:, :, None].expand_as(m.mask_A))
        for lang, (a2, b2, kept) in enumerate(compact_module(m).values()):
            r = int(m.ranks[lang])
            assert a2.shape[0] == b2.shape[1] == len(kept) == int(alive[lang].sum())
            full = m.lora_B[lang, :, :r] @ m.lora_A[lang, :r]
            assert torch.allclose(b2 @ a2, full, atol=1e-6, rtol=1e-6)


def test_structured_schedule_via_step():
    mods = make_modules(ranks=(4, 4, 4))
    p = Pruner(mods, cfg(structured=True))
    assert p.step(15) == pytest.approx(0.9)
    for pruned, _ in _pool_counts(mods, lambda m, c: (m.side, m.layer)).values():
        assert pruned > 0
    comps = {}
    for m in mods:
        key = (m.side, m.layer)
        c = comps.setdefault(key, [0, 0])
        c[0] += int((~m.mask_B.any(dim=1)).sum())
        c[1] += m.mask_B.shape[0] * m.mask_B.shape[2]
    for dead, n in comps.values():
        assert dead == round(0.9 * n)


def test_structured_and_unstructured_together():
    mods = make_modules(ranks=(4, 4, 4))
    p = Pruner(mods, cfg(structured=0.5, final_ratio=0.8))
    p.step(100)
    for pruned, n in _pool_counts(mods, lambda m, c: (m.side, m.layer)).values():
        assert pruned == round(0.8 * n)
    for m in mods:
        assert int((~m.mask_A.any(dim=2)).sum()) >= 1


def test_compact_component_exact_on_integer_weights():
    g = torch.Generator().manual_seed(3)
    A = torch.randint(-5, 6, (6, 7), generator=g).double()
    B = torch.randint(-5, 6, (9, 6), generator=g).double()
    mA = torch.rand(6, 7, generator=g) > 0.3
    mB = torch.rand(9, 6, generator=g) > 0.3
    mA[1] = False  # component 1 dead through A
    mB[:, 4] = False  # component 4 dead through B
    a2, b2, kept = compact_component(A, B, mA, mB)
    assert kept.tolist() == [j for j in range(6) if j not in (1, 4)]
    assert a2.shape == (4, 7) and b2.shape == (9, 4)
    assert torch.equal(b2 @ a2, (B * mB) @ (A * mA))
    a3, b3, k3 = compact_component(A, B)
    assert k3.tolist() == list(range(6)) and torch.equal(b3 @ a3, B @ A)


# ---------------------------------------------------------------- reporting


def test_sparsity_report_contents():
    mods = make_modules(ranks=(2, 2, 4))
    Pruner(mods, cfg()).prune_to(0.5)
    rep = sparsity_report(mods, base_param_count=50_000)
    assert set(rep["languages"]) == set(LANGS)
    en = rep["languages"]["en"]
    assert 0 < en["surviving"] < en["total"]
    assert en["percent_of_base"] == pytest.approx(100 * en["surviving"] / 50_000)
    # B alone: pruning touches only B here, so every pruned entry is B's and A is whole
    assert en["total_B"] < en["total"] and en["total"] - en["surviving"] == en["total_B"] - en["surviving_B"]
    kept_b = sum(v["surviving_B"] for v in rep["languages"].values())
    assert kept_b / sum(v["total_B"] for v in rep["languages"].values()) == pytest.approx(0.5, abs=0.02)
    assert en["density_B"] == pytest.approx(en["surviving_B"] / en["total_B"])
    assert en["rank"] == 2 and rep["languages"]["wo"]["rank"] == 4
    assert 0 <= en["effective_rank_mean"] <= 2
    assert set(en["density_by_position"]) == {
        f"{s}.{i}.{p}" for s in ("encoder", "decoder") for i in (0, 1) for p in ("q", "fc1")
    }
    assert rep["total"]["surviving"] == sum(v["surviving"] for v in rep["languages"].values())
    assert math.isclose(rep["total"]["density"], rep["total"]["surviving"] / rep["total"]["total"])
    assert "total" in format_sparsity_report(rep)


# ---------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("final_ratio", 1.5, "pruning.final_ratio: expected a number in [0, 1), got 1.5"),
        ("final_ratio", True, "pruning.final_ratio: expected a number in [0, 1), got True"),
        ("start", -1, "pruning.start: expected a number >= 0, got -1"),
        ("duration", "10", "pruning.duration: expected a number >= 0, got '10'"),
        ("unit", "epochs", "pruning.unit: expected one of 'epoch', 'step', got 'epochs'"),
        ("frequency", 0, "pruning.frequency: expected a number > 0, got 0"),
        (
            "granularity",
            "module",
            "pruning.granularity: expected one of 'layer', 'language', 'global', got 'module'",
        ),
        ("matrices", "A", "pruning.matrices: expected one of 'B', 'AB', got 'A'"),
        (
            "structured",
            1.0,
            "pruning.structured: expected true, false or a component ratio in (0, 1), got 1.0",
        ),
        ("enabled", "yes", "pruning.enabled: expected true or false, got 'yes'"),
    ],
)
def test_config_validation_messages(field, value, message):
    with pytest.raises(ValueError) as e:
        PruningConfig(**{field: value}).validate()
    assert str(e.value) == message
    assert "\n" not in str(e.value)


def test_config_from_dict_rejects_unknown_and_round_trips():
    with pytest.raises(ValueError, match=r"^pruning\.ratio: unknown field"):
        PruningConfig.from_dict({"ratio": 0.5})
    with pytest.raises(ValueError, match="pruning.frequency: expected a whole number"):
        PruningConfig.from_dict({"unit": "step", "frequency": 2.5})
    c = PruningConfig.from_dict(
        {"enabled": True, "unit": "step", "start": 100, "duration": 1000, "frequency": 50, "structured": 0.25}
    )
    assert c.component_final_ratio == 0.25 and c.entry_final_ratio == 0.9
    assert PruningConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="pruning.final_ratio"):
        Pruner(make_modules(), PruningConfig(final_ratio=-0.1))


def test_k_smallest_matches_stable_sort():
    from lslo.pruning.pruner import _k_smallest

    g = torch.Generator().manual_seed(7)
    for k in (0, 1, 17, 250, 499, 500):
        scores = torch.randint(0, 20, (500,), generator=g).float()  # many ties
        scores[:30] = -1.0  # already pruned
        expected = torch.zeros(500, dtype=torch.bool)
        expected[torch.sort(scores, stable=True).indices[:k]] = True
        assert torch.equal(_k_smallest(scores, k), expected)
