"""Keep the C heap's freed memory in the process, so per-batch arrays do not page-fault on every batch.

glibc serves an allocation above its mmap threshold (128 KB at start, raised on the fly up to 32 MB as mmapped
blocks are freed) with a fresh mmap, and gives the top of the heap back to the kernel whenever more than twice
that threshold is free. A learner that expands 100-transition batches of 128x128 images (two 1.6 MB arrays alive
at once) got fresh pages for much of every batch: `python -m benchmarks.transport`'s learner took 15,064 minor
page faults per second at 73k transitions/s with glibc's defaults, 3 with the thresholds fixed (2026-12-07; its
throughput was the same, as the actor was the bound there, not the learner). Fixed thresholds end the
give-and-take: blocks up to `MMAP_THRESHOLD_BYTES` come from the heap, and up to `TRIM_THRESHOLD_BYTES` of free
heap stays mapped for the next batch. Larger blocks (replay storage, a 40 MB weight push) are still mmapped and
returned when freed, so a process holds at most that much more than it uses.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's own ceiling for its moving threshold on 64-bit
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024
OPT_OUT = "TANDEM_DEFAULT_HEAP"  # set to 1: leave glibc's thresholds alone (a comparison, or a memory-tight robot)


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds for this process (see the module docstring). True if applied;
    False (and nothing changed) off Linux, on a C library without mallopt (musl), or with TANDEM_DEFAULT_HEAP=1."""
    if not sys.platform.startswith("linux") or os.environ.get(OPT_OUT, "") not in ("", "0"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    applied = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    applied = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and applied
    if not applied:
        log.debug("mallopt refused the heap thresholds; batches will page-fault as before")
    return applied
