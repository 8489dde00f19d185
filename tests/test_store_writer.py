"""The write path: acknowledged means committed; one bad write does not sink its batch."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.domain.errors import Overloaded
from goldloop.store import migrate
from goldloop.store.database import Database
from goldloop.store.schema import workspaces


def _insert(name: str) -> object:
    def fn(conn: Connection) -> str:
        conn.execute(sa.insert(workspaces).values(id=name, name=name, created_at=1))
        return name

    return fn


def _names(db: Database) -> set[str]:
    return set(db.read(lambda c: c.execute(sa.select(workspaces.c.name)).scalars().all()))


def test_failing_write_does_not_sink_the_others(db: Database) -> None:
    results: dict[str, object] = {}

    def worker(name: str) -> None:
        try:
            results[name] = db.write(_insert(name))  # type: ignore[arg-type]
        except Exception as exc:
            results[name] = exc

    # "dup" twice: exactly one must fail with an integrity error, every other write must land.
    names = [f"w{i}" for i in range(40)] + ["dup", "dup"]
    threads = [threading.Thread(target=worker, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _names(db) == {f"w{i}" for i in range(40)} | {"dup"}
    assert all(results[f"w{i}"] == f"w{i}" for i in range(40))


def test_write_returns_only_after_commit_visible_to_readers(db: Database) -> None:
    db.write(_insert("visible"))  # type: ignore[arg-type]
    assert "visible" in _names(db)


def test_a_read_sees_one_snapshot_while_writes_commit(db: Database) -> None:
    """Every statement of one read sees the database as of its first: a page never pairs a
    count (or a dataset's version) with rows a write committed in between."""
    db.write(_insert("before"))  # type: ignore[arg-type]

    def read(conn: Connection) -> tuple[set[str], set[str]]:
        first = set(conn.execute(sa.select(workspaces.c.name)).scalars().all())
        # another thread's write commits (and is acknowledged) between the two statements
        done = threading.Thread(target=db.write, args=(_insert("during"),))
        done.start()
        done.join(timeout=30)
        assert not done.is_alive()
        second = set(conn.execute(sa.select(workspaces.c.name)).scalars().all())
        return first, second

    first, second = db.read(read)
    assert "before" in first
    assert second == first
    assert "during" in _names(db)  # the write did land: the next read sees it


def test_full_queue_pushes_back_and_stop_drains(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'q.db'}", write_batch_max=1, write_queue_max=2)
    migrate.upgrade(database.engine)
    database.start()
    gate = threading.Event()
    entered = threading.Event()

    def blocker(conn: Connection) -> None:
        entered.set()
        gate.wait(10)

    first = database._writer.submit(blocker)  # type: ignore[union-attr]
    assert entered.wait(5)
    queued = [database._writer.submit(_insert(f"q{i}")) for i in range(2)]  # type: ignore[union-attr, arg-type]
    with pytest.raises(Overloaded):
        database.write(_insert("overflow"))  # type: ignore[arg-type]
    gate.set()
    database.stop(timeout=10)
    assert first.result(1) is None
    assert [f.result(1) for f in queued] == ["q0", "q1"]
    assert _names(database) == {"q0", "q1"}
    database.engine.dispose()


def test_sqlite_writes_queued_together_commit_together(tmp_path: Path) -> None:
    """Writes that queue up while the writer is busy go into one transaction: the first one's
    row is not visible to other connections while the second one runs (nothing is committed
    until the whole batch is), and both are acknowledged after the one commit."""
    database = Database(f"sqlite:///{tmp_path / 'group.db'}")
    migrate.upgrade(database.engine)
    database.start()
    writer = database._writer
    assert writer is not None
    gate, entered = threading.Event(), threading.Event()

    def blocker(conn: Connection) -> None:
        entered.set()
        gate.wait(10)

    def seen_elsewhere(conn: Connection) -> bool:
        return "a" in _names(database)  # another pooled connection

    busy = writer.submit(blocker)
    assert entered.wait(5)
    first = writer.submit(_insert("a"))  # type: ignore[arg-type]
    second = writer.submit(seen_elsewhere)
    batches = writer.committed_batches
    gate.set()
    assert busy.result(10) is None
    assert first.result(10) == "a"
    assert second.result(10) is False  # "a" was written but not yet committed
    assert "a" in _names(database)
    assert writer.committed_batches == batches + 2  # the blocker's batch, then the pair's
    database.close()


def test_a_batch_that_cannot_begin_fails_its_writes_instead_of_hanging(tmp_path: Path) -> None:
    """Another process holding the write lock past busy_timeout makes BEGIN fail: every write of
    that batch gets the error (none waits forever), and the next batch writes normally."""
    import sqlite3

    path = tmp_path / "locked.db"
    database = Database(f"sqlite:///{path}")
    migrate.upgrade(database.engine)
    database.start()
    database.write(lambda c: c.exec_driver_sql("PRAGMA busy_timeout=200"))  # the writer's own
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    writer = database._writer
    assert writer is not None
    try:
        blocked = writer.submit(_insert("blocked"))  # type: ignore[arg-type]
        with pytest.raises(sa.exc.OperationalError, match="locked"):
            blocked.result(timeout=10)  # a TimeoutError here: the write was left waiting
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert database.write(_insert("after")) == "after"  # type: ignore[arg-type]
    assert _names(database) == {"after"}
    database.close()


def test_sqlite_writer_keeps_planner_statistics(tmp_path: Path) -> None:
    """The writer runs ANALYZE when it starts idle (and hourly), so filters on rare values use
    the right index; sqlite_stat1 holds the statistics."""
    path = tmp_path / "stats.db"
    first = Database(f"sqlite:///{path}")
    migrate.upgrade(first.engine)
    first.start()
    for i in range(20):
        first.write(_insert(f"ws{i}"))  # type: ignore[arg-type]
    first.close()
    second = Database(f"sqlite:///{path}")
    second.start()
    assert second._writer is not None
    assert second._writer.analyzed_event.wait(10), "the idle writer never analyzed"
    second.stop(timeout=10)
    stats = second.read(
        lambda c: c.exec_driver_sql(
            "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'workspaces'"
        ).scalar_one()
    )
    assert stats >= 1
    second.engine.dispose()
