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

On Linux the request body and the result (1-2 MB each for 500 spans) do not go through the
pool's pipes: the server writes the body into an anonymous memory file (``memfd_create``) and
makes a second one for the result; the worker opens both through ``/proc/<server pid>/fd``,
reads the body in one call and writes its result in one. Only the two descriptor numbers and
sizes go through the pipe. Measured on the pool alone (500-span requests, no HTTP), the server's
side of the hand-off went from 7-9 us per span through the pipes to 4-6 through the files
(pickle.loads of the result is ~0.8 of that). The files are anonymous: they vanish when the
server closes them, or when it dies, so nothing is left behind. Where this is not allowed (not
Linux, or a kernel that forbids a child to open its parent's files), the pool finds out at
start and uses the pipes.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from goldloop import _malloc
from goldloop.domain.errors import InvalidInput
from goldloop.domain.payload_codec import PayloadCodec
from goldloop.domain.run_items import RunPatch
from goldloop.services import ingest
from goldloop.services.ingest import NewRuns
from goldloop.services.run_views import GCPaused
from goldloop.store import run_writes

log = logging.getLogger("goldloop.ingest")

# How request bodies and results travel between the server and its workers (see above).
MEMORY_FILES = "memory files"
PIPES = "pipes"
# Memory files that held more than this (a large request) are closed after their job, not kept.
KEEP_FILE_BYTES = 8 << 20
# After the workers failed to start, wait this long before trying again.
RETRY_START_S = 60.0

# The patches, or (with ``new_runs`` settings) the runs encoded as new ones; and the problems.
Decoded = tuple[list[RunPatch] | NewRuns, list[str]]


@dataclass(frozen=True)
class NewRunSettings:
    """The server's settings a worker needs to encode new runs exactly as the server would."""

    max_run_payload_bytes: int
    model_prices_file: str
    dictionary: tuple[int, bytes] | None = None
    """SQLite's payload dictionary in use (id, bytes): the worker compresses the runs' large
    documents with it, as the writer would (``payload_store``), off the server's core."""


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


def _proc_fd(pid: int, fd: int) -> str:
    return f"/proc/{pid}/fd/{fd}"


def _read_all(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    done = 0
    while done < size:
        chunk = os.pread(fd, size - done, done)
        if not chunk:
            raise OSError(f"a shared memory file ended after {done} of {size} bytes")
        chunks.append(chunk)
        done += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    done = 0
    while done < len(data):
        done += os.pwrite(fd, view[done:], done)


def _via_memory(
    job: Callable[..., bytes], server: int, body_fd: int, size: int, out_fd: int, *args: Any
) -> int:
    """In a worker: ``job`` on the body in the server's memory file ``body_fd``, its result
    written to the server's ``out_fd``; returns the result's size."""
    fd = os.open(_proc_fd(server, body_fd), os.O_RDONLY | os.O_CLOEXEC)
    try:
        body = _read_all(fd, size)
    finally:
        os.close(fd)
    blob = job(body, *args)
    fd = os.open(_proc_fd(server, out_fd), os.O_WRONLY | os.O_CLOEXEC)
    try:
        _write_all(fd, blob)
    finally:
        os.close(fd)
    return len(blob)


def _echo(body: bytes) -> bytes:
    return body[::-1]


class _MemoryFiles:
    """The server's two anonymous memory files for one job at a time: the request body, and
    room for the result. Reused by later jobs (``IngestPool._spare``): new files would have
    their pages allocated and zeroed again for every request."""

    def __init__(self) -> None:
        self.body_fd = os.memfd_create("goldloop-ingest-body", os.MFD_CLOEXEC)
        try:
            self.out_fd = os.memfd_create("goldloop-ingest-result", os.MFD_CLOEXEC)
        except BaseException:
            os.close(self.body_fd)
            raise
        self.largest = 0
        """The most either file has held (bytes): what keeping them for later jobs costs."""

    def put_body(self, body: bytes) -> None:
        _write_all(self.body_fd, body)
        self.largest = max(self.largest, len(body))

    def result(self, size: int) -> bytes:
        self.largest = max(self.largest, size)
        return _read_all(self.out_fd, size)

    def close(self) -> None:
        os.close(self.body_fd)
        os.close(self.out_fd)


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
    prepared = ingest.prepare_new_runs(
        patches,
        max_payload_bytes=settings.max_run_payload_bytes,
        prices=prices,
        body_bytes=body_bytes,
    )
    if settings.dictionary is not None:
        run_writes.compress_new_runs(_worker_codec(*settings.dictionary), prepared.encoded)
    return prepared


_WORKER_CODECS: dict[int, PayloadCodec] = {}


def _worker_codec(dict_id: int, dictionary: bytes) -> PayloadCodec:
    """In a worker: a codec compressing with dictionary ``dict_id``, made once per dictionary."""
    found = _WORKER_CODECS.get(dict_id)
    if found is None:
        found = PayloadCodec(lambda _id: None)  # compresses only: reads happen in the server
        found.use(dict_id, dictionary)
        _WORKER_CODECS.clear()  # only the newest is ever sent
        _WORKER_CODECS[dict_id] = found
    return found


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
        shared_memory: bool = True,
    ) -> None:
        """With ``new_runs`` the workers also merge and encode each run as a new one
        (``ingest.prepare_new_runs``), the larger part of the server's write. ``c_decoder``
        and ``malloc_tuning``: see the settings of these names (``otlp_c_decoder``).
        ``shared_memory``: hand bodies and results over in memory files where the system
        allows it (see the module docstring); False keeps them in the pipes."""
        if processes < 1:
            raise ValueError("an ingest pool needs at least one process")
        self.processes = processes
        self.new_runs = new_runs
        self.c_decoder = c_decoder
        self.malloc_tuning = malloc_tuning
        self.shared_memory = shared_memory and hasattr(os, "memfd_create")
        self.transport = PIPES
        """How bodies and results travel once the workers run: MEMORY_FILES or PIPES."""
        self._lock = threading.Lock()
        self._spare: list[_MemoryFiles] = []
        self._keep = 2 * processes + 2  # a few requests waiting for each worker
        self._executor: ProcessPoolExecutor | None = None
        self._starting = False
        self._closed = False
        self._started = threading.Condition(self._lock)
        self._failed_at = -RETRY_START_S
        self.jobs = 0
        """Requests the workers handled (the rest were decoded in the server process)."""
        self.restarts = 0

    def decode(
        self, body: bytes, encoding: str, dictionary: tuple[int, bytes] | None = None
    ) -> Decoded | None:
        """An OTLP request decoded and mapped by a worker, or None if no worker is ready (the
        caller then does it itself). Raises InvalidInput for a body that is not a valid
        request. ``dictionary``: see ``NewRunSettings``."""
        return self._run(_job, body, encoding, self._new_runs(dictionary), self.c_decoder)

    def prepare_native(
        self, body: bytes, dictionary: tuple[int, bytes] | None = None
    ) -> tuple[NewRuns, str | None] | None:
        """A native batch body (JSON) parsed, validated and encoded as new runs by a worker,
        with the batch's ``project``; None if no worker is ready or there are no ``new_runs``
        settings. Raises InvalidInput as ``ingest.parse_native`` does."""
        new_runs = self._new_runs(dictionary)
        if new_runs is None:
            return None
        outcome = self._run(_native_job, body, new_runs)
        if outcome is None or not isinstance(outcome[0], NewRuns):
            return None
        return outcome[0], outcome[1]

    def _new_runs(self, dictionary: tuple[int, bytes] | None) -> NewRunSettings | None:
        if self.new_runs is None or dictionary is None:
            return self.new_runs
        return dataclasses.replace(self.new_runs, dictionary=dictionary)

    def _run(self, job: Callable[..., bytes], body: bytes, *args: Any) -> tuple[Any, Any] | None:
        executor = self._ready()
        if executor is None:
            return None
        files = None
        blob = None
        try:
            if self.transport == MEMORY_FILES:
                files = self._files()
                files.put_body(body)
            blob = self._result(executor, files, job, body, args)
        except OSError as exc:  # a memory file could not be made, opened, read or written
            log.warning("ingest: memory file hand-off failed (%s); decoding in the server", exc)
        finally:
            if files is not None:
                self._release(files, reuse=blob is not None)
        if blob is None:
            return None
        with GCPaused():
            # our own worker wrote it
            outcome, first, second = pickle.loads(blob)  # noqa: S301
        if outcome == "invalid":
            raise InvalidInput(first, details=second)
        self.jobs += 1
        return first, second

    def _files(self) -> _MemoryFiles:
        with self._lock:
            if self._spare:
                return self._spare.pop()
        return _MemoryFiles()

    def _release(self, files: _MemoryFiles, *, reuse: bool) -> None:
        """Keep a job's memory files for the next job if it ended normally (after a failure a
        worker may still hold them), they are not large and enough are kept already."""
        with self._lock:
            if reuse and files.largest <= KEEP_FILE_BYTES and len(self._spare) < self._keep:
                self._spare.append(files)
                return
        files.close()

    def _result(
        self,
        executor: ProcessPoolExecutor,
        files: _MemoryFiles | None,
        job: Callable[..., bytes],
        body: bytes,
        args: tuple[Any, ...],
    ) -> bytes | None:
        """The job's pickled result from a worker, or None if the pool could not run it."""
        future: Future[Any]
        try:
            if files is None:
                future = executor.submit(job, body, *args)
            else:
                fds = (os.getpid(), files.body_fd, len(body), files.out_fd)
                future = executor.submit(_via_memory, job, *fds, *args)
        except RuntimeError:  # shut down meanwhile: the server is stopping
            return None
        try:
            outcome = future.result()
        except BrokenProcessPool:
            log.warning("an ingest worker process died; decoding in the server until it restarts")
            self._discard(executor)
            return None
        except CancelledError:  # shut down while it waited
            return None
        return outcome if files is None else files.result(outcome)

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
        with self._lock:
            spare, self._spare = self._spare, []
        for files in spare:
            files.close()

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
            transport = self._probe(executor)
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
            self.transport = transport
            if self._closed:
                keep = None
            else:
                keep, self._executor = executor, executor
            self._started.notify_all()
        if keep is None:
            executor.shutdown(wait=False, cancel_futures=True)
        else:
            log.info(
                "ingest: %d worker process(es) decode OTLP requests; bodies and results go "
                "through %s",
                self.processes,
                transport,
            )

    def _probe(self, executor: ProcessPoolExecutor) -> str:
        """MEMORY_FILES if a worker can read and write this process's memory files (it opens
        them through /proc), else PIPES."""
        if not self.shared_memory:
            return PIPES
        probe = b"goldloop ingest probe"
        try:
            files = _MemoryFiles()
            try:
                files.put_body(probe)
                future = executor.submit(
                    _via_memory, _echo, os.getpid(), files.body_fd, len(probe), files.out_fd
                )
                if files.result(future.result()) == probe[::-1]:
                    return MEMORY_FILES
            finally:
                files.close()
        except OSError as exc:  # e.g. the kernel does not let a child open its parent's files
            log.info("ingest: memory files cannot be shared with the workers (%s)", exc)
        return PIPES

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is executor:
                self._executor = None
                self.restarts += 1
        executor.shutdown(wait=False, cancel_futures=True)
