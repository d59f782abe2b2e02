"""Opt-in glibc heap settings for processes that run a model over and over (the nodes, benchmarks).

Process-wide, so a library never calls it behind its caller's back: the node's pipeline builder
(for a windowed model only) and the benchmarks opt in explicitly. The incremental stepper
allocates a few KB a frame and gains nothing, while a process that keeps ~64 MB of freed heap
shows every burst of large input messages as lasting growth (dualtalk-fuzz: 12 MiB of its
RSS growth).
"""
from __future__ import annotations

import ctypes
from typing import Any

# glibc mallopt parameters (malloc.h) and the values set by keep_freed_memory.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TRIM_THRESHOLD_BYTES = 64 << 20
_MMAP_THRESHOLD_BYTES = 32 << 20


def keep_freed_memory() -> None:
    """Let glibc keep freed heap memory for the next model run instead of returning it.

    Why: each run allocates and frees the same ~10 MB of tensors. With glibc's default dynamic
    thresholds, the heap top was trimmed (and big blocks unmapped) after every run, so the next
    run page-faulted ~2,300 fresh pages: a third of the lite network's CPU time on an 8 s window
    (profiled). The values are the ceilings glibc's own dynamic thresholds reach (32 MB mmap,
    twice that before trimming), fixed from the start; a process keeps at most ~64 MB of freed
    heap. Process-wide and idempotent; nothing happens where the C library has no mallopt.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def tune_heap_for(engine: Any) -> bool:
    """`keep_freed_memory` where a streaming engine runs windows, not frame by frame: the one
    rule the node's pipeline and the benchmarks share, so their figures are the node's. True
    if set."""
    if engine.incremental:
        return False
    keep_freed_memory()
    return True
