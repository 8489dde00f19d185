"""Aggregates over any set of runs (LangSmith's ``/runs/stats``): counts, errors, tokens, costs
and order statistics of latency and tokens, in a handful of queries.

The condition arrives compiled (``goldloop.store.run_filters``); conditions on a run's trace
(``in_traces``) are subqueries on the same table. Sums and ranks follow ``run_queries``' project
statistics: counts summed as floats so 64-bit values never overflow, costs as numeric on
PostgreSQL, percentiles from the two closest ranks (``goldloop.domain.percentiles``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from goldloop.store import payload_store
from goldloop.store.run_queries import _COST_SUM, _finite, _whole
from goldloop.store.schema import runs

Cond = ColumnElement[bool]


@dataclass(frozen=True, slots=True)
class Totals:
    count: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost: float = 0.0
    input_cost: float = 0.0
    output_cost: float = 0.0
    last_start: int | None = None
    latency_count: int = 0
    tokens_count: int = 0
    # {column name: {0-based rank: value}} for the ranks the permilles asked for
    ranks: dict[str, dict[int, int]] = field(default_factory=dict)


def in_traces(workspace_id: str, condition: Cond, *, roots_only: bool) -> Cond:
    """Runs whose trace holds a run matching ``condition`` (its root run, if ``roots_only``).

    The subquery reads the runs table again under its own name: it is not correlated with the
    outer query (the compiled condition names ``runs``' columns)."""
    inner = sa.select(runs.c.trace_id).where(runs.c.workspace_id == workspace_id, condition)
    if roots_only:
        inner = inner.where(runs.c.is_root.is_(True))
    return runs.c.trace_id.in_(inner.correlate(None))


def _where(
    workspace_id: str, conditions: Sequence[Cond], project_ids: Sequence[str] | None
) -> list[Cond]:
    where: list[Cond] = [runs.c.workspace_id == workspace_id, *conditions]
    if project_ids is not None:
        where.append(runs.c.project_id.in_(list(project_ids)))
    return where


def _ranks(
    conn: Connection, where: list[Cond], column: sa.Column[Any], permilles: Sequence[int]
) -> dict[int, int]:
    """The values at ranks ``floor((n-1)*p/1000)`` and the next one, for each permille."""
    base = sa.select(column.label("v")).where(*where, column.isnot(None)).subquery("base")
    ranked = sa.select(
        base.c.v,
        (sa.func.row_number().over(order_by=base.c.v) - 1).label("rank"),
        sa.func.count().over().label("n"),
    ).subquery("ranked")
    wanted: list[Cond] = []
    for p in permilles:
        lo = (ranked.c.n - 1) * p // 1000
        wanted += [ranked.c.rank == lo, ranked.c.rank == lo + 1]
    query = sa.select(ranked.c.rank, ranked.c.v).where(sa.or_(*wanted))
    return {int(rank): int(value) for rank, value in conn.execute(query)}


def _cost_part(conn: Connection, part: str) -> ColumnElement[Any]:
    """``extra.cost.<part>`` as a number; on SQLite ``extra`` may be compressed (payload_store)."""
    if conn.dialect.name == "sqlite":
        found = sa.func.json_extract(payload_store.readable(runs.c.extra), f'$."cost"."{part}"')
        return sa.cast(found, sa.Float)
    number: ColumnElement[Any] = runs.c.extra[("cost", part)].as_float()
    return number


def totals(
    conn: Connection,
    workspace_id: str,
    conditions: Sequence[Cond],
    *,
    project_ids: Sequence[str] | None,
    permilles: Sequence[int],
) -> Totals:
    """Aggregates of the workspace's runs matching every condition (in ``project_ids`` when
    given), with the latency and total-token ranks for ``permilles``."""
    where = _where(workspace_id, conditions, project_ids)
    zero = sa.literal(0)
    row = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((runs.c.status == "error", 1), else_=0)), zero),
            sa.func.coalesce(sa.func.sum(sa.cast(runs.c.input_tokens, sa.Float)), zero),
            sa.func.coalesce(sa.func.sum(sa.cast(runs.c.output_tokens, sa.Float)), zero),
            sa.func.coalesce(sa.func.sum(sa.cast(runs.c.total_tokens, sa.Float)), zero),
            sa.func.coalesce(
                sa.func.sum(sa.cast(runs.c.cost, _COST_SUM)), sa.cast(sa.literal(0), _COST_SUM)
            ),
            sa.func.max(runs.c.start_time),
            sa.func.count(runs.c.latency_us),
            sa.func.count(runs.c.total_tokens),
        ).where(*where)
    ).one()
    count = int(row[0])
    if count == 0:
        return Totals()
    # The input/output parts of a cost live in the run's ``extra.cost`` document (the sender's
    # figures or the price estimate): read only for the runs that have a cost.
    parts = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(_cost_part(conn, "input")), zero),
            sa.func.coalesce(sa.func.sum(_cost_part(conn, "output")), zero),
        ).where(*where, runs.c.cost.isnot(None))
    ).one()
    ranks = {
        "latency_us": _ranks(conn, where, runs.c.latency_us, permilles) if row[7] else {},
        "total_tokens": _ranks(conn, where, runs.c.total_tokens, permilles) if row[8] else {},
    }
    return Totals(
        count=count,
        errors=int(row[1]),
        input_tokens=_whole(row[2]),
        output_tokens=_whole(row[3]),
        total_tokens=_whole(row[4]),
        cost=_finite(float(row[5])),
        input_cost=_finite(float(parts[0])),
        output_cost=_finite(float(parts[1])),
        last_start=None if row[6] is None else int(row[6]),
        latency_count=int(row[7]),
        tokens_count=int(row[8]),
        ranks=ranks,
    )


def reference_examples(example_ids: Sequence[str]) -> Cond:
    """Runs made for one of these dataset examples."""
    return runs.c.reference_example_id.in_(list(example_ids))


def all_of(conditions: Sequence[Cond]) -> Cond:
    return sa.and_(sa.true(), *conditions)
