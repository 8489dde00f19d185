"""The background exporter: batching, retries, drops, flush/shutdown deadlines, fork, exit.

And the never-hurt promise: whatever the server does (down, slow, 4xx, 5xx), the traced
application gets the same results and sees no exception.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sdk_support import (
    FakeTime,
    RecordingServer,
    Reply,
    configure_to,
)

import goldloop
from goldloop.sdk import setup as _setup
from goldloop.sdk.config import load_config
from goldloop.sdk.exporter import BatchExporter
from goldloop.sdk.run import Run

SRC = str(Path(goldloop.__file__).resolve().parents[1])


@goldloop.traced
def add(a: int, b: int) -> int:
    return a + b


def test_batches_by_size_and_counts(recorder: RecordingServer) -> None:
    configure_to(recorder, batch_size=3, gzip=False)
    assert [add(i, 1) for i in range(7)] == [i + 1 for i in range(7)]
    assert goldloop.flush(10)
    sizes = sorted(len(r.body["runs"]) for r in recorder.requests)
    assert sum(sizes) == 7
    assert max(sizes) <= 3
    assert "content-encoding" not in recorder.requests[0].headers
    stats = goldloop.exporter_stats()
    assert stats["enqueued"] == 7
    assert stats["exported"] == 7
    assert stats["queue_depth"] == 0
    assert stats["batches"] == len(recorder.requests)


def test_a_full_batch_wakes_the_worker_without_flush(recorder: RecordingServer) -> None:
    configure_to(recorder, batch_size=4)  # interval is an hour: only a full batch can send
    for i in range(4):
        add(i, i)
    assert recorder.wait_for_requests(1, timeout=30)
    assert len(recorder.requests[0].body["runs"]) == 4


def test_queue_full_drops_and_counts(fresh_sdk: None) -> None:
    config = load_config({"tracing": True, "queue_size": 3, "batch_size": 2}, environ={})
    exporter = BatchExporter(config)  # not started: nothing drains the queue
    for _ in range(5):
        run = Run("r", "chain", "t" * 32, None, None, None, None, None, None, None)
        exporter.on_start(run)
        exporter.on_end(run)
    stats = exporter.stats()
    assert stats["queue_depth"] == 3
    assert stats["dropped_queue_full"] == 2
    assert stats["open_runs"] == 0
    exporter.shutdown(0.1)


def test_retries_honour_retry_after_then_deliver_once(recorder: RecordingServer) -> None:
    clock = FakeTime()
    recorder.script = [
        Reply(503, {"retry-after": "7"}),
        Reply(429, {"retry-after": "2"}),
        Reply(500),
    ]
    configure_to(recorder, _clock=clock.clock, _sleep=clock.sleep)
    assert add(2, 3) == 5
    assert goldloop.flush(10)
    assert len(recorder.requests) == 4
    assert clock.sleeps[:2] == [7.0, 2.0]
    assert 0.25 <= clock.sleeps[2] <= 2.0  # backoff with jitter after a 500 without Retry-After
    assert len(recorder.runs()) == 1
    stats = goldloop.exporter_stats()
    assert stats["retries"] == 3
    assert stats["exported"] == 1
    assert stats["dropped_failed"] == 0


def test_server_answering_503_forever_drops_after_the_retry_budget(
    recorder: RecordingServer,
) -> None:
    clock = FakeTime()
    recorder.script = [Reply(503, {"retry-after": "4"}) for _ in range(50)]
    configure_to(recorder, retry_s=10, _clock=clock.clock, _sleep=clock.sleep)
    assert [add(1, i) for i in range(3)] == [1, 2, 3]
    assert goldloop.flush(10)
    stats = goldloop.exporter_stats()
    assert stats["dropped_failed"] == 3
    assert stats["exported"] == 0
    assert clock.sleeps == [4.0, 4.0]  # a third wait would pass the 10 s budget
    assert "HTTP 503" in (stats["last_error"] or "")


def test_server_down_changes_nothing_for_the_app(fresh_sdk: None) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clock = FakeTime()
    goldloop.configure(
        tracing=True,
        endpoint=f"http://127.0.0.1:{port}",
        flush_interval_s=3600,
        retry_s=5,
        _clock=clock.clock,
        _sleep=clock.sleep,
    )

    @goldloop.traced
    def fails() -> None:
        raise LookupError("app error")

    assert [add(i, i) for i in range(5)] == [0, 2, 4, 6, 8]
    with pytest.raises(LookupError, match="app error"):
        fails()
    assert goldloop.flush(10)
    stats = goldloop.exporter_stats()
    assert stats["dropped_failed"] == 6
    assert stats["exported"] == 0
    assert "ConnectError" in (stats["last_error"] or "")
    # Issue 26 (5): the message names the URL it tried and the setting that chose it.
    assert f"cannot reach http://127.0.0.1:{port} (endpoint from configure(endpoint=...)" in (
        stats["last_error"] or ""
    )


def test_slow_server_never_blocks_traced_calls(recorder: RecordingServer) -> None:
    recorder.block()  # every request hangs until release()
    configure_to(recorder, timeout_s=0.2, retry_s=0.3, batch_size=100)
    add(0, 0)
    assert goldloop.flush(0.01) is False  # the worker is now stuck on the server ...
    assert [add(i, 0) for i in range(50)] == list(range(50))  # ... and the calls go on
    assert goldloop.flush(30)
    stats = goldloop.exporter_stats()
    assert stats["exported"] == 0
    assert stats["dropped_failed"] == 51
    assert "Timeout" in (stats["last_error"] or "")


def test_client_errors_are_not_retried(recorder: RecordingServer) -> None:
    recorder.script = [Reply(400, body=b'{"error": {"code": "invalid_input"}}')]
    configure_to(recorder)
    assert add(1, 1) == 2
    assert goldloop.flush(10)
    stats = goldloop.exporter_stats()
    assert len(recorder.requests) == 1
    assert stats["dropped_rejected"] == 1
    assert stats["retries"] == 0
    assert "invalid_input" in (stats["last_error"] or "")


def test_payload_too_large_splits_the_batch(recorder: RecordingServer) -> None:
    recorder.script = [Reply(413)]
    configure_to(recorder)
    for i in range(4):
        add(i, 0)
    assert goldloop.flush(10)
    assert [len(r.body["runs"]) for r in recorder.requests] == [4, 2, 2]
    assert goldloop.exporter_stats()["exported"] == 4


def test_open_runs_are_sent_as_start_items_at_flush(recorder: RecordingServer) -> None:
    configure_to(recorder)

    @goldloop.traced(kind="agent")
    def long_agent() -> str:
        assert goldloop.flush(10)  # while this run is still open
        return "done"

    assert long_agent() == "done"
    first = recorder.items()
    assert len(first) == 1
    assert first[0]["name"] == "long_agent"
    assert "end_time" not in first[0]
    assert "outputs" not in first[0]
    assert goldloop.flush(10)
    items = recorder.items()
    assert [i["id"] for i in items] == [first[0]["id"]] * 2
    assert recorder.by_name("long_agent")["outputs"] == {"output": "done"}
    assert goldloop.exporter_stats()["starts_sent"] == 1


def test_shutdown_has_a_deadline_and_later_runs_are_counted(recorder: RecordingServer) -> None:
    recorder.block()
    configure_to(recorder, timeout_s=30, retry_s=60)
    exporter = _setup._exporter
    assert exporter is not None
    add(1, 1)
    assert goldloop.flush(0.2) is False  # the server holds the request: flush gives up
    assert recorder.wait_for_arrivals(1, timeout=30)  # the request is in flight
    # shutdown returns at its deadline, even with a request in flight (then it says False);
    # the daemon thread cannot hold the interpreter's exit.
    assert goldloop.shutdown(0.5) is False
    recorder.release()
    assert exporter._thread is not None
    exporter._thread.join(30)
    assert not exporter._thread.is_alive()
    assert exporter.stats()["exported"] == 1
    assert add(2, 2) == 4  # tracing is off after shutdown; the call is untouched
    exporter.on_end(Run("late", "chain", "t" * 32, None, None, None, None, None, None, None))
    assert exporter.stats()["dropped_after_shutdown"] == 1
    assert goldloop.exporter_stats()["tracing"] is False


def test_unknown_and_bad_options_say_what_is_wrong(fresh_sdk: None) -> None:
    with pytest.raises(goldloop.ConfigError, match="GOLDLOOP_EXPORT_BATCH_SIZE"):
        load_config({}, environ={"GOLDLOOP_EXPORT_BATCH_SIZE": "many"})
    with pytest.raises(goldloop.ConfigError, match="expected true or false"):
        load_config({}, environ={"GOLDLOOP_TRACING": "perhaps"})
    with pytest.raises(goldloop.ConfigError, match="endpoint must start"):
        load_config({"endpoint": "ftp://x"}, environ={})
    config = goldloop.configure(tracing=False, api_key="gl_secret")
    assert "gl_secret" not in repr(config)


def _run_script(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC, **env},
        timeout=60,
    )


@pytest.mark.slow
def test_env_is_read_once_at_first_use_and_exit_flushes(recorder: RecordingServer) -> None:
    code = """
        import os, goldloop
        os.environ["GOLDLOOP_TRACING"] = "true"       # set after import: still seen, since
        os.environ["GOLDLOOP_ENDPOINT"] = "{url}"     # the env is read at the first call
        os.environ["GOLDLOOP_PROJECT"] = "from-env"

        @goldloop.traced
        def f(x):
            return x

        f(1)
        os.environ["GOLDLOOP_PROJECT"] = "ignored"    # read once: later changes do nothing
        f(2)
        # no flush(): the atexit hook sends what is queued
    """.replace("{url}", recorder.url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDLOOP_")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": SRC, "GOLDLOOP_EXPORT_INTERVAL_S": "3600"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert {r.body["project"] for r in recorder.requests} == {"from-env"}
    assert sorted(r["inputs"]["x"] for r in recorder.items()) == [1, 2]


@pytest.mark.slow
def test_fork_gives_the_child_its_own_exporter(recorder: RecordingServer) -> None:
    code = """
        import os, goldloop
        goldloop.configure(tracing=True, endpoint="{url}", flush_interval_s=3600)

        @goldloop.traced
        def where(who):
            return who

        where("parent-before-fork")
        pid = os.fork()
        if pid == 0:
            where("child")
            ok = goldloop.flush(10) and goldloop.exporter_stats()["exported"] == 1
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        where("parent-after-fork")
        assert goldloop.flush(10)
        assert goldloop.exporter_stats()["exported"] == 2
        raise SystemExit(os.waitstatus_to_exitcode(status))
    """.replace("{url}", recorder.url)
    done = _run_script(code, {})
    assert done.returncode == 0, done.stderr
    sent = sorted(r["inputs"]["who"] for r in recorder.items())
    # the run queued before the fork is sent once (by the parent), not again by the child
    assert sent == ["child", "parent-after-fork", "parent-before-fork"]


def test_stats_say_tracing_is_off(fresh_sdk: None) -> None:
    assert goldloop.exporter_stats() == {
        "tracing": False,
        "reason": "not configured yet: the first traced call reads GOLDLOOP_* (GOLDLOOP_TRACING)",
    }
    goldloop.configure(tracing=False)
    stats: dict[str, Any] = goldloop.exporter_stats()
    assert stats == {
        "tracing": False,
        "reason": "GOLDLOOP_TRACING is not true (or configure(tracing=False) was called)",
    }


def test_server_down_names_the_url_and_the_variable_in_the_log(fresh_sdk: None) -> None:
    """Issue 26 (5): the exporter's one log line says which URL, and that GOLDLOOP_ENDPOINT (or
    the default) chose it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = """
        import goldloop

        @goldloop.traced
        def f(x):
            return x

        f(1)
        goldloop.flush(30)
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDLOOP_")}
    off_quickly = {  # tracing on, and a batch given up after 0.1 s
        "GOLDLOOP_TRACING": "true",
        "GOLDLOOP_EXPORT_RETRY_S": "0.1",
    }
    for extra, source in (
        ({"GOLDLOOP_ENDPOINT": f"http://127.0.0.1:{port}"}, "GOLDLOOP_ENDPOINT"),
        ({}, "the default"),
    ):
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            env={**env, **extra, **off_quickly, "PYTHONPATH": SRC},
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        url = extra.get("GOLDLOOP_ENDPOINT", "http://127.0.0.1:8700")
        if source == "the default" and "cannot reach" not in done.stderr:
            continue  # something answers on 8700 on this machine: nothing to say
        assert f"cannot reach {url} (endpoint from {source}; is the server running there?)" in (
            done.stderr
        ), done.stderr


def test_tracing_off_with_a_server_configured_says_so_once(fresh_sdk: None) -> None:
    """Issue 26 (3): GOLDLOOP_ENDPOINT/GOLDLOOP_API_KEY set but GOLDLOOP_TRACING not: one log line
    at the first traced call, and exporter_stats() says tracing is off."""
    code = """
        import goldloop

        @goldloop.traced
        def f(x):
            return x

        print("before the first call", flush=True)
        f(1)
        f(2)
        print(goldloop.exporter_stats())
        print("flushed", goldloop.flush())
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDLOOP_")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={
            **env,
            "PYTHONPATH": SRC,
            "GOLDLOOP_ENDPOINT": "http://127.0.0.1:1",
            "GOLDLOOP_API_KEY": "gl_x",
        },
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "tracing is off" in line]
    assert lines == [
        "goldloop: tracing is off, so nothing is sent (endpoint http://127.0.0.1:1 and an API "
        "key configured, but GOLDLOOP_TRACING is not true): set GOLDLOOP_TRACING=true or call "
        "goldloop.configure(tracing=True)"
    ]
    assert "'tracing': False" in done.stdout
    assert "GOLDLOOP_TRACING is not true" in done.stdout

    quiet = subprocess.run(  # nothing configured at all: nothing to say
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": SRC},
        timeout=60,
    )
    assert quiet.returncode == 0, quiet.stderr
    assert "tracing is off" not in quiet.stderr
