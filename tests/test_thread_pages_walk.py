"""The threads and users lists find a page from the newest runs (``store.threads._page_keys``)
and give exactly the pages the grouping of every run gives, on both backends: seeded projects
with few and many keys, ties in start time, runs without a start time or a key, time ranges,
and every page followed by its cursor, at walks small enough to settle, to fall back, and to
switch between the two from page to page."""

from __future__ import annotations

import random
from typing import Any

import pytest
import sqlalchemy as sa

from goldloop.store import threads
from goldloop.store.database import Database
from goldloop.store.schema import projects, runs, workspaces
from run_rows import run_row

T0 = 1_764_150_816_000_000
SEC = 1_000_000


def _fill(db: Database, seed: int, keys: int, n: int) -> None:
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        # coarse times so that many runs (and keys' last runs) tie
        start = None if rnd.random() < 0.03 else T0 + rnd.randrange(0, 400) * SEC
        key = None if rnd.random() < 0.1 else f"k{rnd.randrange(keys):03d}"
        rows.append(
            run_row(
                "w", ("p", "other")[i % 7 == 0], f"s{seed}-{i}",
                trace_id=f"t{seed}-{i // 3}", start_time=start, latency_us=None,
                session_id=key, user_id=key,
                status="error" if rnd.random() < 0.1 else "success",
            )
        )  # fmt: skip
    # a key whose runs have no start time at all: it sorts last
    rows.append(run_row("w", "p", f"s{seed}-untimed", start_time=None, session_id="zz-untimed"))
    rows[-1]["user_id"] = "zz-untimed"
    with db.engine.begin() as conn:
        conn.execute(sa.insert(workspaces).values(id="w", name="w", created_at=1))
        for pid in ("p", "other"):
            conn.execute(
                sa.insert(projects).values(id=pid, workspace_id="w", name=pid, created_at=1)
            )
        conn.execute(sa.insert(runs), rows)


def _all_pages(db: Database, kind: str, walk: int, limit: int, **kw: Any) -> list[list[Any]]:
    pages: list[list[Any]] = []
    after: tuple[int, str] | None = None
    with db.engine.connect() as conn:
        while True:
            if kind == "users":
                got, more = threads.list_users(conn, "w", "p", after=after, limit=limit, walk=walk)
                ids = [u.user_id for u in got]
            else:
                got, more = threads.list_threads(
                    conn, "w", "p", after=after, limit=limit, walk=walk, **kw
                )
                ids = [t.thread_id for t in got]
            pages.append(list(got))
            if not more:
                return pages
            assert len(pages) < 500, "paging does not end"
            last = got[-1]
            after = (last.last_start if last.last_start is not None else -1, ids[-1])


@pytest.mark.parametrize(("seed", "keys", "n"), [(1, 8, 300), (2, 120, 600), (3, 400, 900)])
def test_walked_pages_equal_the_grouped_ones(db: Database, seed: int, keys: int, n: int) -> None:
    _fill(db, seed, keys, n)
    for kind, kw in (
        ("users", {}),
        ("threads", {"start": None, "end": None}),
        ("threads", {"start": T0 + 50 * SEC, "end": T0 + 300 * SEC}),
    ):
        for limit in (1, 5, 25):
            grouped = _all_pages(db, kind, 0, limit, **kw)
            listed = [k for page in grouped for k in page]
            assert len(listed) == len({repr(k) for k in listed})  # every key once
            for walk in (3, 17, 60, 250, 5_000):
                walked = _all_pages(db, kind, walk, limit, **kw)
                assert walked == grouped, (kind, kw, limit, walk)


def test_a_big_enough_walk_settles_without_grouping(db: Database) -> None:
    """The walk is what answers, not the grouping behind it: the first page of a project with
    many users comes from the newest runs, and no statement groups the project's runs."""
    _fill(db, 4, 300, 900)
    expected = _all_pages(db, "users", 0, 5)[:2]
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    with db.engine.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", seen)
        first, more = threads.list_users(conn, "w", "p", after=None, limit=5, walk=200)
        sa.event.remove(conn, "before_cursor_execute", seen)
    assert more
    assert first == expected[0]
    assert not any("GROUP BY runs.user_id ORDER BY" in s for s in statements), statements
