"""Benchmark the conversation-thread reads at scale.

Fills a store with N runs (default 200,000) in one project: traces of 4 runs, each trace a turn of
one of N/40 threads (about 10 turns a thread; every run of a trace carries the thread id, as the
LangSmith SDK's inherited metadata does), plus 10% of traces with no thread. Then times, through
the service layer (no HTTP):

- the first page of the thread list (50 threads, most recently active first);
- a page deep in the list (keyset cursor after 2,000 threads);
- the list narrowed to the last day;
- one thread read as a conversation (its turns with inputs and outputs).

Each is timed with the covering index of migration 0015 (``ix_runs_project_thread``) and again
with the index it replaced (``(project_id, session_id, start_time)``), so the figure says what the
migration buys.

Usage:
    python bench/threads.py                     # SQLite, 200,000 runs
    python bench/threads.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench_threads

Results go to bench/results/threads-<backend>-<runs>-<time>.json.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import results_file

from goldloop.services import auth, projects, threads
from goldloop.services.context import Principal, ServiceContext
from goldloop.settings import load_settings
from goldloop.store import migrate
from goldloop.store.database import Database
from goldloop.store.schema import runs

DAY = 86_400_000_000
NOW = 1_764_150_000_000_000
NEW_INDEX = "ix_runs_project_thread"
OLD_INDEX = "ix_runs_project_session_start"


def _rows(ws: str, pid: str, n_runs: int, seed: int) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    n_threads = max(1, n_runs // 40)
    batches: list[list[dict[str, Any]]] = [[]]
    seq = 0
    for t in range(n_runs // 4):
        thread = None if rng.random() < 0.1 else f"thread-{rng.randrange(n_threads):06d}"
        start = NOW - rng.randrange(30 * DAY)
        trace = f"t{t:07d}"
        for i in range(4):
            seq += 1
            latency = rng.randrange(1000, 5_000_000)
            batches[-1].append(
                {
                    "workspace_id": ws,
                    "project_id": pid,
                    "id": f"{trace}-{i}",
                    "trace_id": trace,
                    "parent_id": None if i == 0 else f"{trace}-0",
                    "seq": seq,
                    "is_root": i == 0,
                    "name": "turn" if i == 0 else "step",
                    "kind": "chain" if i == 0 else "llm",
                    "status": "error" if rng.random() < 0.03 else "success",
                    "start_time": start + i,
                    "end_time": start + i + latency,
                    "latency_us": latency,
                    "inputs": {"question": f"question {rng.randrange(10**9)} " + "lorem " * 30},
                    "outputs": {"answer": "dolor sit amet " * 30},
                    "session_id": thread,
                    "created_at": start,
                    "updated_at": start,
                }
            )
        if len(batches[-1]) >= 20_000:
            batches.append([])
    return batches


def _time(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    fn()  # warm the caches
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(samples), 2), "max_ms": round(max(samples), 2)}


def _use_index(db: Database, which: str) -> None:
    """Put the 0015 index (``new``) or the one it replaced (``old``) in place, then analyze."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        names = {ix["name"] for ix in sa.inspect(conn).get_indexes("runs")}
        if which == "new" and NEW_INDEX not in names:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {OLD_INDEX}")
            conn.exec_driver_sql(
                f"CREATE INDEX {NEW_INDEX} ON runs "
                "(project_id, session_id, start_time, trace_id, status, workspace_id)"
            )
        if which == "old" and OLD_INDEX not in names:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {NEW_INDEX}")
            conn.exec_driver_sql(
                f"CREATE INDEX {OLD_INDEX} ON runs (project_id, session_id, start_time)"
            )
        # Planner statistics, and on PostgreSQL the visibility map that index-only scans need
        # (autovacuum keeps both for a database that has been running a while).
        conn.exec_driver_sql("VACUUM ANALYZE" if db.dialect == "postgresql" else "ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--keep-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.keep_dir) as tmp:
        url = args.database_url or f"sqlite:///{tmp}/threads.db"
        settings = load_settings({"data_dir": Path(tmp), "database_url": url}, environ={})
        db = Database(url)
        if db.dialect == "postgresql":  # a scratch database: start from nothing
            with db.engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        migrate.upgrade(db.engine)
        db.start()
        ctx = ServiceContext(db=db, settings=settings, clock=lambda: NOW)
        try:
            ws = auth.create_workspace(ctx, "bench")
            who = Principal(ws.id, "bench", "admin")
            pid = projects.get_or_create(ctx, who, "chat").id
            print(f"filling {args.runs:,} runs into {db.dialect} ...", flush=True)
            started = time.perf_counter()
            for batch in _rows(ws.id, pid, args.runs, seed=1):
                if batch:
                    db.write(lambda c, b=batch: c.execute(sa.insert(runs), b))
            fill_s = time.perf_counter() - started

            first = threads.list_threads(ctx, who, pid, limit=50)
            cursor = first["next_cursor"]
            for _ in range(39):  # 40 pages of 50: the cursor after 2,000 threads
                cursor = threads.list_threads(ctx, who, pid, limit=50, cursor=cursor)["next_cursor"]
            one = first["items"][0]["thread_id"]
            day_ago = str(NOW - DAY)
            cases: dict[str, Callable[[], Any]] = {
                "list first page (50)": lambda: threads.list_threads(ctx, who, pid, limit=50),
                "list page after 2,000 threads": lambda: threads.list_threads(
                    ctx, who, pid, limit=50, cursor=cursor
                ),
                "list, last day only": lambda: threads.list_threads(
                    ctx, who, pid, limit=50, start=day_ago
                ),
                "read one thread (turns with inputs/outputs)": lambda: threads.get_thread(
                    ctx, who, pid, one
                ),
            }
            timings: dict[str, dict[str, dict[str, float]]] = {}
            for which in ("new", "old"):
                _use_index(db, which)
                timings[which] = {name: _time(fn, args.repeat) for name, fn in cases.items()}
            _use_index(db, "new")
        finally:
            db.close()

    backend = "postgresql" if args.database_url else "sqlite"
    print(f"{backend}, {args.runs:,} runs, {first['items'][0]['turn_count']} turns in thread 1")
    print(f"fill: {fill_s:.1f}s")
    print(f"{'case':48} {'0015 index':>14} {'old index':>14}")
    for name in cases:
        new, old = timings["new"][name], timings["old"][name]
        print(f"{name:48} {new['median_ms']:>11.2f} ms {old['median_ms']:>11.2f} ms")
    results_file.write(
        f"threads-{backend}-{args.runs}",
        {
            "backend": backend,
            "runs": args.runs,
            "python": platform.python_version(),
            "timings_ms": timings,
            "repeat": args.repeat,
        },
    )


if __name__ == "__main__":
    main()
