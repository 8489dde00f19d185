"""Figures of a project's runs by (chart bucket, hour), computed from the runs: what an hourly
rollup holds (``goldloop.store.rollups``) and what a reader computes for the hours that are not
rolled up (the edges of a range, the current hour, hours changed since the worker's last tick).

A *piece* is the runs of one project that started in one hour and one chart bucket. Traces are
root runs; a trace is errored when its root errored or a run of the same trace and project with
status ``error`` started from ``ERROR_LOOKBACK`` before the root's hour to ``ERROR_TAIL`` after
its end: a window fixed by the root's hour, so a trace counts the same whichever range or
bucket reads it (the live queries of ``store.trace_stats`` use the range's bounds instead; both
see every errored run that started from an hour before its root to a day after it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from goldloop.domain import latency_histogram as lh
from goldloop.store.run_queries import _COST_SUM
from goldloop.store.schema import feedback, runs
from goldloop.store.trace_stats import ERROR_LOOKBACK, ERROR_TAIL, status_error

HOUR = 3_600_000_000
# (workspace id, project id, bucket start, hour start)
PieceKey = tuple[str, str, int, int]


@dataclass
class Piece:
    traces: int = 0
    errored: int = 0
    root_n: int = 0
    root_sum: float = 0.0
    runs: int = 0
    run_errors: int = 0
    run_n: int = 0
    run_sum: float = 0.0
    input_tokens: float = 0.0
    output_tokens: float = 0.0
    total_tokens: float = 0.0
    cost: float = 0.0
    # latencies: exact values (computed from the runs) and/or histograms (from rollups)
    root_values: list[int] = field(default_factory=list)
    run_values: list[int] = field(default_factory=list)
    root_hist: lh.Histogram = field(default_factory=dict)
    run_hist: lh.Histogram = field(default_factory=dict)
    # histograms as stored (``latency_histogram.encode``), added up only when read
    root_encoded: list[list[int]] = field(default_factory=list)
    run_encoded: list[list[int]] = field(default_factory=list)
    # {feedback key: (scored, sum of scores)}
    scores: dict[str, tuple[int, float]] = field(default_factory=dict)

    def add(self, other: Piece) -> None:
        self.traces += other.traces
        self.errored += other.errored
        self.root_n += other.root_n
        self.root_sum += other.root_sum
        self.runs += other.runs
        self.run_errors += other.run_errors
        self.run_n += other.run_n
        self.run_sum += other.run_sum
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.total_tokens += other.total_tokens
        self.cost += other.cost
        self.root_values += other.root_values
        self.run_values += other.run_values
        lh.add(self.root_hist, other.root_hist)
        lh.add(self.run_hist, other.run_hist)
        self.root_encoded += other.root_encoded
        self.run_encoded += other.run_encoded
        self.add_scores(other.scores)

    def add_scores(self, scores: dict[str, tuple[int, float]]) -> None:
        for key, (n, total) in scores.items():
            seen = self.scores.get(key, (0, 0.0))
            self.scores[key] = (seen[0] + n, seen[1] + total)


def hour_of(us: int) -> int:
    return us - us % HOUR


def compute(
    conn: Connection,
    project_ids: Sequence[str],
    *,
    start: int,
    end: int,
    origin: int,
    bucket_us: int,
    workspace_id: str | None = None,
    latencies: bool = True,
) -> dict[PieceKey, Piece]:
    """The pieces of these projects' runs that started in ``[start, end)``, in chart buckets of
    ``bucket_us`` from ``origin`` (<= ``start``) cut at every hour."""
    out: dict[PieceKey, Piece] = {}
    if not project_ids or end <= start:
        return out
    big = sa.BigInteger
    b = ((runs.c.start_time - sa.literal(origin, big)) // sa.literal(bucket_us, big)).label("b")
    h = (runs.c.start_time // sa.literal(HOUR, big)).label("h")
    scope: list[ColumnElement[bool]] = [
        runs.c.project_id.in_(list(project_ids)),
        runs.c.start_time >= start,
        runs.c.start_time < end,
    ]
    if workspace_id is not None:
        scope.append(runs.c.workspace_id == workspace_id)
    keys = [runs.c.workspace_id, runs.c.project_id, b, h]

    def piece(ws: str, pid: str, bucket: int, hour: int) -> Piece:
        key = (str(ws), str(pid), origin + int(bucket) * bucket_us, int(hour) * HOUR)
        found = out.get(key)
        if found is None:
            found = out[key] = Piece()
        return found

    root = runs.c.is_root.is_(True)
    root_latency = sa.case((root, runs.c.latency_us), else_=None)
    zero = sa.literal(0)
    as_float = sa.Float

    def total(col: ColumnElement[int] | sa.Column[int]) -> ColumnElement[float]:
        return sa.func.coalesce(sa.func.sum(sa.cast(col, as_float)), zero)

    main = sa.select(
        *keys,
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(sa.case((root, 1), else_=0)), zero),
        sa.func.coalesce(sa.func.sum(sa.case((runs.c.status == "error", 1), else_=0)), zero),
        total(runs.c.input_tokens),
        total(runs.c.output_tokens),
        total(runs.c.total_tokens),
        sa.func.coalesce(
            sa.func.sum(sa.cast(runs.c.cost, _COST_SUM)), sa.cast(sa.literal(0), _COST_SUM)
        ),
        sa.func.count(root_latency),
        total(root_latency),
        sa.func.count(runs.c.latency_us),
        total(runs.c.latency_us),
    ).where(*scope)
    for r in conn.execute(main.group_by(*keys)):
        p = piece(r[0], r[1], r[2], r[3])
        p.runs, p.traces, p.run_errors = int(r[4]), int(r[5]), int(r[6])
        p.input_tokens, p.output_tokens, p.total_tokens = float(r[7]), float(r[8]), float(r[9])
        p.cost = float(r[10])
        p.root_n, p.root_sum = int(r[11]), float(r[12])
        p.run_n, p.run_sum = int(r[13]), float(r[14])

    # errored traces, by the root's hour, with a window fixed by that hour: the errored runs
    # near the pieces (one range of the project-first index), then each root in Python
    first, last = hour_of(start), hour_of(end - 1) + HOUR
    errored_runs = sa.select(runs.c.workspace_id, runs.c.trace_id, runs.c.start_time).where(
        runs.c.project_id.in_(list(project_ids)),
        runs.c.start_time >= first - ERROR_LOOKBACK,
        runs.c.start_time < last + ERROR_TAIL,
        status_error(),  # the partial index of errored runs, read alone
        *([runs.c.workspace_id == workspace_id] if workspace_id is not None else []),
    )
    failed: dict[tuple[str, str], list[int]] = {}
    for ws, trace, at in conn.execute(errored_runs):
        failed.setdefault((str(ws), str(trace)), []).append(int(at))
    if failed:
        roots = sa.select(*keys, runs.c.trace_id, runs.c.status, runs.c.start_time).where(
            *scope, root
        )
        for r in conn.execute(roots):
            times = failed.get((str(r[0]), str(r[4])))
            if times is None:
                continue
            hour = hour_of(int(r[6]))
            lo, hi = hour - ERROR_LOOKBACK, hour + HOUR + ERROR_TAIL
            if r[5] == "error" or any(lo <= t < hi for t in times):
                piece(r[0], r[1], r[2], r[3]).errored += 1

    if latencies:
        timed = sa.select(*keys, runs.c.is_root, runs.c.latency_us).where(
            *scope, runs.c.latency_us.isnot(None)
        )
        for r in conn.execute(timed):
            p = piece(r[0], r[1], r[2], r[3])
            p.run_values.append(int(r[5]))
            if r[4]:
                p.root_values.append(int(r[5]))

    on_run = sa.and_(feedback.c.workspace_id == runs.c.workspace_id, feedback.c.run_id == runs.c.id)
    on_trace = sa.and_(
        feedback.c.workspace_id == runs.c.workspace_id,
        feedback.c.run_id.is_(None),
        feedback.c.trace_id == runs.c.trace_id,
        root,
    )
    for join in (on_run, on_trace):
        query = (
            sa.select(*keys, feedback.c.key, sa.func.count(), sa.func.sum(feedback.c.score))
            .select_from(runs.join(feedback, join))
            .where(*scope, feedback.c.score.isnot(None))
            .group_by(*keys, feedback.c.key)
        )
        for r in conn.execute(query):
            piece(r[0], r[1], r[2], r[3]).add_scores({str(r[4]): (int(r[5]), float(r[6] or 0))})
    return out
