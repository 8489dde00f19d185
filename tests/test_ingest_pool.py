"""OTLP requests decoded in ingest worker processes (``ingest_processes``).

The workers must give exactly what decoding in the server process gives, an invalid body must
fail the same way, and a worker that dies must cost no request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from goldloop.domain.errors import InvalidInput
from goldloop.domain.otel import decode as otel_decode
from goldloop.domain.otel.decode import JSON, PROTOBUF
from goldloop.http.app import create_app
from goldloop.services import auth, ingest, ingest_pool, otlp
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.ingest_pool import IngestPool
from goldloop.services.otlp import decode_and_map
from goldloop.settings import Settings
from goldloop.store import run_rows
from otlp_builders import request, span, to_json

TRACE = "5b8efff798038103d269b633813fc60c"


def _body() -> bytes:
    spans = [
        span(
            TRACE,
            "eee19b7ec3c1b174",
            None,
            "invoke_agent support",
            {"gen_ai.operation.name": "invoke_agent", "input.value": "where is my refund?"},
        ),
        span(
            TRACE,
            "eee19b7ec3c1b175",
            "eee19b7ec3c1b174",
            "chat gpt-4o-mini",
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 412,
                "gen_ai.usage.output_tokens": 61,
                "gen_ai.input.messages": '[{"role": "user", "parts": '
                '[{"type": "text", "content": "where is my refund?"}]}]',
                "tag.tags": ["prod"],
            },
            kind=3,
        ),
    ]
    return request(spans).SerializeToString()


@pytest.fixture(scope="module")
def pool() -> Iterator[IngestPool]:
    p = IngestPool(1)
    assert p.wait_ready(60), "the ingest worker process did not start"
    yield p
    p.close()


def test_workers_decode_exactly_what_the_server_would(pool: IngestPool) -> None:
    body = _body()
    for encoding, payload in ((PROTOBUF, body), (JSON, to_json(request_from(body)))):
        jobs = pool.jobs
        assert pool.decode(payload, encoding) == decode_and_map(payload, encoding)
        assert pool.jobs == jobs + 1  # decoded by the worker, not by a fallback


def request_from(body: bytes) -> object:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    return ExportTraceServiceRequest.FromString(body)


def test_rejected_spans_are_reported_the_same(pool: IngestPool) -> None:
    bad = request([span(TRACE, "eee19b7ec3c1b176", None, "ok", {})])
    bad.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x01\x02"  # 2 bytes, not 8
    body = bad.SerializeToString()
    patches, problems = decode_and_map(body, PROTOBUF)
    assert problems
    assert not patches
    assert pool.decode(body, PROTOBUF) == (patches, problems)


def test_an_invalid_body_fails_as_in_the_server(pool: IngestPool) -> None:
    with pytest.raises(InvalidInput) as in_server:
        decode_and_map(b"\xff\xff not protobuf", PROTOBUF)
    with pytest.raises(InvalidInput) as in_worker:
        pool.decode(b"\xff\xff not protobuf", PROTOBUF)
    assert in_worker.value.message == in_server.value.message
    assert in_worker.value.details == in_server.value.details


def test_the_c_decoder_can_be_turned_off_in_the_workers_too() -> None:
    """otlp_c_decoder=false reaches the worker: its error is the generated classes' own."""
    garbage = b"\x0a\x05abc"  # a field whose length runs past the end
    with pytest.raises(InvalidInput, match="Error parsing message"):
        decode_and_map(garbage, PROTOBUF, c_decoder=False)
    p = IngestPool(1, c_decoder=False)
    try:
        assert p.wait_ready(60)
        with pytest.raises(InvalidInput, match="Error parsing message"):
            p.decode(garbage, PROTOBUF)
        body = _body()
        assert p.decode(body, PROTOBUF) == decode_and_map(body, PROTOBUF)
    finally:
        p.close()
    if otel_decode.c_decode_trace_request is not None:  # and the C decoder says it its own way
        with pytest.raises(InvalidInput, match="runs past the end of its message"):
            decode_and_map(garbage, PROTOBUF)


