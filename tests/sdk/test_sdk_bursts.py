"""The exporter under bursts (issue #24): several requests in flight, batches that grow with the
backlog, Retry-After honoured without losing a run, drops counted and warned about once per
interval, and what the exit could not send reported.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sdk_support import FakeTime, RecordingServer, Reply, configure_to

import goldloop
from goldloop.sdk.config import load_config
from goldloop.settings import Settings
from live_api import live_api

SRC = str(Path(goldloop.__file__).resolve().parents[1])


def test_a_burst_of_many_batches_reaches_the_real_server_whole(
    settings: Settings, fresh_sdk: None
) -> None:
    """Far more runs than one batch, sent while the server refuses all but one ingestion
    request at a time (503 + Retry-After): every run is stored, once."""
    busy = dataclasses.replace(settings, ingest_max_inflight=1)
    with live_api(busy) as live:
        goldloop.configure(
            tracing=True,
            endpoint=live.endpoint,
            api_key=live.key,
            project="burst",
            batch_size=40,
            queue_size=5_000,
            max_in_flight=4,
            flush_interval_s=3600,
        )
        ids: list[str] = []

        @goldloop.traced(kind="tool")
        def tool(i: int) -> int:
            run = goldloop.get_current_run()
            assert run is not None
            ids.append(run.id)
            return i * 2

        assert [tool(i) for i in range(1_500)] == [i * 2 for i in range(1_500)]
        assert goldloop.flush(120)
        stats = goldloop.exporter_stats()
        with goldloop.Client(live.endpoint, api_key=live.key) as client:
            stored = [r["id"] for r in client.iter_runs(project="burst", page_size=500)]
    assert stats["enqueued"] == 1_500
    assert stats["exported"] == 1_500
    assert stats["dropped"] == 0
    assert stats["batches"] >= 1_500 // stats["largest_batch"]
    assert 1 <= stats["peak_in_flight"] <= 4
    assert sorted(stored) == sorted(ids)
    assert len(set(stored)) == 1_500


def test_requests_in_flight_are_bounded_and_batches_grow_with_the_backlog(
    recorder: RecordingServer,
) -> None:
    recorder.block()  # the server holds every request: the exporter fills its slots
    configure_to(
        recorder, batch_size=10, queue_size=2_000, max_in_flight=3, gzip=False, timeout_s=60,
        max_batch_bytes=64 * 1024,
    )  # fmt: skip
    for i in range(1_000):
        goldloop.traced(lambda x: x)(i)
    assert recorder.wait_for_arrivals(3, timeout=30)
    assert goldloop.exporter_stats()["in_flight"] == 3
    recorder.release()
    assert goldloop.flush(60)
    stats = goldloop.exporter_stats()
    sizes = [len(r.body["runs"]) for r in recorder.requests]
    assert sum(sizes) == 1_000 == stats["exported"]
    assert len({item["id"] for item in recorder.items()}) == 1_000
    assert stats["peak_in_flight"] == 3  # never more than max_in_flight at once
    # 997+ runs waited behind 3 held requests: the batches grew past batch_size ...
    assert max(sizes) > 10
    assert stats["largest_batch"] == max(sizes)
    # ... but no body went past max_batch_bytes (plus the envelope)
    envelope = len(b'{"project":"default","runs":}')
    assert max(len(r.raw) for r in recorder.requests) <= 64 * 1024 + envelope


def test_503_with_retry_after_then_recovery_loses_nothing(recorder: RecordingServer) -> None:
    clock = FakeTime()
    recorder.script = [Reply(503, {"retry-after": "3"}) for _ in range(4)]
    configure_to(recorder, batch_size=20, max_in_flight=2, _clock=clock.clock, _sleep=clock.sleep)
    for i in range(100):
        goldloop.traced(lambda x: x)(i)
    assert goldloop.flush(30)
    stats = goldloop.exporter_stats()
    assert stats["exported"] == 100
    assert stats["dropped"] == 0
    assert stats["retries"] == 4  # one retry per 503 answer
    assert len(recorder.requests) == stats["batches"] + 4
    assert sorted(r["inputs"]["x"] for r in recorder.runs().values()) == list(range(100))
    assert clock.sleeps
    assert all(0 < s <= 3.0 for s in clock.sleeps)
    assert 3.0 in clock.sleeps  # the first 503's Retry-After, waited in full


def test_a_server_that_never_accepts_drops_counts_and_warns_once_per_interval(
    recorder: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeTime()
    recorder.block()
    configure_to(
        recorder, queue_size=20, batch_size=10, max_in_flight=1, warn_interval_s=60,
        timeout_s=60, _clock=clock.clock,
    )  # fmt: skip
    traced = goldloop.traced(lambda x: x)

    def warnings() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "goldloop.sdk" and "dropped" in r.getMessage()
        ]

    with caplog.at_level(logging.WARNING, logger="goldloop.sdk"):
        for i in range(200):
            traced(i)
        assert recorder.wait_for_arrivals(1, timeout=30)  # one request held, the queue full
        first = goldloop.exporter_stats()
        assert first["dropped_queue_full"] > 0
        assert first["enqueued"] + first["dropped_queue_full"] == 200
        assert first["dropped"] == first["dropped_queue_full"]
        assert len(warnings()) == 1
        assert "the queue is full (20 runs waiting" in warnings()[0]

        clock.now += 30  # within the interval: more drops, no new warning
        calls = 200
        while goldloop.exporter_stats()["dropped"] < first["dropped"] + 50:
            traced(0)
            calls += 1
        assert len(warnings()) == 1

        clock.now += 31  # the interval is over: the next drop warns, with the count since
        traced(0)
        calls += 1
        assert len(warnings()) == 2
        since = goldloop.exporter_stats()["dropped"] - 1  # the first warning came at drop 1
        assert f"dropped {since} run(s) since the last warning" in warnings()[1]

    recorder.release()
    assert goldloop.flush(30)
    stats = goldloop.exporter_stats()
    assert stats["exported"] == stats["enqueued"]
    assert stats["exported"] + stats["dropped"] == calls


EXIT_SCRIPT = """
    import sys
    import goldloop
    goldloop.configure(tracing=True, endpoint=sys.argv[1], flush_interval_s=3600,
                       batch_size=1000, queue_size=1000, shutdown_timeout_s=float(sys.argv[2]))

    @goldloop.traced
    def f(x):
        return x

    f(-1)
    assert goldloop.flush(60)  # the exporter is up and has reached the server once
    print("ready", flush=True)
    sys.stdin.readline()  # the test may now hold the server's answers
    for i in range(500):
        f(i)
    # no flush(): the exit hook sends what is queued, within shutdown_timeout_s
