"""The real app on a real socket (uvicorn in a thread on 127.0.0.1, an ephemeral port), for
the synchronous API client and the CLI, which speak plain HTTP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from goldloop.http.app import create_app
from goldloop.settings import Settings


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()

    def install_signal_handlers(self) -> None:  # not the main thread
        pass


@dataclass(frozen=True)
class LiveApi:
    endpoint: str
    key: str


@contextmanager
def live_api(settings: Settings) -> Iterator[LiveApi]:
    with serve_app(create_app(settings), settings) as api:
        yield api


@contextmanager
def serve_app(app: FastAPI, settings: Settings) -> Iterator[LiveApi]:
    """``app`` served by uvicorn on 127.0.0.1 (an ephemeral port) until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert server.ready.wait(60), "the server did not start"
        key = settings.admin_key_path.read_text().strip()
        yield LiveApi(f"http://127.0.0.1:{port}", key)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
