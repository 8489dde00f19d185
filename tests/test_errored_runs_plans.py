"""The errored runs behind "errored traces" are read from the partial index of errored runs
(migration 0030) alone, on both backends: by the projects list, the overview's live figures and
the pieces of a rolled-up range. Without it each errored run of a day was a table row read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store import project_summaries, rollup_pieces, trace_stats
from goldloop.store.database import Database
from goldloop.store.schema import projects, runs, workspaces
from postgres_plans import postgres_plans
from run_rows import run_row
from sqlite_plans import query_plans

HOUR = 3_600_000_000
START, END = 100 * HOUR + 17, 124 * HOUR + 5  # ragged at both ends, as a "last 24 h"


def _calls(conn: Connection) -> None:
    project_summaries.summaries(conn, "w", ["p1", "p2"], start=START, end=END, permilles=[500])
    trace_stats.errored_traces(
        conn, "w", "p1", trace_stats.roots(), start=START, end=END, bucket_us=HOUR
    )
    rollup_pieces.compute(
        conn, ["p1", "p2"], start=START, end=END, origin=START, bucket_us=HOUR, workspace_id="w"
    )


def _month(conn: Connection) -> None:
    """A month of runs, one in 40 errored, in the two projects and a bigger third."""
    conn.execute(sa.insert(workspaces).values(id="w", name="w", created_at=1))
    for pid in ("p1", "p2", "big"):
        conn.execute(sa.insert(projects).values(id=pid, workspace_id="w", name=pid, created_at=1))
    rows = [
        run_row(
            "w",
            ("p1", "p2", "big", "big")[i % 4],
            f"r{i}",
            start_time=100 * HOUR - 30 * 24 * HOUR + i * 130_000_000,
            status="error" if i % 40 == 0 else "success",
        )
        for i in range(24_000)
    ]
    conn.execute(sa.insert(runs), rows)


def _recording(sql: list[str]) -> Callable[[Connection], None]:
    """``_calls``, noting each statement's text in ``sql``."""

    def calls(conn: Connection) -> None:
        def seen(*args: object) -> None:
            sql.append(str(args[2]))

        sa.event.listen(conn, "before_cursor_execute", seen)
        _calls(conn)
        sa.event.remove(conn, "before_cursor_execute", seen)

    return calls


def _errored_reads(statements: list[tuple[str, str]]) -> list[str]:
    """The plans of the statements that look errored runs up."""
    return [plan for sql, plan in statements if "'error'" in sql]


def test_sqlite_reads_errored_runs_from_their_index(tmp_path: Path) -> None:
    sql: list[str] = []
    calls = _recording(sql)

    plans = query_plans(tmp_path, calls, _month)
    assert len(plans) == len(sql)
    errored = _errored_reads([(s, " | ".join(p)) for s, p in zip(sql, plans, strict=True)])
    assert len(errored) >= 3, sql
    for plan in errored:
        assert "INDEX ix_runs_project_errors (project_id=?" in plan, plan


def test_postgres_reads_errored_runs_from_their_index(db: Database, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("SQLite has its own test above")
    with db.engine.begin() as conn:
        _month(conn)
    sql: list[str] = []
    calls = _recording(sql)

    plans = postgres_plans(db, calls, analyze=["runs"])
    errored = _errored_reads(list(zip(sql, plans, strict=True)))
    assert len(errored) >= 3, sql
    for plan in errored:
        assert "ix_runs_project_errors" in plan, plan
