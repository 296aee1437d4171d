"""Give freed heap memory back to the OS between batches, and read this process's RSS.

Beam search over ever-changing batch shapes allocates and frees tensors of every size; glibc
keeps much of the freed memory in its arenas, so a long-running server's RSS creeps up although
nothing leaks. ``malloc_trim(0)`` returns it. Elsewhere (musl, macOS, Windows) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import lru_cache


@lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def release_free_memory() -> bool:
    """Return the C heap's free memory to the OS; True when the platform can (glibc)."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True


def rss_bytes() -> int | None:
    """This process's resident set size (Linux /proc), else None."""
    try:
        with open(f"/proc/{os.getpid()}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
