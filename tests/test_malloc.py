"""The allocator tuning of the server and its ingest workers (goldloop._malloc), observed where
it matters: memory freed by one request is kept for the next instead of going back to the
kernel."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from goldloop.domain.otel.decode import PROTOBUF
from goldloop.services.ingest_pool import IngestPool
from goldloop.services.otlp import decode_and_map
from otlp_builders import request, span
from test_serve import SRC

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="malloc tuning is for glibc",
)

# 40 MB in 100 KB blocks (below glibc's default mmap threshold, so from the heap), freed at once:
# how much of it the process still holds afterwards.
_PROBE = textwrap.dedent(
    """
    import os, sys
    from goldloop import _malloc
    if sys.argv[1] == "tuned":
        assert _malloc.tune()
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    blocks = [bytearray(b"x" * 100_000) for _ in range(400)]
    held = rss()
    del blocks
    print(rss() - held + 40_000_000)
    """
)


def _kept_after_free(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode],
        env={"PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(out.stdout)


def test_freed_request_memory_stays_for_the_next_request() -> None:
    default, tuned = _kept_after_free("default"), _kept_after_free("tuned")
    assert default < 10_000_000, "glibc's defaults return the freed heap top to the kernel"
    assert tuned > 30_000_000, "tuned, the freed 40 MB stay in the process"


def test_tuned_workers_decode_the_same() -> None:
    body = request([span("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", None, "a", {})])
    payload = body.SerializeToString()
    pool = IngestPool(1, malloc_tuning=True)
    try:
        assert pool.wait_ready(60)
        assert pool.decode(payload, PROTOBUF) == decode_and_map(payload, PROTOBUF)
        assert pool.jobs == 1
    finally:
        pool.close()
