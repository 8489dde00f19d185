"""Window aggregates for alert rules: one metric of one project between two instants.

Run metrics look at root runs by ``start_time``; feedback metrics at the feedback on runs of the
project that started in the window. Aggregates are computed in SQL (counts, sums, sums of
squares) so a window of a million runs costs one indexed scan, not a million rows in Python.
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import feedback, runs

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


def _json_text(col: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    """A top-level JSON string value as SQL text (for category values)."""
    if dialect == "postgresql":
        return col.op("#>>")(sa.literal_column("'{}'"))
    return sa.func.json_extract(col, "$")


def _feedback_scope(
    workspace_id: str,
    project_id: str,
    key: str,
    start_us: int,
    end_us: int,
    extra_where: sa.ColumnElement[bool] | None,
) -> tuple[sa.FromClause, list[sa.ColumnElement[bool]]]:
    """Feedback with ``key`` joined to the runs it is on (trace-level feedback: the trace's
    root run), for runs of the project that started in [start_us, end_us)."""
    joined = feedback.join(
        runs,
        sa.and_(
            runs.c.workspace_id == feedback.c.workspace_id,
            sa.or_(
                runs.c.id == feedback.c.run_id,
                sa.and_(
                    feedback.c.run_id.is_(None),
                    runs.c.trace_id == feedback.c.trace_id,
                    runs.c.is_root.is_(True),
                ),
            ),
        ),
    )
    where = [
        feedback.c.workspace_id == workspace_id,
        feedback.c.key == key,
        runs.c.project_id == project_id,
        runs.c.start_time >= start_us,
        runs.c.start_time < end_us,
    ]
    if extra_where is not None:  # a run filter: only feedback on runs that pass it
        where.append(extra_where)
    return joined, where


def feedback_metric(
    conn: Connection,
    kind: str,
    workspace_id: str,
    project_id: str,
    key: str,
    start_us: int,
    end_us: int,
    *,
    pass_threshold: float = 1.0,
    category: str | None = None,
    extra_where: sa.ColumnElement[bool] | None = None,
) -> dict[str, Any]:
    """Aggregates for ``feedback_mean``, ``feedback_pass_rate`` or ``category_share`` over
    feedback with this key on runs of the project that STARTED in the window (trace-level
    feedback counts for the trace's root run). Windowing by the run, not by when the score was
    written, keeps online scores and late human scores on the traffic they judge."""
    joined, where = _feedback_scope(workspace_id, project_id, key, start_us, end_us, extra_where)

    def select(*cols: Any) -> sa.Select[Any]:
        return sa.select(*cols).select_from(joined)

    if kind == "category_share":
        is_cat = _json_text(feedback.c.value, conn.dialect.name) == category
        hits = sa.func.coalesce(sa.func.sum(sa.case((is_cat, 1), else_=0)), 0)
        n, found = conn.execute(select(sa.func.count(), hits).where(*where)).one()
        worst = _ids(
            conn, select(runs.c.id).where(*where, is_cat).order_by(runs.c.start_time.desc())
        )
        return {"n": int(n), "successes": int(found), "worst": worst}
    scored = [*where, feedback.c.score.is_not(None)]
    lowest_first = (feedback.c.score, runs.c.start_time)
    if kind == "feedback_pass_rate":
        passed = sa.func.coalesce(
            sa.func.sum(sa.case((feedback.c.score >= pass_threshold, 1), else_=0)), 0
        )
        n, ok = conn.execute(select(sa.func.count(), passed).where(*scored)).one()
        # Only runs that failed: a window with two failures names two runs, not three passes.
        failed = select(runs.c.id).where(*scored, feedback.c.score < pass_threshold)
        worst = _ids(conn, failed.order_by(*lowest_first))
        return {"n": int(n), "successes": int(ok), "worst": worst}
    worst = _ids(conn, select(runs.c.id).where(*scored).order_by(*lowest_first))
    if kind == "feedback_mean":
        n, total, total_sq = conn.execute(
            select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(feedback.c.score), 0.0),
                sa.func.coalesce(sa.func.sum(feedback.c.score * feedback.c.score), 0.0),
            ).where(*scored)
        ).one()
        return {"n": int(n), "sum": float(total), "sum_sq": float(total_sq), "worst": worst}
    raise ValueError(f"not a feedback metric: {kind}")


def buckets(
    conn: Connection,
    kind: str,
    workspace_id: str,
    project_id: str,
    start_us: int,
    end_us: int,
    bucket_us: int,
    *,
    key: str | None = None,
    pass_threshold: float = 1.0,
    category: str | None = None,
    extra_where: sa.ColumnElement[bool] | None = None,
) -> list[dict[str, Any]]:
    """Per-bucket aggregates between two instants for a change detector, one GROUP BY: buckets
    of ``bucket_us`` from ``start_us`` by run start time, only those with samples, in order.
    Rates: ``n`` and ``successes`` (errors, passes or category hits, as the window metrics
    count them); means: ``n`` and ``sum``."""
    if kind in ("error_rate", "cost"):
        where = _run_window(project_id, start_us, end_us)
        if extra_where is not None:
            where.append(extra_where)
        source: sa.FromClause = runs
        if kind == "error_rate":
            value: sa.ColumnElement[Any] = sa.case((runs.c.status == "error", 1), else_=0)
        else:
            where.append(runs.c.cost.is_not(None))
            value = runs.c.cost
    else:
        assert key is not None, "feedback metrics need a key"
        source, where = _feedback_scope(
            workspace_id, project_id, key, start_us, end_us, extra_where
        )
        if kind == "category_share":
            is_cat = _json_text(feedback.c.value, conn.dialect.name) == category
            value = sa.case((is_cat, 1), else_=0)
        else:
            where.append(feedback.c.score.is_not(None))
            if kind == "feedback_pass_rate":
                value = sa.case((feedback.c.score >= pass_threshold, 1), else_=0)
            else:
                value = feedback.c.score
    index = ((runs.c.start_time - start_us) // bucket_us).label("i")
    q = (
        sa.select(index, sa.func.count(), sa.func.coalesce(sa.func.sum(value), 0))
        .select_from(source)
        .where(*where)
        .group_by(index)
        .order_by(index)
    )
    rate = kind in ("error_rate", "feedback_pass_rate", "category_share")
    out: list[dict[str, Any]] = []
    for i, n, total in conn.execute(q):
        row: dict[str, Any] = {"start_us": start_us + int(i) * bucket_us, "n": int(n)}
        row.update({"successes": int(total)} if rate else {"sum": float(total)})
        out.append(row)
    return out
