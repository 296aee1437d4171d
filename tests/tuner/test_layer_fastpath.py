"""The routed fast path (custom autograd function) against the loop-over-languages reference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lslo.tuner.layer import LSLoLinear, Router, pack_padded, packed_layout, routed_lora

RANKS = [2, 8, 4, 1, 8]  # unequal ranks: lower ones leave slots of r_max = 8 unused
SCALES = [1.0, 0.5, 2.0, 0.25, 1.5]  # per-language scales


def make_layer(d_in=12, d_out=10, ranks=RANKS, scales=SCALES, dropout=0.0, seed=0, routing="target"):
    g = torch.Generator().manual_seed(seed)
    base = nn.Linear(d_in, d_out)
    with torch.no_grad():
        base.weight.copy_(torch.randn(d_out, d_in, generator=g))
        base.bias.copy_(torch.randn(d_out, generator=g))
    router = Router()
    codes = tuple(f"l{i}" for i in range(len(ranks)))
    m = LSLoLinear(base, list(ranks), list(scales), codes, router, routing=routing, side="decoder",
                   layer=0, position="fc1", name="test.fc1", dropout=dropout)
    with torch.no_grad():  # random A and B
        m.lora_A.copy_(torch.randn(m.lora_A.shape, generator=g))
        m.lora_BT.copy_(torch.randn(m.lora_BT.shape, generator=g))
    return m, router


def run_both(m, router, src, tgt, x, grad_out_seed=1):
    """Output and grads of (x, lora_A, lora_BT) for the fast path and for forward_reference."""
    results = []
    for fwd in (m.forward, m.forward_reference):
        xx = x.detach().clone().requires_grad_(True)
        m.zero_grad(set_to_none=True)
        router.set(src, tgt)
        torch.manual_seed(1234)  # same dropout mask for both
        out = fwd(xx)
        router.clear()
        g = torch.randn(out.shape, generator=torch.Generator().manual_seed(grad_out_seed)).to(out.dtype)
        out.backward(g)
        results.append((out.detach(), xx.grad, m.lora_A.grad.clone(), m.lora_BT.grad.clone()))
    return results


def assert_all_close(fast, ref, atol=1e-5, rtol=1e-5):
    for name, a, b in zip(("out", "x.grad", "lora_A.grad", "lora_BT.grad"), fast, ref):
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol, msg=lambda s, n=name: f"{n}: {s}")


@pytest.mark.parametrize("shape", [(7, 12), (7, 5, 12), (1, 3, 12)])
@pytest.mark.parametrize("routing", ["source", "target"])
def test_fast_equals_reference_mixed_batch(shape, routing):
    m, router = make_layer(routing=routing, seed=len(shape))
    g = torch.Generator().manual_seed(3)
    n = shape[0]
    src = torch.randint(0, len(RANKS), (n,), generator=g)
    tgt = torch.randint(0, len(RANKS), (n,), generator=g)
    x = torch.randn(shape, generator=g)
    fast, ref = run_both(m, router, src, tgt, x)
    assert fast[0].shape == x.shape[:-1] + (10,)
    assert_all_close(fast, ref)


def test_fast_equals_reference_all_languages_and_repeats():
    m, router = make_layer(seed=4)
    ids = torch.tensor([0, 1, 2, 3, 4, 4, 1, 0, 2, 2, 3])
    x = torch.randn(len(ids), 6, 12, generator=torch.Generator().manual_seed(5))
    assert_all_close(*run_both(m, router, ids, ids.flip(0), x))


@pytest.mark.parametrize("k", [2, 5])
def test_fast_equals_reference_beam_expanded_rows(k):
    """Rows i*k..i*k+k-1 belong to sentence i (generate's repeat_interleave), 2-D and 3-D."""
    m, router = make_layer(seed=6)
    src, tgt = torch.tensor([4, 0, 2]), torch.tensor([1, 3, 1])
    for shape in ((3 * k, 12), (3 * k, 1, 12), (3 * k, 4, 12)):
        x = torch.randn(shape, generator=torch.Generator().manual_seed(k))
        fast, ref = run_both(m, router, src, tgt, x)
        assert_all_close(fast, ref)
    # and each row really used its sentence's language
    router.set(src, tgt)
    x = torch.randn(3 * k, 12)
    with torch.no_grad():
        out = m(x)
    router.clear()
    for row in range(3 * k):
        lang = int(tgt[row // k])
        expected = m.base(x[row]) + m.delta_weight(lang) @ x[row]
        torch.testing.assert_close(out[row], expected, atol=1e-5, rtol=1e-5)


def test_fast_equals_reference_with_dropout_in_training():
    m, router = make_layer(dropout=0.3, seed=7)
    m.train()
    ids = torch.tensor([0, 4, 1, 1, 3])
    x = torch.randn(5, 4, 12, generator=torch.Generator().manual_seed(8))
    fast, ref = run_both(m, router, ids, ids, x)
    assert_all_close(fast, ref)
    m.eval()
    assert_all_close(*run_both(m, router, ids, ids, x))


def test_no_grad_path_equals_autograd_path():
    m, router = make_layer(seed=9)
    ids = torch.tensor([3, 0, 4, 2])
    x = torch.randn(4, 3, 12)
    router.set(ids, ids)
    with torch.no_grad():
        a = m(x)
    b = m(x)  # params require grad: autograd function
    router.clear()
    assert b.requires_grad and not a.requires_grad
    torch.testing.assert_close(a, b.detach(), atol=1e-6, rtol=1e-6)


def test_unrouted_languages_get_exactly_zero_grad_even_where_unused_slots_point():
    m, router = make_layer(seed=10)
    ids = torch.tensor([1, 1, 3, 1])  # languages 1 (rank 8) and 3 (rank 1: 7 unused slots -> row 0) only
    x = torch.randn(4, 5, 12)
    router.set(ids, ids)
    (m(x) ** 2).sum().backward()
    router.clear()
    assert m.rows(0).start == 0  # language 0 owns row 0
    for grad in (m.lora_A.grad, m.lora_BT.grad):
        assert grad.dtype == torch.float32 and grad.shape[0] == sum(RANKS)
        for lang in (0, 2, 4):
            assert grad[m.rows(lang)].abs().sum() == 0
        for lang in (1, 3):
            assert grad[m.rows(lang)].abs().sum() > 0


def test_x_without_grad_and_parameter_hooks():
    """First layers see inputs that need no grad; hooks on the Parameters still act."""
    m, router = make_layer(seed=11)
    keep_a = torch.rand(m.lora_A.shape) > 0.5
    keep_b = torch.rand(m.lora_BT.shape) > 0.5
    seen = []
    ha = m.lora_A.register_hook(lambda g: (seen.append("A"), g * keep_a)[1])
    hb = m.lora_BT.register_hook(lambda g: (seen.append("B"), g * keep_b)[1])
    ids = torch.tensor([0, 1, 2, 3, 4])
    x = torch.randn(5, 3, 12)  # no requires_grad
    fast, ref = [], []
    for fwd, store in ((m.forward, fast), (m.forward_reference, ref)):
        m.zero_grad(set_to_none=True)
        router.set(ids, ids)
        fwd(x).sum().backward()
        router.clear()
        store.extend([m.lora_A.grad.clone(), m.lora_BT.grad.clone()])
    ha.remove()
    hb.remove()
    assert seen.count("A") == 2 and seen.count("B") == 2
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert fast[0][~keep_a].abs().sum() == 0 and fast[1][~keep_b].abs().sum() == 0


def test_bf16_autocast_close_to_reference_and_fp32_grads():
    m, router = make_layer(d_in=32, d_out=24, seed=12)
    ids_s, ids_t = torch.tensor([0, 4, 2, 2, 1, 3]), torch.tensor([1, 1, 0, 4, 3, 2])
    x = torch.randn(6, 5, 32, generator=torch.Generator().manual_seed(13))
    results = []
    for fwd in (m.forward, m.forward_reference):
        xx = x.clone().requires_grad_(True)
        m.zero_grad(set_to_none=True)
        router.set(ids_s, ids_t)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = fwd(xx)
        router.clear()
        out.float().square().sum().backward()
        results.append((out.float().detach(), xx.grad, m.lora_A.grad, m.lora_BT.grad, out.dtype))
    fast, ref = results
    assert fast[4] == torch.bfloat16  # computed in the autocast dtype
    assert m.lora_A.dtype == torch.float32
    assert fast[1].dtype == torch.float32 and fast[2].dtype == torch.float32 and fast[3].dtype == torch.float32
    for a, b in zip(fast[:4], ref[:4]):
        scale = b.abs().max().clamp_min(1.0)
        assert (a - b).abs().max() <= 3e-2 * scale
    # and close to exact fp32 as well
    exact, _ = run_both(m, router, ids_s, ids_t, x)
    assert (fast[0] - exact[0]).abs().max() <= 3e-2 * exact[0].abs().max()


def test_gradcheck_double():
    g = torch.Generator().manual_seed(14)
    d_in, d_out = 5, 4
    ranks = [1, 3, 2]
    _, index, valid, _ = packed_layout(ranks)
    A = torch.randn(sum(ranks), d_in, generator=g, dtype=torch.float64, requires_grad=True)
    BT = torch.randn(sum(ranks), d_out, generator=g, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    idx = torch.tensor([2, 0, 2, 1])
    comp, mult = index[idx], (scale[:, None] * valid)[idx]
    x = torch.randn(4, 3, d_in, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, a, b: routed_lora(x, a, b, comp, mult), (x, A, BT))
    # and through the module (double parameters, beam-expanded rows)
    m, router = make_layer(d_in=5, d_out=4, ranks=[1, 3, 2], scales=[1.0, 0.5, 2.0], seed=15)
    m.double()
    router.set(torch.tensor([2, 0]), torch.tensor([1, 2]))
    xm = torch.randn(4, 2, 5, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, a, b: _with_params(m, a, b, x), (xm, m.lora_A, m.lora_BT))
    router.clear()


def _with_params(m, a, b, x):
    ids = m.router.groups(m.routing, 4, x.device)[0]
    return m.base(x) + routed_lora(x.reshape(2, -1, 5), a, b, m.comp_index[ids], m._mult_table()[ids]).view(4, 2, -1)


def _saved_bytes(fn, *modules):
    """Bytes of unique storages that autograd saves for backward, parameters and buffers excluded."""
    skip = {t.untyped_storage().data_ptr() for mod in modules for t in (*mod.parameters(), *mod.buffers())}
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in skip:
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(storages.values())


def test_saved_tensors_match_a_shared_lora():
    """Backward keeps x and the (N, T, r) intermediate, not gathered copies of A and B."""
    d_in, d_out, n, t = 64, 256, 16, 3
    m, router = make_layer(d_in=d_in, d_out=d_out, ranks=[8] * 5, scales=[1.0] * 5, seed=16)
    x = torch.randn(n, t, d_in, requires_grad=True)
    ids = torch.arange(n) % 5
    router.set(ids, ids)
    out, lslo = _saved_bytes(lambda: m(x), m)
    router.clear()
    a, b = nn.Parameter(torch.randn(8, d_in)), nn.Parameter(torch.zeros(d_out, 8))
    out2, shared = _saved_bytes(lambda: m.base(x) + (x @ a.T) @ b.T, m, nn.ParameterList([a, b]))
    assert shared >= x.numel() * 4  # x itself
    assert lslo <= shared + ids.numel() * 8 * 8  # only the (N, r) component index comes on top
    gathered = n * 8 * (d_in + d_out) * 4
    assert lslo < gathered


def test_model_training_step_fast_equals_reference(m2m_dir):
    """A whole M2M-100 forward/backward: fast path and reference give the same loss and grads."""
    from conftest import SENTENCES, load_lslo

    from lslo.tuner.languages import encode_batch

    model = load_lslo(m2m_dir, seed=17).train()
    dirs = [("en", "fr"), ("fr", "de"), ("de", "zh"), ("zh", "ha"), ("ha", "yo"), ("yo", "en"), ("en", "yo")]
    src = [SENTENCES[s][i % 5] for i, (s, _) in enumerate(dirs)]
    tgt = [SENTENCES[t][i % 5] for i, (_, t) in enumerate(dirs)]
    batch = encode_batch(model.tokenizer, model.tokens, src, [s for s, _ in dirs], [t for _, t in dirs], tgt)
    keys = ("input_ids", "attention_mask", "decoder_input_ids", "labels")
    grads = []
    for use_reference in (False, True):
        for m in model.lslo_modules().values():
            if use_reference:
                m.forward = m.forward_reference
            m.zero_grad(set_to_none=True)
        loss = model(batch["src_lang"], batch["tgt_lang"], **{k: batch[k] for k in keys}).loss
        loss.backward()
        grads.append([loss.detach()] + [p.grad.clone() for p in model.adapter_parameters()])
    for m in model.lslo_modules().values():
        del m.forward
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_unit_scales_skip_the_multiply_and_scale_changes_are_seen():
    """Equal ranks and all scales 1 (the paper's high/medium layers) skip the per-row multiply;
    editing the scale buffer is noticed; unequal ranks always multiply (unused slots by 0)."""
    assert make_layer(scales=[1.0] * len(RANKS), seed=18)[0]._mult_or_none() is not None  # unequal ranks
    m, router = make_layer(ranks=[4] * len(RANKS), scales=[1.0] * len(RANKS), seed=18)
    ids = torch.tensor([1, 4, 0, 2])
    x = torch.randn(4, 3, 12)
    assert_all_close(*run_both(m, router, ids, ids, x))
    assert m._mult_or_none() is None
    with torch.no_grad():
        m.scale[4] = 3.0  # in place: the version counter changes
    mult = m._mult_or_none()
    assert mult is not None and float(mult[4, 0]) == 3.0 and float(mult[0, 0]) == 1.0
    assert_all_close(*run_both(m, router, ids, ids, x))
    router.set(ids, ids)
    with torch.no_grad():
        fast, ref = m(x), m.forward_reference(x)
    router.clear()
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    m.load_state_dict({**m.state_dict(), "scale": torch.ones(len(RANKS))})
    assert m._mult_or_none() is None


def test_base_output_not_contiguous_and_no_grad_in_place():
    """No autograd: the update is added into the base output in place, same values as the reference."""
    m, router = make_layer(seed=19)
    src, tgt = torch.tensor([0, 3]), torch.tensor([2, 4])
    x = torch.randn(4, 12, 6).transpose(1, 2)  # (4, 6, 12), not contiguous; 2 sentences x 2 beams
    router.set(src, tgt)
    with torch.no_grad():
        fast, ref = m(x), m.forward_reference(x)
    router.clear()
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)


def test_packed_equals_the_padded_layout_it_replaced():
    """The padded stacks of lslo 0.1 ((L, r_max, d_in) / (L, d_out, r_max)) computed the same update:
    pack_padded converts them (for old checkpoints), and the packed layer's output equals the
    padded computation done by hand."""
    m, router = make_layer(seed=21)
    L, r_max = len(RANKS), max(RANKS)
    A_pad = torch.zeros(L, r_max, 12)
    B_pad = torch.zeros(L, 10, r_max)
    for lang, r in enumerate(RANKS):
        A_pad[lang, :r] = m.A_of(lang).detach()
        B_pad[lang, :, :r] = m.B_of(lang).detach()
    assert torch.equal(pack_padded(A_pad, RANKS, "A"), m.lora_A.detach())
    assert torch.equal(pack_padded(B_pad, RANKS, "B"), m.lora_BT.detach())
    ids = torch.tensor([0, 1, 2, 3, 4, 1])
    x = torch.randn(6, 4, 12)
    router.set(ids, ids)
    with torch.no_grad():
        out = m(x)
    router.clear()
    scale = torch.tensor(SCALES)
    padded = torch.stack([m.base(x[i]) + scale[k] * (x[i] @ A_pad[k].T) @ B_pad[k].T for i, k in enumerate(ids)])
    torch.testing.assert_close(out, padded, atol=1e-5, rtol=1e-5)


def test_zero_rank_languages_and_all_zero_ranks():
    m, router = make_layer(ranks=[0, 3, 0], scales=[1.0, 1.0, 1.0], seed=22)
    assert m.lora_A.shape == (3, 12) and m.A_of(0).shape == (0, 12) and m.B_of(2).shape == (10, 0)
    assert_all_close(*run_both(m, router, torch.tensor([0, 1, 2]), torch.tensor([2, 1, 0]), torch.randn(3, 2, 12)))
    z, router = make_layer(ranks=[0, 0], scales=[1.0, 1.0], seed=23)
    router.set(torch.tensor([0, 1]), torch.tensor([1, 0]))
    x = torch.randn(2, 3, 12)
    torch.testing.assert_close(z(x), z.base(x))


def test_no_grad_rows_are_gathered_once_per_routing_and_follow_edits():
    """Without autograd the gathered per-sentence rows are kept by the router while its routing
    stands (a decoding's steps reuse them); an in-place edit of A, B or the scales, a new routing,
    or a full budget make them be gathered again, with the reference's values every time."""
    m, router = make_layer(seed=21)
    ids = torch.tensor([1, 4, 0, 2])
    x = torch.randn(8, 1, 12)  # 4 sentences x 2 beams, one position: a decoding step
    def check():
        with torch.no_grad():
            fast, ref = m(x), m.forward_reference(x)
        torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)

    router.set(ids, ids)
    check()
    check()
    assert len(router._memo) == 1
    kept = next(iter(router._memo.values()))[1][0]
    check()
    assert next(iter(router._memo.values()))[1][0] is kept  # the same gathered tensor serves each step
    with torch.no_grad():
        m.lora_A.mul_(2.0)  # an optimizer step between evaluations
        m.scale[1] = 0.5
    check()
    assert next(iter(router._memo.values()))[1][0] is not kept
    router.set(ids.flip(0), ids.flip(0))  # a sentence left / a new batch: a new routing
    assert not router._memo
    check()
    router.clear()
    router.memo_limit = 0  # nothing fits: the rows are gathered every call, and nothing is kept
    router.set(ids, ids)
    check()
    assert not router._memo and router._memo_bytes == 0
    router.clear()


def test_grad_path_keeps_nothing_in_the_memo():
    m, router = make_layer(seed=22)
    ids = torch.tensor([1, 4])
    router.set(ids, ids)
    m(torch.randn(2, 3, 12)).sum().backward()
    assert not router._memo
    router.clear()


@pytest.mark.parametrize("shape", [(4, 7, 12), (8, 1, 12)])  # 4 sentences; or 4 sentences x 2 beams
def test_adapter_delta_plus_base_is_forward_bit_for_bit(shape):
    m, router = make_layer(seed=23)
    ids = torch.tensor([1, 4, 0, 2])
    x = torch.randn(shape)
    router.set(ids, ids.flip(0))
    with torch.no_grad():
        whole, delta = m(x), m.adapter_delta(x)
        assert delta.shape == whole.shape and torch.equal(m.base(x) + delta, whole)
        assert float(delta.abs().max()) > 0
    router.clear()
    zero, router = make_layer(ranks=[0] * len(RANKS), seed=23)
    router.set(ids, ids)
    assert zero.adapter_delta(x) is None
    router.clear()