"""


def _exit_run(recorder: RecordingServer, timeout: float, *, block: bool) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDLOOP_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(EXIT_SCRIPT), recorder.url, str(timeout)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "PYTHONPATH": SRC},
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    assert proc.stdout.readline().strip() == "ready"
    if block:
        recorder.block()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    _, stderr = proc.communicate(timeout=120)
    return proc.returncode, stderr


def test_exit_sends_everything_queued(recorder: RecordingServer) -> None:
    code, stderr = _exit_run(recorder, 30, block=False)
    assert code == 0, stderr
    assert sorted(r["inputs"]["x"] for r in recorder.items()) == [-1, *range(500)]
    assert "did not send" not in stderr


def test_exit_with_a_stuck_server_is_bounded_and_says_what_was_not_sent(
    recorder: RecordingServer,
) -> None:
    code, stderr = _exit_run(recorder, 2, block=True)  # the server never answers the exit's
    assert code == 0, stderr
    assert len(recorder.requests) == 1  # only the warm-up was answered
    # the batch was dropped when its request timed out at the deadline, or was still in flight
    # when shutdown() returned: either way the 500 runs are reported, once
    assert stderr.count("goldloop exporter: shutdown(2.0s) did not send 500 run(s): ") == 1


def test_new_options_are_checked_and_named(fresh_sdk: None) -> None:
    with pytest.raises(goldloop.ConfigError, match=r"max_in_flight .* between 1 and 64, got 0"):
        load_config({"max_in_flight": 0}, environ={})
    with pytest.raises(goldloop.ConfigError, match="GOLDLOOP_EXPORT_MAX_IN_FLIGHT"):
        load_config({}, environ={"GOLDLOOP_EXPORT_MAX_IN_FLIGHT": "65"})
    with pytest.raises(goldloop.ConfigError, match="GOLDLOOP_EXPORT_MAX_BATCH_BYTES"):
        load_config({}, environ={"GOLDLOOP_EXPORT_MAX_BATCH_BYTES": "1000"})
    with pytest.raises(goldloop.ConfigError, match="GOLDLOOP_EXPORT_WARN_INTERVAL_S"):
        load_config({}, environ={"GOLDLOOP_EXPORT_WARN_INTERVAL_S": "soon"})
    config = load_config({}, environ={"GOLDLOOP_EXPORT_MAX_IN_FLIGHT": "8"})
    assert (config.max_in_flight, config.max_batch_bytes, config.warn_interval_s) == (
        8,
        4 * 1024 * 1024,
        60.0,
    )


def test_a_congested_server_gets_fewer_and_smaller_requests_until_it_recovers(
    recorder: RecordingServer,
) -> None:
    clock = FakeTime()
    recorder.script = [Reply(503, {"retry-after": "1"}) for _ in range(100)]
    configure_to(
        recorder, batch_size=20, max_in_flight=4, retry_s=1.5,
        _clock=clock.clock, _sleep=clock.sleep,
    )  # fmt: skip
    traced = goldloop.traced(lambda x: x)
    for i in range(60):
        traced(i)
    assert goldloop.flush(30)
    stats = goldloop.exporter_stats()
    assert stats["dropped_failed"] == 60  # the budget ran out: dropped, counted
    # three batches of 20 (the backlog never passed 4 x 20), each given up congested:
    assert stats["batches"] == 0
    assert stats["in_flight_window"] == 1  # 4 -> 2 -> 1 -> 1: halved, never below one ...
    assert stats["batch_cap"] == 2_500 // 8  # ... and so was the size batches may grow to
    recorder.script = []  # the server recovers
    for i in range(10):
        traced(i)
    assert goldloop.flush(30)
    stats = goldloop.exporter_stats()
    assert stats["exported"] == 10
    assert stats["in_flight_window"] == 2  # one more request allowed after one went through
    assert stats["batch_cap"] == 625  # 2,500 / 8, doubled


def test_413_halves_the_batch_bytes_for_later_batches(recorder: RecordingServer) -> None:
    recorder.script = [Reply(413)]
    configure_to(recorder, gzip=False)
    traced = goldloop.traced(lambda x: x)
    for i in range(4):
        traced(i)
    assert goldloop.flush(10)
    stats = goldloop.exporter_stats()
    assert stats["exported"] == 4
    first = recorder.requests[0].raw
    assert stats["max_batch_bytes"] == 64 * 1024  # half of a small body: the floor
    assert len(first) < 2 * 64 * 1024
