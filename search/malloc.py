"""Keeping the memory a search frees for the next search, instead of handing it back.

A search of a large archive allocates arrays of megabytes (a float32 score per document, a
boolean mask per word: 4 MB and 1 MB at a million documents) and frees them when it is done.
glibc serves an allocation of that size with a fresh ``mmap`` and unmaps it when freed, or trims
the top of its heap, so every search faults each of those pages in again, and the kernel zeroes
them: on the 2-core machine of the README, allocating and filling 11 MB of such arrays took
28-37 ms a time against 1.8 ms when the heap kept them (``bench.latency`` has the effect on
whole searches).  ``mallopt`` makes glibc keep them: arrays up to 32 MB come from the heap, and
the heap keeps up to ``keep_mb`` of free memory instead of returning it.

Process-wide, so it is the server's and the benchmarks' choice (``Settings.malloc_keep_mb``,
``VNSEARCH_MALLOC_KEEP_MB``; 0 leaves glibc's defaults), not the library's.  On a C library
without ``mallopt`` (musl, macOS) nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# mallopt's parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
# glibc refuses a larger mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX).
MMAP_THRESHOLD = 32 * 2**20
DEFAULT_KEEP_MB = 128
# Arenas a server worker's threads allocate from: one, the main heap, which keeps ``keep_mb``
# of freed memory.  The app runs one request at a time, so its threads do not contend for it.
# An arena per thread kept each thread's freed query arrays as private memory (at 1M articles
# 366 and 483 MB of Private_Dirty with 16); with 2, a request thread allocated from a second
# arena, whose heaps (64 MB each) were handed back whenever a search freed them: one worker
# faulted 400,000 pages a pass over 1,000 queries at 1M articles (0.7-0.9 s of system time),
# and 4 clients got 159-162 req/s; with 1, 3,000-5,000 faults, 174-183 req/s.
MALLOC_ARENAS = 1


def _mallopt(*settings: tuple[int, int]) -> bool:
    """Each ``(parameter, value)`` given to the C library's ``mallopt``; whether all took."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        log.info("no mallopt in this C library: its allocator keeps its defaults")
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return all([bool(mallopt(parameter, value)) for parameter, value in settings])


def keep_freed_memory(keep_mb: int = DEFAULT_KEEP_MB) -> bool:
    """Have the C library keep up to ``keep_mb`` MiB of freed memory for reuse; whether it
    took the setting (``False`` for 0, or where there is no ``mallopt``)."""
    if keep_mb <= 0:
        return False
    return _mallopt((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, keep_mb * 2**20))


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for the threads this process starts; ``False`` where the C
    library has no ``mallopt`` (musl, macOS: nothing to cap there)."""
    return _mallopt((M_ARENA_MAX, arenas))