def test_a_dead_worker_costs_no_request() -> None:
    p = IngestPool(1)
    try:
        assert p.wait_ready(60)
        executor = p._executor
        assert executor is not None
        for pid in list(executor._processes):  # the worker processes of this pool
            os.kill(pid, signal.SIGKILL)
        body = _body()
        # The broken pool is noticed and dropped: this request is decoded in the server ...
        assert p.decode(body, PROTOBUF) is None
        assert p.restarts == 1
        # ... and the workers come back for later ones.
        assert p.wait_ready(60)
        assert p.decode(body, PROTOBUF) == decode_and_map(body, PROTOBUF)
    finally:
        p.close()


def _memory_files_open() -> list[str]:
    """This process's open memory files made by an ingest pool."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
            target = os.readlink(f"/proc/self/fd/{fd}")
            if "goldloop-ingest" in target:
                found.append(target)
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="memory files are a Linux hand-off")
def test_bodies_and_results_travel_in_memory_files_on_linux(pool: IngestPool) -> None:
    assert pool.transport == ingest_pool.MEMORY_FILES
    body = _body()
    assert pool.decode(body, PROTOBUF) == decode_and_map(body, PROTOBUF)
    # kept for the next requests, not one pair per request
    assert 0 < len(_memory_files_open()) <= 2 * (2 * pool.processes + 2)


def test_the_pipes_give_the_same_results() -> None:
    p = IngestPool(1, shared_memory=False)
    try:
        assert p.wait_ready(60)
        assert p.transport == ingest_pool.PIPES
        body = _body()
        assert p.decode(body, PROTOBUF) == decode_and_map(body, PROTOBUF)
        with pytest.raises(InvalidInput):
            p.decode(b"\xff\xff not protobuf", PROTOBUF)
    finally:
        p.close()


@pytest.mark.skipif(sys.platform != "linux", reason="memory files are a Linux hand-off")
def test_memory_files_are_closed_after_failures_and_with_the_pool() -> None:
    before = _memory_files_open()
    p = IngestPool(1)
    try:
        assert p.wait_ready(60)
        with ThreadPoolExecutor(4) as threads:  # concurrent jobs, each with a pair of files
            results = list(threads.map(lambda _: p.decode(_body(), PROTOBUF), range(24)))
        assert all(r == decode_and_map(_body(), PROTOBUF) for r in results)
        for _ in range(5):
            with pytest.raises(InvalidInput):
                p.decode(b"\xff\xff not protobuf", PROTOBUF)
        assert len(_memory_files_open()) - len(before) <= 2 * p._keep
        executor = p._executor
        assert executor is not None
        for pid in list(executor._processes):
            os.kill(pid, signal.SIGKILL)
        assert p.decode(_body(), PROTOBUF) is None  # the job's files are closed, not kept
    finally:
        p.close()
    assert _memory_files_open() == before


@pytest.mark.skipif(sys.platform != "linux", reason="memory files are a Linux hand-off")
def test_a_failed_hand_off_costs_no_request(
    pool: IngestPool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def disk_full(fd: int, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    assert pool.decode(_body(), PROTOBUF) is not None  # leaves a pair of files to reuse
    spare = len(pool._spare)
    monkeypatch.setattr(ingest_pool, "_write_all", disk_full)
    assert pool.decode(_body(), PROTOBUF) is None  # the caller decodes it in the server
    assert "memory file hand-off failed" in caplog.text
    assert len(pool._spare) == spare - 1  # the failed job's files were closed, not kept
    monkeypatch.undo()
    assert pool.decode(_body(), PROTOBUF) == decode_and_map(_body(), PROTOBUF)


@pytest.fixture
async def pooled_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(dataclasses.replace(settings, ingest_processes=1))
    async with application.router.lifespan_context(application):
        yield application


async def test_otlp_through_the_workers_lands_runs(pooled_app: FastAPI, settings: Settings) -> None:
    key = (settings.data_dir / "admin-key").read_text().strip()
    pool = pooled_app.state.ctx.ingest_pool
    assert pool is not None
    assert pool.wait_ready(60)
    transport = httpx.ASGITransport(app=pooled_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://goldloop.test", headers={"x-api-key": key}
    ) as c:
        r = await c.post(
            "/v1/traces", content=_body(), headers={"content-type": "application/x-protobuf"}
        )
        assert r.status_code == 200, r.text
        assert pool.jobs == 1
        trace = (await c.get(f"/api/v1/traces/{TRACE}")).json()
    runs = {run["name"]: run for run in trace["runs"]}
    assert set(runs) == {"invoke_agent support", "chat gpt-4o-mini"}
    chat = runs["chat gpt-4o-mini"]
    assert (chat["kind"], chat["model"]) == ("llm", "gpt-4o-mini")
    assert chat["usage"]["input_tokens"] == 412
    assert chat["tags"] == ["prod"]
    assert chat["inputs"]["messages"][0]["parts"][0]["content"] == "where is my refund?"


def test_the_setting_is_bounded() -> None:
    from goldloop.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="ingest_processes"):
        load_settings({"ingest_processes": -1}, environ={})
    assert load_settings({}, environ={}).ingest_processes == 2


def test_a_closed_pool_leaves_decoding_to_the_server() -> None:
    p = IngestPool(1)
    assert p.wait_ready(60)
    p.close()
    assert p.decode(_body(), PROTOBUF) is None  # the caller decodes in process
    assert not p.wait_ready(1)  # and nothing starts again


def test_workers_that_cannot_start_leave_decoding_to_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_processes(*args: object, **kwargs: object) -> None:
        raise OSError("no semaphores here")

    monkeypatch.setattr(ingest_pool, "ProcessPoolExecutor", no_processes)
    p = IngestPool(1)
    try:
        assert not p.wait_ready(10)  # the failure is noticed, not waited on forever
        assert p.decode(_body(), PROTOBUF) is None  # the caller decodes in process
        assert not p._starting  # and no retry before RETRY_START_S
    finally:
        p.close()


# --- runs merged and encoded as new ones in the workers (``new_runs``) ---------------------

NOW = 1_764_200_000_000_000
RICH = "7c1d0a4b9e2f48d6a3b5c7e9f1a2b3c4"


def _rich_body(trace: str = RICH) -> bytes:
    """Spans that touch every part of a new run's row: error status, tokens and cost, tags,
    session and user, metadata, and an output over the payload limit (truncated)."""
    spans = [
        span(
            trace,
            "a1a1a1a1a1a1a1a1",
            None,
            "invoke_agent refunds",
            {
                "gen_ai.operation.name": "invoke_agent",
                "input.value": "can I get a refund on a non-refundable rate?",
                "session.id": "s-42",
                "user.id": "u-7",
                "metadata": '{"tier": "gold"}',
            },
            error="tool timed out",
        ),
        span(
            trace,
            "b2b2b2b2b2b2b2b2",
            "a1a1a1a1a1a1a1a1",
            "chat gpt-4o-mini",
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 412,
                "gen_ai.usage.output_tokens": 61,
                "gen_ai.usage.cache_read.input_tokens": 100,
                "gen_ai.output.messages": '[{"role": "assistant", "parts": '
                '[{"type": "text", "content": "' + "refundable " * 80 + '"}]}]',
                "tag.tags": ["prod", "refunds"],
            },
            kind=3,
        ),
        span(
            trace,
            "c3c3c3c3c3c3c3c3",
            "a1a1a1a1a1a1a1a1",
            "execute_tool lookup_rate",
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "lookup_rate",
                "gen_ai.tool.call.arguments": '{"rate": "NR-1"}',
            },
        ),
    ]
    return request(spans).SerializeToString()


@pytest.fixture
async def encoding_app(settings: Settings) -> AsyncIterator[FastAPI]:
    small = dataclasses.replace(settings, ingest_processes=1, max_run_payload_bytes=300)
    application = create_app(small, clock=lambda: NOW)
    async with application.router.lifespan_context(application):
        pool = application.state.ctx.ingest_pool
        assert pool is not None
        assert pool.new_runs is not None
        assert pool.wait_ready(60)
        yield application


def _ctx(app: FastAPI) -> ServiceContext:
    ctx = app.state.ctx
    assert isinstance(ctx, ServiceContext)
    return ctx


def pool_of(ctx: ServiceContext) -> IngestPool:
    assert ctx.ingest_pool is not None
    return ctx.ingest_pool


def _as_admin_of(ctx: ServiceContext, name: str) -> Principal:
    return Principal(auth.create_workspace(ctx, name).id, "test", "admin")


_PER_WORKSPACE = {"pk", "workspace_id", "project_id", "seq"}


def _stored(ctx: ServiceContext, who: Principal, trace: str = RICH) -> list[dict[str, Any]]:
    """The trace's rows as stored, without what differs between workspaces by design."""
    rows = ctx.db.read(lambda c: run_rows.rows_by_trace(c, who.workspace_id, trace))
    return [{k: v for k, v in row.items() if k not in _PER_WORKSPACE} for row in rows]


