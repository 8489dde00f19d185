"""The operator's metrics port (``metrics_port``): ``GET /metrics`` without an API key, for
every workspace, on its own socket (``metrics_host``), so Prometheus can scrape a server that
is too busy, or refusing keys, on its main port. Anything else gets 404.

A small threaded HTTP server with the background-work contract: ``start()``, ``stop(timeout)``.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from goldloop.http.routes.server_metrics import CONTENT_TYPE
from goldloop.services import server_health
from goldloop.services.context import ServiceContext

log = logging.getLogger("goldloop.server")


class MetricsPort:
    def __init__(self, ctx: ServiceContext, host: str, port: int) -> None:
        self.ctx = ctx
        outer = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "goldloop-metrics"
            sys_version = ""

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self._answer(404, b"not found: this port serves GET /metrics only\n")
                    return
                try:
                    body = server_health.exposition(outer.ctx, None).encode()
                except Exception:  # the database is away: say so, keep serving
                    log.exception("metrics port: could not gather the metrics")
                    self._answer(503, b"metrics unavailable: see the server log\n")
                    return
                self._answer(200, body, CONTENT_TYPE)

            def _answer(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # a scrape every few seconds is not news

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="goldloop-metrics-port", daemon=True
        )
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics", *self._server.server_address[:2])

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout)
            self._thread = None
        self._server.server_close()
