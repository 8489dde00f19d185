"""glibc's allocator told to keep the memory ingestion reuses on every request.

An OTLP request of 500 spans is ~1.5 MB of body and about as much again in strings, dicts and
encoded rows, freed when the request ends and allocated again by the next one. With glibc's
defaults the freed memory goes back to the kernel (the heap top is trimmed past 128 KiB, large
blocks are mmap'ed and unmapped one by one, each thread grows its own arena), so every request
faults its memory in again, page by page: ~4.5 page faults per span in the server process and
~1.6 in each ingest worker. Tuned, the server's system CPU per span roughly halved (35-37 ->
18-20 us on the benchmark load; docs/benchmarks.md). ``tune()`` keeps
up to ``TRIM_THRESHOLD`` of free memory at the heap top, serves blocks below
``MMAP_THRESHOLD`` from the heap and puts every thread in one arena (the interpreter lock
serializes the allocating threads anyway). The cost is memory the process keeps after a burst,
bounded by the thresholds.

Linux with glibc only; elsewhere, or with ``malloc_tuning = false``, the allocator keeps its
defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform
import sys

log = logging.getLogger("goldloop.server")

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

TRIM_THRESHOLD = 64 << 20
TOP_PAD = 16 << 20
MMAP_THRESHOLD = 32 << 20  # above max_request_bytes' default: a whole request body
ARENA_MAX = 1

_SETTINGS = (
    (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
    (_M_TOP_PAD, TOP_PAD),
    (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
    (_M_ARENA_MAX, ARENA_MAX),
)


def tune() -> bool:
    """Set the parameters above in this process; False if this is not glibc or it refused."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    refused = [param for param, value in _SETTINGS if mallopt(param, value) != 1]
    if refused:
        log.warning("glibc refused malloc settings %s; they keep their defaults", refused)
    return not refused
