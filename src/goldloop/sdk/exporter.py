"""The background exporter: finished runs -> batches -> ``POST /api/v1/runs/batch``.

Modelled on OpenTelemetry's BatchSpanProcessor, with several requests in flight:
- A traced call only appends the finished ``Run`` to a bounded deque (no I/O, no JSON, no lock
  in the common case). When the deque is full the run is dropped and counted, and one warning
  per ``warn_interval_s`` says so.
- One daemon worker thread wakes every ``flush_interval_s``, or early when a batch fills, or on
  ``flush()``/``shutdown()``. It applies the redaction hooks and encodes batches with orjson,
  then hands each to a sending thread: up to ``max_in_flight`` requests go at once (the sending
  threads start as the backlog needs them). A batch is ``batch_size`` runs when the queue is
  short and grows with the backlog (backlog / ``max_in_flight``) up to ``max_batch_bytes``, so
  the exporter drains at the rate the server accepts. The worker takes runs off the queue only
  when a request slot is free: the runs held are at most the queue plus the requests in flight.
- Sending threads gzip and post (``_export_http.deliver``): 408/429/5xx and connection errors
  are retried with exponential backoff and jitter, honouring ``Retry-After`` (which holds every
  sending thread), for at most ``retry_s`` per batch; then the batch is dropped and counted.
  413 halves ``max_batch_bytes`` and splits the batch. Other 4xx answers drop it (rejected).
- What goes over the wire: one complete item per run when it ends. Runs still open at a flush
  (or open longer than one interval) are also sent once as a start item (same id, no end), so a
  long agent run is visible while it runs; the server merges the two in any order.
- ``flush(timeout)`` waits for the requests of everything queued before it; ``shutdown(timeout)``
  sends what it can before its deadline and logs what was not sent; an ``atexit`` hook calls it.
  After ``fork()`` the child gets a new, empty queue, a new HTTP client and new threads.
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

from goldloop._version import __version__
from goldloop.sdk.config import SDKConfig
from goldloop.sdk.export_sending import MAX_BATCH_RUNS, Job, SendingMixin
from goldloop.sdk.run import Run, now_us

if TYPE_CHECKING:  # imported by the worker thread, never by the traced call (see the module doc)
    from goldloop.sdk.export_http import AsyncTransportSender, Backoff, Sender

log = logging.getLogger("goldloop.sdk")

BATCH_PATH = "/api/v1/runs/batch"
MAX_OPEN_RUNS = 100_000
FIRST_GUESS_BYTES_PER_RUN = 512
_DROP_CAUSES = (
    "dropped_queue_full",
    "dropped_failed",
    "dropped_rejected",
    "dropped_shutdown",
    "dropped_after_shutdown",
)


class BatchExporter(SendingMixin):
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
        self._lanes = config.max_in_flight
        self._warn_every = config.warn_interval_s
        self._clock = clock
        self._sleep_fn = sleep
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
        self._cv = threading.Condition(self._lock)  # jobs, in-flight requests, flush targets
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_waiters: list[threading.Event] = []
        self._stopping = False
        self._closed = False
        self._deadline: float | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()  # set when the worker has imported and built its client
        self._sender: Sender | AsyncTransportSender | None = None  # made by the worker thread
        self._backoff: Backoff | None = None
        self._jobs: deque[Job] = deque()
        self._in_flight: dict[int, int] = {}  # job seq -> complete runs in it
        self._flush_targets: list[tuple[int, threading.Event]] = []
        self._senders: list[threading.Thread] = []
        self._idle_senders = 0
        self._senders_exit = False
        self._seq = 0
        self._taken = 0  # runs the worker took off the queue (enqueued = taken + queue depth)
        self._window = float(self._lanes)  # requests in flight allowed now (see _send)
        self._cap = float(MAX_BATCH_RUNS)  # most runs a batch grows to now (see _send)
        self._max_bytes = self.config.max_batch_bytes
        self._bytes_per_run = float(FIRST_GUESS_BYTES_PER_RUN)
        self._next_drop_warning = float("-inf")
        self._warn_lock = threading.Lock()
        self._dropped_at_warning = 0
        self._next_error_log = float("-inf")
        self._counters: dict[str, int] = dict.fromkeys(
            (
                "exported",
                *_DROP_CAUSES,
                "filtered",
                "hook_errors",
                "encode_errors",
                "starts_sent",
                "batches",
                "retries",
                "peak_in_flight",
                "largest_batch",
            ),
            0,
        )
        self.last_error: str | None = None

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
        if len(queue) < self._max and not self._closed:
            queue.append(run)  # counted as enqueued by the worker when it takes it
            if len(queue) == self._batch_size:
                self._wake.set()
        elif self._closed:
            self._counters["dropped_after_shutdown"] += 1
        else:
            self._counters["dropped_queue_full"] += 1
            if self._clock() >= self._next_drop_warning:
                self._warn_dropped(
                    f"the queue is full ({self._max} runs waiting: the application traces "
                    f"faster than {self.config.endpoint} accepts, or it cannot be reached; "
                    f"raise queue_size or max_in_flight if the server can take more)"
                )

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
        """Send what is queued within ``timeout`` seconds, then stop the worker; log what could
        not be sent. Idempotent; False when something was left unsent."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            self._stopping = True
            self._deadline = self._clock() + timeout
            dropped_before = self._dropped()
        self._wake.set()
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            queued = len(self._queue) + sum(self._in_flight.values())
            in_flight = len(self._in_flight)
        alive = thread is not None and thread.is_alive()
        lost = self._dropped() - dropped_before
        if queued or lost:
            log.warning(
                "goldloop exporter: shutdown(%ss) did not send %d run(s): %d dropped (the "
                "server did not accept them before the deadline), %d still queued or in %d "
                "request(s) in flight at the deadline; %d dropped since the start "
                "(goldloop.exporter_stats()). Raise shutdown_timeout_s to give the exit more time",
                timeout,
                queued + lost,
                lost,
                queued,
                in_flight,
                self._dropped(),
            )
        return not alive and not queued and not lost

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self._counters)
        out["enqueued"] = self._taken + len(self._queue)
        out["dropped"] = sum(out[cause] for cause in _DROP_CAUSES)
        out["queue_depth"] = len(self._queue)
        out["open_runs"] = len(self._open)
        with self._lock:
            out["in_flight"] = len(self._in_flight)
            out["in_flight_window"] = int(self._window)
            out["batch_cap"] = max(self._batch_size, int(self._cap))
        out["max_batch_bytes"] = self._max_bytes
        out["last_error"] = self.last_error
        return out

    def _dropped(self) -> int:
        return sum(self._counters[cause] for cause in _DROP_CAUSES)

    # -- the worker thread ----------------------------------------------------------------------
    def _worker(self) -> None:
        # Give the GIL back first: Thread.start() in the traced call returns at once, and the
        # imports below run while the application goes on (they share the GIL, as any thread).
        self._stop.wait(0.02)
        try:
            import gzip  # noqa: F401  every module the worker uses, imported here once

            import orjson  # noqa: F401

            from goldloop.sdk import export_http as _export_http

            self._sender = _export_http.make_sender(self.config.transport, self._lanes)
            self._backoff = _export_http.Backoff()
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
                    self._export_round(everything=bool(waiters) or stopping)
                except Exception as exc:  # a bug here must not kill the thread
                    self._note_error(f"exporter error: {type(exc).__name__}: {exc}")
                with self._cv:
                    for waiter in waiters:
                        self._flush_targets.append((self._seq, waiter))
                    self._settle_flushes()
                if stopping:
                    self._drain_in_flight()
                    return
        finally:
            with self._cv:
                self._senders_exit = True
                self._cv.notify_all()
                for _, waiter in self._flush_targets:
                    waiter.set()
                self._flush_targets = []
            sender, self._sender = self._sender, None
            if sender is not None:
                with contextlib.suppress(Exception):
                    sender.close()

    def _export_round(self, *, everything: bool) -> None:
        """Hand the queue's runs to sending threads: all of them on flush/shutdown, else full
        batches (a partial one waits for the interval)."""
        starts = self._due_starts(everything)
        if starts:
            items = [i for i in (self._item(r, start_only=True) for r in starts) if i is not None]
            self._counters["starts_sent"] += len(items)
            self._submit(items, runs=0)
        queue = self._queue
        first = True
        while queue and (first or everything or len(queue) >= self._batch_size):
            first = False
            if not self._wait_for_slot():
                break
            backlog = len(queue)
            by_backlog = -(-backlog // self._lanes)
            by_bytes = max(1, int(self._max_bytes / self._bytes_per_run))
            take = min(backlog, max(self._batch_size, min(by_backlog, int(self._cap))), by_bytes)
            runs: list[Run] = []
            self._taken += take  # only this thread takes from the queue: len(queue) >= take
            with contextlib.suppress(IndexError):
                for _ in range(take):
                    runs.append(queue.popleft())
            items = [i for i in (self._item(r, start_only=False) for r in runs) if i is not None]
            self._submit(items, runs=len(items))
        if self._past_deadline() and queue:
            n = len(queue)
            self._taken += n
            for _ in range(n):
                with contextlib.suppress(IndexError):
                    queue.popleft()
            self._drop("dropped_shutdown", n, "the shutdown deadline came")

    # -- encoding ---------------------------------------------------------------------------------
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

    def _item(self, run: Run, *, start_only: bool) -> dict[str, Any] | None:
        from goldloop.sdk.export_encode import apply_hooks

        try:
            item = run.to_item(start_only=start_only)
        except Exception as exc:
            self._counters["encode_errors"] += 1
            self._note_error(f"could not encode run {run.id}: {type(exc).__name__}: {exc}")
            return None
        if self.config.redact_inputs or self.config.redact_outputs or self.config.process_run:
            return apply_hooks(self, item)
        return item

    def _encode(self, items: list[dict[str, Any]]) -> bytes | None:
        """The JSON array of ``items``: one orjson call; item by item only when that fails."""
        from goldloop.sdk.export_encode import encode_items

        return encode_items(self, items)

    def count(self, counter: str, n: int = 1) -> None:
        self._counters[counter] += n

    def _sleep(self, seconds: float) -> None:
        if self._sleep_fn is not None:
            self._sleep_fn(seconds)
        elif self._stopping:
            time.sleep(max(0.0, seconds))  # bounded by the shutdown deadline (checked by deliver)
        else:
            self._stop.wait(seconds)  # shutdown() cuts the wait short

    # -- telling the user -------------------------------------------------------------------------
    def _drop(self, cause: str, n: int, reason: str) -> None:
        with self._lock:
            self._counters[cause] += n
        self._tell_dropped(n, reason)

    def _tell_dropped(self, n: int, reason: str) -> None:
        self.last_error = f"dropped {n} runs: {reason}" if n else reason
        if n and self._clock() >= self._next_drop_warning:
            self._warn_dropped(reason)

    def _warn_dropped(self, reason: str) -> None:
        """At most one warning per ``warn_interval_s`` about dropped runs, whatever the cause
        (application threads and sending threads may drop at the same moment: one of them)."""
        with self._warn_lock:
            now = self._clock()
            if now < self._next_drop_warning:
                return
            self._next_drop_warning = now + self._warn_every
            total = self._dropped()
            since, self._dropped_at_warning = total - self._dropped_at_warning, total
        log.warning(
            "goldloop exporter: dropped %d run(s) since the last warning (%d in all; "
            "goldloop.exporter_stats() counts them by cause): %s. Next warning about drops in "
            "%ss at the earliest",
            since,
            total,
            reason,
            self._warn_every,
        )

    def _note_error(self, message: str) -> None:
        self.last_error = message
        now = self._clock()
        if now >= self._next_error_log:  # at most one warning per warn_interval_s
            self._next_error_log = now + self._warn_every
            log.warning("goldloop exporter: %s", message)
