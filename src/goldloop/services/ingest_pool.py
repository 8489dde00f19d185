"""Ingestion requests (OTLP traces, native run batches) decoded in worker processes, beside the
server's own work.

Decoding a protobuf request and mapping each span onto a run is about half of an OTLP span's CPU
in the server, and it is pure: bytes in, run patches out. In the server process it shares one
interpreter lock with the HTTP stack and the database writer, so one process cannot use a second
core however much work is waiting. With ``ingest_processes`` > 0 that half runs in worker
processes, and with ``new_runs`` settings the workers also merge and encode each run as a new
one (``ingest.prepare_new_runs``), so for the usual request, all of whose runs are new, the
server only inserts. The server process keeps HTTP, the write and the commit, so what it
acknowledges is still durable before it answers.

Native batches (``prepare_native``) take the same road: JSON parsed, validated, merged and
encoded in a worker. The pool is started on the first request that uses it, in the background:
requests that arrive before it is ready (and any request after a worker died) are decoded in the
server process, so a slow or broken pool costs speed, never a request. Results come back as one
pickled blob per request and are unpickled with the cyclic garbage collector paused: the patches
are fresh, acyclic containers, and collections triggered while thousands of them are built were
about half of the cost (9.3-9.7 -> 5.2 us per span).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from goldloop import _malloc
from goldloop.domain.errors import InvalidInput
from goldloop.domain.run_items import RunPatch
from goldloop.services import ingest
from goldloop.services.ingest import NewRuns
from goldloop.services.run_views import GCPaused

log = logging.getLogger("goldloop.ingest")

# After the workers failed to start, wait this long before trying again.
RETRY_START_S = 60.0

# The patches, or (with ``new_runs`` settings) the runs encoded as new ones; and the problems.
Decoded = tuple[list[RunPatch] | NewRuns, list[str]]


@dataclass(frozen=True)
class NewRunSettings:
    """The server's settings a worker needs to encode new runs exactly as the server would."""

    max_run_payload_bytes: int
    model_prices_file: str


def _job(body: bytes, encoding: str, new_runs: NewRunSettings | None, c_decoder: bool) -> bytes:
    """In a worker: an OTLP request decoded and mapped, its runs also merged and encoded as new
    ones when ``new_runs`` is given, pickled (or the reason it is invalid)."""
    from goldloop.services.otlp import decode_and_map  # imported once per worker

    def work() -> tuple[Any, ...]:
        patches, problems = decode_and_map(body, encoding, c_decoder=c_decoder)
        prepared = _prepare(patches, new_runs, None) if new_runs is not None else None
        return ("ok", patches if prepared is None else prepared, problems)

    return _pickled(work)


def _native_job(body: bytes, new_runs: NewRunSettings) -> bytes:
    """In a worker: a native batch body parsed, validated, merged and encoded as new runs."""

    def work() -> tuple[Any, ...]:
        patches, given = ingest.parse_native(ingest.parse_json_body(body))
        return ("ok", _prepare(patches, new_runs, len(body)), given)

    return _pickled(work)


def _pickled(work: Callable[[], tuple[Any, ...]]) -> bytes:
    result: tuple[Any, ...]
    # The request's spans, attributes and patches are thousands of fresh containers, alive until
    # pickled and without cycles: collections while they pile up would only re-scan them.
    with GCPaused():
        try:
            result = work()
        except InvalidInput as exc:  # re-raised in the server: pickling exceptions drops details
            result = ("invalid", exc.message, exc.details)
        return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)


def _prepare(
    patches: list[RunPatch], settings: NewRunSettings, body_bytes: int | None
) -> NewRuns | None:
    try:
        prices = ingest.cached_price_table(settings.model_prices_file)
    except Exception:  # a bad price file: the server's own path reports it to the client
        return None
    return ingest.prepare_new_runs(
        patches,
        max_payload_bytes=settings.max_run_payload_bytes,
        prices=prices,
        body_bytes=body_bytes,
    )


def _init_worker(malloc_tuning: bool) -> None:
    if malloc_tuning:
        _malloc.tune()
    _exit_with_parent()


