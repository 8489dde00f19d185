"""Connections and the write path.

``Database.read(fn)`` runs ``fn(conn)`` on a pooled connection, inside one read-only snapshot: every
statement ``fn`` runs sees the database as of its first one, so a page never pairs a dataset's
version number with examples committed after it, nor a count with rows from a later write.
``Database.write(fn)`` runs it in a transaction and returns only after the transaction committed,
so whatever the API acknowledges is durable:

- On SQLite every write goes through one writer thread (SQLite allows one writer at a time).
  The thread drains its bounded queue and commits up to ``write_batch_max`` jobs in a single
  transaction, each inside its own SAVEPOINT so one failing job does not sink the others. This is
  group commit: many small API writes cost one fsync.
- On PostgreSQL each write runs on a pooled connection in the caller's thread.

When the queue is full ``write`` raises ``Overloaded`` (the API turns it into 503 + Retry-After).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from goldloop.domain import payload_codec
from goldloop.domain.errors import InvalidInput, Overloaded
from goldloop.domain.payload_codec import PayloadCodec
from goldloop.domain.safe_values import scrub
from goldloop.store import payload_store

log = logging.getLogger("goldloop.store")

T = TypeVar("T")
WriteFn = Callable[[Connection], T]


def _json_loads(value: Any) -> Any:
    """Parse a JSON column. SQLite gives columns declared ``JSON`` NUMERIC affinity, so a
    document that is a bare number (``5``, ``2.5``) comes back as an int or float rather than
    text; it is already the parsed value (an integral float such as ``1.0`` comes back as 1,
    equal as JSON)."""
    if isinstance(value, int | float):
        return value
    return orjson.loads(value)


def _json_dumps(value: Any) -> str:
    """Encode a JSON column. Every JSON value passes here on both backends, so this is where
    the NUL rule of ``safe_values`` holds for all of them (dataset schemas, lineage, ...):
    PostgreSQL's JSONB refuses ``\\u0000``, SQLite stores it."""
    raw = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    if b"\\u0000" in raw:  # rare; a literal backslash-u0000 in a text only costs a re-encode
        raw = orjson.dumps(scrub(value), option=orjson.OPT_NON_STR_KEYS)
    return raw.decode()


def create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        codec: list[PayloadCodec] = []  # set below: the loader needs the engine made first

        def json_loads(value: Any) -> Any:
            if type(value) is bytes and payload_codec.is_frame(value):
                return orjson.loads(codec[0].decompress(value))
            return _json_loads(value)

        engine = sa.create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=json_loads,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=8,
        )
        codec.append(payload_store.attach(engine))
        functions = payload_store.functions(codec[0])

        def on_connect(dbapi_conn: Any, record: Any) -> None:
            _sqlite_pragmas(dbapi_conn, record)
            # Open a run's payload frames inside SQL (filters): see payload_store.
            for name, n_args, function in functions:
                dbapi_conn.create_function(name, n_args, function, deterministic=True)

        sa.event.listen(engine, "connect", on_connect)
        return engine
    return sa.create_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # 16 KiB pages (only takes effect when the file is created): runs of a few KB each pack
    # several to a page instead of one per 4 KiB page with the rest wasted (~20% less disk).
    cur.execute("PRAGMA page_size=16384")
    # WAL: readers never block the writer and the writer never blocks readers.
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a committed transaction survives a process crash (SIGKILL); only an OS
    # crash or power loss can lose the last transactions. FULL would fsync on every commit.
    cur.execute("PRAGMA synchronous=NORMAL")
    # Enforce the ON DELETE CASCADE the schema declares (off by default in SQLite).
    cur.execute("PRAGMA foreign_keys=ON")
    # Wait instead of failing when another process (e.g. `goldloop worker`) holds the lock.
    cur.execute("PRAGMA busy_timeout=30000")
    # 64 MiB page cache per connection (negative = KiB): keeps hot indexes in memory.
    cur.execute("PRAGMA cache_size=-65536")
    # Sorts and temporary indexes in memory rather than temp files.
    cur.execute("PRAGMA temp_store=MEMORY")
    # ANALYZE samples at most this many rows per index, so refreshing the planner's statistics
    # (see _SQLiteWriter) takes milliseconds even at millions of runs.
    cur.execute("PRAGMA analysis_limit=1000")
    cur.close()