def test_runs_encoded_in_a_worker_are_stored_as_the_server_stores_them(
    encoding_app: FastAPI,
) -> None:
    ctx = _ctx(encoding_app)
    pool = ctx.ingest_pool
    assert pool is not None
    pooled, in_server = _as_admin_of(ctx, "pooled"), _as_admin_of(ctx, "in-server")
    decoded = pool.decode(_rich_body(), PROTOBUF)
    assert decoded is not None
    runs, problems = decoded
    assert isinstance(runs, ingest.NewRuns)
    assert len(runs.encoded) == 3
    assert not problems
    assert ingest.write_new_runs(ctx, pooled, runs, default_project="default")
    in_process = dataclasses.replace(ctx, ingest_pool=None)
    otlp.ingest_traces(in_process, in_server, _rich_body(), PROTOBUF)

    stored = _stored(ctx, pooled)
    assert stored == _stored(ctx, in_server)
    # and the comparison covered what it should: the parts computed in the worker
    by_name = {row["name"]: row for row in stored}
    chat = by_name["chat gpt-4o-mini"]
    assert chat["cost"] is not None
    assert chat["cost"] > 0
    assert chat["tags"] == ["prod", "refunds"]
    assert chat["outputs"]["_goldloop_truncated"]["original_bytes"] > 300
    assert chat["created_at"] == chat["updated_at"] == NOW
    agent = by_name["invoke_agent refunds"]
    assert (agent["status"], agent["session_id"], agent["is_root"]) == ("error", "s-42", True)
    for who in (pooled, in_server):
        projects = ctx.db.read(lambda c, w=who: project_names(c, w.workspace_id))
        assert projects == ["agent-svc"]


