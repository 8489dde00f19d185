"""Benchmark the run query paths at scale.

Fills a store with N runs (default 1,000,000: traces of 5 runs over 30 days in two projects, plus
one trace of 10,000 runs), bulk-inserted straight into the runs table, then times through the
service layer (filter parsing, SQL, row-to-JSON views; no HTTP):

- latest 50 root runs of a project, light columns (the traces table);
- the second page of that list (keyset cursor);
- a filtered list: kind + tag + latency;
- the 10,000-run trace tree (full, serialized with orjson as GET /traces/{id} does; and light);
- project statistics over the last 24 h in 1 h buckets (root runs), and 7 days of all runs;
- bulk reads, once each (``--skip-bulk`` leaves them out): exporting the project as OTLP/JSON
  Lines (all runs; a filtered set; whole traces of the error roots) and walking 7 days of
  root runs the way a rule backfill pages through them.

Usage:
    python bench/query.py                               # SQLite, 1,000,000 runs
    python bench/query.py --runs 200000 --database-url postgresql+psycopg://postgres@127.0.0.1/test

The database is kept (``--db``) and reused when it already holds the requested number of runs.
Planner statistics are gathered (ANALYZE) before timing. Results go to
bench/results/query-<backend>-<runs>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from goldloop.services import auth, projects, run_queries, trace_export
from goldloop.services.context import Principal, ServiceContext
from goldloop.settings import load_settings
from goldloop.store import migrate
from goldloop.store import rules as rule_store
from goldloop.store.database import Database
from goldloop.store.schema import runs

DAY = 86_400_000_000
NOW = 1_764_150_000_000_000  # fixed "now" so every run of the benchmark sees the same data
KINDS = ["chain", "llm", "retriever", "llm", "tool"]  # the 5 runs of an ordinary trace
FILTERED = 'kind = "llm" and tag = "prod" and latency > 2s'
BIG_TRACE = "big-trace-10000"


def _row(
    rng: random.Random, ws: str, pid: str, trace: str, i: int, parent: str | None, start: int
) -> dict[str, Any]:
    kind = KINDS[i % 5] if parent is not None or i == 0 else "chain"
    llm = kind == "llm"
    latency = int(rng.lognormvariate(13.2, 0.9)) if rng.random() > 0.01 else None
    question = f"customer question {rng.randrange(10**9)} " + "lorem ipsum " * 20
    tokens_in = rng.randrange(100, 4000) if llm else None
    tokens_out = rng.randrange(10, 800) if llm else None
    return {
        "workspace_id": ws,
        "project_id": pid,
        "id": f"{trace}-{i}",
        "trace_id": trace,
        "parent_id": parent,
        "seq": 0,
        "is_root": parent is None,
        "name": f"{kind}-step",
        "kind": kind,
        "status": "error" if rng.random() < 0.03 else ("success" if latency else "pending"),
        "start_time": start,
        "end_time": start + latency if latency else None,
        "latency_us": latency,
        "error": None,
        "inputs": {"messages": [{"role": "user", "content": question}]},
        "outputs": {"content": "answer " + "dolor sit amet " * 20} if latency else None,
        "model": "gpt-4o-mini" if llm else None,
        "provider": "openai" if llm else None,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "total_tokens": (tokens_in or 0) + (tokens_out or 0) if llm else None,
        "cost": (tokens_in or 0) * 1.5e-7 + (tokens_out or 0) * 6e-7 if llm else None,
        "session_id": f"conv-{rng.randrange(50_000)}",
        "user_id": f"user-{rng.randrange(5_000)}",
        "tags": ["prod"] if rng.random() < 0.7 else ["staging"],
        "metadata": {"customer": rng.choice(["acme", "globex", "initech"]), "release": "v3"},
        "extra": None,
        "reference_example_id": None,
        "created_at": start,
        "updated_at": start,
    }


def fill(
    db: Database, ws: str, pids: list[str], n_runs: int, seed: int = 1, now: int = NOW
) -> None:
    """Bulk-insert ``n_runs`` runs (store rows, ``seq`` from 1) over the 30 days before ``now``."""
    rng = random.Random(seed)
    batch: list[dict[str, Any]] = []
    seq = 0

    def flush() -> None:
        nonlocal batch
        rows = batch
        batch = []
        db.write(lambda c: c.execute(sa.insert(runs), rows))

    started = time.perf_counter()
    # the big trace (10,000 runs): a root with 101 agent steps, each a chain of 99 calls
    big_start = now - DAY // 2
    batch.append(_row(rng, ws, pids[0], BIG_TRACE, 0, None, big_start))
    n = 1
    for step in range(101):
        parent = f"{BIG_TRACE}-0"
        for depth in range(99):
            row = _row(rng, ws, pids[0], BIG_TRACE, n, parent, big_start + step * 1000 + depth)
            batch.append(row)
            parent = row["id"]
            n += 1
    n_traces = (n_runs - n) // 5
    for t in range(n_traces):
        pid = pids[0] if t % 10 else pids[1]  # 90% / 10%
        start = now - rng.randrange(30 * DAY)
        trace = f"t{t:07d}"
        root = f"{trace}-0"
        for i in range(5):
            batch.append(_row(rng, ws, pid, trace, i, None if i == 0 else root, start + i))
        if len(batch) >= 20_000:
            for row in batch:
                seq += 1
                row["seq"] = seq
            flush()
            done = t * 5
            if t % 20_000 == 0:
                rate = done / (time.perf_counter() - started + 1e-9)
                print(f"  inserted {done:,} runs ({rate:,.0f}/s)", flush=True)
    for row in batch:
        seq += 1
        row["seq"] = seq
    if batch:
        flush()


def timed(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    fn()  # warm-up (caches, first-connection pragmas)
    samples, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[min(len(samples) - 1, int(0.95 * len(samples)))], 2),
        "min_ms": round(samples[0], 2),
        # CPU time of this process (SQLite runs in-process): less sensitive to a loaded machine
        "cpu_p50_ms": round(statistics.median(cpu), 2),
        "repeat": repeat,
    }


def bulk_reads(ctx: ServiceContext, who: Principal, project_id: str) -> dict[str, Any]:
    """Each bulk read once: seconds, runs and runs/s (exports count the spans they wrote)."""
    exports = {
        "export: every run": {},
        f"export: {FILTERED}": {"filter": FILTERED},
        'export: whole traces of root and status = "error"': {
            "filter": 'root and status = "error"',
            "whole_traces": True,
        },
    }
    results: dict[str, Any] = {}
    for name, options in exports.items():
        t0, n = time.perf_counter(), 0
        for line in trace_export.export_project(ctx, who, project_id, **options):
            n += line.count(b'"spanId":')  # one per span: these runs carry no span links
        results[name] = _bulk_result(n, time.perf_counter() - t0)

    t0, n = time.perf_counter(), 0
    after = (NOW - 7 * DAY, 0)
    window = {"start_us": NOW - 7 * DAY, "end_us": NOW, "root_only": True, "match": None}
    while page := ctx.db.read(
        partial(rule_store.runs_in_range, project_id=project_id, after=after, limit=500, **window)
    ):
        n += len(page)
        after = (page[-1]["start_time"], page[-1]["pk"])
    results["backfill pages: 7 days of root runs"] = _bulk_result(n, time.perf_counter() - t0)
    for name, r in results.items():
        print(f"  {name:<58} {r['seconds']:>8.1f} s  {r['runs']:>9,} runs  {r['runs_per_s']:>9,}/s")
    return results


def _bulk_result(n: int, seconds: float) -> dict[str, Any]:
    return {"seconds": round(seconds, 2), "runs": n, "runs_per_s": round(n / max(seconds, 1e-9))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--db", default="bench/results/query-bench.db", help="SQLite file")
    ap.add_argument("--database-url", default="", help="PostgreSQL URL instead of SQLite")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--skip-bulk", action="store_true", help="leave out exports and backfill")
    args = ap.parse_args()

    if args.database_url:
        url = args.database_url
    else:
        Path(args.db).parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{args.db}"
    settings = load_settings({"data_dir": Path("bench/results"), "database_url": url}, environ={})
    db = Database(url)
    migrate.upgrade(db.engine)
    db.start()
    ctx = ServiceContext(db=db, settings=settings, clock=lambda: NOW)
    try:
        ws_row = auth.create_workspace(ctx, "bench")
    except Exception:  # already there from an earlier run
        ws_row = auth.workspace_by_name(ctx, "bench")
    who = Principal(ws_row.id, "bench", "admin")
    pids = [projects.get_or_create(ctx, who, name).id for name in ("agent-support", "other")]
    count = sa.select(sa.func.count()).select_from(runs)
    have = db.read(lambda c: c.execute(count.where(runs.c.workspace_id == ws_row.id)).scalar_one())
    if have < args.runs * 0.99:
        if have:
            raise SystemExit(f"{have:,} runs already stored; delete the database to refill")
        print(f"filling {args.runs:,} runs into {db.dialect} ...", flush=True)
        t0 = time.perf_counter()
        fill(db, who.workspace_id, pids, args.runs)
        fill_s = time.perf_counter() - t0
        print(f"filled in {fill_s:.0f}s", flush=True)
        have = args.runs
    # Planner statistics, as a database that has been running a while has them (PostgreSQL's
    # autovacuum analyzes after bulk loads; on SQLite, ANALYZE or PRAGMA optimize).
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    print(f"{have:,} runs stored; timing ({args.repeat} repetitions each) ...", flush=True)

    page1 = run_queries.list_runs(ctx, who, project="agent-support", filter="root", light=True)
    cursor = page1["next_cursor"]
    filtered = run_queries.list_runs(ctx, who, project="agent-support", filter=FILTERED)
    tree = run_queries.get_trace(ctx, who, BIG_TRACE, light=True)
    assert len(page1["items"]) == 50
    assert cursor
    assert len(filtered["items"]) == 50, len(filtered["items"])
    assert tree["run_count"] == 10_000, tree["run_count"]

    cases: dict[str, Callable[[], Any]] = {
        "latest 50 roots (light)": lambda: run_queries.list_runs(
            ctx, who, project="agent-support", filter="root", light=True
        ),
        "next page (cursor)": lambda: run_queries.list_runs(
            ctx, who, project="agent-support", filter="root", light=True, cursor=cursor
        ),
        f"filtered list: {FILTERED}": lambda: run_queries.list_runs(
            ctx, who, project="agent-support", filter=FILTERED
        ),
        "trace tree, 10,000 runs (full)": lambda: orjson.dumps(
            run_queries.get_trace(ctx, who, BIG_TRACE)
        ),
        "trace tree, 10,000 runs (light)": lambda: run_queries.get_trace(
            ctx, who, BIG_TRACE, light=True
        ),
        "stats 24h / 1h buckets (roots)": lambda: run_queries.project_stats(
            ctx, who, "agent-support", bucket="1h", filter="root"
        ),
        "stats 7d / 1d buckets (all runs)": lambda: run_queries.project_stats(
            ctx, who, "agent-support", bucket="1d", start=str(NOW - 7 * DAY)
        ),
    }
    results = {}
    for name, fn in cases.items():
        repeat = args.repeat if "7d" not in name else max(5, args.repeat // 3)
        results[name] = timed(fn, repeat)
        r = results[name]
        print(
            f"  {name:<58} p50 {r['p50_ms']:>8.2f} ms  p95 {r['p95_ms']:>8.2f} ms"
            f"  cpu p50 {r['cpu_p50_ms']:>8.2f} ms",
            flush=True,
        )

    bulk = {} if args.skip_bulk else bulk_reads(ctx, who, pids[0])

    out = {
        "backend": db.dialect,
        "runs": have,
        "bulk": bulk,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sa.__version__,
        "machine": platform.machine(),
        "cases": results,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "id": str(uuid.uuid4()),
    }
    path = Path("bench/results") / f"query-{db.dialect}-{have}.json"
    path.parent.mkdir(parents=True, exist_ok=True)  # --db may put the database elsewhere
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")
    db.close()


if __name__ == "__main__":
    main()
