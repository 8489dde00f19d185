"""The runs an alert names as its worst: for a pass rate, only runs that failed."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.engine import Connection

from fixture_runs import insert_run, project_id, workspace_id
from goldloop.store import alert_metrics
from goldloop.store.database import Database
from goldloop.store.schema import runs
from postgres_plans import postgres_plans
from sqlite_plans import query_plans

START = 1_764_150_816_000_000  # insert_run's start time


async def test_pass_rate_names_only_failed_runs_and_mean_names_the_lowest(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    for i in range(10):
        insert_run(app, f"run-{i}")
    scores = {f"run-{i}": 0.0 if i in (3, 7) else 1.0 for i in range(10)}
    for run_id, score in scores.items():
        r = await client.post(
            "/api/v1/feedback", json={"run_id": run_id, "key": "policy_ok", "score": score}
        )
        assert r.status_code == 201, r.text
    ws = workspace_id(app)
    pid = project_id(app, ws, "agent-support")

    def metric(kind: str) -> dict[str, object]:
        return app.state.ctx.db.read(
            lambda conn: alert_metrics.feedback_metric(
                conn, kind, ws, pid, "policy_ok", START - 1, START + 1
            )
        )

    rate = metric("feedback_pass_rate")
    assert (rate["n"], rate["successes"]) == (10, 8)
    # Two failures: the alert names those two, not three passing runs to fill five slots.
    assert sorted(rate["worst"]) == ["run-3", "run-7"]  # type: ignore[call-overload]

    mean = metric("feedback_mean")
    worst = mean["worst"]
    assert isinstance(worst, list)
    assert len(worst) == alert_metrics.WORST
    assert sorted(worst[:2]) == ["run-3", "run-7"]  # the lowest scores first


def test_feedback_metrics_read_each_runs_feedback_by_index(tmp_path: Path) -> None:
    """A window's feedback metric joins each run to its own feedback of the key (by run, and
    by trace for trace-level feedback), never to every feedback row of the key: that join
    cost ~1 s a tick at a few thousand scores."""

    def calls(conn: Connection) -> None:
        alert_metrics.feedback_metric(conn, "feedback_pass_rate", "w", "p", "k", 0, 10**12)
        alert_metrics.buckets(conn, "feedback_mean", "w", "p", 0, 10**12, 60_000_000, key="k")

    for plan in query_plans(tmp_path, calls):
        steps = " | ".join(plan)
        assert "USING INDEX ix_feedback_run_key (workspace_id=? AND run_id=? AND key=?)" in steps
        assert "ix_feedback_trace_key (workspace_id=? AND trace_id=? AND key=?)" in steps
        assert "ix_feedback_key_created" not in steps


def test_feedback_metrics_plan_on_postgres_needs_no_statistics(db: Database, backend: str) -> None:
    """On PostgreSQL before its first ANALYZE the planner believes every table holds a row or
    two; the feedback join must still search each run's own feedback by run id and key (a
    LATERAL subquery behind OFFSET 0), not scan the key's feedback once per run."""
    if backend != "postgres":
        pytest.skip("SQLite's plan is held by the test above")
    plan = postgres_plans(
        db,
        lambda conn: alert_metrics.feedback_metric(
            conn, "feedback_pass_rate", "w", "p", "k", 0, 10**12
        ),
    )[0]
    assert "(run_id)::text = (runs.id)::text" in plan  # an index key, not a join filter
    assert "Join Filter" not in plan
    assert "(trace_id)::text = (runs_1.trace_id)::text" in plan


async def test_cost_metrics_survive_a_cost_stored_before_the_range_check(app: FastAPI) -> None:
    """A row with cost 1e308 (accepted before ingest checked ranges) must not overflow the sum
    of squares: on PostgreSQL that raised on every evaluation of a cost alert."""
    for i in range(3):
        insert_run(app, f"run-{i}")
    huge = sa.case((runs.c.id == "run-0", 1e308), else_=0.01)
    app.state.ctx.db.write(lambda conn: conn.execute(sa.update(runs).values(cost=huge)))
    ws = workspace_id(app)
    pid = project_id(app, ws, "agent-support")
    agg = app.state.ctx.db.read(
        lambda conn: alert_metrics.run_metric(conn, "cost", pid, START - 1, START + 1)
    )
    assert agg["n"] == 3
    assert math.isfinite(agg["sum"])
    assert math.isfinite(agg["sum_sq"])
    assert agg["worst"][0] == "run-0"
    buckets = app.state.ctx.db.read(
        lambda conn: alert_metrics.buckets(conn, "cost", ws, pid, START - 1, START + 1, 60_000_000)
    )
    assert [b["n"] for b in buckets] == [3]
    assert math.isfinite(buckets[0]["sum"])