def project_names(conn: Any, workspace_id: str) -> list[str]:
    from goldloop.store.schema import projects

    query = sa.select(projects.c.name).where(projects.c.workspace_id == workspace_id)
    return sorted(conn.execute(query).scalars())


def test_a_retried_request_is_merged_not_duplicated(encoding_app: FastAPI) -> None:
    """A retry finds its runs stored: nothing is inserted twice, the request is merged (decoded
    again in the server) and acknowledged, and a request mixing stored and new runs lands whole."""
    ctx = _ctx(encoding_app)
    who = _as_admin_of(ctx, "retries")
    first = otlp.ingest_traces(ctx, who, _rich_body(), PROTOBUF, header_project="p")
    before = _stored(ctx, who)
    again = otlp.ingest_traces(ctx, who, _rich_body(), PROTOBUF, header_project="p")
    assert (first.accepted, again.accepted) == (3, 3)
    assert _stored(ctx, who) == before
    decoded = pool_of(ctx).decode(_rich_body(), PROTOBUF)
    assert decoded is not None
    assert isinstance(decoded[0], ingest.NewRuns)
    assert not ingest.write_new_runs(ctx, who, decoded[0], default_project="p")  # left to merge

    one_more = request(
        [
            span(RICH, "a1a1a1a1a1a1a1a1", None, "invoke_agent refunds", {"tag.tags": ["late"]}),
            span(RICH, "d4d4d4d4d4d4d4d4", "a1a1a1a1a1a1a1a1", "retrieve docs", {}),
        ]
    ).SerializeToString()
    assert otlp.ingest_traces(ctx, who, one_more, PROTOBUF, header_project="p").accepted == 2
    after = {row["name"]: row for row in _stored(ctx, who)}
    assert set(after) == {row["name"] for row in before} | {"retrieve docs"}
    assert after["invoke_agent refunds"]["tags"] == ["late"]
    assert after["invoke_agent refunds"]["status"] == "error"  # merged, not replaced


