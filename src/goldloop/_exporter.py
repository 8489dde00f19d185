"""The background exporter: finished runs -> batches -> ``POST /api/v1/runs/batch``.

Modelled on OpenTelemetry's BatchSpanProcessor:
- A traced call only appends the finished ``Run`` to a bounded deque (no I/O, no JSON, no lock
  in the common case). When the deque is full the run is dropped and counted.
- One daemon worker thread wakes every ``flush_interval_s``, or early when a batch fills, or on
  ``flush()``/``shutdown()``. It applies the redaction hooks, encodes each run with orjson,
  gzips, and posts batches of at most ``batch_size`` runs (and ~4 MiB).
- 408/429/5xx and connection errors are retried with exponential backoff and jitter, honouring
  ``Retry-After``, for at most ``retry_s`` per batch; then the batch is dropped and counted.
  413 splits the batch in two. Other 4xx answers drop the batch (counted as rejected).
- What goes over the wire: one complete item per run when it ends. Runs still open at a flush
  (or open longer than one interval) are also sent once as a start item (same id, no end), so a
  long agent run is visible while it runs; the server merges the two in any order.
- ``flush(timeout)`` and ``shutdown(timeout)`` have deadlines; an ``atexit`` hook calls
  shutdown. After ``fork()`` the child gets a new, empty queue, a new HTTP client and a new thread.
- Nothing here raises into the application; failures are logged (rate-limited) and counted.
- Nothing slow happens on the application's thread, the first traced call included: this module
  imports no HTTP client, event loop, JSON encoder or compressor; the worker thread imports them
  and builds its HTTP client (loading the TLS trust store takes a few hundred ms) before its
  first export.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from goldloop._config import SDKConfig
from goldloop._run import Run, now_us, snapshot
from goldloop._version import __version__

if TYPE_CHECKING:  # imported by the worker thread, never by the traced call (see the module doc)
    import asyncio

    import httpx

log = logging.getLogger("goldloop.sdk")

BATCH_PATH = "/api/v1/runs/batch"
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_OPEN_RUNS = 100_000
_RETRY_STATUSES = frozenset({408, 429})


def _default(value: Any) -> Any:
    return repr(value)


def _sanitize(value: Any) -> Any:
    """Make a value orjson can encode: big ints become strings."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, dict):
        return {str(k): _sanitize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitize(v) for v in value]
    return repr(value)


