"""Keep freed memory in the process while points are measured (glibc malloc, Linux).

By default glibc hands memory at the top of its heap back to the OS once more than 128 KiB of it is free, and
moves its mmap threshold as the program runs. Tensors freed at the end of one batch then page-fault their
memory back in on the next, and how often depends on the run's allocation history: on this project's 2-vCPU
AVX2 EPYC (2026-11-29, quickstart) a run took 347k-450k minor page faults by default and 115k with freed memory
kept, and the interest stage's 2-4 ms stalls (in 0 to 9 of 20 batches per run, 11 runs) did not occur in any of
16 quiet runs with these settings. Production CPU inference usually links jemalloc or tcmalloc, which also keep
freed memory for reuse (Intel Extension for PyTorch performance tuning guide, "Memory Allocator",
https://intel.github.io/intel-extension-for-pytorch/cpu/latest/tutorials/performance_tuning/tuning_guide.html,
read 2026-11-29).

Allocations of 32 MiB and more (weights, the largest activations) are still mapped and unmapped on their own,
and `release_freed_memory` hands the kept heap back between points, so one point's freed memory does not sit in
the next point's RSS.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache

# mallopt parameters (glibc malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
NEVER_TRIM = 2**31 - 1  # bytes free at the heap top before glibc returns any: in effect never
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value on 64-bit; fixing it stops the threshold moving
SETTINGS = f"glibc malloc: M_TRIM_THRESHOLD={NEVER_TRIM}, M_MMAP_THRESHOLD={MMAP_THRESHOLD} (freed memory kept)"

_applied: str | None = None


@cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl or another C library: nothing to set
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def keep_freed_memory() -> str | None:
    """Apply the settings to this process; what was applied, or None where glibc is not the allocator."""
    global _applied
    libc = _glibc()
    if libc is None:
        return None
    trim = libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM)
    mmap = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    _applied = SETTINGS if trim and mmap else None  # half applied is not what a result should claim
    return _applied


def release_freed_memory() -> None:
    """Hand the kept free heap back to the OS (between points)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def allocator_settings() -> str | None:
    """What keep_freed_memory applied in this process (None: nothing, the C library's defaults)."""
    return _applied
