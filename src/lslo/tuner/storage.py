"""Sparse on-disk format for (pruned) LSLo adapters.

``LSLoModel.adapter_state()`` gives, per adapted module and language (prefix
``P = "{module}.{lang}"``), the compact tensors ``P.lora_A`` (r, d_in) and
``P.lora_B`` (d_out, r), plus ``P.mask_A`` / ``P.mask_B`` (uint8, 1 = kept)
when something was pruned. ``pack`` turns such a state into a smaller one and
``unpack`` restores it bit for bit (same keys, dtypes, shapes and bytes).

What ``pack`` does for one group P:

1. Dead rank components are dropped: component j goes when row j of A and
   column j of B are all zero (bitwise) and fully masked out, which is what
   structured pruning leaves. ``P.kept`` (int32) lists the surviving component
   indices; A/B/masks below are then the rank-reduced (r', d_in) / (d_out, r').
2. Each of A and B is stored in the smallest of three encodings (safetensors
   header bytes included in the estimate):

   - dense: ``P.lora_A`` as is;
   - index: ``P.lora_A.idx`` (int32 flat positions of the bitwise non-zero
     entries) + ``P.lora_A.val`` (their values, original dtype);
   - bitmask: ``P.lora_A.bits`` (uint8, 8 entries per byte, little-endian bit
     order) + ``P.lora_A.val``.

3. A mask costs nothing when it equals the non-zero pattern of its matrix
   (the usual case: pruned entries are exactly zero, kept ones are not);
   otherwise it is stored as a bitmask ``P.mask_A.bits`` (or, for a mask that
   is not 0/1 uint8, as is under ``P.mask_A``).

A group that needs none of this (no masks, both matrices dense, nothing
dropped) is written unchanged, so an unpruned adapter packs to exactly the
same tensors, and version-1 files (plain ``adapter_state``) unpack to
themselves. Otherwise the group gets a small header ``P.packed`` (int32:
r, d_in, d_out, encoding of A, of B, of mask_A, of mask_B).

Sizes (fp32, 90% of entries pruned): the bitmask encoding stores
n/8 + 0.1 * 4n bytes = 13% of dense. With A and B pruned that is the whole
file (~13% of the dense weights); with only B pruned (the paper) A stays dense
and the file is ~57% of the dense weights when sum(d_in) = sum(d_out).
"""

from __future__ import annotations

from pathlib import Path

import torch

from lslo.errors import LSLoError

__all__ = [
    "FORMAT",
    "VERSION",
    "StorageError",
    "load_state",
    "pack",
    "save_state",
    "unpack",
]

FORMAT = "lslo"
VERSION = "2"  # 1: plain adapter_state (still readable: unpack leaves it unchanged); 2: packed
_READABLE = ("1", "2")

_MATS = ("lora_A", "lora_B")
_MASKS = ("mask_A", "mask_B")
_PARTS = _MATS + _MASKS
_RESERVED = (".packed", ".kept", ".idx", ".val", ".bits")

# encodings of A/B
_DENSE, _INDEX, _BITMASK = 0, 1, 2
# encodings of masks
_NO_MASK, _NONZERO, _MASK_BITS, _MASK_RAW = 0, 1, 2, 3

_HEADER_BYTES = 60  # rough size of one safetensors header entry, besides its key


class StorageError(LSLoError):
    """A state that cannot be packed, or packed tensors that do not unpack."""


# --------------------------------------------------------------------------- bit helpers


def _nonzero(t: torch.Tensor) -> torch.Tensor:
    """Bitwise non-zero pattern (-0.0 and NaN count as non-zero), flat bool."""
    flat = t.reshape(-1)
    if flat.dtype.is_floating_point:
        ints = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[flat.element_size()]
        flat = flat.contiguous().view(ints)
    return flat != 0


