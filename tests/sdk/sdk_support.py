"""Test support for the SDK: a recording ingest server on 127.0.0.1 and SDK state resets.

``RecordingServer`` is a fake at the true boundary (the Goldloop server as seen by the SDK): a
real HTTP server on a real socket that stores every request (gunzipped, parsed) and answers
from a script of responses, default ``202 {"accepted": n}``. ``block()`` makes it hold requests
until ``release()``, to model a slow server without sleeping.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import goldloop
import sdk_state
from quiet_http import QuietHTTPServer


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    raw: bytes
    body: dict[str, Any]


@dataclass
class Reply:
    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


class RecordingServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: list[Reply] = []
        self.arrived = 0  # requests whose body was read, answered or still held by block()
        self._cond = threading.Condition()
        self._gate = threading.Event()
        self._gate.set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                data = gzip.decompress(raw) if self.headers.get("content-encoding") else raw
                body = json.loads(data)
                with outer._cond:
                    outer.arrived += 1
                    outer._cond.notify_all()
                outer._gate.wait(30)
                with outer._cond:
                    outer.requests.append(
                        Recorded(
                            self.path, {k.lower(): v for k, v in self.headers.items()}, raw, body
                        )
                    )
                    reply = outer.script.pop(0) if outer.script else Reply()
                    outer._cond.notify_all()
                payload = reply.body
                if payload is None:
                    payload = json.dumps({"accepted": len(body.get("runs", []))}).encode()
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def block(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.requests) >= n, timeout)

    def wait_for_arrivals(self, n: int, timeout: float = 10.0) -> bool:
        """True once ``n`` requests have arrived (even if ``block()`` holds their answer)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.arrived >= n, timeout)

    def items(self) -> list[dict[str, Any]]:
        return [run for r in self.requests for run in r.body["runs"]]

    def runs(self) -> dict[str, dict[str, Any]]:
        """Items merged by id the way the server must (null/absent = unchanged)."""
        merged: dict[str, dict[str, Any]] = {}
        for item in self.items():
            into = merged.setdefault(item["id"], {})
            into.update({k: v for k, v in item.items() if v is not None})
        return merged

    def by_name(self, name: str) -> dict[str, Any]:
        found = [r for r in self.runs().values() if r["name"] == name]
        assert len(found) == 1, f"{len(found)} runs named {name!r}: {found}"
        return found[0]

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


class FakeTime:
    """Monotonic clock + sleep for the exporter: sleeping advances the clock and is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def reset_sdk() -> None:
    """Back to the import-time state: off, nothing configured, env not read yet."""
    sdk_state.reset_sdk(2.0)


def configure_to(server: RecordingServer, **options: Any) -> goldloop.SDKConfig:
    options.setdefault("flush_interval_s", 3600.0)  # only flush() or a full batch sends
    return goldloop.configure(tracing=True, endpoint=server.url, api_key="gl_test", **options)


def iter_tree(runs: dict[str, dict[str, Any]], root_id: str) -> Iterator[tuple[int, str]]:
    def walk(run_id: str, depth: int) -> Iterator[tuple[int, str]]:
        yield depth, runs[run_id]["name"]
        children = sorted(
            (r for r in runs.values() if r.get("parent_id") == run_id),
            key=lambda r: (r["start_time"], r["name"]),
        )
        for child in children:
            yield from walk(child["id"], depth + 1)

    yield from walk(root_id, 0)
