"""Issue 22, items 1 and 2, in process: the key is checked from the headers before any body
byte is read or any ingestion slot taken; bodies are bounded in size, in total and in time."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from goldloop.http.app import create_app
from goldloop.http.deps import get_admin, get_principal
from goldloop.http.request_guard import needs_key
from goldloop.settings import Settings

INGEST = ["/v1/traces", "/v1/logs", "/api/v1/runs/batch"]
KEYED_POSTS = [*INGEST, "/api/v1/projects", "/langsmith/runs/batch", "/langsmith/runs/multipart"]


@pytest.fixture
async def guarded(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[FastAPI]:
    """The app with the settings a test names in ``@pytest.mark.parametrize('limits', ...)``."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    app = create_app(dataclasses.replace(settings, **overrides))
    async with app.router.lifespan_context(app):
        yield app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def key_of(settings: Settings) -> str:
    return settings.admin_key_path.read_text().strip()


class Body:
    """A request body that records whether the server read it, and can stall after a prefix."""

    def __init__(self, prefix: bytes = b'{"x": 1}', stall: bool = False) -> None:
        self.prefix = prefix
        self.stall = stall
        self.read = False
        self.release = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.read = True
        yield self.prefix
        if self.stall:
            await self.release.wait()


@pytest.mark.parametrize("path", KEYED_POSTS)
@pytest.mark.parametrize("key", [None, "gl_not-a-real-key"])
async def test_no_valid_key_gets_401_before_any_body_byte(
    guarded: FastAPI, path: str, key: str | None
) -> None:
    body = Body(stall=True)
    headers = {"x-api-key": key} if key else {}
    async with client(guarded) as c:
        r = await asyncio.wait_for(c.post(path, content=body, headers=headers), 10)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"
    assert r.headers["connection"] == "close"
    assert not body.read


@pytest.mark.parametrize("guarded", [{"ingest_max_inflight": 2}], indirect=True)
async def test_requests_without_a_key_take_no_ingest_slot(
    guarded: FastAPI, settings: Settings
) -> None:
    stalled = [Body(stall=True) for _ in range(8)]
    async with client(guarded) as c:
        attacks = [
            asyncio.create_task(c.post(INGEST[i % 3], content=b)) for i, b in enumerate(stalled)
        ]
        await asyncio.sleep(0)  # every attack has sent its headers
        headers = {"x-api-key": key_of(settings), "content-type": "application/json"}
        for path, payload in [
            ("/v1/traces", b'{"resourceSpans": []}'),
            ("/v1/logs", b'{"resourceLogs": []}'),
            ("/api/v1/runs/batch", b'{"runs": []}'),
        ]:
            r = await c.post(path, content=payload, headers=headers)
            assert r.status_code < 300, (path, r.status_code, r.text)
        for b in stalled:
            b.release.set()
        assert {(await a).status_code for a in attacks} == {401}


@pytest.mark.parametrize(
    "guarded", [{"max_request_bytes": 1000, "max_public_request_bytes": 100}], indirect=True
)
async def test_bodies_above_the_limit_get_413(guarded: FastAPI, settings: Settings) -> None:
    async with client(guarded) as c:
        keyed = {"x-api-key": key_of(settings)}
        r = await c.post("/api/v1/projects", content=b"x" * 1001, headers=keyed)
        assert r.status_code == 413
        assert r.json()["error"]["details"] == {"limit_bytes": 1000}
        assert r.headers["connection"] == "close"
        # no Content-Length (chunked): cut off while reading
        r = await c.post("/api/v1/projects", content=Body(b"x" * 1001), headers=keyed)
        assert r.status_code == 413
        # without a key the public limit holds, on the sign-in form too
        r = await c.post("/login", content=b"a=" + b"x" * 100)
        assert r.status_code == 413
        assert "max_public_request_bytes" in r.json()["error"]["message"]
        assert (await c.post("/login", content=b"a=b")).status_code == 403  # CSRF, as before


@pytest.mark.parametrize("guarded", [{"body_timeout_s": 0.3, "body_min_rate": 1}], indirect=True)
async def test_a_stalled_body_gets_408(guarded: FastAPI, settings: Settings) -> None:
    body = Body(stall=True)
    async with client(guarded) as c:
        r = await asyncio.wait_for(
            c.post("/api/v1/runs/batch", content=body, headers={"x-api-key": key_of(settings)}),
            10,
        )
    assert r.status_code == 408
    assert r.json()["error"]["code"] == "request_timeout"
    assert r.headers["connection"] == "close"


@pytest.mark.parametrize(
    "guarded", [{"max_body_bytes_in_flight": 1000, "body_timeout_s": 30}], indirect=True
)
async def test_bodies_in_flight_are_bounded_in_total(guarded: FastAPI, settings: Settings) -> None:
    keyed = {"x-api-key": key_of(settings)}
    holder = Body(b"x" * 800, stall=True)
    async with client(guarded) as c:
        held = asyncio.create_task(c.post("/api/v1/projects", content=holder, headers=keyed))
        for _ in range(20):
            await asyncio.sleep(0.01)  # the holder's first 800 bytes are taken
        r = await c.post("/api/v1/projects", content=b"y" * 500, headers=keyed)
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert "max_body_bytes_in_flight" in r.json()["error"]["message"]
        holder.release.set()
        await held
        r = await c.post("/api/v1/projects", json={"name": "after"}, headers=keyed)
        assert r.status_code == 201


@pytest.mark.parametrize("guarded", [{"max_unauthenticated_per_client": 2}], indirect=True)
async def test_keyless_bodies_per_client_address_are_bounded(guarded: FastAPI) -> None:
    stalled = [Body(b"a=b", stall=True) for _ in range(2)]
    async with client(guarded) as c:
        tasks = [asyncio.create_task(c.post("/login", content=b)) for b in stalled]
        for _ in range(20):
            await asyncio.sleep(0.01)
        r = await c.post("/login", content=b"a=b")
        assert r.status_code == 429
        assert r.headers["retry-after"] == "1"
        assert (await c.get("/healthz")).status_code == 200  # no body: never counted
        for b in stalled:
            b.release.set()
        await asyncio.gather(*tasks)
        assert (await c.post("/login", content=b"a=b")).status_code == 403


async def test_public_paths_need_no_key(guarded: FastAPI) -> None:
    async with client(guarded) as c:
        for path in ["/healthz", "/readyz", "/login", "/langsmith/info", "/api/v1/openapi.json"]:
            assert (await c.get(path)).status_code == 200, path
        assert (await c.get("/api/v1/docs")).status_code == 200
        assert (await c.get("/static/goldloop.css")).status_code == 200


def _requires_principal(dependant: Any) -> bool:
    return any(
        d.call in (get_principal, get_admin) or _requires_principal(d)
        for d in dependant.dependencies
    )


def test_the_guard_knows_every_route_that_needs_a_key(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, otlp_path_prefix="/otel"))
    checked = 0
    for context in iter_route_contexts(app.routes):
        # the route with the dependencies of the routers it is included in (FastAPI internals)
        dependant = getattr(context._effective_route, "dependant", None)
        if dependant is None or context.path_format is None:
            continue
        path = context.path_format.replace("{", "").replace("}", "")
        assert needs_key(path, "/otel") == _requires_principal(dependant), path
        checked += 1
    assert checked > 150
