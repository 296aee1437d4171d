"""benchmarks/memory.py at tiny scale: packed adapters cost exactly the unpadded sum, padded twice it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_memory_benchmark_packed_equals_unpadded_sum(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("memory_bench", ROOT / "benchmarks" / "memory.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.main(["--languages", "3,6", "--layers", "1", "--vocab", "64", "--batch", "4", "--len", "4",
                      "--repeats", "1", "--full-depth", "1", "--json", str(tmp_path / "m.json")])
    # ranks 2/2/8 cycled: 12 units per 3 languages; padded to 8 they take 24
    for n in ("3", "6"):
        assert out["summary"][n]["packed/unpadded (params+Adam)"] == 1.0
        assert out["summary"][n]["padded/unpadded (params+Adam)"] == 2.0
        assert out["full_depth_418M"][n]["packed/unpadded"] == 1.0
    rows = {(r["languages"], r["layout"]): r for r in out["rows"]}
    assert rows[(6, "packed")]["adam_state"] == 2 * rows[(6, "packed")]["parameters"]  # Adam's two moments
    assert rows[(6, "padded")]["parameters"] == 2 * rows[(6, "packed")]["parameters"]
    assert out["goals"]["packed params+Adam <= 1.1x unpadded"] is True
    assert (tmp_path / "m.json").is_file()
