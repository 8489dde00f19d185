"""Window aggregates for alert rules: one metric of one project between two instants.

Run metrics look at root runs by ``start_time``; feedback metrics at feedback by ``created_at``
on runs of the project. Aggregates are computed in SQL (counts, sums, sums of squares) so a
window of a million runs costs one indexed scan, not a million rows in Python.
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import runs

WORST = 5


def _run_window(project_id: str, start_us: int, end_us: int) -> list[sa.ColumnElement[bool]]:
    return [
        runs.c.project_id == project_id,
        runs.c.is_root.is_(True),
        runs.c.start_time >= start_us,
        runs.c.start_time < end_us,
    ]


def run_metric(
    conn: Connection,
    kind: str,
    project_id: str,
    start_us: int,
    end_us: int,
    extra_where: sa.ColumnElement[bool] | None = None,
) -> dict[str, Any]:
    """Aggregates for ``error_rate``, ``latency_p95``, ``cost`` or ``volume``."""
    where = _run_window(project_id, start_us, end_us)
    if extra_where is not None:
        where.append(extra_where)
    if kind == "error_rate":
        is_error = sa.case((runs.c.status == "error", 1), else_=0)
        n, errors = conn.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(is_error), 0)).where(*where)
        ).one()
        worst = _ids(conn, sa.select(runs.c.id).where(*where, runs.c.status == "error"))
        return {"n": int(n), "successes": int(errors), "worst": worst}
    if kind == "latency_p95":
        with_latency = [*where, runs.c.latency_us.is_not(None)]
        n = int(conn.execute(sa.select(sa.func.count()).where(*with_latency)).scalar_one())
        if n == 0:
            return {"n": 0, "value": None, "worst": []}
        offset = max(0, math.ceil(0.95 * n) - 1)  # nearest-rank percentile
        p95 = conn.execute(
            sa.select(runs.c.latency_us)
            .where(*with_latency)
            .order_by(runs.c.latency_us)
            .offset(offset)
            .limit(1)
        ).scalar_one()
        worst = _ids(
            conn, sa.select(runs.c.id).where(*with_latency).order_by(runs.c.latency_us.desc())
        )
        return {"n": n, "value": p95 / 1000.0, "worst": worst}
    if kind == "cost":
        with_cost = [*where, runs.c.cost.is_not(None)]
        n, total, total_sq = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(runs.c.cost), 0.0),
                sa.func.coalesce(sa.func.sum(runs.c.cost * runs.c.cost), 0.0),
            ).where(*with_cost)
        ).one()
        worst = _ids(conn, sa.select(runs.c.id).where(*with_cost).order_by(runs.c.cost.desc()))
        return {"n": int(n), "sum": float(total), "sum_sq": float(total_sq), "worst": worst}
    if kind == "volume":
        n = int(conn.execute(sa.select(sa.func.count()).where(*where)).scalar_one())
        return {"n": n}
    raise ValueError(f"not a run metric: {kind}")


def _ids(conn: Connection, query: sa.Select[Any]) -> list[str]:
    return [str(v) for v in conn.execute(query.limit(WORST)).scalars()]