def _packbits(b: torch.Tensor) -> torch.Tensor:
    """Flat bool -> uint8, 8 per byte, bit k of byte i = entry 8i + k."""
    n = b.numel()
    padded = torch.zeros((n + 7) // 8 * 8, dtype=torch.uint8)
    padded[:n] = b.reshape(-1).to(torch.uint8)
    weights = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)
    return (padded.view(-1, 8) * weights).sum(dim=1, dtype=torch.uint8)


def _unpackbits(bits: torch.Tensor, n: int) -> torch.Tensor:
    shifts = torch.arange(8, dtype=torch.uint8)
    return ((bits.reshape(-1, 1) >> shifts) & 1).reshape(-1)[:n].bool()


def _hdr(key: str) -> int:
    return len(key) + _HEADER_BYTES


# --------------------------------------------------------------------------- pack


def _split_key(key: str) -> tuple[str, str] | None:
    prefix, _, part = key.rpartition(".")
    return (prefix, part) if prefix and part in _PARTS else None


def _droppable(a, b, ma, mb) -> torch.Tensor:
    """(r,) bool: components whose A row and B column are bitwise zero and fully masked out."""
    r = a.shape[0]
    drop = ~_nonzero(a).view(r, -1).any(dim=1) & ~_nonzero(b).view(-1, r).any(dim=0)
    if ma is not None:
        drop &= ~(ma != 0).any(dim=1)
    if mb is not None:
        drop &= ~(mb != 0).any(dim=0)
    return drop


def _encode_matrix(key: str, t: torch.Tensor, out: dict[str, torch.Tensor]) -> int:
    nz = _nonzero(t)
    n, nnz, size = t.numel(), int(nz.sum()), t.element_size()
    costs = {
        _DENSE: n * size + _hdr(key),
        _INDEX: nnz * (4 + size) + _hdr(key + ".idx") + _hdr(key + ".val"),
        _BITMASK: (n + 7) // 8 + nnz * size + _hdr(key + ".bits") + _hdr(key + ".val"),
    }
    enc = min(costs, key=lambda e: (costs[e], e))  # ties: the simpler encoding
    if enc == _DENSE:
        out[key] = t.contiguous()
        return enc
    out[key + ".val"] = t.reshape(-1)[nz].contiguous()
    if enc == _INDEX:
        out[key + ".idx"] = nz.nonzero().reshape(-1).to(torch.int32)
    else:
        out[key + ".bits"] = _packbits(nz)
    return enc


def _encode_mask(key: str, mask: torch.Tensor | None, values: torch.Tensor, out: dict[str, torch.Tensor]) -> int:
    if mask is None:
        return _NO_MASK
    if mask.dtype != torch.uint8 or bool((mask > 1).any()):
        out[key] = mask.contiguous()
        return _MASK_RAW
    kept = mask.reshape(-1).bool()
    if torch.equal(kept, _nonzero(values)):
        return _NONZERO
    out[key + ".bits"] = _packbits(kept)
    return _MASK_BITS


