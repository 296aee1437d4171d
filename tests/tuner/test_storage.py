"""Sparse adapter storage: bit-exact pack/unpack and file sizes at the paper's pruning levels."""

from __future__ import annotations

import pytest
import torch
from conftest import load_lslo
from safetensors import safe_open
from safetensors.torch import save_file

from lslo.pruning import Pruner, PruningConfig
from lslo.tuner import storage
from lslo.tuner.storage import StorageError, load_state, pack, save_state, unpack

# M2M-100 418M geometry (d = 1024, ffn = 4096): one encoder layer (q, k, v, fc1, fc2) and one decoder
# layer (q, k, v, cross q, k, v, fc1, fc2); sum(d_in) = sum(d_out) over the positions.
D, FFN = 1024, 4096
ENC = {"q": (D, D), "k": (D, D), "v": (D, D), "fc1": (D, FFN), "fc2": (FFN, D)}
DEC = {**ENC, "cross_q": (D, D), "cross_k": (D, D), "cross_v": (D, D)}
RANKS = {"en": 2, "fr": 2, "ha": 8}


def make_state(seed: int = 0, ranks=RANKS, small: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for side, positions in (("encoder", ENC), ("decoder", DEC)):
        for pos, (d_in, d_out) in positions.items():
            if small:
                d_in, d_out = d_in // 64, d_out // 64
            for code, r in ranks.items():
                p = f"model.{side}.layers.0.{pos}.{code}"
                state[f"{p}.lora_A"] = torch.randn(r, d_in, generator=g)
                state[f"{p}.lora_B"] = torch.randn(d_out, r, generator=g)
    return state


def prune(state, ratio: float, matrices: str = "B") -> dict[str, torch.Tensor]:
    """Magnitude-prune each listed matrix to exactly `ratio`, zero the pruned entries, add uint8 masks."""
    out = dict(state)
    for key in [k for k in state if k.endswith(".lora_A")]:
        p = key[: -len(".lora_A")]
        for mat in ("A", "B"):
            w = state[f"{p}.lora_{mat}"]
            keep = torch.ones_like(w, dtype=torch.bool)
            if mat in matrices:
                k = int(round(ratio * w.numel()))
                order = w.abs().reshape(-1).argsort(stable=True)
                keep.view(-1)[order[:k]] = False
            out[f"{p}.lora_{mat}"] = w.masked_fill(~keep, 0)
            out[f"{p}.mask_{mat}"] = keep.to(torch.uint8)
    return out


def assert_bit_identical(got: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> None:
    assert sorted(got) == sorted(ref)
    for k, t in ref.items():
        g = got[k]
        assert g.dtype == t.dtype and g.shape == t.shape, k
        assert torch.equal(g.contiguous().view(torch.uint8), t.contiguous().view(torch.uint8)), k


def file_size(state, path) -> int:
    save_file(state, str(path))
    return path.stat().st_size


def test_dense_state_packs_to_itself():
    state = make_state(small=True)
    packed = pack(state)
    assert sorted(packed) == sorted(state)  # nothing to gain: the plain (version-1) layout
    assert all(packed[k] is state[k] or torch.equal(packed[k], state[k]) for k in state)
    assert_bit_identical(unpack(packed), state)


@pytest.mark.parametrize("matrices", ["B", "AB"])
@pytest.mark.parametrize("ratio", [0.3, 0.9])
def test_unstructured_roundtrip_is_bit_exact(matrices, ratio):
    state = prune(make_state(seed=1, small=True), ratio, matrices)
    packed = pack(state)
    assert_bit_identical(unpack(packed), state)
    assert any(k.endswith(".packed") for k in packed)
    assert not any(k.endswith(".mask_A") or k.endswith(".mask_B") for k in packed)  # masks = non-zero pattern


def test_odd_values_and_masks_roundtrip():
    """-0.0, NaN, kept entries that are exactly zero, pruned entries that are not, fp16/bf16, bool masks."""
    p = "m.x"
    a = torch.randn(3, 10)
    b = torch.zeros(7, 3)
    b[0, 0], b[1, 1], b[2, 2], b[3, 0] = -0.0, float("nan"), 1.5, float("inf")
    ma = (torch.rand(3, 10) > 0.5).to(torch.uint8)
    mb = torch.zeros(7, 3, dtype=torch.uint8)
    mb[:4, 0] = 1  # kept entries that are zero: the mask is not the non-zero pattern
    a = a * ma  # masked entries of A are zero ...
    a[0, 0] = 2.0  # ... except one
    cases = [
        {f"{p}.lora_A": a, f"{p}.lora_B": b, f"{p}.mask_A": ma, f"{p}.mask_B": mb},
        {f"{p}.lora_A": a.half(), f"{p}.lora_B": b.bfloat16(), f"{p}.mask_A": ma.bool(), f"{p}.mask_B": mb * 3},
        {f"{p}.lora_A": torch.zeros(0, 10), f"{p}.lora_B": torch.zeros(7, 0)},  # rank 0
        {f"{p}.lora_A": torch.zeros(2, 10), f"{p}.lora_B": torch.zeros(7, 2), "other": torch.arange(5)},
    ]
    for state in cases:
        assert_bit_identical(unpack(pack(state)), state)
    packed = pack(cases[0])
    assert f"{p}.mask_B.bits" in packed


def test_structured_pruning_drops_dead_components_exactly(m2m_dir):
    model = load_lslo(m2m_dir, seed=2)
    cfg = PruningConfig(enabled=True, structured=0.5, final_ratio=0.5, matrices="AB")
    Pruner(model, cfg).prune_to(0.5, 0.5)
    state = model.adapter_state()
    packed = pack(state)
    kept = {k: v for k, v in packed.items() if k.endswith(".kept")}
    assert kept, "structured pruning left no dead component to drop"
    for k, idx in kept.items():
        p = k[: -len(".kept")]
        r = state[f"{p}.lora_A"].shape[0]
        assert idx.dtype == torch.int32 and idx.numel() < r
        assert int(packed[f"{p}.packed"][0]) == r
    assert_bit_identical(unpack(packed), state)


def test_structured_only_components_store_reduced_dense_matrices():
    state = make_state(seed=3, small=True)
    p = "model.decoder.layers.0.fc1.ha"
    a, b = state[f"{p}.lora_A"], state[f"{p}.lora_B"]
    dead = torch.tensor([1, 4, 5])
    ma, mb = torch.ones_like(a, dtype=torch.uint8), torch.ones_like(b, dtype=torch.uint8)
    ma[dead], mb[:, dead] = 0, 0
    a[dead], b[:, dead] = 0, 0
    state[f"{p}.mask_A"], state[f"{p}.mask_B"] = ma, mb
    packed = pack(state)
    assert packed[f"{p}.kept"].tolist() == [0, 2, 3, 6, 7]
    assert packed[f"{p}.lora_A"].shape == (5, a.shape[1]) and packed[f"{p}.lora_B"].shape == (b.shape[0], 5)
    assert f"{p}.mask_A" not in packed and f"{p}.mask_A.bits" not in packed
    assert_bit_identical(unpack(packed), state)


def _ratio(state, tmp_path, name):
    dense_weights = {k: v for k, v in state.items() if ".lora_" in k}
    packed_size = file_size(pack(state), tmp_path / f"{name}.packed.safetensors")
    return (
        packed_size / file_size(dense_weights, tmp_path / f"{name}.dense.safetensors"),
        packed_size / file_size(state, tmp_path / f"{name}.v1.safetensors"),
    )


def test_file_size_at_90_percent_sparsity(tmp_path, capsys):
    base = make_state(seed=4)
    ab, ab_v1 = _ratio(prune(base, 0.9, "AB"), tmp_path, "ab")
    b_only, b_only_v1 = _ratio(prune(base, 0.9, "B"), tmp_path, "b")
    with capsys.disabled():
        print(f"\n[storage] 90% A+B: {ab:.1%} of dense weights ({ab_v1:.1%} of the v1 file with masks); "
              f"90% B only: {b_only:.1%} ({b_only_v1:.1%})")
    assert ab <= 0.25
    assert 0.5 < b_only < 0.6  # A stays dense when only B is pruned (the paper's setting)
    # structured: half the components gone, nothing else pruned -> about half the dense file
    st = dict(base)
    for key in [k for k in base if k.endswith(".lora_A")]:
        p = key[: -len(".lora_A")]
        r = base[key].shape[0]
        ma, mb = torch.ones_like(base[key], dtype=torch.uint8), torch.ones_like(base[f"{p}.lora_B"], dtype=torch.uint8)
        ma[r // 2 :], mb[:, r // 2 :] = 0, 0
        st[key], st[f"{p}.lora_B"] = base[key].masked_fill(ma == 0, 0), base[f"{p}.lora_B"].masked_fill(mb == 0, 0)
        st[f"{p}.mask_A"], st[f"{p}.mask_B"] = ma, mb
    structured, _ = _ratio(st, tmp_path, "st")
    with capsys.disabled():
        print(f"[storage] half the components pruned (structured): {structured:.1%} of dense weights")
    assert 0.45 < structured < 0.55


def test_save_and_load_state_files(tmp_path):
    state = prune(make_state(seed=5, small=True), 0.9, "AB")
    path = save_state(state, tmp_path / "adapters.safetensors", {"note": "x"})
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "lslo" and meta["version"] == storage.VERSION == "2" and meta["note"] == "x"
    assert_bit_identical(load_state(path), state)
    # a version-1 file (plain adapter_state) reads unchanged
    save_file(state, str(tmp_path / "v1.safetensors"), metadata={"format": "lslo", "version": "1"})
    assert_bit_identical(load_state(tmp_path / "v1.safetensors"), state)
    save_file(pack(state), str(tmp_path / "v9.safetensors"), metadata={"format": "lslo", "version": "9"})
    with pytest.raises(StorageError, match="version 9 is newer"):
        load_state(tmp_path / "v9.safetensors")


def test_bad_inputs_are_refused():
    state = prune(make_state(seed=6, small=True), 0.9, "AB")
    p = "model.encoder.layers.0.q.en"
    with pytest.raises(StorageError, match="lora_B is missing"):
        pack({f"{p}.lora_A": state[f"{p}.lora_A"]})
    with pytest.raises(StorageError, match="reserves"):
        pack({"x.kept": torch.zeros(1)})
    with pytest.raises(StorageError, match="mask_A has shape"):
        pack({f"{p}.lora_A": torch.zeros(2, 4), f"{p}.lora_B": torch.zeros(3, 2), f"{p}.mask_A": torch.zeros(2, 3)})
    packed = pack(state)
    broken = {k: v for k, v in packed.items() if not k.startswith(p + ".lora_B.")}
    with pytest.raises(StorageError, match="missing"):
        unpack(broken)
    with pytest.raises(StorageError, match="belongs to no packed group"):
        unpack({"y.lora_A.val": torch.zeros(1)})


def test_model_save_load_uses_packed_format(m2m_dir, tmp_path):
    """save_adapters writes version 2, load_adapters reads it (and version 1)."""
    model = load_lslo(m2m_dir, seed=8)
    Pruner(model, PruningConfig(enabled=True, structured=0.5, final_ratio=0.8, matrices="AB")).prune_to(0.8, 0.5)
    model.save_adapters(tmp_path / "a")
    with safe_open(str(tmp_path / "a" / "adapters.safetensors"), framework="pt") as f:
        assert f.metadata()["version"] == "2"
    fresh = load_lslo(m2m_dir, randomize=False)
    fresh.load_adapters(tmp_path / "a")
    for name, m in model.lslo_modules().items():
        f = fresh.lslo_modules()[name]
        for attr in ("lora_A", "lora_BT", "mask_A", "mask_BT"):
            assert torch.equal(getattr(f, attr), getattr(m, attr)), (name, attr)