def _exit_with_parent() -> None:
    """In a worker: exit as soon as the server process is gone, however it ended (a worker holds
    both ends of its job queue, so it would otherwise wait for work forever)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="watch-server", daemon=True).start()


def _warm() -> int:
    from goldloop.services import otlp  # noqa: F401  (the imports a first job would pay for)

    gc.freeze()  # modules live as long as the worker: keep them out of every collection
    return 0


class IngestPool:
    """Worker processes for decoding ingestion requests; ``decode`` and ``prepare_native``
    return None when they cannot help (the caller then does the work itself)."""

    def __init__(
        self,
        processes: int,
        *,
        new_runs: NewRunSettings | None = None,
        c_decoder: bool = True,
        malloc_tuning: bool = False,
    ) -> None:
        """With ``new_runs`` the workers also merge and encode each run as a new one
        (``ingest.prepare_new_runs``), the larger part of the server's write. ``c_decoder``
        and ``malloc_tuning``: see the settings of these names (``otlp_c_decoder``)."""
        if processes < 1:
            raise ValueError("an ingest pool needs at least one process")
        self.processes = processes
        self.new_runs = new_runs
        self.c_decoder = c_decoder
        self.malloc_tuning = malloc_tuning
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._starting = False
        self._closed = False
        self._started = threading.Condition(self._lock)
        self._failed_at = -RETRY_START_S
        self.jobs = 0
        """Requests the workers handled (the rest were decoded in the server process)."""
        self.restarts = 0

    def decode(self, body: bytes, encoding: str) -> Decoded | None:
        """An OTLP request decoded and mapped by a worker, or None if no worker is ready (the
        caller then does it itself). Raises InvalidInput for a body that is not a valid
        request."""
        return self._run(_job, body, encoding, self.new_runs, self.c_decoder)

    def prepare_native(self, body: bytes) -> tuple[NewRuns, str | None] | None:
        """A native batch body (JSON) parsed, validated and encoded as new runs by a worker,
        with the batch's ``project``; None if no worker is ready or there are no ``new_runs``
        settings. Raises InvalidInput as ``ingest.parse_native`` does."""
        if self.new_runs is None:
            return None
        outcome = self._run(_native_job, body, self.new_runs)
        if outcome is None or not isinstance(outcome[0], NewRuns):
            return None
        return outcome[0], outcome[1]

    def _run(self, job: Callable[..., bytes], *args: Any) -> tuple[Any, Any] | None:
        executor = self._ready()
        if executor is None:
            return None
        try:
            future = executor.submit(job, *args)
        except RuntimeError:  # shut down meanwhile: the server is stopping
            return None
        try:
            blob = future.result()
        except BrokenProcessPool:
            log.warning("an ingest worker process died; decoding in the server until it restarts")
            self._discard(executor)
            return None
        except CancelledError:  # shut down while it waited
            return None
        with GCPaused():
            # our own worker wrote it (the pool pipe pickles every result anyway)
            outcome, first, second = pickle.loads(blob)  # noqa: S301
        if outcome == "invalid":
            raise InvalidInput(first, details=second)
        self.jobs += 1
        return first, second

    def wait_ready(self, timeout: float) -> bool:
        """Start the workers if they are not running and wait for them (tests, benchmarks)."""
        self._ready()
        with self._started:
            return self._started.wait_for(
                lambda: self._executor is not None or self._closed or not self._starting,
                timeout,
            ) and (self._executor is not None)

    def close(self, timeout: float = 30.0) -> None:
        with self._started:
            self._closed = True
            self._started.wait_for(lambda: not self._starting, timeout)  # a start under way
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _ready(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._executor is not None or self._closed:
                return self._executor
            if not self._starting and time.monotonic() - self._failed_at >= RETRY_START_S:
                self._starting = True
                threading.Thread(target=self._start, name="ingest-pool-start", daemon=True).start()
            return None

    def _start(self) -> None:
        executor: ProcessPoolExecutor | None = None
        try:
            # spawn, not fork: the server has threads (a forked child could inherit a held lock)
            executor = ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.malloc_tuning,),
            )
            for future in [executor.submit(_warm) for _ in range(self.processes)]:
                future.result()
        except Exception:  # e.g. no semaphores in a locked-down container
            log.exception("ingest worker processes did not start; decoding in the server")
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
            with self._lock:
                self._starting = False
                self._failed_at = time.monotonic()
                self._started.notify_all()
            return
        with self._lock:
            self._starting = False
            if self._closed:
                keep = None
            else:
                keep, self._executor = executor, executor
            self._started.notify_all()
        if keep is None:
            executor.shutdown(wait=False, cancel_futures=True)
        else:
            log.info("ingest: %d worker process(es) decode OTLP requests", self.processes)

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is executor:
                self._executor = None
                self.restarts += 1
        executor.shutdown(wait=False, cancel_futures=True)
