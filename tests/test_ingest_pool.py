"""OTLP requests decoded in ingest worker processes (``ingest_processes``).

The workers must give exactly what decoding in the server process gives, an invalid body must
fail the same way, and a worker that dies must cost no request.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI

from goldloop.domain.errors import InvalidInput
from goldloop.domain.otel_decode import JSON, PROTOBUF
from goldloop.http.app import create_app
from goldloop.services.ingest_pool import IngestPool
from goldloop.services.otlp import decode_and_map
from goldloop.settings import Settings
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
    assert load_settings({}, environ={}).ingest_processes == 1


def test_a_closed_pool_leaves_decoding_to_the_server() -> None:
    p = IngestPool(1)
    assert p.wait_ready(60)
    p.close()
    assert p.decode(_body(), PROTOBUF) is None  # the caller decodes in process
    assert not p.wait_ready(1)  # and nothing starts again


def test_workers_that_cannot_start_leave_decoding_to_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from goldloop.services import ingest_pool

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