@dataclass
class _Job:
    fn: Callable[[Connection], Any]
    future: Future[Any]


_STOP = object()
# How often the writer refreshes SQLite's planner statistics, when it is idle.
ANALYZE_EVERY_S = 3600.0


class _SQLiteWriter:
    """One thread that owns all writes to a SQLite database (see module docstring)."""

    def __init__(self, engine: Engine, batch_max: int, queue_max: int) -> None:
        self._engine = engine
        self._batch_max = batch_max
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_max)
        self._thread: threading.Thread | None = None
        self.committed_batches = 0
        self.committed_jobs = 0
        self.analyzed = 0
        self.analyzed_event = threading.Event()  # set after each ANALYZE (tests wait on it)

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="goldloop-writer", daemon=True)
            self._thread.start()

    def submit(self, fn: Callable[[Connection], T]) -> Future[T]:
        if self._thread is None:
            raise RuntimeError("the database writer is not running")
        future: Future[T] = Future()
        try:
            self._queue.put_nowait(_Job(fn, future))
        except queue.Full:
            raise Overloaded(
                "the database write queue is full; retry shortly", retry_after=1.0
            ) from None
        return future

    def stop(self, timeout: float) -> None:
        """Finish every queued write, then stop the thread."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._queue.put(_STOP, timeout=max(0.01, deadline - time.monotonic()))
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.warning("database writer did not finish within %.1fs", timeout)
        self._thread = None

    def _run(self) -> None:
        next_analyze = time.monotonic()
        with self._engine.connect() as conn:
            stopping = False
            while not stopping:
                try:
                    first = self._queue.get(timeout=max(0.0, next_analyze - time.monotonic()))
                except queue.Empty:  # idle, and the planner's statistics are due
                    self._analyze(conn)
                    next_analyze = time.monotonic() + ANALYZE_EVERY_S
                    continue
                if first is _STOP:
                    break
                batch: list[_Job] = [first]
                while len(batch) < self._batch_max:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        break
                    batch.append(item)
                self._commit(conn, batch)

    def _analyze(self, conn: Connection) -> None:
        """Refresh the query planner's statistics. Without them SQLite picks the project's
        start-time index even for a filter on a rare trace id or feedback key."""
        try:
            with conn.begin():
                conn.exec_driver_sql("ANALYZE")
            self.analyzed += 1
            self.analyzed_event.set()
        except Exception:  # statistics are an optimisation: never let them stop the writer
            log.exception("ANALYZE failed")

    def _commit(self, conn: Connection, batch: list[_Job]) -> None:
        outcomes: list[tuple[_Job, bool, Any]] = []
        try:
            with conn.begin():
                # The driver only opens a transaction before INSERT/UPDATE/DELETE, so without this
                # each job's SAVEPOINT would open one and its RELEASE commit it: one commit per
                # job instead of one per batch. IMMEDIATE: take the write lock now, so another
                # process's writer makes this wait (busy_timeout) rather than fail half-way.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                for job in batch:
                    if not job.future.set_running_or_notify_cancel():
                        continue
                    try:
                        with conn.begin_nested():
                            outcomes.append((job, True, job.fn(conn)))
                    except Exception as exc:
                        outcomes.append((job, False, exc))
        except Exception as exc:  # BEGIN or COMMIT failed: nothing in the batch is durable
            log.exception("database commit failed for a batch of %d writes", len(batch))
            # Every caller waits on its future: fail those that ran and those that never started
            # (BEGIN itself can fail, e.g. another process held the lock past busy_timeout).
            started = {id(job) for job, _, _ in outcomes}
            for job in batch:
                if id(job) in started or job.future.set_running_or_notify_cancel():
                    job.future.set_exception(exc)
            return
        self.committed_batches += 1
        self.committed_jobs += len(outcomes)
        for job, ok, value in outcomes:
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)


class Database:
    """The engine plus the write path; the only object services use to reach storage."""

    def __init__(self, url: str, *, write_batch_max: int = 512, write_queue_max: int = 2048):
        self.url = url
        self.engine = create_engine(url)
        self.dialect = self.engine.dialect.name
        self._writer = (
            _SQLiteWriter(self.engine, write_batch_max, write_queue_max)
            if self.dialect == "sqlite"
            else None
        )
        self._pg_inflight = threading.BoundedSemaphore(write_queue_max)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def write_queue_depth(self) -> int:
        return self._writer.depth if self._writer else 0

    def pool_stats(self) -> dict[str, int]:
        """The connection pool now: its size, connections in use, idle, and beyond the size."""
        pool = self.engine.pool
        if not isinstance(pool, sa.pool.QueuePool):
            return {}
        return {
            "size": pool.size(),
            "checked_out": pool.checkedout(),
            "idle": pool.checkedin(),
            "overflow": max(0, pool.overflow()),
        }

    def start(self) -> None:
        if self._writer:
            self._writer.start()

    def stop(self, timeout: float = 15.0) -> None:
        if self._writer:
            self._writer.stop(timeout)

    def close(self, timeout: float = 15.0) -> None:
        self.stop(timeout)
        self.engine.dispose()

    def read(self, fn: Callable[[Connection], T]) -> T:
        with _caller_errors(), self.engine.connect() as conn:
            self._begin_snapshot(conn)
            return fn(conn)

    def _begin_snapshot(self, conn: Connection) -> None:
        """Make the statements that follow on ``conn`` share one snapshot (ended by the rollback
        the pool runs when the connection goes back).

        SQLite's driver opens a transaction only before a write, so each SELECT would see the
        latest commit: an explicit deferred BEGIN holds one WAL snapshot from the first read on.
        PostgreSQL's default READ COMMITTED takes a snapshot per statement; REPEATABLE READ takes
        one per transaction, and READ ONLY transactions at that level never fail to serialize."""
        if self.is_sqlite:
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a transaction; returns after commit. Raises ``Overloaded`` when full."""
        if self._writer is not None:
            with _caller_errors():
                return self._writer.submit(fn).result()
        if not self._pg_inflight.acquire(blocking=False):
            raise Overloaded("too many concurrent database writes; retry shortly")
        try:
            with _caller_errors(), self.engine.begin() as conn:
                return fn(conn)
        finally:
            self._pg_inflight.release()


