"""One line of figures per project for the projects list, over a time range, for a page of
projects at once: traces (root runs by start), traces with an errored run, trace latency ranks,
cost of every run, scored feedback per key (by the scored run's start), and last activity.

Each figure is one grouped query over the listed projects (``project_id IN (...)``), read
along the project-first indexes; last activity is one index seek per project.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from goldloop.store.run_queries import _COST_SUM, _finite
from goldloop.store.schema import feedback, runs
from goldloop.store.trace_stats import ERROR_LOOKBACK, ERROR_TAIL, status_error


@dataclass
class ProjectSummary:
    traces: int = 0
    errored: int = 0
    latency_count: int = 0
    latency_ranks: dict[int, float] = field(default_factory=dict)
    cost: float = 0.0
    # {key: (scored, sum of scores)}
    scores: dict[str, tuple[int, float]] = field(default_factory=dict)
    last_start: int | None = None


def _in_range(project_ids: Sequence[str], start: int, end: int) -> list[ColumnElement[bool]]:
    return [
        runs.c.project_id.in_(list(project_ids)),
        runs.c.start_time >= start,
        runs.c.start_time < end,
    ]


def summaries(
    conn: Connection,
    workspace_id: str,
    project_ids: Sequence[str],
    *,
    start: int,
    end: int,
    permilles: Sequence[int],
) -> dict[str, ProjectSummary]:
    out = {p: ProjectSummary() for p in project_ids}
    if not project_ids:
        return out
    ws = runs.c.workspace_id == workspace_id
    scope = [ws, *_in_range(project_ids, start, end)]
    is_root = runs.c.is_root.is_(True)
    errored = sa.select(runs.c.trace_id).where(
        ws,
        runs.c.project_id.in_(list(project_ids)),
        runs.c.start_time >= start - ERROR_LOOKBACK,
        runs.c.start_time < end + ERROR_TAIL,
        status_error(),
    )
    failed = sa.or_(runs.c.status == "error", runs.c.trace_id.in_(errored.correlate(None)))
    traces = (
        sa.select(
            runs.c.project_id,
            sa.func.count(),
            sa.func.sum(sa.case((failed, 1), else_=0)),
            sa.func.count(runs.c.latency_us),
        )
        .where(*scope, is_root)
        .group_by(runs.c.project_id)
    )
    for pid, n, bad, timed in conn.execute(traces):
        s = out[str(pid)]
        s.traces, s.errored, s.latency_count = int(n), int(bad or 0), int(timed)

    cost = (
        sa.select(runs.c.project_id, sa.func.sum(sa.cast(runs.c.cost, _COST_SUM)))
        .where(*scope, runs.c.cost.isnot(None))
        .group_by(runs.c.project_id)
    )
    for pid, total in conn.execute(cost):
        out[str(pid)].cost = _finite(float(total or 0.0))

    if any(s.latency_count for s in out.values()):
        base = (
            sa.select(runs.c.project_id.label("p"), runs.c.latency_us.label("v"))
            .where(*scope, is_root, runs.c.latency_us.isnot(None))
            .subquery("base")
        )
        ranked = sa.select(
            base.c.p,
            base.c.v,
            (sa.func.row_number().over(partition_by=base.c.p, order_by=base.c.v) - 1).label("r"),
            sa.func.count().over(partition_by=base.c.p).label("n"),
        ).subquery("ranked")
        wanted: list[ColumnElement[bool]] = []
        for p in permilles:
            lo = (ranked.c.n - 1) * p // 1000
            wanted += [ranked.c.r == lo, ranked.c.r == lo + 1]
        for pid, rank, value in conn.execute(
            sa.select(ranked.c.p, ranked.c.r, ranked.c.v).where(sa.or_(*wanted))
        ):
            out[str(pid)].latency_ranks[int(rank)] = int(value)

    on_run = sa.and_(feedback.c.workspace_id == runs.c.workspace_id, feedback.c.run_id == runs.c.id)
    on_trace = sa.and_(
        feedback.c.workspace_id == runs.c.workspace_id,
        feedback.c.run_id.is_(None),
        feedback.c.trace_id == runs.c.trace_id,
        is_root,
    )
    for join in (on_run, on_trace):
        query = (
            sa.select(
                runs.c.project_id, feedback.c.key, sa.func.count(), sa.func.sum(feedback.c.score)
            )
            .select_from(runs.join(feedback, join))
            .where(*scope, feedback.c.score.isnot(None))
            .group_by(runs.c.project_id, feedback.c.key)
        )
        for pid, key, n, total in conn.execute(query):
            scores = out[str(pid)].scores
            seen = scores.get(str(key), (0, 0.0))
            scores[str(key)] = (seen[0] + int(n), seen[1] + float(total or 0.0))

    for pid, value in last_starts(conn, project_ids).items():
        out[pid].last_start = value
    return out


def last_starts(conn: Connection, project_ids: Sequence[str]) -> dict[str, int | None]:
    """{project id: the latest start time of its runs}."""
    out: dict[str, int | None] = {}
    for pid in project_ids:
        # project ids are global keys, and these are the workspace's: no workspace condition,
        # so the max is one seek at the end of the project's range of the stats index
        last = sa.select(sa.func.max(runs.c.start_time)).where(runs.c.project_id == pid)
        value = conn.execute(last).scalar_one_or_none()
        out[pid] = None if value is None else int(value)
    return out
