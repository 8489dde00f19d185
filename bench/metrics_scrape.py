"""What one /metrics scrape costs when the rule backlog is large.

Builds a database (a temporary SQLite file, or a private schema in the PostgreSQL of
GOLDLOOP_BENCH_PG_URL) with --rules rules and --pending pending actions spread over them (plus
as many done ones), a few worker heartbeats, then times the exposition an admin key gets
(its workspace's rules) and the operator's metrics port (every workspace), --repeat times each,
after ANALYZE (VACUUM ANALYZE on PostgreSQL), as autovacuum leaves it; and 3 times before.

    python bench/metrics_scrape.py                       # SQLite, 50 rules, 100,000 pending
    python bench/metrics_scrape.py --backend postgres

Prints a table and writes bench/results/metrics_scrape-<time>.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import results_file  # noqa: E402

from goldloop.services import auth, server_health  # noqa: E402
from goldloop.services.context import Principal, ServiceContext  # noqa: E402
from goldloop.settings import load_settings  # noqa: E402
from goldloop.store import migrate  # noqa: E402
from goldloop.store.database import Database  # noqa: E402
from goldloop.store.schema import projects, rule_actions, rules  # noqa: E402

PG_URL = os.environ.get(
    "GOLDLOOP_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
T0 = 1_790_000_000_000_000


def fill(ctx: ServiceContext, n_rules: int, pending: int) -> Principal:
    ws = auth.create_workspace(ctx, "bench")
    who = Principal(workspace_id=ws.id, key_id="bench", role="admin")
    pid = str(uuid.uuid4())
    rule_ids = [str(uuid.uuid4()) for _ in range(n_rules)]

    def write(conn: sa.Connection) -> None:
        conn.execute(
            sa.insert(projects),
            {"id": pid, "workspace_id": ws.id, "name": "p", "created_at": T0},
        )
        conn.execute(
            sa.insert(rules),
            [
                {
                    "id": rid,
                    "workspace_id": ws.id,
                    "project_id": pid,
                    "name": f"rule {i}",
                    "trigger": "run",
                    "sample_rate": 1.0,
                    "root_only": True,
                    "actions": [{"type": "add_to_dataset"}],
                    "enabled": True,
                    "created_at": T0,
                    "updated_at": T0,
                }
                for i, rid in enumerate(rule_ids)
            ],
        )
        rows = []
        for i in range(2 * pending):  # half pending, half done
            rows.append(
                {
                    "rule_id": rule_ids[i % n_rules],
                    "object_id": f"o{i}",
                    "action_index": 0,
                    "action_type": "add_to_dataset",
                    "status": "pending" if i % 2 else "done",
                    "attempts": 0,
                    "next_attempt_at": T0 + i,
                    "created_at": T0 + i,
                    "updated_at": T0 + i,
                }
            )
            if len(rows) == 5000:
                conn.execute(sa.insert(rule_actions), rows)
                rows = []
        if rows:
            conn.execute(sa.insert(rule_actions), rows)

    ctx.db.write(write)
    for _ in range(4):
        server_health.beat(ctx, server_health.WorkerIdentity(), {"actions": {"ticks": 1}})
    return who


def timed(fn: object, repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[min(len(samples) - 1, int(0.95 * len(samples)))], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--rules", type=int, default=50)
    ap.add_argument("--pending", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="goldloop-metrics-"))
    schema = None
    url = ""
    if args.backend == "postgres":
        schema = f"gl_bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    settings = load_settings({"data_dir": tmp, "database_url": url}, environ={})
    db = Database(settings.effective_database_url)
    try:
        migrate.upgrade(db.engine)
        db.start()
        ctx = ServiceContext(db=db, settings=settings)
        started = time.perf_counter()
        who = fill(ctx, args.rules, args.pending)
        fill_s = time.perf_counter() - started
        cold = timed(lambda: server_health.exposition(ctx, None), 3)
        # the steady state: autovacuum (PostgreSQL) and the writer's hourly ANALYZE (SQLite)
        # have seen the new rows
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE" if args.backend == "postgres" else "ANALYZE")
        admin_scrape = timed(lambda: server_health.exposition(ctx, who), args.repeat)
        port_scrape = timed(lambda: server_health.exposition(ctx, None), args.repeat)
        size = len(server_health.exposition(ctx, None))
    finally:
        db.close()
        if schema is not None:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            admin.dispose()
    print(f"backend {args.backend}, {args.rules} rules, {args.pending:,} pending actions "
          f"(+{args.pending:,} done), filled in {fill_s:.1f} s")  # fmt: skip
    print(f"{'scrape':<28}{'median ms':>12}{'p95 ms':>10}")
    for name, fig in (
        ("metrics port, before ANALYZE", cold),
        ("/metrics (admin key)", admin_scrape),
        ("metrics port", port_scrape),
    ):
        print(f"{name:<28}{fig['median_ms']:>12}{fig['p95_ms']:>10}")
    print(f"exposition size: {size:,} bytes")
    results_file.write(
        "metrics_scrape",
        {
            "backend": args.backend,
            "rules": args.rules,
            "pending": args.pending,
            "repeat": args.repeat,
            "admin_key": admin_scrape,
            "metrics_port": port_scrape,
            "metrics_port_before_analyze": cold,
            "bytes": size,
        },
    )


if __name__ == "__main__":
    main()
