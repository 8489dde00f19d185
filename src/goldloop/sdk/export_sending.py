"""The exporter's sending side: request slots, the sending threads, one batch's fate.

A mixin of ``BatchExporter`` (``_exporter.py``, where the state it uses is made and documented):
the worker thread waits for a free slot and submits encoded batches; up to ``max_in_flight``
daemon threads post them (``_export_http.deliver``), count what happened, adapt the window of
requests in flight and the batch size cap to the server's answers, and wake the flushes whose
requests have all ended.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from goldloop.sdk.config import MIN_BATCH_BYTES, SDKConfig

if TYPE_CHECKING:  # imported by the worker thread, never by the traced call
    from collections.abc import Callable

    from goldloop.sdk.export_http import AsyncTransportSender, Backoff, Sender

MAX_BATCH_RUNS = 2_500  # ~0.2 s of a quiet server's ingest: big enough, short enough


@dataclass
class Job:
    seq: int
    payload: bytes  # the JSON array of items
    runs: int  # complete runs in it (start items are not runs)


class SendingMixin:
    # state owned by BatchExporter._init_state
    config: SDKConfig
    last_error: str | None
    _url: str
    _headers: dict[str, str]
    _clock: Callable[[], float]
    _deadline: float | None
    _lock: threading.Lock
    _cv: threading.Condition
    _counters: dict[str, int]
    _batch_size: int
    _lanes: int
    _window: float
    _cap: float
    _max_bytes: int
    _bytes_per_run: float
    _seq: int
    _jobs: deque[Job]
    _in_flight: dict[int, int]
    _flush_targets: list[tuple[int, threading.Event]]
    _senders: list[threading.Thread]
    _idle_senders: int
    _senders_exit: bool
    _sender: Sender | AsyncTransportSender | None
    _backoff: Backoff | None

    def _past_deadline(self) -> bool:
        raise NotImplementedError

    def _encode(self, items: list[dict[str, Any]]) -> bytes | None:
        raise NotImplementedError

    def _sleep(self, seconds: float) -> None:
        raise NotImplementedError

    def _tell_dropped(self, n: int, reason: str) -> None:
        raise NotImplementedError

    def _wait_for_slot(self) -> bool:
        """Block until fewer than ``max_in_flight`` requests are in flight; False if the
        shutdown deadline passed first."""
        with self._cv:
            while len(self._in_flight) >= self._window:
                if self._past_deadline():
                    return False
                self._cv.wait(0.1)
            return not self._past_deadline()

    def _submit(self, items: list[dict[str, Any]], *, runs: int) -> None:
        if not items:
            return
        payload = self._encode(items)
        if payload is None:
            return
        if len(payload) > self._max_bytes and len(items) > 1:
            half = len(items) // 2  # runs is 0 (start items) or len(items)
            self._submit(items[:half], runs=runs and half)
            self._submit(items[half:], runs=runs and len(items) - half)
            return
        self._bytes_per_run = 0.8 * self._bytes_per_run + 0.2 * (len(payload) / len(items))
        self._counters["largest_batch"] = max(self._counters["largest_batch"], len(items))
        with self._cv:
            self._seq += 1
            job = Job(self._seq, payload, runs)
            self._jobs.append(job)
            self._in_flight[job.seq] = runs
            peak = max(self._counters["peak_in_flight"], len(self._in_flight))
            self._counters["peak_in_flight"] = peak
            if self._idle_senders < len(self._jobs) and len(self._senders) < self._lanes:
                thread = threading.Thread(
                    target=self._sending, name="goldloop-exporter-send", daemon=True
                )
                self._senders.append(thread)
                thread.start()
            self._cv.notify_all()

    def _drain_in_flight(self) -> None:
        """At stop: wait for the requests in flight (each bounded by its timeout and by the
        deadline), so their outcome is counted before the worker ends."""
        with self._cv:
            while self._in_flight:
                self._cv.wait(0.1)

    def _settle_flushes(self) -> None:
        """(lock held) Wake the flushes whose requests have all ended."""
        if not self._flush_targets:
            return
        oldest = min(self._in_flight, default=None)
        keep = []
        for target, waiter in self._flush_targets:
            if oldest is None or oldest > target:
                waiter.set()
            else:
                keep.append((target, waiter))
        self._flush_targets = keep

    # -- the sending threads --------------------------------------------------------------------
    def _sending(self) -> None:
        while True:
            with self._cv:
                self._idle_senders += 1
                while not self._jobs and not self._senders_exit:
                    self._cv.wait()
                self._idle_senders -= 1
                if not self._jobs:
                    return
                job = self._jobs.popleft()
            drops: list[tuple[str, int, str]] = []
            try:
                self._send(job.payload, job.runs, drops)
            except Exception as exc:  # a bug here must not lose the count or kill the thread
                drops.append(("dropped_failed", job.runs, f"{type(exc).__name__}: {exc}"))
            with self._cv:  # counted and out of flight at once (shutdown() reads both)
                for cause, n, _ in drops:
                    self._counters[cause] += n
                del self._in_flight[job.seq]
                self._settle_flushes()
                self._cv.notify_all()
            for _, n, reason in drops:
                self._tell_dropped(n, reason)

    def _send(self, payload: bytes, runs: int, drops: list[tuple[str, int, str]]) -> None:
        """Post one batch; what it had to drop goes to ``drops`` (cause, runs, reason)."""
        import gzip

        import orjson

        from goldloop.sdk.export_http import deliver

        sender, backoff = self._sender, self._backoff
        if sender is None or backoff is None:
            drops.append(("dropped_failed", runs, self.last_error or "the exporter cannot send"))
            return
        body = b'{"project":' + orjson.dumps(self.config.project) + b',"runs":' + payload + b"}"
        if self.config.gzip:
            body = gzip.compress(body, compresslevel=1)  # fast; JSON still shrinks ~6x
        outcome = deliver(
            sender,
            self._url,
            body,
            self._headers,
            timeout_s=self.config.timeout_s,
            retry_s=self.config.retry_s,
            endpoint=self.config.endpoint,
            endpoint_source=self.config.endpoint_source,
            clock=self._clock,
            sleep=self._sleep,
            deadline=lambda: self._deadline,
            backoff=backoff,
        )
        with self._cv:
            # The server said it is at its limit (429/503, a timeout): halve the requests allowed
            # in flight and the size batches may grow to (a large batch on a slow server is
            # what times out). Each request that went through without: one more request,
            # twice the size.
            if outcome.congested:
                self._window = max(1.0, self._window / 2)
                self._cap = max(float(self._batch_size), self._cap / 2)
            else:
                self._window = min(float(self._lanes), self._window + 1)
                self._cap = min(float(MAX_BATCH_RUNS), self._cap * 2)
            self._counters["retries"] += max(0, outcome.tries - 1)
            if outcome.kind == "sent":
                self._counters["exported"] += runs
                self._counters["batches"] += 1
        if outcome.kind == "too_large":
            items: list[dict[str, Any]] = orjson.loads(payload)
            if len(items) > 1:
                self._max_bytes = max(MIN_BATCH_BYTES, len(payload) // 2)
                half = len(items) // 2  # runs is 0 (start items) or len(items)
                self._send(orjson.dumps(items[:half]), runs and half, drops)
                self._send(orjson.dumps(items[half:]), runs and len(items) - half, drops)
                return
            drops.append(
                ("dropped_rejected", runs, f"the server refused one run: {outcome.reason}")
            )
        elif outcome.kind == "rejected":
            drops.append(("dropped_rejected", runs, f"the server rejected them: {outcome.reason}"))
        elif outcome.kind == "failed":
            drops.append(("dropped_failed", runs, f"after {outcome.tries} tries: {outcome.reason}"))
