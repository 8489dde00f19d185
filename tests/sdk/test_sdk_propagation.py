"""W3C traceparent: one trace across two services (an httpx client and an ASGI app)."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from sdk_support import RecordingServer, configure_to, iter_tree

import goldloop
from goldloop.sdk.propagation import parse_traceparent


def billing_service() -> FastAPI:
    app = FastAPI()

    @goldloop.traced(kind="tool")
    def charge(amount: int) -> dict[str, Any]:
        return {"charged": amount}

    @app.post("/charge")
    def handler(request: Request, body: dict[str, int]) -> dict[str, Any]:
        with goldloop.continue_trace(request.headers):
            return charge(body["amount"])

    return app


async def test_one_trace_spans_two_services(recorder: RecordingServer) -> None:
    configure_to(recorder)
    transport = httpx.ASGITransport(app=billing_service())

    @goldloop.traced(kind="agent")
    async def checkout(amount: int) -> dict[str, Any]:
        async with httpx.AsyncClient(transport=transport, base_url="http://billing") as c:
            resp = await c.post(
                "/charge", json={"amount": amount}, headers=goldloop.inject_headers()
            )
        return dict(resp.json())

    assert await checkout(42) == {"charged": 42}
    assert goldloop.flush(10)
    runs = recorder.runs()
    root = recorder.by_name("checkout")
    charge = recorder.by_name("charge")
    assert charge["trace_id"] == root["trace_id"]
    assert charge["parent_id"] == root["id"]
    assert list(iter_tree(runs, root["id"])) == [(0, "checkout"), (1, "charge")]


def test_propagation_through_a_thread_and_sync_headers(recorder: RecordingServer) -> None:
    configure_to(recorder)
    seen: dict[str, str] = {}

    @goldloop.traced
    def downstream() -> None:
        pass

    def other_service(headers: dict[str, str]) -> None:
        with goldloop.continue_trace(headers):
            downstream()
            seen.update(goldloop.inject_headers())  # no run open: the remote parent passes on

    @goldloop.traced
    def upstream() -> None:
        headers = goldloop.inject_headers({"tracestate": "vendor=1,goldloop=stale"})
        assert headers["tracestate"].endswith(",vendor=1")
        worker = threading.Thread(target=other_service, args=(dict(headers),))
        worker.start()
        worker.join()

    upstream()
    assert goldloop.flush(10)
    up, down = recorder.by_name("upstream"), recorder.by_name("downstream")
    assert down["parent_id"] == up["id"]
    assert down["trace_id"] == up["trace_id"]
    assert seen["traceparent"].split("-")[1] == up["trace_id"]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
            ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"),  # an OTel caller
        ),
        ({"TraceParent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}, "ok"),
        ({"traceparent": "00-00000000000000000000000000000000-b7ad6b7169203331-01"}, None),
        ({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"}, None),
        ({"traceparent": "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, None),
        ({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x"}, None),
        ({"traceparent": "garbage"}, None),
        ({}, None),
    ],
)
def test_parse_traceparent(headers: dict[str, str], expected: Any) -> None:
    got = parse_traceparent(headers)
    if expected == "ok":
        assert got is not None
    else:
        assert got == expected


def test_a_tracestate_that_does_not_match_the_span_is_ignored() -> None:
    headers = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "goldloop=11111111-2222-4333-8444-555555555555",
    }
    assert parse_traceparent(headers) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")


def test_inject_without_a_run_changes_nothing(fresh_sdk: None) -> None:
    goldloop.configure(tracing=False)
    assert goldloop.inject_headers({"a": "b"}) == {"a": "b"}
    with goldloop.continue_trace({"traceparent": "junk"}):
        assert goldloop.inject_headers() == {}
