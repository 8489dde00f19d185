"""The real Goldloop server on a real socket, and the real ``langsmith`` SDK pointed at it.

Used by the LangSmith compatibility tests: uvicorn runs the app in a thread on 127.0.0.1 (an
ephemeral port), and the SDK talks to it exactly as it would to any LangSmith endpoint.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import langsmith
import langsmith.schemas
import langsmith.utils
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from goldloop.http.app import create_app
from goldloop.settings import Settings

# Generous: the test machine may be heavily loaded; no test asserts on time.
HTTP_TIMEOUT = 120.0
INGEST_MODES = ["batch", "multipart", "multipart-zstd"]

# The installed SDK line, e.g. (0, 15). The compatibility tests run under both the 0.15 line (the
# test extra) and the 0.11 line (.ci/run's second virtualenv); see docs/langsmith.md.
SDK: tuple[int, int] = (
    int(langsmith.__version__.split(".")[0]),
    int(langsmith.__version__.split(".")[1]),
)

# An example's expected outputs: the 0.15 line names them ``reference_outputs`` (and warns on the
# old ``outputs``), the 0.11 line only knows ``outputs`` (and silently drops the new name).
REF_OUTPUTS = (
    "reference_outputs"
    if "reference_outputs" in langsmith.schemas.ExampleCreate.model_fields
    else "outputs"
)


def ref(outputs: dict[str, Any] | None) -> dict[str, Any]:
    """``{REF_OUTPUTS: outputs}``: spread into ``create_example(...)`` or an example dict."""
    return {REF_OUTPUTS: outputs}


def needs_sdk(min_version: tuple[int, int], why: str) -> pytest.MarkDecorator:
    """Skip under an older SDK line that genuinely lacks a call; ``why`` names what it lacks."""
    have = ".".join(map(str, SDK))
    want = ".".join(map(str, min_version))
    return pytest.mark.skipif(
        min_version > SDK, reason=f"langsmith {have} lacks {why} (needs >= {want})"
    )


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()

    def install_signal_handlers(self) -> None:  # not the main thread: leave signals alone
        pass


@dataclass
class Live:
    base: str  # http://127.0.0.1:PORT
    key: str  # the admin key of workspace "default"
    app: FastAPI
    seen: list[tuple[str, str, str]]  # (method, path, content-encoding) of every request
    mode: str  # what /info advertises (setting langsmith_ingest)

    def paths(self, suffix: str) -> list[tuple[str, str, str]]:
        return [r for r in self.seen if r[1].endswith(suffix)]

    @property
    def endpoint(self) -> str:
        return self.base + "/langsmith"

    def api(self) -> httpx.Client:
        """Goldloop's OWN API, to check what the SDK stored."""
        return httpx.Client(
            timeout=HTTP_TIMEOUT, base_url=self.base + "/api/v1", headers={"x-api-key": self.key}
        )


@contextmanager
def live_server(settings: Settings, ingest_mode: str = "batch") -> Iterator[Live]:
    settings = dataclasses.replace(settings, langsmith_ingest=ingest_mode)
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    seen: list[tuple[str, str, str]] = []

    async def recording(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            encoding = dict(scope["headers"]).get(b"content-encoding", b"").decode()
            seen.append((scope["method"], scope["path"], encoding))
        await app(scope, receive, send)

    server = _Server(uvicorn.Config(recording, log_level="warning", lifespan="on"))

    def run() -> None:
        asyncio.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=run, name="goldloop-live", daemon=True)
    thread.start()
    try:
        assert server.ready.wait(60), "the server did not start"
        key = settings.admin_key_path.read_text().strip()
        yield Live(f"http://127.0.0.1:{port}", key, app, seen, ingest_mode)
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()


def sdk_env(monkeypatch: pytest.MonkeyPatch, live: Live, project: str) -> None:
    """LANGSMITH_* for this test only, and the SDK's cached env lookups cleared around it."""
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", live.endpoint)
    monkeypatch.setenv("LANGSMITH_API_KEY", live.key)
    monkeypatch.setenv("LANGSMITH_PROJECT", project)
    for name in ("LANGCHAIN_TRACING_V2", "LANGCHAIN_ENDPOINT", "LANGCHAIN_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    _clear_sdk_caches()


def _clear_sdk_caches() -> None:
    langsmith.utils.get_env_var.cache_clear()
    langsmith.utils.get_tracer_project.cache_clear()


@contextmanager
def sdk_client(live: Live) -> Iterator[langsmith.Client]:
    client = langsmith.Client(api_url=live.endpoint, api_key=live.key)
    if live.mode == "multipart-zstd":
        # The SDK's tracing thread reads /info and only then switches to zstd; runs traced
        # before that go uncompressed. Wait (bounded) for the switch so the path is certain.
        deadline = time.monotonic() + 120
        while client.compressed_traces is None and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert client.compressed_traces is not None, "the SDK did not switch to zstd"
    try:
        yield client
    finally:
        client.close()
        _clear_sdk_caches()
