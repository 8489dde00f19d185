"""Writing runs: the batched, idempotent, order-independent upsert into ``runs``.

One call handles a whole batch in a handful of statements, whatever its size: one SELECT of the
rows that already exist (locked ``FOR UPDATE`` on PostgreSQL, in id order so concurrent writers
lock in the same order), the merge in Python (``domain.run_merge``), one multi-row INSERT for new
runs and one executemany UPDATE for merged ones.

``seq``: every insert and every merge gives the row a new value from a monotonic counter, so the
table can be tailed as a log. SQLite has one writer at a time (the write lock is held from the
first write to the commit), so ``max(seq) + 1`` read inside the transaction is safe. PostgreSQL
uses the sequence ``runs_seq``: values are unique and increasing in allocation order, but
concurrent transactions may COMMIT out of order, so a tailer must re-read a short window behind
its watermark (or wait for in-flight transactions) rather than assume commit order.

On PostgreSQL two transactions may both try to insert the same new run: the INSERT uses
``ON CONFLICT DO NOTHING`` and the rows another writer won are re-read (locked) and merged.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from goldloop.domain.run_items import RunPatch
from goldloop.domain.run_merge import VALUE_COLUMNS
from goldloop.store.schema import projects, runs

# merge(existing row or None, patch, project_id for a new row) -> full row of VALUE_COLUMNS
MergeFn = Callable[[Mapping[str, Any] | None, RunPatch, str], dict[str, Any]]

_CHUNK = 500
_sqlite = sqlite.dialect()
_JSON_COLUMNS = frozenset(
    c.name for c in runs.c if isinstance(c.type.dialect_impl(_sqlite), sa.JSON)
)
_INSERT_COLUMNS = ("workspace_id", "id", "seq", *VALUE_COLUMNS)
_UPDATE_COLUMNS = (*VALUE_COLUMNS, "seq")


def _positional(stmt: Any) -> tuple[str, tuple[str, ...]]:
    """SQLite SQL text with ``?`` placeholders, and the parameter names in placeholder order."""
    compiled = stmt.compile(dialect=_sqlite)
    return str(compiled), tuple(compiled.positiontup or ())


# SQLite fast path: the driver's executemany with JSON encoded here, skipping SQLAlchemy's
# per-row parameter processing (it was the largest cost of a big batch).
_SQLITE_INSERT, _INSERT_ORDER = _positional(
    sa.insert(runs).values({c: sa.bindparam(c) for c in _INSERT_COLUMNS})
)
_SQLITE_UPDATE, _UPDATE_ORDER = _positional(
    sa.update(runs)
    .values({c: sa.bindparam(c) for c in _UPDATE_COLUMNS})
    .where(runs.c.pk == sa.bindparam("pk"))
)
_READ_COLUMNS = [runs.c.pk, runs.c.id, *(runs.c[name] for name in VALUE_COLUMNS)]
_UPDATE = (
    sa.update(runs)
    .where(runs.c.pk == sa.bindparam("u_pk"))
    .values({name: sa.bindparam(f"u_{name}") for name in (*VALUE_COLUMNS, "seq")})
)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def ensure_projects(
    conn: Connection, workspace_id: str, names: Iterable[str], now: int
) -> dict[str, str]:
    """Project name -> id, creating the missing ones (concurrency-safe on PostgreSQL)."""
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


def _select_existing(
    conn: Connection, workspace_id: str, ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    lock = conn.dialect.name == "postgresql"
    for chunk in _chunks(ids):
        query = (
            sa.select(*_READ_COLUMNS)
            .where(runs.c.workspace_id == workspace_id, runs.c.id.in_(chunk))
            .order_by(runs.c.id)
        )
        if lock:
            query = query.with_for_update()
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
    by_id: dict[str, list[tuple[str, RunPatch]]] = {}
    for project_id, patch in items:
        by_id.setdefault(patch.id, []).append((project_id, patch))
    ids = sorted(by_id)
    existing = _select_existing(conn, workspace_id, ids)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
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
    seqs = iter(_next_seqs(conn, len(ids)))
    if inserts:
        for row in inserts:
            row["seq"] = next(seqs)
        if conn.dialect.name == "postgresql":
            lost = _insert_pg(conn, inserts)
            if lost:  # another transaction inserted these first: merge onto its rows
                winners = _select_existing(conn, workspace_id, sorted(lost))
                for run_id in sorted(lost):
                    row = _fold(winners[run_id], by_id[run_id], merge)
                    row["pk"] = winners[run_id]["pk"]
                    row["seq"] = lost[run_id]
                    updates.append(row)
        else:
            conn.exec_driver_sql(_SQLITE_INSERT, [_values(r, _INSERT_ORDER) for r in inserts])
    for row in updates:
        row.setdefault("seq", None)
        if row["seq"] is None:
            row["seq"] = next(seqs)
    if updates and conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_SQLITE_UPDATE, [_values(r, _UPDATE_ORDER) for r in updates])
    elif updates:
        params = [{f"u_{k}": row[k] for k in (*_UPDATE_COLUMNS, "pk")} for row in updates]
        conn.execute(_UPDATE, params)
    return len(ids)


def _values(row: Mapping[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
    return tuple(
        orjson.dumps(row[c], option=orjson.OPT_NON_STR_KEYS).decode()
        if c in _JSON_COLUMNS and row[c] is not None
        else row[c]
        for c in columns
    )


def _insert_pg(conn: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert, skipping ids another transaction inserted first; returns those ids -> their seq."""
    stmt = (
        postgresql.insert(runs)
        .on_conflict_do_nothing(index_elements=["workspace_id", "id"])
        .returning(runs.c.id)
    )
    inserted: set[str] = set()
    for chunk in _chunks(rows):
        inserted.update(conn.execute(stmt, list(chunk)).scalars())
    return {row["id"]: row["seq"] for row in rows if row["id"] not in inserted}
