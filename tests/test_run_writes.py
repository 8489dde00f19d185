"""The store's run upsert on both backends, including PostgreSQL's concurrent-insert race."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from goldloop.domain.run_items import parse_item
from goldloop.domain.run_merge import merge
from goldloop.services import auth, ingest
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import migrate, run_rows, run_writes
from goldloop.store.database import Database
from postgres_plans import postgres_plans


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


@contextmanager
def _never_analysed(ctx: ServiceContext) -> Iterator[ServiceContext]:
    """On PostgreSQL, a context on a schema of its own, migrated to head and never analysed:
    the session's test schema may have been analysed by an earlier test (statistics outlive
    TRUNCATE). On SQLite, ``ctx`` itself."""
    if ctx.db.dialect != "postgresql":
        yield ctx
        return
    schema = f"gl_unanalysed_{uuid.uuid4().hex[:12]}"
    url = re.sub(r"search_path%3D\w+", f"search_path%3D{schema}", ctx.db.url)
    assert url != ctx.db.url, "the test database URL names no schema"
    admin = sa.create_engine(ctx.db.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    db = Database(url)
    try:
        migrate.upgrade(db.engine)
        db.start()
        yield ServiceContext(db=db, settings=ctx.settings)
    finally:
        db.close()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def test_the_stored_id_check_probes_the_unique_index_without_statistics(
    ctx: ServiceContext,
) -> None:
    with _never_analysed(ctx) as fresh:
        _check_the_stored_id_probe(fresh)


def _check_the_stored_id_probe(ctx: ServiceContext) -> None:
    """The check runs on every batch. On PostgreSQL it must probe (workspace_id, id) once per
    wanted id whatever the statistics: before the first ANALYZE the planner walked the
    workspace's rows instead (486 ms per batch at 400,000 runs)."""
    who = _who(ctx)
    batch = [
        parse_item({"id": f"r{i}", "trace_id": f"t{i // 5}", "name": "x", "start_time": i})
        for i in range(1_000)
    ]
    for start in range(0, len(batch), 500):
        ingest.write_patches(ctx, who, batch[start : start + 500], default_project="p")
    wanted = [f"new-{i}" for i in range(200)] + ["r17"]
    with ctx.db.engine.connect() as conn:
        assert run_writes._any_stored(conn, who.workspace_id, wanted)
        assert not run_writes._any_stored(conn, who.workspace_id, wanted[:-1])
    if ctx.db.engine.dialect.name != "postgresql":
        return
    with ctx.db.engine.begin() as conn:
        # A grown table (300,000 more runs of the workspace) that was never analysed: fresh
        # tables of a test schema have no statistics, the state that hurt.
        conn.exec_driver_sql(
            "INSERT INTO runs (workspace_id, project_id, id, trace_id, seq, is_root, name,"
            " kind, status, created_at, updated_at)"
            " SELECT workspace_id, project_id, 'bulk-' || g, 'bt-' || (g / 5), 100000 + g,"
            " true, 'x', 'chain', 'success', 1, 1"
            " FROM runs, generate_series(1, 300000) AS g WHERE runs.id = 'r0'"
        )
    with ctx.db.engine.connect() as conn:
        analysed = conn.exec_driver_sql(
            "SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables "
            "WHERE relname = 'runs' AND schemaname = current_schema()"
        ).one()
        assert analysed == (None, None)
        statement = str(run_writes._STORED["postgresql"].compile(conn))
        params = {"ids": wanted, "ws": who.workspace_id}
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, params))
        assert "uq_runs_workspace_id_id" in plan, plan
        assert "Seq Scan on runs" not in plan, plan
        assert "Filter: ((id)::text" not in plan, plan  # id is an index key, not a filter
        assert run_writes._any_stored(conn, who.workspace_id, ["bulk-123456", "nope"])
    # The check after an insert (which ids did another writer take first) reads each wanted
    # id's seq the same way: as an IN list it walked the workspace, 2.7 s per batch at 1,000,000
    # never-analysed runs (issue 24).
    mine = [{"id": "bulk-123456", "seq": 223456}, {"id": "bulk-7", "seq": 1}]
    mine += [{"id": f"new-{i}", "seq": i} for i in range(200)]
    lost: list[dict[str, int]] = []
    plans = postgres_plans(
        ctx.db, lambda conn: lost.append(run_writes._lost_inserts(conn, who.workspace_id, mine))
    )
    assert lost == [{"bulk-7": 1, **{f"new-{i}": i for i in range(200)}}]
    assert len(plans) == 1, plans
    assert "uq_runs_workspace_id_id" in plans[0], plans[0]
    assert "Seq Scan on runs" not in plans[0], plans[0]
    assert "Filter: ((id)::text" not in plans[0], plans[0]
