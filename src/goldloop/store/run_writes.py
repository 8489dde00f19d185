"""Writing runs: the batched, idempotent, order-independent upsert into ``runs``.

One call handles a whole batch in a handful of statements, whatever its size: one SELECT of the
rows that already exist (locked ``FOR UPDATE`` on PostgreSQL, in id order so concurrent writers
lock in the same order), the merge in Python (``domain.run_merge``), one multi-row INSERT for new
runs and one executemany UPDATE for merged ones.

``seq``: every insert and every merge gives the row a new value from a monotonic counter, so the
table can be tailed as a log. SQLite has one writer at a time (the write lock is held from the
first write to the commit), so ``max(seq) + 1`` read inside the transaction is safe. PostgreSQL
uses the sequence ``runs_seq``: values are unique and increasing in allocation order, but
concurrent transactions may COMMIT out of order; writers hold ``log_horizon``'s shared lock
while they draw numbers, so a tailer can wait for in-flight writers instead of skipping them.

On PostgreSQL concurrent batches stay deadlock-free by taking row locks in one global order:
existing rows are locked ``FOR UPDATE`` in byte order of their ids (``COLLATE "C"``, the order
Python sorts in, across chunks), new rows are inserted in that same order, and nothing is locked
after the inserts. Two transactions that both insert the same new run: the second one's INSERT
(``ON CONFLICT DO NOTHING``) waits for the first to commit and then skips the row; the batch then
raises ``InsertRace`` and the caller retries it whole, when the row exists and is simply merged.
"""

from __future__ import annotations

import functools
import operator
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import psycopg
from sqlalchemy.engine import Connection

from goldloop.domain.payload_codec import PayloadCodec
from goldloop.domain.run_items import RunPatch
from goldloop.domain.run_merge import VALUE_COLUMNS
from goldloop.store import log_horizon, payload_store
from goldloop.store.rollup_pieces import hour_of
from goldloop.store.rollups import mark_hours, mark_traces
from goldloop.store.schema import projects, runs

# merge(existing row or None, patch, project_id for a new row) -> full row of VALUE_COLUMNS
MergeFn = Callable[[Mapping[str, Any] | None, RunPatch, str], dict[str, Any]]

_CHUNK = 500
_sqlite = sqlite.dialect()
_pg = psycopg.dialect(paramstyle="format", implicit_returning=False)  # type: ignore[no-untyped-call]
_JSON_COLUMNS = frozenset(
    c.name for c in runs.c if isinstance(c.type.dialect_impl(_sqlite), sa.JSON)
)
_INSERT_COLUMNS = ("workspace_id", "id", "seq", *VALUE_COLUMNS)
_UPDATE_COLUMNS = (*VALUE_COLUMNS, "seq")
_READ_COLUMNS = [runs.c.pk, runs.c.id, *(runs.c[name] for name in VALUE_COLUMNS)]


def _positional(stmt: Any, dialect: Any) -> tuple[str, tuple[str, ...]]:
    """SQL text with positional placeholders, and the parameter names in placeholder order."""
    compiled = stmt.compile(dialect=dialect)
    return str(compiled), tuple(compiled.positiontup or ())


# The batch statements go straight to the driver's executemany (one parsed statement, many
# parameter tuples; psycopg pipelines them) with JSON encoded here: SQLAlchemy's per-row
# parameter processing, and psycopg parsing a 500-row VALUES list, were most of a batch's cost.
_INSERT = {
    "sqlite": _positional(
        sa.insert(runs).values({c: sa.bindparam(c) for c in _INSERT_COLUMNS}), _sqlite
    ),
    "postgresql": _positional(
        postgresql.insert(runs)
        .values({c: sa.bindparam(c) for c in _INSERT_COLUMNS})
        .on_conflict_do_nothing(index_elements=["workspace_id", "id"]),
        _pg,
    ),
}
_UPDATE_STMT = (
    sa.update(runs)
    .values({c: sa.bindparam(c) for c in _UPDATE_COLUMNS})
    .where(runs.c.pk == sa.bindparam("pk"))
)
_UPDATE = {
    "sqlite": _positional(_UPDATE_STMT, _sqlite),
    "postgresql": _positional(_UPDATE_STMT, _pg),
}


def _executemany(conn: Connection, statement: tuple[str, tuple[str, ...]], rows: list[Any]) -> None:
    sql, order = statement
    values = _row_encoder(order)
    encoded = [values(r) for r in rows]
    if conn.dialect.name == "sqlite":
        payload_store.compress_values(conn, encoded, _compressed_at(order))
    _execute_values(conn, sql, encoded)