def _pack_group(prefix: str, parts: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> None:
    missing = [p for p in _MATS if p not in parts]
    if missing:
        raise StorageError(f"pack: {prefix}.{missing[0]} is missing (have {', '.join(sorted(parts))})")
    a, b = parts["lora_A"].detach().cpu(), parts["lora_B"].detach().cpu()
    ma, mb = parts.get("mask_A"), parts.get("mask_B")
    ma = None if ma is None else ma.detach().cpu()
    mb = None if mb is None else mb.detach().cpu()
    if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1]:
        raise StorageError(f"pack: {prefix}: lora_A {tuple(a.shape)} and lora_B {tuple(b.shape)} are not (r, d_in), (d_out, r)")
    for name, m, ref in (("mask_A", ma, a), ("mask_B", mb, b)):
        if m is not None and m.shape != ref.shape:
            raise StorageError(f"pack: {prefix}.{name} has shape {tuple(m.shape)}, expected {tuple(ref.shape)}")
    r, d_in, d_out = a.shape[0], a.shape[1], b.shape[0]
    drop = _droppable(a, b, ma, mb) if r else torch.zeros(0, dtype=torch.bool)
    if bool(drop.any()):
        kept = (~drop).nonzero().reshape(-1)
        a, b = a[kept], b[:, kept]
        ma = None if ma is None else ma[kept]
        mb = None if mb is None else mb[:, kept]
        out[f"{prefix}.kept"] = kept.to(torch.int32)
    group: dict[str, torch.Tensor] = {}
    codes = [_encode_matrix(f"{prefix}.{p}", t, group) for p, t in (("lora_A", a), ("lora_B", b))]
    if ma is None and mb is None and not bool(drop.any()) and codes == [_DENSE, _DENSE]:
        out.update(group)  # plain group: stored exactly as adapter_state has it
        return
    codes.append(_encode_mask(f"{prefix}.mask_A", ma, a, group))
    codes.append(_encode_mask(f"{prefix}.mask_B", mb, b, group))
    out.update(group)
    out[f"{prefix}.packed"] = torch.tensor([r, d_in, d_out, *codes], dtype=torch.int32)


