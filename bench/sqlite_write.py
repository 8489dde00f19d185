"""What SQLite itself spends per run: a bare ``executemany`` INSERT and COMMIT of real rows.

The rows are the benchmark load of ``bench/ingest.py`` (GenAI spans of ~3 KB) taken through the
real ingest path (decode, mapping, ``prepare_new_runs``), then inserted with the driver alone
into a fresh migrated database with the server's PRAGMAs, 500 runs per transaction, each variant
in its own file. Timed with the thread's CPU clock and the wall clock, per run:

- ``as served``: the schema and PRAGMAs the server uses;
- ``no secondary indexes``: the seven secondary indexes on ``runs`` dropped (what they cost);
- ``no automatic checkpoints``: ``wal_autocheckpoint=0`` (what copying the WAL back costs the
  committing thread).

    PYTHONPATH=src python bench/sqlite_write.py [--runs 30000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import results_file  # noqa: E402
from ingest import build_traces  # noqa: E402

from goldloop.domain.otel.decode import PROTOBUF  # noqa: E402
from goldloop.domain.prices import PriceTable  # noqa: E402
from goldloop.services.ingest import prepare_new_runs  # noqa: E402
from goldloop.services.otlp import decode_and_map  # noqa: E402
from goldloop.store import migrate, run_writes  # noqa: E402
from goldloop.store.database import create_engine  # noqa: E402
from otlp_builders import request  # noqa: E402

PER = 500
VARIANTS = {
    "as served": (True, []),
    "no secondary indexes": (False, []),
    "no automatic checkpoints": (True, ["PRAGMA wal_autocheckpoint=0"]),
}


def encoded_rows(n_runs: int) -> list[list[Any]]:
    traces = build_traces((n_runs + 4) // 5, 3450)
    flat = [s for t in traces for s in t][:n_runs]
    prices = PriceTable.load(None)
    rows: list[list[Any]] = []
    for i in range(0, len(flat), PER):
        body = request(flat[i : i + PER]).SerializeToString()
        patches, _ = decode_and_map(body, PROTOBUF)
        rows += prepare_new_runs(patches, max_payload_bytes=1 << 20, prices=prices).encoded
    return rows


def measure(rows: list[list[Any]], indexes: bool, pragmas: list[str]) -> dict[str, float]:
    directory = Path(tempfile.mkdtemp(prefix="gl-sqlite-write-"))
    try:
        path = directory / "goldloop.db"
        engine = create_engine(f"sqlite:///{path}")
        migrate.upgrade(engine)
        engine.dispose()
        conn = sqlite3.connect(path, isolation_level=None)
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA cache_size=-65536",
            *pragmas,
        ):
            conn.execute(pragma)
        if not indexes:
            names = conn.execute(
                "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='runs' "
                "AND sql IS NOT NULL"
            ).fetchall()
            for (name,) in names:
                conn.execute(f'DROP INDEX "{name}"')
        workspace, project = str(uuid.uuid4()), str(uuid.uuid4())
        conn.execute(
            "INSERT INTO workspaces (id, name, created_at) VALUES (?, 'w', 0)", (workspace,)
        )
        conn.execute(
            "INSERT INTO projects (id, workspace_id, name, created_at) VALUES (?, ?, 'p', 0)",
            (project, workspace),
        )
        # the server's own statement and parameter positions (insert_new_runs)
        sql = run_writes._INSERT["sqlite"][0]
        at = run_writes._AT
        insert = commit = insert_wall = commit_wall = 0.0
        for seq0 in range(0, len(rows), PER):
            batch = []
            for seq, values in enumerate(rows[seq0 : seq0 + PER], start=seq0 + 1):
                values = list(values)
                values[at["workspace_id"]], values[at["project_id"]] = workspace, project
                values[at["seq"]] = seq
                values[at["created_at"]] = values[at["updated_at"]] = 0
                batch.append(values)
            w0, t0 = time.perf_counter(), time.thread_time()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, batch)
            w1, t1 = time.perf_counter(), time.thread_time()
            conn.execute("COMMIT")
            insert += t1 - t0
            insert_wall += w1 - w0
            commit += time.thread_time() - t1
            commit_wall += time.perf_counter() - w1
        conn.close()
        n = len(rows)
        return {
            "insert_cpu_us": round(insert / n * 1e6, 1),
            "commit_cpu_us": round(commit / n * 1e6, 1),
            "insert_wall_us": round(insert_wall / n * 1e6, 1),
            "commit_wall_us": round(commit_wall / n * 1e6, 1),
        }
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rows = encoded_rows(args.runs)
    print(f"{len(rows)} runs, ~{sum(len(str(v)) for v in rows[0])} bytes of values in the first")
    results: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for name, (indexes, pragmas) in VARIANTS.items():
            figures = measure(rows, indexes, pragmas)
            results.setdefault(name, []).append(figures)
            print(
                f"{name:26} INSERT {figures['insert_cpu_us']:6.1f} µs CPU "
                f"({figures['insert_wall_us']:6.1f} wall)   COMMIT {figures['commit_cpu_us']:6.1f}"
                f" µs CPU ({figures['commit_wall_us']:6.1f} wall)   per run",
                flush=True,
            )
    results_file.write("sqlite-write", {"runs": len(rows), "results": results})


if __name__ == "__main__":
    main()