@functools.lru_cache(maxsize=8)
def _compressed_at(order: tuple[str, ...]) -> tuple[int, ...]:
    """Where the columns ``payload_store`` compresses are in a statement's parameters."""
    return tuple(i for i, name in enumerate(order) if name in payload_store.COMPRESSED_COLUMNS)


def _execute_values(conn: Connection, sql: str, values: list[list[Any]]) -> None:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, values)
    finally:
        cursor.close()


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def ensure_projects(
    conn: Connection, workspace_id: str, names: Iterable[str], now: int
) -> dict[str, str]:
    """Project name -> id, creating the missing ones (concurrency-safe on PostgreSQL)."""
    log_horizon.hold_writer_lock(conn)  # first, before any lock: see upsert_runs
    wanted = sorted(set(names))
    if not wanted:
        return {}

    def lookup() -> dict[str, str]:
        query = sa.select(projects.c.name, projects.c.id).where(
            projects.c.workspace_id == workspace_id, projects.c.name.in_(wanted)
        )
        return {r.name: r.id for r in conn.execute(query)}

    found = lookup()
    missing = [n for n in wanted if n not in found]
    if not missing:
        return found
    rows = [
        {"id": str(uuid.uuid4()), "workspace_id": workspace_id, "name": n, "created_at": now}
        for n in missing
    ]
    if conn.dialect.name == "postgresql":
        conn.execute(postgresql.insert(projects).on_conflict_do_nothing(), rows)
    else:
        conn.execute(sa.insert(projects), rows)
    return lookup()


class InsertRace(Exception):
    """Another transaction inserted some of these runs first; retry the whole batch."""


