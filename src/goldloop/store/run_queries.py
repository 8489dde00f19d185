"""Reads of the runs table: one run, a keyset-paginated list, time-bucket statistics (the runs
of one trace, for its tree, are read by ``goldloop.store.trace_rows``).

Writes to ``runs`` belong to the ingest path; this module only reads. Every query is scoped by
``workspace_id``. Filters arrive already compiled (``goldloop.store.run_filters``).

Ordering treats NULL as the smallest value on both dialects (SQLite's native order): ascending
lists start with the runs that have no value, descending lists end with them. The integer ``pk``
breaks ties, so a keyset cursor ``(value, pk)`` is exact.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import util as sql_util
from sqlalchemy.sql.elements import ColumnElement

from goldloop.store.schema import runs

RunRow = dict[str, Any]

SORT_COLUMNS: dict[str, sa.Column[Any]] = {
    "start_time": runs.c.start_time,
    "latency": runs.c.latency_us,
    "cost": runs.c.cost,
    "tokens": runs.c.total_tokens,
}
HEAVY_COLUMNS = ("inputs", "outputs", "extra")
_LIGHT = [c for c in runs.c if c.name not in HEAVY_COLUMNS]


def _columns(light: bool) -> list[sa.Column[Any]]:
    return _LIGHT if light else list(runs.c)


def _dicts(conn: Connection, query: sa.Select[Any]) -> list[dict[str, Any]]:
    """Rows as plain dicts; about twice as fast as ``dict(row._mapping)``. Keys are made plain
    ``str`` (SQLAlchemy's are a subclass, which orjson refuses as dict keys)."""
    result = conn.execute(query)
    keys = [str(k) for k in result.keys()]  # noqa: SIM118 (a result is not a dict)
    return [dict(zip(keys, row)) for row in result]  # noqa: B905 (rows have len(keys) items)


def get(conn: Connection, workspace_id: str, run_id: str) -> RunRow | None:
    rows = _dicts(
        conn, sa.select(runs).where(runs.c.workspace_id == workspace_id, runs.c.id == run_id)
    )
    return rows[0] if rows else None


@dataclass(frozen=True, slots=True)
class Page:
    rows: Sequence[RunRow]
    more: bool


def list_page(
    conn: Connection,
    workspace_id: str,
    *,
    project_id: str | None,
    condition: ColumnElement[bool],
    sort: str,
    descending: bool,
    after: tuple[Any, int] | None,
    limit: int,
    light: bool,
    until: tuple[Any, int] | None = None,
    candidates: ColumnElement[bool] | None = None,
) -> Page:
    """One page in (sort value, pk) order, after the cursor row ``after`` = (value, pk), and
    not past the row ``until`` (included) when that is given (a bounded search, ``scan_bound``,
    whose ``candidates`` condition, the filter without its searches, comes along: see
    ``_streamed_page``).

    The runs with a value and the runs without one (NULL) are read as two segments, each with a
    plain ORDER BY that an index serves on both dialects (a single ``NULLS LAST`` ordering would
    defeat PostgreSQL's indexes): values then NULLs when descending, NULLs then values when
    ascending.
    """
    col = SORT_COLUMNS[sort]
    if until is not None and candidates is not None and conn.dialect.name == "postgresql":
        return _streamed_page(
            conn,
            workspace_id,
            project_id,
            condition,
            candidates,
            col,
            descending,
            (after, until),
            limit,
            light,
        )
    base = sa.select(*_columns(light)).where(runs.c.workspace_id == workspace_id, condition)
    if project_id is not None:
        base = base.where(runs.c.project_id == project_id)
    rows: list[RunRow] = []
    for _, query, order in _segments(base, col, descending, after, until):
        rows += _dicts(conn, query.order_by(*order).limit(limit + 1 - len(rows)))
        if len(rows) > limit:
            break
    return Page(rows[:limit], len(rows) > limit)


def _segments(
    base: sa.Select[Any],
    col: ColumnElement[Any],
    descending: bool,
    after: tuple[Any, int] | None,
    until: tuple[Any, int] | None,
    pk: ColumnElement[Any] = runs.c.pk,
) -> list[tuple[str, sa.Select[Any], list[Any]]]:
    """The list's segments in order, each as (name, query, ORDER BY): resumed after the row
    ``after`` and stopped at the row ``until`` (included), with the bounds as index ranges."""
    segments = ["values", "nulls"] if descending else ["nulls", "values"]
    if until is not None:  # stop in the bound's segment
        segments = segments[: segments.index("nulls" if until[0] is None else "values") + 1]
    if after is not None:  # resume in the cursor's segment
        segments = segments[segments.index("nulls" if after[0] is None else "values") :]
    out = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "values":
            query = base.where(col.isnot(None))
            if after is not None and i == 0:
                value, last_pk = after
                if descending:
                    query = query.where(col <= value, sa.tuple_(col, pk) < (value, last_pk))
                else:
                    query = query.where(col >= value, sa.tuple_(col, pk) > (value, last_pk))
            if until is not None and last:
                value, last_pk = until
                if descending:
                    query = query.where(col >= value, sa.tuple_(col, pk) >= (value, last_pk))
                else:
                    query = query.where(col <= value, sa.tuple_(col, pk) <= (value, last_pk))
            order = [col.desc(), pk.desc()] if descending else [col.asc(), pk.asc()]
        else:
            query = base.where(col.is_(None))
            if after is not None and i == 0:
                query = query.where(pk < after[1] if descending else pk > after[1])
            if until is not None and last:
                query = query.where(pk >= until[1] if descending else pk <= until[1])
            order = [pk.desc() if descending else pk.asc()]
        out.append((segment, query, order))
    return out


def _streamed_page(
    conn: Connection,
    workspace_id: str,
    project_id: str | None,
    condition: ColumnElement[bool],
    candidates: ColumnElement[bool],
    col: sa.Column[Any],
    descending: bool,
    bounds: tuple[tuple[Any, int] | None, tuple[Any, int] | None],
    limit: int,
    light: bool,
) -> Page:
    """``list_page`` of a bounded search on PostgreSQL: the candidates between the bounds, in
    list order (a subquery over an alias of ``runs`` behind ``OFFSET 0``, without the search),
    joined back to ``runs`` by ``pk`` and searched one by one, so the read stops at the page's
    last match. With the search in one plain query PostgreSQL read and searched every run of
    the window's range, then sorted (28-32 ms against 3-8 ms for a common needle, Issue #23)."""
    cand = runs.alias("cand")
    ccol = cand.c[col.name]
    adapted: ColumnElement[bool] = sql_util.ClauseAdapter(cand).traverse(candidates)
    cbase = sa.select(cand.c.pk.label("pk"), ccol.label("v")).where(
        cand.c.workspace_id == workspace_id, adapted
    )
    if project_id is not None:
        cbase = cbase.where(cand.c.project_id == project_id)
    rows: list[RunRow] = []
    for segment, query, order in _segments(cbase, ccol, descending, *bounds, pk=cand.c.pk):
        found = query.order_by(*order).offset(0).subquery("c")
        if segment == "values":
            outer = [found.c.v.desc(), found.c.pk.desc()] if descending else [found.c.v, found.c.pk]
        else:
            outer = [found.c.pk.desc() if descending else found.c.pk.asc()]
        page = (
            sa.select(*_columns(light))
            .select_from(found.join(runs, runs.c.pk == found.c.pk))
            .where(runs.c.workspace_id == workspace_id, condition)
            .order_by(*outer)
            .limit(limit + 1 - len(rows))
        )
        rows += _dicts(conn, page)
        if len(rows) > limit:
            break
    return Page(rows[:limit], len(rows) > limit)


def scan_bound(
    conn: Connection,
    workspace_id: str,
    *,
    project_id: str | None,
    condition: ColumnElement[bool],
    sort: str,
    descending: bool,
    after: tuple[Any, int] | None,
    scan: int,
) -> tuple[Any, int] | None:
    """The (sort value, pk) of the ``scan``-th run in list order after ``after`` that meets
    ``condition``, or None when fewer remain. A search reads the runs up to that one only
    (``list_page``'s ``until``): its cost is bounded by ``scan`` candidates, whatever it seeks.
    Reads only the sort column and ``pk`` (an index), never the runs' documents."""
    col = SORT_COLUMNS[sort]
    base = sa.select(col, runs.c.pk).where(runs.c.workspace_id == workspace_id, condition)
    if project_id is not None:
        base = base.where(runs.c.project_id == project_id)
    left = scan
    for _, query, order in _segments(base, col, descending, after, None):
        found = conn.execute(query.order_by(*order).limit(left)).all()
        if len(found) == left:
            value, pk = found[-1]
            return value, int(pk)
        left -= len(found)
    return None


# -- statistics -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BucketTotals:
    bucket: int  # start of the bucket, µs
    count: int
    errors: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost: float
    latency_count: int
    latency_avg_us: float | None


def _scope(
    workspace_id: str, project_id: str, condition: ColumnElement[bool], start: int, end: int
) -> list[ColumnElement[bool]]:
    return [
        runs.c.workspace_id == workspace_id,
        runs.c.project_id == project_id,
        runs.c.start_time >= start,
        runs.c.start_time < end,
        condition,
    ]


def _bucket_expr(start: int, bucket_us: int) -> ColumnElement[int]:
    # Integer division of non-negative integers truncates on both SQLite and PostgreSQL.
    offset = runs.c.start_time - sa.literal(start, sa.BigInteger)
    return (offset // sa.literal(bucket_us, sa.BigInteger)).label("b")


def bucket_totals(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    condition: ColumnElement[bool],
    *,
    start: int,
    end: int,
    bucket_us: int,
) -> list[BucketTotals]:
    b = _bucket_expr(start, bucket_us)
    zero = sa.literal(0)
    query = (
        sa.select(
            b,
            sa.func.count(),
            sa.func.sum(sa.case((runs.c.status == "error", 1), else_=0)),
            # summed as floats: a sum of 64-bit counts must not overflow (SQLite raises)
            sa.func.coalesce(sa.func.sum(sa.cast(runs.c.input_tokens, sa.Float)), zero),
            sa.func.coalesce(sa.func.sum(sa.cast(runs.c.output_tokens, sa.Float)), zero),
            sa.func.coalesce(sa.func.sum(sa.cast(runs.c.total_tokens, sa.Float)), zero),
            # as numeric: PostgreSQL raises when a float8 sum overflows
            sa.func.coalesce(
                sa.func.sum(sa.cast(runs.c.cost, _COST_SUM)), sa.cast(sa.literal(0), _COST_SUM)
            ),
            sa.func.count(runs.c.latency_us),
            sa.func.avg(runs.c.latency_us),
        )
        .where(*_scope(workspace_id, project_id, condition, start, end))
        .group_by(b)
        .order_by(b)
    )
    out = []
    for r in conn.execute(query):
        avg = None if r[8] is None else float(r[8])
        out.append(
            BucketTotals(
                start + int(r[0]) * bucket_us,
                int(r[1]),
                int(r[2]),
                _whole(r[3]),
                _whole(r[4]),
                _whole(r[5]),
                _finite(float(r[6])),
                int(r[7]),
                avg,
            )
        )
    return out


_COST_SUM = sa.Float().with_variant(sa.Numeric(), "postgresql")


def _whole(value: Any) -> int:
    """A summed count as an integer, held to 64 bits (stored rows may predate the ingest bounds)."""
    return int(min(max(float(value), 0.0), 2.0**63 - 1))


def _finite(value: float) -> float:
    """A sum as a finite float: an overflowed sum (``inf``) shows as the largest float."""
    return value if math.isfinite(value) else math.copysign(sys.float_info.max, value)


def latency_order_statistics(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    condition: ColumnElement[bool],
    *,
    start: int,
    end: int,
    bucket_us: int,
    permilles: Sequence[int],
) -> dict[int, dict[int, int]]:
    """For each bucket, the latencies at the 0-based ranks ``floor((n-1)*p/1000)`` and the next
    one, for each permille ``p``: exactly what linear interpolation between closest ranks needs.

    Portable (window functions exist on SQLite >= 3.25 and PostgreSQL; no percentile_cont), and
    only a handful of rows per bucket leave the database. Returns {bucket start: {rank: µs}}.
    """
    b = _bucket_expr(start, bucket_us)
    base = (
        sa.select(b, runs.c.latency_us.label("v"))
        .where(*_scope(workspace_id, project_id, condition, start, end))
        .where(runs.c.latency_us.isnot(None))
        .subquery("base")
    )
    ranked = sa.select(
        base.c.b,
        base.c.v,
        (sa.func.row_number().over(partition_by=base.c.b, order_by=base.c.v) - 1).label("rank"),
        sa.func.count().over(partition_by=base.c.b).label("n"),
    ).subquery("ranked")
    wanted: list[ColumnElement[bool]] = []
    for p in permilles:
        lo = (ranked.c.n - 1) * p // 1000
        wanted += [ranked.c.rank == lo, ranked.c.rank == lo + 1]
    query = sa.select(ranked.c.b, ranked.c.rank, ranked.c.v).where(sa.or_(*wanted))
    out: dict[int, dict[int, int]] = {}
    for bucket, rank, value in conn.execute(query):
        out.setdefault(start + int(bucket) * bucket_us, {})[int(rank)] = int(value)
    return out
