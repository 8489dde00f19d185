"""Retention on a grown runs table: how fast the worker deletes expired runs, and how long one
batch (one write transaction) holds the database.

Builds a project with --runs runs (4 per trace; --expired of them older than the policy's 30
days, 2% of the expired traces with feedback, so the policy keeps them), sets the policy
(keep_with_feedback), then runs the retention worker's ticks until the pass is done, timing each
batch.

    python bench/retention.py                                    # SQLite, 200,000 runs
    python bench/retention.py --database-url postgresql://postgres@127.0.0.1:5432/test

Prints the figures and writes bench/results/retention-<time>.json. On PostgreSQL it works in a
private schema that it drops at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import results_file

from goldloop.services import auth, projects, retention
from goldloop.services.context import Principal, ServiceContext
from goldloop.settings import load_settings, normalize_database_url
from goldloop.store import migrate
from goldloop.store.database import Database
from goldloop.store.schema import feedback, runs

DAY_US = retention.DAY_US


def _pg_schema(url: str) -> tuple[str, str]:
    schema = f"bench_retention_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    admin.dispose()
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", schema


def _drop_schema(url: str, schema: str) -> None:
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


def _grow(ctx: ServiceContext, ws: str, project: str, n: int, expired: float) -> int:
    """Insert ``n`` runs; returns how many are expired and not kept (the expected deletions)."""
    now = ctx.clock()
    per_trace = 4
    traces = n // per_trace
    old_traces = int(traces * expired)
    expected = 0
    seq = 0
    chunk: list[dict[str, Any]] = []
    fb: list[dict[str, Any]] = []

    def flush() -> None:
        rows, notes = list(chunk), list(fb)
        chunk.clear()
        fb.clear()

        def write(conn: sa.Connection) -> None:
            conn.execute(sa.insert(runs), rows)
            if notes:
                conn.execute(sa.insert(feedback), notes)

        ctx.db.write(write)

    for t in range(traces):
        old = t < old_traces
        start = now - (45 * DAY_US if old else DAY_US) + t * 1000
        kept = old and t % 50 == 0
        if old and not kept:
            expected += per_trace
        for i in range(per_trace):
            seq += 1
            run_id = f"r{t}-{i}"
            chunk.append(
                {
                    "workspace_id": ws,
                    "project_id": project,
                    "id": run_id,
                    "trace_id": f"t{t}",
                    "parent_id": None if i == 0 else f"r{t}-0",
                    "seq": seq,
                    "is_root": i == 0,
                    "name": "llm" if i else "agent",
                    "kind": "llm" if i else "chain",
                    "status": "success",
                    "start_time": start + i,
                    "end_time": start + i + 1_000_000,
                    "latency_us": 1_000_000,
                    "inputs": {"messages": [{"role": "user", "content": "question " * 20}]},
                    "outputs": {"content": "answer " * 40},
                    "metadata": {"customer": f"c{t % 1000}"},
                    "tags": [],
                    "created_at": start,
                    "updated_at": start,
                }
            )
        if kept:
            fb.append(
                {
                    "workspace_id": ws,
                    "id": str(uuid.uuid4()),
                    "run_id": f"r{t}-1",
                    "trace_id": f"t{t}",
                    "key": "correctness",
                    "score": 1.0,
                    "score_is_bool": False,
                    "has_correction": False,
                    "source": "api",
                    "request_hash": "0" * 64,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        if len(chunk) >= 5000:
            flush()
    if chunk or fb:
        flush()
    return expected


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200_000)
    ap.add_argument("--expired", type=float, default=0.5, help="fraction of runs past retention")
    ap.add_argument("--batch", type=int, default=2000, help="retention_batch_runs")
    ap.add_argument("--database-url", default="", help="empty: SQLite in a temporary directory")
    args = ap.parse_args()

    data = Path(tempfile.mkdtemp(prefix="goldloop-bench-retention-"))
    url, schema = args.database_url, None
    if url:
        url, schema = _pg_schema(normalize_database_url(url))
    settings = load_settings(
        {"data_dir": data, "database_url": url, "retention_batch_runs": args.batch}, environ={}
    )
    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    db.start()
    ctx = ServiceContext(db=db, settings=settings)
    try:
        ws = auth.create_workspace(ctx, "bench")
        who = Principal(workspace_id=ws.id, key_id="bench", role="admin")
        project = projects.create(ctx, who, "support").id
        t0 = time.perf_counter()
        expected = _grow(ctx, ws.id, project, args.runs, args.expired)
        grow_s = time.perf_counter() - t0
        if db.is_sqlite:
            db.engine.dispose()
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        else:
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        retention.set_policy(ctx, who, project, keep_days=30, keep_with_feedback=True)
        worker = retention.RetentionWorker(ctx)
        ticks: list[float] = []
        t0 = time.perf_counter()
        while True:
            started = time.perf_counter()
            done = worker.tick()
            ticks.append(time.perf_counter() - started)
            if not done:
                break
        total_s = time.perf_counter() - t0
        left = db.read(
            lambda c: c.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one()
        )
        deleted = args.runs - int(left)
        policy = retention.get_policy(ctx, who, project)
    finally:
        db.close()
        if schema:
            _drop_schema(normalize_database_url(args.database_url), schema)
    figures = {
        "backend": "postgresql" if schema else "sqlite",
        "runs": args.runs,
        "batch": args.batch,
        "expected_deleted": expected,
        "deleted": deleted,
        "recorded_on_policy": policy.runs_deleted,
        "grow_s": round(grow_s, 1),
        "delete_s": round(total_s, 2),
        "runs_deleted_per_s": round(deleted / total_s),
        "batches": len(ticks),
        "batch_ms_p50": round(statistics.median(ticks) * 1000, 1),
        "batch_ms_max": round(max(ticks) * 1000, 1),
    }
    for key, value in figures.items():
        print(f"{key:20} {value}")
    assert deleted == expected == policy.runs_deleted, "deleted runs differ from the expected"
    results_file.write("retention", dataclasses.asdict(_Result(figures)))


@dataclasses.dataclass
class _Result:
    figures: dict[str, Any]


if __name__ == "__main__":
    main()