def _select_existing(
    conn: Connection, workspace_id: str, ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    lock = conn.dialect.name == "postgresql"
    for chunk in _chunks(ids):
        query = sa.select(*_READ_COLUMNS).where(
            runs.c.workspace_id == workspace_id, runs.c.id.in_(chunk)
        )
        if lock:  # byte order = Python's sort order: one lock order for every transaction
            query = query.order_by(runs.c.id.collate("C")).with_for_update()
        for r in conn.execute(query):
            found[r.id] = dict(r._mapping)
    return found


def _next_seqs(conn: Connection, n: int) -> list[int]:
    if n == 0:
        return []
    if conn.dialect.name == "postgresql":
        values = conn.execute(
            sa.text("SELECT nextval('runs_seq') FROM generate_series(1, :n)"), {"n": n}
        ).scalars()
        return sorted(int(v) for v in values)
    top = conn.execute(sa.select(sa.func.coalesce(sa.func.max(runs.c.seq), 0))).scalar_one()
    return list(range(int(top) + 1, int(top) + 1 + n))


def _fold(
    existing: Mapping[str, Any] | None, items: Sequence[tuple[str, RunPatch]], merge: MergeFn
) -> dict[str, Any]:
    row: Mapping[str, Any] | None = existing
    for project_id, patch in items:
        row = merge(row, patch, project_id)
    assert row is not None
    return dict(row)


def upsert_runs(
    conn: Connection,
    workspace_id: str,
    items: Sequence[tuple[str, RunPatch]],
    merge: MergeFn,
) -> int:
    """Apply every (project_id, patch) in order; returns the number of distinct runs written."""
    # Rule tailers must not read past a seq a writer still holds (see log_horizon). Taken before
    # any row lock, so a writer never waits for it while holding locks another writer needs.
    log_horizon.hold_writer_lock(conn)
    by_id: dict[str, list[tuple[str, RunPatch]]] = {}
    for project_id, patch in items:
        by_id.setdefault(patch.id, []).append((project_id, patch))
    ids = sorted(by_id)
    existing = _select_existing(conn, workspace_id, ids)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    moved: list[tuple[str, str, int | None]] = []  # see _moved
    for run_id in ids:
        old = existing.get(run_id)
        row = _fold(old, by_id[run_id], merge)
        if old is None:
            row["workspace_id"] = workspace_id
            row["id"] = run_id
            inserts.append(row)
        else:
            row["pk"] = old["pk"]
            updates.append(row)
            moved.extend(_moved(workspace_id, old, row))
    seqs = iter(_next_seqs(conn, len(ids)))
    if inserts:
        for row in inserts:
            row["seq"] = next(seqs)
        _executemany(conn, _INSERT[conn.dialect.name], inserts)
        if conn.dialect.name == "postgresql":
            lost = _lost_inserts(conn, workspace_id, inserts)
            if lost:  # locking them now could deadlock: start over, they exist now
                raise InsertRace(f"{len(lost)} runs were inserted concurrently, e.g. {min(lost)!r}")
    for row in updates:
        row["seq"] = next(seqs)
    if updates:
        _executemany(conn, _UPDATE[conn.dialect.name], updates)
    if moved:  # the hourly rollups of the hours these runs left are stale (store.rollups)
        mark_hours(conn, [(pid, hour) for _, pid, hour in moved if hour is not None])
        mark_traces(conn, workspace_id, sorted({trace for trace, _, _ in moved}))
    return len(ids)


def _moved(
    workspace_id: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[tuple[str, str, int | None]]:
    """(old trace id, project id, old start hour) when a merge moved a run to another hour,
    trace or project, or changed whether it is a root: its old place's rollup is stale (a run
    that stays in place is found by its new ``seq``)."""
    start, was = new.get("start_time"), old.get("start_time")
    same_hour = (start is None) == (was is None) and (
        start is None or was is None or hour_of(start) == hour_of(was)
    )
    if (
        same_hour
        and old.get("trace_id") == new.get("trace_id")
        and old.get("project_id") == new.get("project_id")
        and bool(old.get("is_root")) == bool(new.get("is_root"))
    ):
        return []
    hour = None if was is None else hour_of(was)
    return [(str(old.get("trace_id")), str(old.get("project_id")), hour)]


# New runs encoded ahead (``encode_new_run``, in an ingest worker) are INSERT parameter lists in
# this order; both dialects compile the statement with the same parameter order.
_NEW_RUN_ORDER = _INSERT["sqlite"][1]
if _INSERT["postgresql"][1] != _NEW_RUN_ORDER:
    raise RuntimeError("the INSERT statements of runs take their parameters in different orders")
_AT = {name: i for i, name in enumerate(_NEW_RUN_ORDER)}
_FILLED_IN = ("workspace_id", "seq", "project_id", "created_at", "updated_at")


def encode_new_run(run_id: str, row: dict[str, Any]) -> list[Any]:
    """A new run's merged row (``merge`` with no existing row) as INSERT parameters, JSON
    encoded, with its workspace, project, seq and timestamps left for ``insert_new_runs`` to
    fill in. Pure (no database): ingest worker processes run it. ``row`` is consumed."""
    row["id"] = run_id
    for name in _FILLED_IN:
        row[name] = None
    return _row_encoder(_NEW_RUN_ORDER)(row)


def compress_new_runs(codec: PayloadCodec, encoded: list[list[Any]]) -> None:
    """Runs encoded by ``encode_new_run`` with their large documents compressed (SQLite's
    ``payload_store``; in place). Pure: ingest worker processes run it."""
    payload_store.compress_rows(codec, encoded, _compressed_at(_NEW_RUN_ORDER))


def insert_new_runs(
    conn: Connection,
    workspace_id: str,
    project_ids: Sequence[str],
    encoded: Sequence[list[Any]],
    now: int,
) -> bool:
    """Insert runs encoded by ``encode_new_run`` if none of them is stored yet (nor repeated in
    the batch), filling in workspace, project (one per run), seq and ``now``. Returns False, having
    written nothing, when one exists: those need ``upsert_runs`` and a merge. On PostgreSQL a
    concurrent insert of one of them raises ``InsertRace``. The lists in ``encoded`` are filled in
    place."""
    log_horizon.hold_writer_lock(conn)  # as in upsert_runs
    at_id = _AT["id"]
    ids = [values[at_id] for values in encoded]
    if len(set(ids)) != len(ids) or _any_stored(conn, workspace_id, ids):
        return False
    order = sorted(range(len(encoded)), key=ids.__getitem__)  # the lock order of upsert_runs
    at_ws, at_seq, at_project = _AT["workspace_id"], _AT["seq"], _AT["project_id"]
    at_created, at_updated = _AT["created_at"], _AT["updated_at"]
    rows: list[list[Any]] = []
    for seq, i in zip(_next_seqs(conn, len(ids)), order, strict=True):
        values = encoded[i]
        values[at_ws], values[at_seq], values[at_project] = workspace_id, seq, project_ids[i]
        values[at_created] = values[at_updated] = now
        rows.append(values)
    if conn.dialect.name == "sqlite":
        payload_store.compress_values(conn, rows, _compressed_at(_NEW_RUN_ORDER))
    _execute_values(conn, _INSERT[conn.dialect.name][0], rows)
    if conn.dialect.name == "postgresql":
        mine = [{"id": values[at_id], "seq": values[at_seq]} for values in rows]
        lost = _lost_inserts(conn, workspace_id, mine)
        if lost:
            raise InsertRace(f"{len(lost)} runs were inserted concurrently, e.g. {min(lost)!r}")
    return True


# PostgreSQL: each wanted id probes the unique index (workspace_id, id) once, whatever the
# statistics say. ``WHERE workspace_id = :ws AND id = ANY(:ids) LIMIT 1`` was planned from the
# table's statistics: before the first ANALYZE of a growing table the planner chose to walk the
# workspace's rows (486 ms per batch at 400,000 runs; 5 ms once analysed). The LIMIT inside the
# LATERAL subquery keeps it from being flattened into a join the planner could cost otherwise,
# and its ORDER BY (the unique index's own order) makes that index the probe: without
# statistics, ix_runs_trace (workspace_id, trace_id) with a filter on id costed the same.
_STORED_PG = sa.text(
    "SELECT 1 FROM unnest(CAST(:ids AS text[])) AS wanted(id) "
    "CROSS JOIN LATERAL (SELECT 1 FROM runs "
    "WHERE runs.workspace_id = :ws AND runs.id = wanted.id "
    "ORDER BY runs.workspace_id, runs.id LIMIT 1) AS hit "
    "LIMIT 1"
)


# The seq of each of the ids ``:ids`` stored in workspace ``:ws``, probed the same way, for the
# check after a PostgreSQL insert. ``WHERE workspace_id = :ws AND id IN (...)`` was planned
# from statistics too: never analysed (autovacuum off), at 1,000,000 runs it walked the
# workspace through ix_runs_trace, 2.7 s per batch (issue 24, bench/ingest_growth.py).
_STORED_SEQS_PG = sa.text(
    "SELECT hit.id, hit.seq FROM unnest(CAST(:ids AS text[])) AS wanted(id) "
    "CROSS JOIN LATERAL (SELECT runs.id, runs.seq FROM runs "
    "WHERE runs.workspace_id = :ws AND runs.id = wanted.id "
    "ORDER BY runs.workspace_id, runs.id LIMIT 1) AS hit"
)


def _stored_query_sqlite() -> sa.Select[Any]:
    """Whether any of the ids ``:ids`` (one JSON-array parameter) is stored in workspace
    ``:ws``. An ``IN`` list of one placeholder per id was compiled anew for every batch:
    ~3.4 µs per run more, on the writer. SQLite always probes the unique index here."""
    each = sa.func.json_each(sa.bindparam("ids", type_=sa.String)).table_valued("value")
    match = runs.c.id.in_(sa.select(each.c.value))
    return sa.select(sa.literal(1)).where(runs.c.workspace_id == sa.bindparam("ws"), match).limit(1)


_STORED: dict[str, Any] = {"sqlite": _stored_query_sqlite(), "postgresql": _STORED_PG}


def _any_stored(conn: Connection, workspace_id: str, ids: Sequence[str]) -> bool:
    dialect = conn.dialect.name
    param: Any = list(ids) if dialect == "postgresql" else orjson.dumps(list(ids)).decode()
    return conn.execute(_STORED[dialect], {"ws": workspace_id, "ids": param}).first() is not None


@functools.lru_cache(maxsize=8)
def _row_encoder(columns: tuple[str, ...]) -> Callable[[Mapping[str, Any]], list[Any]]:
    """row -> its values in ``columns`` order, JSON columns encoded (None stays NULL). The
    values are picked in one C call; only the JSON columns are then visited."""
    pick = operator.itemgetter(*columns)
    json_at = [i for i, c in enumerate(columns) if c in _JSON_COLUMNS]
    dumps = orjson.dumps
    option = orjson.OPT_NON_STR_KEYS

    def values(row: Mapping[str, Any]) -> list[Any]:
        out = list(pick(row))
        for i in json_at:
            if out[i] is not None:
                out[i] = dumps(out[i], option=option).decode()
        return out

    return values


def _lost_inserts(
    conn: Connection, workspace_id: str, rows: list[dict[str, Any]]
) -> dict[str, int]:
    """Ids whose insert was skipped (ON CONFLICT: another transaction inserted them first) ->
    the seq meant for them. Ours carry our seq: sequence values are unique."""
    mine = {row["id"]: row["seq"] for row in rows}
    params = {"ids": list(mine), "ws": workspace_id}
    stored: dict[str, int] = {r.id: r.seq for r in conn.execute(_STORED_SEQS_PG, params)}
    return {run_id: seq for run_id, seq in mine.items() if stored.get(run_id) != seq}
