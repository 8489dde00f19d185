"""The run log's horizon never lets a tailer pass a row that commits late (PostgreSQL)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from goldloop.store import log_horizon
from goldloop.store.database import Database
from goldloop.store.schema import projects, runs, workspaces


def _project(db: Database) -> tuple[str, str]:
    ws, pid = "ws-" + uuid.uuid4().hex[:8], str(uuid.uuid4())

    def write(conn: sa.Connection) -> None:
        conn.execute(sa.insert(workspaces).values(id=ws, name=ws, created_at=0))
        conn.execute(sa.insert(projects).values(id=pid, workspace_id=ws, name="p", created_at=0))

    db.write(write)
    return ws, pid


def _insert(conn: sa.Connection, ws: str, pid: str, seq: int) -> str:
    rid = uuid.uuid4().hex
    conn.execute(
        sa.insert(runs).values(
            workspace_id=ws,
            project_id=pid,
            id=rid,
            trace_id=rid,
            seq=seq,
            is_root=True,
            name="n",
            kind="chain",
            status="success",
            created_at=0,
            updated_at=0,
        )
    )
    return rid


def _visible(db: Database, upto: int) -> set[int]:
    return set(
        db.read(
            lambda c: c.execute(sa.select(runs.c.seq).where(runs.c.seq <= upto)).scalars().all()
        )
    )


def test_sqlite_horizon_is_the_highest_committed_seq(db: Database, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("PostgreSQL has its own test below")
    ws, pid = _project(db)
    for seq in (1, 2, 3):
        db.write(lambda c, s=seq: _insert(c, ws, pid, s))
    assert db.read(lambda c: log_horizon.horizon(c, runs.c.seq, "runs_seq")) == 3


def test_postgres_horizon_waits_for_the_writer_that_drew_a_lower_seq(
    db: Database, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite has a single writer; commits cannot reorder")
    ws, pid = _project(db)
    slow = db.engine.connect()
    fast = db.engine.connect()
    try:
        # Writer A draws first but commits last.
        slow.begin()
        log_horizon.hold_writer_lock(slow)
        seq_a = int(slow.execute(sa.text("SELECT nextval('runs_seq')")).scalar_one())
        late_id = _insert(slow, ws, pid, seq_a)
        # Writer B draws later and commits at once.
        with fast.begin():
            log_horizon.hold_writer_lock(fast)
            seq_b = int(fast.execute(sa.text("SELECT nextval('runs_seq')")).scalar_one())
            _insert(fast, ws, pid, seq_b)
        assert seq_b > seq_a
        # The hazard is real: B is visible while A's lower number is not.
        assert _visible(db, seq_b) == {seq_b}

        result: list[int] = []
        reader = threading.Thread(
            target=lambda: result.append(
                db.read(lambda c: log_horizon.horizon(c, runs.c.seq, "runs_seq"))
            )
        )
        reader.start()
        # Wait (bounded) until the reader is queued behind writer A's shared lock.
        deadline = time.monotonic() + 10
        waiting = 0
        while time.monotonic() < deadline and not waiting:
            waiting = db.read(
                lambda c: c.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                        " AND mode = 'ExclusiveLock' AND objid = :k"
                    ),
                    {"k": log_horizon.LOG_LOCK},
                ).scalar_one()
            )
        assert waiting, "the horizon reader never waited for the in-flight writer"
        assert reader.is_alive()
        assert result == []
        slow.commit()
        reader.join(10)
        assert result
        assert result[0] >= seq_b
        visible = _visible(db, result[0])
        assert {seq_a, seq_b} <= visible  # nothing below the horizon is missing
        assert late_id in db.read(lambda c: c.execute(sa.select(runs.c.id)).scalars().all())
    finally:
        slow.close()
        fast.close()
