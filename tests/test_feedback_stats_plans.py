"""A project's feedback statistics (the alert page's chart of a score, ``GET
/projects/{id}/feedback-stats``) read the feedback of the range and look each row's run or trace
up, on SQLite and PostgreSQL: never the project's runs first (Issue #23: ``run_id IN (SELECT id
FROM runs WHERE project_id = ?)`` listed every run of the project, 0.8-1.3 s at 1,000,000 runs).
Also which feedback counts: on a run of the project, or (no run) on a trace of it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store import feedback as store
from goldloop.store.database import Database
from goldloop.store.schema import feedback, projects, runs, workspaces
from postgres_plans import postgres_plans
from run_rows import feedback_row, run_row
from sqlite_plans import query_plans

RUNS = 3000
HOUR = 3_600_000_000


def _feedback_row(n: int, key: str, score: float, created: int, **kw: Any) -> dict[str, Any]:
    return feedback_row("w", f"f{n}", key, score=score, created_at=created, **kw)


def _fill(conn: Connection) -> None:
    """Project p holds RUNS runs (in traces of 5), project q a few; feedback old and new."""
    conn.execute(sa.insert(workspaces).values(id="w", name="w", created_at=1))
    for pid in ("p", "q"):
        conn.execute(sa.insert(projects).values(id=pid, workspace_id="w", name=pid, created_at=1))
    rows = [
        run_row("w", "p", f"p{i}", trace_id=f"pt{i // 5}", parent_id=None if i % 5 == 0 else "x")
        for i in range(RUNS)
    ]
    rows += [run_row("w", "q", f"q{i}", trace_id=f"qt{i}") for i in range(5)]
    conn.execute(sa.insert(runs), rows)
    given = [
        # the window [10 h, 12 h): on p's runs, on a p trace, on q's, on a run never stored
        _feedback_row(1, "ok", 1.0, 10 * HOUR, run_id="p7", trace_id="pt1"),
        _feedback_row(2, "ok", 0.0, 10 * HOUR + 5, run_id="p8"),
        _feedback_row(3, "ok", 1.0, 11 * HOUR, trace_id="pt3"),
        _feedback_row(4, "ok", 0.0, 11 * HOUR, run_id="q1", trace_id="qt1"),
        _feedback_row(5, "ok", 0.0, 11 * HOUR, trace_id="qt2"),
        _feedback_row(6, "ok", 0.0, 11 * HOUR, run_id="nowhere"),
        _feedback_row(7, "other", 0.5, 10 * HOUR, run_id="p9"),
        # a run id that names a q run, with a p trace id: the run decides (q), not counted
        _feedback_row(8, "ok", 0.0, 11 * HOUR, run_id="q3", trace_id="pt4"),
    ]
    # many older scores of p, outside the window
    given += [_feedback_row(100 + i, "ok", 1.0, i, run_id=f"p{i}") for i in range(RUNS)]
    conn.execute(sa.insert(feedback), given)


def _stats(conn: Connection, key: str | None = "ok") -> list[store.StatsBucket]:
    return store.project_stats(
        conn, "w", "p", bucket_us=HOUR, since=10 * HOUR, until=12 * HOUR, key=key
    )


def test_counts_feedback_on_the_projects_runs_and_traces(db: Database, backend: str) -> None:
    with db.engine.begin() as conn:
        _fill(conn)
    assert db.read(_stats) == [
        store.StatsBucket("ok", 10 * HOUR, 2, 2, 0.5),
        store.StatsBucket("ok", 11 * HOUR, 1, 1, 1.0),
    ]
    assert db.read(lambda conn: _stats(conn, None)) == [
        store.StatsBucket("ok", 10 * HOUR, 2, 2, 0.5),
        store.StatsBucket("ok", 11 * HOUR, 1, 1, 1.0),
        store.StatsBucket("other", 10 * HOUR, 1, 1, 0.5),
    ]


@pytest.mark.parametrize("key", ["ok", None])
def test_sqlite_reads_the_ranges_feedback_then_each_run(tmp_path: Path, key: str | None) -> None:
    plans = query_plans(tmp_path, lambda conn: _stats(conn, key), _fill)
    assert len(plans) == 1
    steps = " | ".join(plans[0])
    assert re.search(r"SEARCH feedback USING INDEX ix_feedback(_key)?_created", steps), steps
    runs_reads = re.findall(r"(?:SCAN|SEARCH) runs[^|]*", steps)
    assert runs_reads, steps
    for read in runs_reads:  # one run by its id, or one trace's runs; never by project
        assert re.search(r"\((workspace_id=\? AND (id|trace_id)=\?)\)", read), steps


def test_postgres_reads_the_ranges_feedback_then_each_run(db: Database, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("SQLite's plans are held by the test above")
    with db.engine.begin() as conn:
        _fill(conn)
    plan = postgres_plans(db, _stats, analyze=["runs", "feedback"])[0]
    assert "Seq Scan on runs" not in plan, plan
    assert "hashed SubPlan" not in plan, plan
    assert re.search(r"Index Cond: .*\(id\)::text = \(feedback\.run_id\)::text", plan), plan
