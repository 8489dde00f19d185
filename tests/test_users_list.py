"""The users list (a project's end users by last activity): its counts and keyset pages on
SQLite and PostgreSQL, and on SQLite that it reads ``ix_runs_project_user`` alone (Issue #23:
without that index the list read every run of the project, 2.8 s at 1,000,000 runs)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.engine import Connection

from fixture_runs import project_id, workspace_id
from goldloop.services.context import ServiceContext
from goldloop.store import threads
from goldloop.store.schema import projects, runs, workspaces
from sqlite_plans import query_plans

T0 = 1_764_150_816_000_000
_pk = itertools.count(1)


def run_row(ws: str, pid: str, user: str | None, start: int, **extra: Any) -> dict[str, Any]:
    n = next(_pk)
    return {
        "workspace_id": ws,
        "project_id": pid,
        "id": f"r{n}",
        "trace_id": extra.get("trace_id", f"t{n}"),
        "parent_id": None,
        "seq": n,
        "is_root": True,
        "name": "answer",
        "kind": "chain",
        "status": extra.get("status", "success"),
        "start_time": start,
        "user_id": user,
        "created_at": 1,
        "updated_at": 1,
    }


def test_users_by_last_activity_with_counts_and_keyset_pages(app: FastAPI) -> None:
    ctx: ServiceContext = app.state.ctx
    ws = workspace_id(app)
    pid = project_id(app, ws, "agent-support")
    other = project_id(app, ws, "elsewhere")
    rows = [
        run_row(ws, pid, "alice", T0, trace_id="ta"),
        run_row(ws, pid, "alice", T0 + 5, trace_id="ta", status="error"),
        run_row(ws, pid, "alice", T0 + 9, trace_id="tb"),
        run_row(ws, pid, "bob", T0 + 20),
        run_row(ws, pid, "carol", T0 + 20),  # ties with bob: by user id
        run_row(ws, pid, "dave", T0 + 1),
        run_row(ws, pid, None, T0 + 99),  # no user: not listed
        run_row(ws, other, "zed", T0 + 50),  # another project
    ]
    ctx.db.write(lambda conn: conn.execute(sa.insert(runs), rows))

    def page(after: tuple[int, str] | None, limit: int) -> tuple[list[Any], bool]:
        return ctx.db.read(lambda c: threads.list_users(c, ws, pid, after=after, limit=limit))

    first, more = page(None, 2)
    assert more
    assert [u.user_id for u in first] == ["bob", "carol"]
    second, more = page((first[-1].last_start or -1, first[-1].user_id), 2)
    assert not more
    assert second == [
        threads.UserRow("alice", 3, 2, 1, T0, T0 + 9),
        threads.UserRow("dave", 1, 1, 0, T0 + 1, T0 + 1),
    ]
    everyone, more = page(None, 50)
    assert [u.user_id for u in everyone] == ["bob", "carol", "alice", "dave"]
    assert not more


def test_users_list_reads_the_user_index_alone(tmp_path: Path) -> None:
    """A project whose newest runs do not settle a page (50 runs, 7 users, all read by the walk)
    is grouped from the user index alone; the walk itself goes down the start-time index."""

    def fill(conn: Connection) -> None:
        conn.execute(sa.insert(workspaces).values(id="ws", name="ws", created_at=1))
        conn.execute(sa.insert(projects).values(id="p", workspace_id="ws", name="p", created_at=1))
        conn.execute(sa.insert(runs), [run_row("ws", "p", f"u{i % 7}", T0 + i) for i in range(50)])

    plans = query_plans(
        tmp_path,
        lambda conn: threads.list_users(conn, "ws", "p", after=None, limit=3),
        fill,
    )
    # the walk of the newest runs, the page's user ids grouped, then their counts
    assert len(plans) == 3, plans
    walk, *grouped = plans
    assert any("INDEX ix_runs_project_start_stats (project_id=?" in s for s in walk), walk
    assert not any("TEMP B-TREE" in s for s in walk), walk  # read in time order, no sort
    for plan in grouped:
        reads = [step for step in plan if step.startswith(("SCAN runs", "SEARCH runs"))]
        assert reads, plan
        assert all("COVERING INDEX ix_runs_project_user" in s for s in reads), plan


def test_a_settled_walk_seeks_each_user_by_the_user_index(tmp_path: Path) -> None:
    """Past the first page, the walk's users are checked against their last start one seek
    per user in the user index; no statement groups the project's runs."""

    def fill(conn: Connection) -> None:
        conn.execute(sa.insert(workspaces).values(id="ws", name="ws", created_at=1))
        conn.execute(sa.insert(projects).values(id="p", workspace_id="ws", name="p", created_at=1))
        rows = [run_row("ws", "p", f"u{i % 400}", T0 + i) for i in range(3_000)]
        conn.execute(sa.insert(runs), rows)

    plans = query_plans(
        tmp_path,
        lambda conn: threads.list_users(
            conn, "ws", "p", after=(T0 + 2_990, "u390"), limit=3, walk=200
        ),
        fill,
    )
    assert len(plans) == 3, plans  # the walk, the users' last starts, their counts
    for plan in plans[1:]:
        reads = [step for step in plan if step.startswith(("SCAN runs", "SEARCH runs"))]
        assert reads, plan
        assert all("COVERING INDEX ix_runs_project_user (project_id=? AND user_id=?" in s
                   for s in reads), plan  # fmt: skip
