"""The C allocator's settings for a long-running daemon: big buffers go back to the OS when freed.

A scrape holds its page for a moment: up to the body cap (16 MiB) per target, and each inflated layer
of a compressed page as much again. glibc's malloc serves buffers past its mmap threshold (128 KiB)
with their own mapping, returned on free, but by default it raises that threshold to the largest
buffer freed so far (up to 32 MiB) and then keeps such buffers in its heaps, which it rarely gives
back. After one large page, every later one stays resident: the daemon's RSS ratchets up with the
biggest pages it has seen, not with what it holds. Its worker threads (parsing, inflating, the SQLite
writer) would also each get an arena of their own (up to 8 per core) that keeps freed memory.

So the daemon fixes the threshold (no dynamic raise) and keeps two arenas, once, before its threads
start, unless the operator set either with glibc's own variables (``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_ARENA_MAX``). Elsewhere (musl, macOS) there is no ``mallopt`` with these meanings: nothing
is done and the reason is returned.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["ARENAS", "MMAP_THRESHOLD", "tame"]

MMAP_THRESHOLD = 128 * 1024  # glibc's own default; setting it explicitly turns the dynamic raise off
ARENAS = 2
_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
_M_ARENA_MAX = -8

_done: str | None = None


def tame() -> str:
    """Apply the settings once per process; says what was done (for the startup log)."""
    global _done
    if _done is None:
        _done = _apply()
    return _done


def _apply() -> str:
    if not sys.platform.startswith("linux"):
        return "skipped: not Linux"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        mallopt = libc.mallopt
        if not hasattr(libc, "gnu_get_libc_version"):
            return "skipped: not glibc"
    except (OSError, AttributeError):
        return "skipped: no mallopt"
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = []
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ and mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1:
        done.append(f"mmap threshold {MMAP_THRESHOLD // 1024} KiB")
    if "MALLOC_ARENA_MAX" not in os.environ and mallopt(_M_ARENA_MAX, ARENAS) == 1:
        done.append(f"{ARENAS} arenas")
    return ", ".join(done) or "left to the environment"
