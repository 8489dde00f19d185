"""The store's run upsert on both backends, including PostgreSQL's concurrent-insert race."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from goldloop.domain.run_items import parse_item
from goldloop.domain.run_merge import merge
from goldloop.services import auth, ingest
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import run_rows, run_writes


def _who(ctx: ServiceContext) -> Principal:
    ws = auth.create_workspace(ctx, "w")
    return Principal(ws.id, "key", "admin")


def _merge(existing: Any, patch: Any, project_id: str) -> dict[str, Any]:
    return merge(existing, patch, project_id=project_id, now=1, prices=None)


def test_seq_grows_on_every_insert_and_merge(ctx: ServiceContext) -> None:
    who = _who(ctx)
    ingest.write_patches(ctx, who, [parse_item({"id": "a", "trace_id": "t"})], default_project="p")
    ingest.write_patches(ctx, who, [parse_item({"id": "b", "trace_id": "t"})], default_project="p")
    first = {
        r["id"]: r["seq"]
        for r in ctx.db.read(lambda c: run_rows.rows_by_trace(c, who.workspace_id, "t"))
    }
    assert first["b"] > first["a"]
    ingest.write_patches(
        ctx, who, [parse_item({"id": "a", "trace_id": "t", "end_time": 5})], default_project="p"
    )
    after = {
        r["id"]: r["seq"]
        for r in ctx.db.read(lambda c: run_rows.rows_by_trace(c, who.workspace_id, "t"))
    }
    assert after["a"] > first["b"]
    assert after["b"] == first["b"]


def _waiting_on_a_lock(ctx: ServiceContext) -> int:
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    return int(ctx.db.read(lambda c: c.execute(query).scalar_one()))


def test_concurrent_insert_of_the_same_new_run_merges(ctx: ServiceContext) -> None:
    """Writer B finds no row, tries to insert while writer A's insert of the same id is
    uncommitted: B must wait, then (retrying its batch) merge onto A's row instead of failing
    or overwriting it."""
    if ctx.db.dialect != "postgresql":
        pytest.skip("SQLite has a single writer; the race cannot happen")
    who = _who(ctx)
    start = parse_item({"id": "x", "trace_id": "t", "name": "x", "inputs": {"q": 1}})
    end = parse_item({"id": "x", "trace_id": "t", "end_time": 10, "outputs": {"a": 2}})
    project = ctx.db.write(lambda c: run_writes.ensure_projects(c, who.workspace_id, ["p"], 1))
    pid = project["p"]
    holder = ctx.db.engine.connect()
    tx = holder.begin()
    run_writes.upsert_runs(holder, who.workspace_id, [(pid, start)], _merge)
    outcome: dict[str, Any] = {}

    def writer_b() -> None:
        try:
            outcome["n"] = ingest.write_patches(ctx, who, [end], default_project="p")
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=writer_b)
    thread.start()
    deadline = time.monotonic() + 20
    while _waiting_on_a_lock(ctx) == 0:  # B is blocked on A's uncommitted row
        assert time.monotonic() < deadline, "writer B never blocked"
        assert thread.is_alive(), outcome
        time.sleep(0.01)  # poll interval only; the condition above decides
    tx.commit()
    holder.close()
    thread.join(20)
    assert "error" not in outcome, outcome
    rows = ctx.db.read(lambda c: run_rows.rows_by_trace(c, who.workspace_id, "t"))
    assert len(rows) == 1
    row = rows[0]
    assert row["inputs"] == {"q": 1}
    assert row["outputs"] == {"a": 2}
    assert row["status"] == "success"