class _Sender:
    """Posts bytes with a sync httpx client (any sync transport, by default real sockets)."""

    def __init__(self, transport: httpx.BaseTransport | None) -> None:
        import httpx

        self._client = httpx.Client(transport=transport, follow_redirects=False)

    def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> httpx.Response:
        return self._client.post(url, content=body, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._client.close()


class _AsyncTransportSender:
    """Same, over an async transport (e.g. ``httpx.ASGITransport`` for an in-process app).

    The worker thread owns a private event loop for it; everything happens on that thread.
    """

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None

    def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> httpx.Response:
        import asyncio

        import httpx

        if self._loop is None or self._client is None:
            self._loop = asyncio.new_event_loop()
            self._client = httpx.AsyncClient(transport=self._transport)
        coro = self._client.post(url, content=body, headers=headers, timeout=timeout)
        return self._loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def close(self) -> None:
        if self._loop is not None and self._client is not None:
            self._loop.run_until_complete(self._client.aclose())
            self._loop.close()
            self._loop = None


class BatchExporter:
    def __init__(
        self,
        config: SDKConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.config = config
        self._url = config.endpoint.rstrip("/") + BATCH_PATH
        self._headers = {
            "content-type": "application/json",
            "user-agent": f"goldloop-python/{__version__}",
        }
        if config.api_key:
            self._headers["x-api-key"] = config.api_key
        if config.gzip:
            self._headers["content-encoding"] = "gzip"
        self._batch_size = config.batch_size
        self._max = config.queue_size
        self._interval = config.flush_interval_s
        self._clock = clock
        self._sleep_fn = sleep
        self._counters: dict[str, int] = {}
        self._last_log = 0.0
        self._init_state()
        self._started = False
        weak = weakref.WeakMethod(self._after_fork)

        def after_fork() -> None:
            method = weak()
            if method is not None:
                method()

        weak_ready = weakref.WeakMethod(self._wait_until_ready)

        def before_fork() -> None:
            method = weak_ready()
            if method is not None:
                method()

        os.register_at_fork(before=before_fork, after_in_child=after_fork)

    # -- state that a forked child must not share ------------------------------------------
    def _init_state(self) -> None:
        self._queue: deque[Run] = deque()
        self._open: dict[int, Run] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_waiters: list[threading.Event] = []
        self._stopping = False
        self._closed = False
        self._deadline: float | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()  # set when the worker has imported and built its client
        self._sender: _Sender | _AsyncTransportSender | None = None  # made by the worker thread
        self._counters = dict.fromkeys(
            (
                "enqueued",
                "exported",
                "dropped_queue_full",
                "dropped_failed",
                "dropped_rejected",
                "dropped_after_shutdown",
                "filtered",
                "hook_errors",
                "encode_errors",
                "starts_sent",
                "batches",
                "retries",
            ),
            0,
        )
        self.last_error: str | None = None

    def _make_sender(self) -> _Sender | _AsyncTransportSender:
        import httpx

        transport = self.config.transport
        if isinstance(transport, httpx.AsyncBaseTransport):
            return _AsyncTransportSender(transport)
        return _Sender(transport)

    def _wait_until_ready(self) -> None:
        """Before ``fork()``: let the worker finish its imports, or the child would inherit
        half-imported modules (bounded: a fork in the first moments waits at most 5 s)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._ready.wait(5.0)

    def _after_fork(self) -> None:
        was_running = self._started and not self._stopping
        self._init_state()  # the parent keeps sending what it queued; the child starts empty
        self._started = False
        if was_running:
            self.start()

    # -- the traced call's side: cheap, never blocks -----------------------------------------
    def on_start(self, run: Run) -> None:
        if len(self._open) < MAX_OPEN_RUNS:
            self._open[id(run)] = run

    def on_end(self, run: Run) -> None:
        self._open.pop(id(run), None)
        queue = self._queue
        if self._closed:
            self._counters["dropped_after_shutdown"] += 1
        elif len(queue) >= self._max:
            self._counters["dropped_queue_full"] += 1
        else:
            queue.append(run)
            self._counters["enqueued"] += 1
            if len(queue) == self._batch_size:
                self._wake.set()

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._thread = threading.Thread(target=self._worker, name="goldloop-exporter", daemon=True)
        self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Send everything queued now (and start items of open runs); False on timeout."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return not self._queue
        done = threading.Event()
        with self._lock:
            self._flush_waiters.append(done)
        self._wake.set()
        return done.wait(timeout)

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Send what is queued within ``timeout`` seconds, then stop the worker. Idempotent."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            self._stopping = True
            self._deadline = self._clock() + timeout
        self._wake.set()
        self._stop.set()
        thread = self._thread
        if thread is None:
            return not self._queue
        thread.join(timeout)
        return not thread.is_alive()

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self._counters)
        out["queue_depth"] = len(self._queue)
        out["open_runs"] = len(self._open)
        out["last_error"] = self.last_error
        return out

    # -- the worker thread ----------------------------------------------------------------------
    def _worker(self) -> None:
        # Give the GIL back first: Thread.start() in the traced call returns at once, and the
        # imports below run while the application goes on (they share the GIL, as any thread).
        self._stop.wait(0.02)
        try:
            import gzip  # noqa: F401  every module the worker uses, imported here once
            import random  # noqa: F401

            import orjson  # noqa: F401

            import goldloop._client_base  # noqa: F401

            self._sender = self._make_sender()
        except Exception as exc:  # cannot send at all: count what comes as failed, do not raise
            self._note_error(f"exporter cannot start: {type(exc).__name__}: {exc}")
        finally:
            self._ready.set()
        try:
            while True:
                with self._lock:
                    waiters, self._flush_waiters = self._flush_waiters, []
                    stopping = self._stopping
                if not waiters and not stopping and len(self._queue) < self._batch_size:
                    self._wake.wait(self._interval)
                    self._wake.clear()
                    with self._lock:
                        waiters, self._flush_waiters = self._flush_waiters, []
                        stopping = self._stopping
                try:
                    self._export_round(all_open=bool(waiters) or stopping)
                except Exception as exc:  # a bug here must not kill the thread
                    self._note_error(f"exporter error: {type(exc).__name__}: {exc}")
                for waiter in waiters:
                    waiter.set()
                if stopping:
                    return
        finally:
            sender, self._sender = self._sender, None
            if sender is not None:
                with contextlib.suppress(Exception):
                    sender.close()

    def _export_round(self, *, all_open: bool) -> None:
        starts = self._due_starts(all_open)
        pending = len(self._queue)
        first = True
        while first or pending > 0:
            first = False
            runs: list[Run] = []
            while pending > 0 and len(runs) < self._batch_size:
                try:
                    runs.append(self._queue.popleft())
                except IndexError:
                    pending = 0
                    break
                pending -= 1
            if self._past_deadline():
                self._counters["dropped_failed"] += len(runs) + pending
                for _ in range(pending):
                    self._queue.popleft()
                return
            encoded = [b for b in (self._encode(r, start_only=True) for r in starts) if b]
            self._counters["starts_sent"] += len(encoded)
            starts = []
            encoded.extend(b for b in (self._encode(r, start_only=False) for r in runs) if b)
            if encoded:
                self._post_all(encoded)

    def _due_starts(self, all_open: bool) -> list[Run]:
        if not self._open:
            return []
        try:
            candidates = list(self._open.values())
        except RuntimeError:  # resized by another thread mid-copy; catch them next round
            return []
        cutoff = now_us() - int(self._interval * 1_000_000)
        due = []
        for run in candidates:
            if (
                not run.start_sent
                and run.end_time is None
                and (all_open or run.start_time <= cutoff)
            ):
                run.start_sent = True
                due.append(run)
        return due

    def _past_deadline(self) -> bool:
        return self._deadline is not None and self._clock() > self._deadline

    def _encode(self, run: Run, *, start_only: bool) -> bytes | None:
        item: dict[str, Any] | None = run.to_item(start_only=start_only)
        item = self._apply_hooks(item) if item is not None else None
        if item is None:
            return None
        import orjson

        opts = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
        try:
            return orjson.dumps(item, default=_default, option=opts)
        except (TypeError, orjson.JSONEncodeError):
            try:
                return orjson.dumps(_sanitize(item), option=opts)
            except (TypeError, orjson.JSONEncodeError) as exc:
                self._counters["encode_errors"] += 1
                self._note_error(f"could not encode run {run.id}: {exc}")
                return None

    def _apply_hooks(self, item: dict[str, Any]) -> dict[str, Any] | None:
        cfg = self.config
        for key, hook in (("inputs", cfg.redact_inputs), ("outputs", cfg.redact_outputs)):
            if hook is not None and item.get(key) is not None:
                try:
                    item[key] = hook(snapshot(item[key]))
                except Exception as exc:  # fail closed: never send what could not be redacted
                    self._counters["hook_errors"] += 1
                    self._note_error(f"redact_{key} failed: {type(exc).__name__}")
                    item[key] = {"redaction_failed": True}
        if cfg.process_run is not None:
            try:
                processed = cfg.process_run(snapshot(item))
            except Exception as exc:
                self._counters["hook_errors"] += 1
                self._note_error(f"process_run failed: {type(exc).__name__}; run dropped")
                return None
            if processed is None:
                self._counters["filtered"] += 1
            return processed
        return item

    def _post_all(self, encoded: list[bytes]) -> None:
        chunk: list[bytes] = []
        size = 0
        for blob in encoded:
            if chunk and (len(chunk) >= self._batch_size or size + len(blob) > MAX_BATCH_BYTES):
                self._post(chunk)
                chunk, size = [], 0
            chunk.append(blob)
            size += len(blob) + 1
        if chunk:
            self._post(chunk)

    def _post(self, chunk: list[bytes]) -> None:
        import gzip
        import random

        import httpx
        import orjson

        from goldloop._client_base import retry_after_s

        sender = self._sender
        if sender is None:
            self._counters["dropped_failed"] += len(chunk)
            return
        project = orjson.dumps(self.config.project)
        body = b'{"project":' + project + b',"runs":[' + b",".join(chunk) + b"]}"
        if self.config.gzip:
            body = gzip.compress(body, compresslevel=1)  # fast; JSON still shrinks ~6x
        give_up_at = self._clock() + self.config.retry_s
        attempt = 0
        while True:
            resp: httpx.Response | None = None
            limit = min(give_up_at, self._deadline or give_up_at)
            timeout = max(0.05, min(self.config.timeout_s, limit - self._clock()))
            try:
                resp = sender.post(self._url, body, self._headers, timeout)
                status: int | None = resp.status_code
                reason = f"HTTP {status}"
            except (TimeoutError, httpx.HTTPError, OSError) as exc:
                status, reason = None, f"{type(exc).__name__}: {exc}"
                if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | OSError):
                    reason = (
                        f"cannot reach {self.config.endpoint} (endpoint from "
                        f"{self.config.endpoint_source}; is the server running there?): {reason}"
                    )
            if status is not None and 200 <= status < 300:
                self._counters["exported"] += len(chunk)
                self._counters["batches"] += 1
                return
            if status == 413 and len(chunk) > 1:
                half = len(chunk) // 2
                self._post(chunk[:half])
                self._post(chunk[half:])
                return
            if status is not None and status < 500 and status not in _RETRY_STATUSES:
                self._counters["dropped_rejected"] += len(chunk)
                detail = resp.text[:300] if resp is not None else ""
                self._note_error(f"server rejected {len(chunk)} runs: {reason} {detail}")
                return
            delay = retry_after_s(resp)
            if delay is None:
                delay = min(0.5 * 2**attempt, 10.0) * (0.5 + random.random() / 2)
            limit = min(give_up_at, self._deadline or give_up_at)
            if self._clock() + delay > limit:
                self._counters["dropped_failed"] += len(chunk)
                self._note_error(f"dropped {len(chunk)} runs after {attempt + 1} tries: {reason}")
                return
            self._counters["retries"] += 1
            attempt += 1
            self._sleep(delay)

    def _sleep(self, seconds: float) -> None:
        if self._sleep_fn is not None:
            self._sleep_fn(seconds)
        elif self._stopping:
            time.sleep(max(0.0, seconds))  # bounded by the shutdown deadline (checked above)
        else:
            self._stop.wait(seconds)  # shutdown() cuts the wait short

    def _note_error(self, message: str) -> None:
        self.last_error = message
        now = time.monotonic()
        if now - self._last_log >= 60.0:  # at most one warning a minute
            self._last_log = now
            log.warning("goldloop exporter: %s", message)
