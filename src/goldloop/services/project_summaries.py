"""The projects list's figures: per project, over a time range, the traces, the share of them
with an errored run, trace latency p50/p95, cost, mean feedback scores and last activity; and
which projects are experiments (listed apart from production projects)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain import percentiles
from goldloop.services import rollup_reads
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import project_summaries as store
from goldloop.store.projects import ProjectRow
from goldloop.store.run_queries import _finite

PERCENTILES = {"p50": 500, "p95": 950}
SHOWN_KEYS = 2  # feedback keys per project, most scored first


def is_experiment(project: ProjectRow) -> bool:
    """Whether the project holds an experiment's runs (the same mark ``store.experiments``
    reads: an ``experiment`` document, or LangSmith's ``reference_dataset_id``)."""
    extra = project.extra if isinstance(project.extra, dict) else {}
    return extra.get("experiment") is not None or extra.get("reference_dataset_id") is not None


def summaries(
    ctx: ServiceContext,
    who: Principal,
    projects: Sequence[ProjectRow],
    *,
    start: int,
    end: int,
    rollups: bool = True,
) -> dict[str, dict[str, Any]]:
    """{project id: its figures} for the given projects of the caller's workspace (from hourly
    rollups where they help; ``rollups=False`` reads every run of the range)."""
    ids = [p.id for p in projects if p.workspace_id == who.workspace_id]
    permilles = list(PERCENTILES.values())

    def read(conn: Connection) -> dict[str, store.ProjectSummary]:
        found = (
            _from_rollups(conn, who.workspace_id, ids, start, end, permilles) if rollups else None
        )
        if found is not None:
            return found
        return store.summaries(
            conn, who.workspace_id, ids, start=start, end=end, permilles=permilles
        )

    rows = ctx.db.read(read)
    out: dict[str, dict[str, Any]] = {}
    for pid, s in rows.items():
        latency = {
            label: (
                None
                if not s.latency_count
                else (percentiles.interpolate(s.latency_count, p, s.latency_ranks) or 0) / 1000
            )
            for label, p in PERCENTILES.items()
        }
        keys = sorted(s.scores, key=lambda k: (-s.scores[k][0], k))
        out[pid] = {
            "traces": s.traces,
            "error_rate": s.errored / s.traces if s.traces else None,
            "latency_ms": latency,
            "cost": s.cost,
            "feedback": [
                {"key": k, "n": s.scores[k][0], "mean": s.scores[k][1] / s.scores[k][0]}
                for k in keys[:SHOWN_KEYS]
            ],
            "feedback_more": max(len(keys) - SHOWN_KEYS, 0),
            "last_start": s.last_start,
        }
    return out


def _from_rollups(
    conn: Connection,
    workspace_id: str,
    ids: list[str],
    start: int,
    end: int,
    permilles: list[int],
) -> dict[str, store.ProjectSummary] | None:
    """The summaries from hourly rollups (see ``rollup_reads``), or None to read the runs."""
    pieces = rollup_reads.collect(
        conn,
        workspace_id,
        ids,
        start=start,
        end=end,
        origin=start,
        bucket_us=end - start,
        root_hist=True,
        run_hist=False,
    )
    if pieces is None:
        return None
    out = {p: store.ProjectSummary() for p in ids}
    for (pid, _), piece in pieces.items():
        s = out[pid]
        s.traces, s.errored, s.cost = piece.traces, piece.errored, _finite(piece.cost)
        s.latency_count, s.latency_ranks = rollup_reads.latency_ranks(
            piece, roots=True, permilles=permilles
        )
        s.scores = dict(piece.scores)
    for pid, last in store.last_starts(conn, ids).items():
        out[pid].last_start = last
    return out