def test_a_span_sent_twice_in_one_request_is_merged(encoding_app: FastAPI) -> None:
    ctx = _ctx(encoding_app)
    who = _as_admin_of(ctx, "twice")
    root = span(RICH, "a1a1a1a1a1a1a1a1", None, "agent", {"tag.tags": ["one"]})
    again = span(RICH, "a1a1a1a1a1a1a1a1", None, "agent", {"tag.tags": ["two"]})
    body = request([root, again]).SerializeToString()
    assert otlp.ingest_traces(ctx, who, body, PROTOBUF).accepted == 2
    (row,) = _stored(ctx, who)
    assert row["tags"] == ["one", "two"]


def test_concurrent_copies_of_a_request_converge(encoding_app: FastAPI) -> None:
    """Clients retry whole requests, sometimes while the first copy is still being written: every
    copy is acknowledged and the trace is stored once, as one copy alone stores it."""
    ctx = _ctx(encoding_app)
    alone, raced = _as_admin_of(ctx, "alone"), _as_admin_of(ctx, "raced")
    otlp.ingest_traces(ctx, alone, _rich_body(), PROTOBUF)
    with ThreadPoolExecutor(6) as workers:
        results = list(
            workers.map(lambda _: otlp.ingest_traces(ctx, raced, _rich_body(), PROTOBUF), range(6))
        )
    assert [r.accepted for r in results] == [3] * 6
    assert _stored(ctx, raced) == _stored(ctx, alone)


# --- native batches through the workers -----------------------------------------------------

NATIVE_TRACE = "native-trace-1"


def _native_doc(project: str | None = "batch-project") -> dict[str, Any]:
    t0 = 1_764_150_816_534_505
    long_answer = "a non-refundable rate is not refundable. " * 20  # over the 300-byte limit
    doc: dict[str, Any] = {
        "runs": [
            {
                "id": "n-root",
                "trace_id": NATIVE_TRACE,
                "name": "agent",
                "kind": "chain",
                "start_time": t0,
                "end_time": t0 + 5_000,
                "inputs": {"question": "can I get a refund?"},
                "outputs": {"answer": long_answer},
                "tags": ["prod"],
                "metadata": {"tier": "gold"},
                "session_id": "conv-9",
                "unknown_field": "ignored",
            },
            {
                "id": "n-llm",
                "trace_id": NATIVE_TRACE,
                "parent_id": "n-root",
                "name": "chat",
                "kind": "llm",
                "project": "own-project",
                "start_time": t0 + 100,
                "end_time": t0 + 4_000,
                "model": "gpt-4o-mini",
                "usage": {"input_tokens": 412, "output_tokens": 61, "cache_read_tokens": 100},
                "error": "rate limited",
            },
        ]
    }
    if project is not None:
        doc["project"] = project
    return doc


def _body_of(doc: Any) -> bytes:
    import orjson

    return orjson.dumps(doc)


def _stored_native(ctx: ServiceContext, who: Principal) -> list[dict[str, Any]]:
    return _stored(ctx, who, NATIVE_TRACE)


