"""The bound on ingestion requests in flight: 503 + Retry-After before the body is read."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from goldloop.http.ingest_gate import IngestGateMiddleware


async def test_requests_beyond_the_bound_get_503_without_reading_the_body() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()
    bodies_read: list[str] = []

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        bodies_read.append(scope["path"])
        entered.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    gate = IngestGateMiddleware(slow_app, max_inflight=1)
    transport = httpx.ASGITransport(app=gate)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        first = asyncio.create_task(c.post("/v1/traces", content=b"x"))
        await entered.wait()
        second = await c.post("/api/v1/runs/batch", content=b"y")
        assert second.status_code == 503
        assert second.headers["retry-after"] == "1"
        assert second.json()["error"]["code"] == "overloaded"
        other = asyncio.create_task(c.get("/api/v1/projects"))  # not ingestion: not gated
        release.set()
        assert (await first).status_code == 200
        assert (await other).status_code == 200
        assert (await c.post("/v1/logs", content=b"z")).status_code == 200
    assert bodies_read == ["/v1/traces", "/api/v1/projects", "/v1/logs"]
    assert gate.inflight == 0
    assert gate.rejected == 1