@contextlib.contextmanager
def _caller_errors() -> Iterator[None]:
    """Re-raise a database failure that is the caller's input as ``InvalidInput``."""
    try:
        yield
    except Exception as exc:
        refused = _refused_value(exc)
        if refused is not None:
            raise refused from None
        raise


_NUL_REFUSED = "cannot contain NUL (0x00)"
# What the databases and the JSON encoder say of a number no column can hold: SQLite's driver,
# PostgreSQL (integer, bigint, numeric and double precision out of range), orjson.
_OUT_OF_RANGE = (
    "too large to convert to SQLite INTEGER",
    "integer out of range",  # also "bigint out of range", "smallint out of range"
    "out of range for type",
    "value out of range: overflow",
    "numeric field overflow",
    "Integer exceeds 64-bit range",
)


def _refused_value(exc: BaseException) -> InvalidInput | None:
    """The caller's error behind a database failure, if it is one: a NUL in a text parameter,
    or a number outside what the column or JSON can hold. Values checked on the way in never
    get here; this keeps whatever else a client can send a 400, never a 500."""
    text = str(exc)
    if _NUL_REFUSED in text:
        return _nul_refused()
    if any(marker in text for marker in _OUT_OF_RANGE):
        return InvalidInput(
            "a number is outside the range that can be stored (64-bit integers, finite floats)"
        )
    return None


def _nul_refused() -> InvalidInput:
    """PostgreSQL refuses a NUL in any text parameter (a looked-up id, a search term): that is
    the caller's input, not a server fault. Values to store never get here (``safe_values``)."""
    return InvalidInput("a text value contains a NUL character (U+0000), which is refused")
