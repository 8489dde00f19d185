"""Issue 22 (10): the first traced call costs the caller what every other call costs.

The exporter's set-up (importing httpx, loading the TLS trust store, building the HTTP client)
happens on its own thread. Each check runs in a fresh interpreter, where that set-up has not
happened yet, and records which thread imports the slow modules: never the caller's. The
records are exact, not timings, so the test cannot be flaky on a loaded machine; the measured
cost is in bench/sdk_overhead.py (``--first-call``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sdk_support import RecordingServer

import goldloop

SRC = str(Path(goldloop.__file__).resolve().parents[1])

PROBE = """
    import json, sys, threading

    SLOW = {"httpx", "ssl", "asyncio", "orjson", "gzip", "certifi"}
    on_caller = []

    class Watch:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in SLOW and threading.current_thread() is threading.main_thread():
                on_caller.append(name)
            return None

    sys.meta_path.insert(0, Watch())
    for name in list(sys.modules):  # whatever the interpreter preloaded must load again
        if name.split(".")[0] in SLOW:
            del sys.modules[name]

    import goldloop

    @goldloop.traced
    def f(x):
        return x

    before = list(on_caller)
    SETUP
    f(1)
    f(2)
    during = on_caller[len(before):]
    flushed = goldloop.flush(10)
    print(json.dumps({"during": during, "flushed": flushed,
                      "stats": goldloop.exporter_stats()}))
"""


@pytest.mark.parametrize(
    "setup", ["pass", "goldloop.configure()"], ids=["first-call-configures", "configure"]
)
def test_the_first_traced_call_imports_nothing_slow_on_the_callers_thread(setup: str) -> None:
    server = RecordingServer()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDLOOP_")}
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(PROBE).replace("SETUP", setup)],
            capture_output=True,
            text=True,
            env={
                **env,
                "PYTHONPATH": SRC,
                "GOLDLOOP_TRACING": "true",
                "GOLDLOOP_ENDPOINT": server.url,
                "GOLDLOOP_API_KEY": "gl_first_call",
            },
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert out["during"] == [], f"imported on the caller's thread: {out['during']}"
        assert out["flushed"] is True
        assert out["stats"]["exported"] == 2  # and the runs still reach the server
    finally:
        server.close()


def test_tracing_off_still_says_so_once_and_starts_no_thread() -> None:
    code = """
        import threading, goldloop

        @goldloop.traced
        def f(x):
            return x

        f(1)
        f(2)
        print(sorted(t.name for t in threading.enumerate()))
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDLOOP_")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": SRC, "GOLDLOOP_ENDPOINT": "http://127.0.0.1:1"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if "tracing is off" in line] != []
    assert "goldloop-exporter" not in done.stdout
