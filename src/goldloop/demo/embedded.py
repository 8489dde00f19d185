"""The demo's embedded Goldloop server (uvicorn in a thread, workers on) and the local webhook
receiver the alert is sent to."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvicorn

from goldloop.http.app import create_app
from goldloop.settings import Settings


class DemoError(Exception):
    """A demo step did not reach its outcome in time (the message says which and why)."""


class EmbeddedServer:
    """`goldloop serve` in this process: API, dashboard and workers on 127.0.0.1."""

    def __init__(self, settings: Settings, sock: socket.socket | None = None) -> None:
        """``sock``: a bound socket to serve on (see ``goldloop.cli.ports``), else bind
        ``settings.host:settings.port`` when started."""
        self.settings = settings
        self._sock = sock
        config = uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="goldloop-demo-server")
        self.port = settings.port if sock is None else int(sock.getsockname()[1])

    def _run(self) -> None:
        self._server.run(sockets=None if self._sock is None else [self._sock])

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    def start(self, timeout_s: float) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise DemoError(
                    f"the server did not start on {self.settings.host}:{self.port} "
                    "(its error is printed above)"
                )
            if time.monotonic() > deadline:
                raise DemoError(f"the server did not start within {timeout_s:.0f} s")
            time.sleep(0.05)
        sockets = [s for srv in self._server.servers for s in srv.sockets]
        if sockets:  # --port 0: the port the system chose
            self.port = int(sockets[0].getsockname()[1])

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(self.settings.shutdown_timeout_s + 10)
        if self._sock is not None:
            self._sock.close()


@dataclass
class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 that records every JSON body POSTed to it."""

    bodies: list[Any] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with state._cond:
                    state.bodies.append(body)
                    state._cond.notify_all()
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/alerts"

    def start(self) -> None:
        self._thread.start()

    def wait(self, count: int, timeout_s: float) -> list[Any]:
        """Block until at least ``count`` bodies arrived; DemoError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self.bodies) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DemoError(f"no alert reached the receiver within {timeout_s:.0f} s")
                self._cond.wait(left)
            return list(self.bodies)

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(5)
