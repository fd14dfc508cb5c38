"""What a timing benchmark reports about the machine and how it steadies the allocator.

Imports no torch, so a benchmark can call :func:`steady_malloc` before its first tensor.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

__all__ = ["load_average", "steady_malloc"]


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages as text (``"n/a"`` where the platform has
    none): timings are comparable only under the same load."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"


def steady_malloc() -> str:
    """Keep freed memory in the process (glibc ``mallopt``); returns what was set.

    PyTorch's CPU tensors come from ``malloc``, and glibc maps blocks above its mmap threshold
    afresh and unmaps them when freed, so every pass of a network pays page faults that a
    network run in a long-lived process does not. Raising the mmap threshold to glibc's
    largest (32 MiB) and the trim threshold to 1 GiB keeps those blocks in the heap (the same
    as ``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824`` in the
    environment). Elsewhere (not Linux/glibc) nothing is changed and the text says why.
    """
    library = ctypes.util.find_library("c") if platform.system() == "Linux" else None
    if library is None:
        return "default (not Linux/glibc)"
    libc = ctypes.CDLL(library)
    if not hasattr(libc, "mallopt"):
        return "default (no mallopt)"
    m_trim_threshold, m_mmap_threshold = -1, -3
    mmap_ok = libc.mallopt(m_mmap_threshold, 32 * 2**20)
    trim_ok = libc.mallopt(m_trim_threshold, 2**30)
    if not (mmap_ok and trim_ok):
        return "default (mallopt refused)"
    return "steady (glibc mmap threshold 32 MiB, trim threshold 1 GiB)"