def pack(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The packed form of an ``adapter_state()`` dict (see the module docstring).

    Tensors that are not ``{prefix}.lora_A|lora_B|mask_A|mask_B`` pass through unchanged.
    ``unpack(pack(state))`` equals ``state`` bit for bit.
    """
    groups: dict[str, dict[str, torch.Tensor]] = {}
    out: dict[str, torch.Tensor] = {}
    for key, t in state.items():
        if key.endswith(_RESERVED):
            raise StorageError(f"pack: key {key!r} ends with a suffix the packed format reserves")
        split = _split_key(key)
        if split is None:
            out[key] = t
        else:
            groups.setdefault(split[0], {})[split[1]] = t
    for prefix, parts in groups.items():
        _pack_group(prefix, parts, out)
    return out


# --------------------------------------------------------------------------- unpack


def _take(packed: dict[str, torch.Tensor], key: str, used: set[str]) -> torch.Tensor:
    if key not in packed:
        raise StorageError(f"unpack: {key} is missing")
    used.add(key)
    return packed[key]


def _decode_matrix(packed, key, shape, enc, used) -> torch.Tensor:
    n = shape[0] * shape[1]
    if enc == _DENSE:
        t = _take(packed, key, used)
        if tuple(t.shape) != shape:
            raise StorageError(f"unpack: {key} has shape {tuple(t.shape)}, expected {shape}")
        return t
    val = _take(packed, key + ".val", used).reshape(-1)
    if enc == _INDEX:
        idx = _take(packed, key + ".idx", used).reshape(-1).long()
        if idx.numel() != val.numel() or (idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n)):
            raise StorageError(f"unpack: {key}.idx does not fit {key}.val / shape {shape}")
        flat = torch.zeros(n, dtype=val.dtype)
        flat[idx] = val
    elif enc == _BITMASK:
        bits = _take(packed, key + ".bits", used)
        if bits.numel() != (n + 7) // 8:
            raise StorageError(f"unpack: {key}.bits has {bits.numel()} bytes, expected {(n + 7) // 8}")
        nz = _unpackbits(bits, n)
        if int(nz.sum()) != val.numel():
            raise StorageError(f"unpack: {key}.bits marks {int(nz.sum())} entries, {key}.val has {val.numel()}")
        flat = torch.zeros(n, dtype=val.dtype)
        flat[nz] = val
    else:
        raise StorageError(f"unpack: {key}: unknown encoding {enc} (written by a newer lslo?)")
    return flat.view(shape)


def _decode_mask(packed, key, values, enc, used) -> torch.Tensor | None:
    if enc == _NO_MASK:
        return None
    if enc == _NONZERO:
        return _nonzero(values).view(values.shape).to(torch.uint8)
    if enc == _MASK_BITS:
        bits = _take(packed, key + ".bits", used)
        if bits.numel() != (values.numel() + 7) // 8:
            raise StorageError(f"unpack: {key}.bits does not fit shape {tuple(values.shape)}")
        return _unpackbits(bits, values.numel()).view(values.shape).to(torch.uint8)
    if enc == _MASK_RAW:
        t = _take(packed, key, used)
        if t.shape != values.shape:
            raise StorageError(f"unpack: {key} has shape {tuple(t.shape)}, expected {tuple(values.shape)}")
        return t
    raise StorageError(f"unpack: {key}: unknown mask encoding {enc} (written by a newer lslo?)")


def _expand(t: torch.Tensor, kept: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    shape = list(t.shape)
    shape[dim] = r
    full = torch.zeros(shape, dtype=t.dtype)
    full.index_copy_(dim, kept, t)
    return full


def unpack(packed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ``adapter_state()`` dict ``pack`` was given. A plain (version-1) state comes back unchanged."""
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for hkey in [k for k in packed if k.endswith(".packed")]:
        prefix = hkey[: -len(".packed")]
        header = _take(packed, hkey, used).reshape(-1).tolist()
        if len(header) != 7:
            raise StorageError(f"unpack: {hkey} has {len(header)} fields, expected 7")
        r, d_in, d_out, enc_a, enc_b, enc_ma, enc_mb = (int(x) for x in header)
        kept = None
        if f"{prefix}.kept" in packed:
            kept = _take(packed, f"{prefix}.kept", used).reshape(-1).long()
            if kept.numel() and (int(kept.min()) < 0 or int(kept.max()) >= r):
                raise StorageError(f"unpack: {prefix}.kept has indices outside 0..{r - 1}")
        rr = r if kept is None else kept.numel()
        a = _decode_matrix(packed, f"{prefix}.lora_A", (rr, d_in), enc_a, used)
        b = _decode_matrix(packed, f"{prefix}.lora_B", (d_out, rr), enc_b, used)
        ma = _decode_mask(packed, f"{prefix}.mask_A", a, enc_ma, used)
        mb = _decode_mask(packed, f"{prefix}.mask_B", b, enc_mb, used)
        if kept is not None:
            a, b = _expand(a, kept, r, 0), _expand(b, kept, r, 1)
            ma = None if ma is None else _expand(ma, kept, r, 0)
            mb = None if mb is None else _expand(mb, kept, r, 1)
        out[f"{prefix}.lora_A"], out[f"{prefix}.lora_B"] = a, b
        if ma is not None:
            out[f"{prefix}.mask_A"] = ma
        if mb is not None:
            out[f"{prefix}.mask_B"] = mb
    for key, t in packed.items():
        if key in used:
            continue
        if key.endswith(_RESERVED):
            raise StorageError(f"unpack: {key} belongs to no packed group")
        if key in out:
            raise StorageError(f"unpack: {key} is both packed and stored as is")
        out[key] = t
    return out


# --------------------------------------------------------------------------- files


def save_state(state: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """``pack`` the state and write it as safetensors with format/version metadata."""
    from safetensors.torch import save_file

    meta = {"format": FORMAT, "version": VERSION, **(metadata or {})}
    save_file(pack(state), str(path), metadata=meta)
    return Path(path)


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a file written by ``save_state`` (or a version-1 plain file) and ``unpack`` it."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            version = meta.get("version", "1")
            if meta.get("format", FORMAT) != FORMAT:
                raise StorageError(f"{path}: format {meta.get('format')!r} is not {FORMAT!r}")
            if version not in _READABLE:
                raise StorageError(f"{path}: adapter format version {version} is newer than this lslo reads ({VERSION})")
            packed = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        if isinstance(e, StorageError):
            raise
        raise StorageError(f"{path}: corrupt or truncated safetensors file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    return unpack(packed)