def _projects_of_runs(ctx: ServiceContext, who: Principal) -> dict[str, str]:
    from goldloop.store.schema import projects, runs

    query = (
        sa.select(runs.c.id, projects.c.name)
        .join(projects, projects.c.id == runs.c.project_id)
        .where(runs.c.workspace_id == who.workspace_id)
    )
    return ctx.db.read(lambda c: {row.id: row.name for row in c.execute(query)})


def test_native_batches_through_a_worker_are_stored_as_the_server_stores_them(
    encoding_app: FastAPI,
) -> None:
    ctx = _ctx(encoding_app)
    pool = pool_of(ctx)
    pooled, in_server = _as_admin_of(ctx, "native-pooled"), _as_admin_of(ctx, "native-server")
    jobs = pool.jobs
    body = _body_of(_native_doc())
    assert ingest.ingest_native_body(ctx, pooled, body, header_project="header-project") == 2
    assert pool.jobs == jobs + 1  # parsed, validated and encoded in the worker
    in_process = dataclasses.replace(ctx, ingest_pool=None)
    ingest.ingest_native_body(in_process, in_server, body, header_project="header-project")

    stored = _stored_native(ctx, pooled)
    assert stored == _stored_native(ctx, in_server)
    by_id = {row["id"]: row for row in stored}
    assert by_id["n-root"]["outputs"]["_goldloop_truncated"]["original_bytes"] > 300
    assert by_id["n-llm"]["cost"] > 0
    assert by_id["n-llm"]["status"] == "error"
    assert (by_id["n-root"]["created_at"], by_id["n-root"]["tags"]) == (NOW, ["prod"])
    # a run's own project, else the batch's, which wins over the header (as in the server)
    expected = {"n-root": "batch-project", "n-llm": "own-project"}
    assert _projects_of_runs(ctx, pooled) == expected == _projects_of_runs(ctx, in_server)
    headed = _as_admin_of(ctx, "native-header")
    no_project = _body_of(_native_doc(None))
    ingest.ingest_native_body(ctx, headed, no_project, header_project="header-project")
    assert _projects_of_runs(ctx, headed) == {"n-root": "header-project", "n-llm": "own-project"}


def test_native_batch_errors_from_a_worker_match_the_server(encoding_app: FastAPI) -> None:
    ctx = _ctx(encoding_app)
    in_process = dataclasses.replace(ctx, ingest_pool=None)
    who = _as_admin_of(ctx, "native-errors")
    bad_type = _native_doc()
    bad_type["runs"][1]["start_time"] = "yesterday-ish"
    for body in (
        b"{not json",
        _body_of([1, 2]),
        _body_of({"project": 3, "runs": []}),
        _body_of(bad_type),
    ):
        with pytest.raises(InvalidInput) as in_server:
            ingest.ingest_native_body(in_process, who, body)
        jobs = pool_of(ctx).jobs
        with pytest.raises(InvalidInput) as in_worker:
            ingest.ingest_native_body(ctx, who, body)
        assert (in_worker.value.message, in_worker.value.details) == (
            in_server.value.message,
            in_server.value.details,
        )
        assert pool_of(ctx).jobs == jobs  # a rejected body is not counted as handled
    assert _stored_native(ctx, who) == []


def test_a_native_end_after_its_start_is_merged(encoding_app: FastAPI) -> None:
    ctx = _ctx(encoding_app)
    who = _as_admin_of(ctx, "native-start-end")
    start = {"runs": [{"id": "r1", "trace_id": "t-se", "name": "agent", "start_time": 10}]}
    end = {"runs": [{"id": "r1", "trace_id": "t-se", "end_time": 25, "outputs": {"a": 1}}]}
    assert ingest.ingest_native_body(ctx, who, _body_of(start)) == 1
    assert ingest.ingest_native_body(ctx, who, _body_of(end)) == 1
    (row,) = _stored(ctx, who, "t-se")
    assert (row["name"], row["start_time"], row["end_time"], row["latency_us"]) == (
        "agent",
        10,
        25,
        15,
    )
    assert (row["outputs"], row["status"]) == ({"a": 1}, "success")
