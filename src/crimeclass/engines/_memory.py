"""Giving freed memory back to the system after a large step.

Large arrays freed by numpy and Arrow are not always returned at once: Arrow's allocator
keeps what it freed for later, and glibc's ``malloc`` keeps arrays below its (adaptive)
mmap threshold, up to 32 MB, in a heap that only shrinks when asked. A process that
frees the rows it read before it sorts them would still hold their pages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

__all__ = ["release_memory"]


@functools.cache
def _malloc_trim() -> object | None:
    """glibc's ``malloc_trim`` (None where the C library has none: macOS, musl, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


def release_memory() -> None:
    """Return the memory freed so far to the system: Arrow's pool and the C heap."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)  # type: ignore[operator]
