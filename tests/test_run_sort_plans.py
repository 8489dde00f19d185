"""The runs list sorted by latency walks ``ix_runs_project_root_latency`` (migration 0026) and
sorts nothing, on SQLite and PostgreSQL, both directions, first page and cursor pages (Issue #23:
without that index the sort read and sorted every root of the project, 1.8 s at 1,000,000
runs). Also that the pages the index serves are the right runs, in order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.domain import filters
from goldloop.store import run_queries
from goldloop.store.database import Database
from goldloop.store.run_filters import compile_filter
from goldloop.store.schema import projects, runs, workspaces
from postgres_plans import postgres_plans
from run_rows import run_row
from sqlite_plans import query_plans

RUNS = 3000
INDEX = "ix_runs_project_root_latency"


def _fill(conn: Connection) -> None:
    """Two projects; in ``p`` every fifth run is a child, every 97th root has no latency."""
    conn.execute(sa.insert(workspaces).values(id="w", name="w", created_at=1))
    for pid in ("p", "q"):
        conn.execute(sa.insert(projects).values(id=pid, workspace_id="w", name=pid, created_at=1))
    rows = []
    for i in range(RUNS):
        child = i % 5 == 4
        latency = None if i % 97 == 0 else (i * 7919) % 100_000
        rows.append(
            run_row(
                "w",
                "p" if i % 10 else "q",
                f"r{i}",
                latency_us=latency,
                parent_id=f"r{i - 1}" if child else None,
                trace_id=f"r{i - 1}" if child else f"r{i}",
            )
        )
    conn.execute(sa.insert(runs), rows)


def _root(dialect: str) -> Any:
    return compile_filter(filters.parse("root"), dialect=dialect, workspace_id="w", now=0)


def _latency_page(
    conn: Connection, dialect: str, descending: bool, after: Any, limit: int
) -> run_queries.Page:
    """One page of p's roots sorted by latency, after the keyset ``after``."""
    return run_queries.list_page(
        conn,
        "w",
        project_id="p",
        condition=_root(dialect),
        sort="latency",
        descending=descending,
        after=after,
        limit=limit,
        light=True,
    )


def _pages(conn: Connection, dialect: str, descending: bool, limit: int = 40) -> list[str]:
    """Every page of p's roots by latency; the ids in the order the pages gave them."""
    seen: list[str] = []
    after = None
    while True:
        page = _latency_page(conn, dialect, descending, after, limit)
        seen += [r["id"] for r in page.rows]
        if not page.more:
            return seen
        last = page.rows[-1]
        after = (last["latency_us"], last["pk"])


def _first_and_second_page(conn: Connection, dialect: str) -> None:
    for descending in (True, False):
        last = _latency_page(conn, dialect, descending, None, 50).rows[-1]
        _latency_page(conn, dialect, descending, (last["latency_us"], last["pk"]), 50)


def _expected(descending: bool) -> list[str]:
    roots = [
        (None if i % 97 == 0 else (i * 7919) % 100_000, i)
        for i in range(RUNS)
        if i % 10 and i % 5 != 4
    ]
    pk = {i: i + 1 for i in range(RUNS)}  # inserted in order, one statement
    with_value = sorted((v, pk[i], i) for v, i in roots if v is not None)
    without = sorted((pk[i], i) for v, i in roots if v is None)
    if descending:
        ordered = [i for *_, i in reversed(with_value)] + [i for _, i in reversed(without)]
    else:
        ordered = [i for _, i in without] + [i for *_, i in with_value]
    return [f"r{i}" for i in ordered]


def test_sqlite_sorts_by_latency_from_the_index(tmp_path: Path) -> None:
    plans = query_plans(tmp_path, lambda conn: _first_and_second_page(conn, "sqlite"), _fill)
    assert len(plans) >= 4, plans  # both ways, first page and next (and the runs with no latency)
    for plan in plans:
        steps = " | ".join(plan)
        assert f"INDEX {INDEX} (project_id=?" in steps, steps
        assert "TEMP B-TREE" not in steps, steps


def test_postgres_sorts_by_latency_from_the_index(db: Database, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("SQLite's plans are held by the test above")
    with db.engine.begin() as conn:
        _fill(conn)
    plans = postgres_plans(
        db, lambda conn: _first_and_second_page(conn, "postgresql"), analyze=["runs"]
    )
    assert len(plans) >= 4  # both ways, first page and next (and the runs with no latency)
    for plan in plans:
        assert INDEX in plan, plan
        if "latency_us IS NULL" not in plan:  # the few runs without a latency may be sorted
            assert "Sort" not in plan, plan


@pytest.mark.parametrize("descending", [True, False])
def test_latency_pages_are_every_root_once_in_order(
    db: Database, descending: bool, backend: str
) -> None:
    with db.engine.begin() as conn:
        _fill(conn)
    got = db.read(lambda conn: _pages(conn, db.dialect, descending))
    assert got == _expected(descending)


def test_the_latency_index_holds_root_runs_only(db: Database) -> None:
    """Migration 0029: partial, on root runs. A latency is as good as random, so a child run in
    this index would write a leaf page of its own at every insert (issue 24), and no query
    walks the index for child runs."""
    with db.engine.connect() as conn:
        if db.is_sqlite:
            q = "SELECT sql FROM sqlite_master WHERE name = :name"
            expected = "WHERE is_root = 1"
        else:
            q = (
                "SELECT indexdef FROM pg_indexes"
                " WHERE indexname = :name AND schemaname = current_schema()"
            )
            expected = "WHERE is_root"
        definition = conn.execute(sa.text(q), {"name": INDEX}).scalar_one()
    assert definition.endswith(expected), definition
    assert "is_root" not in definition.removesuffix(expected), definition
