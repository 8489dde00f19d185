"""Bytes on disk before and after ``goldloop payloads compact`` on SQLite, and what it costs.

Each load (``genai``, ``openinference``: the loads of ``bench/payload_disk.py``) is ingested
through the real ingest service (``otlp.ingest_traces``, 500-span protobuf requests, in process)
into a fresh database with payload compression on, as a new server would: the database has no
dictionary until it holds ``--text-runs`` runs (1,000 in the product; ``MIN_RUNS`` is set to the
value given), so the runs before, and the rest of the request that crossed the threshold, are
stored as text and every later one compressed. Then ``payload_maintenance.compact`` (what the
command runs, 500 runs a batch) rewrites the text runs, timed (wall and this process's CPU,
the writer thread's included), with each write transaction timed too: how long it holds
SQLite's write lock, during which ingest waits. A second ``compact`` finds nothing to do (its
time is the scan). Bytes are measured after a WAL checkpoint: the runs table and its indexes
(``dbstat`` pages), the stored bytes of the payload columns, the file, its free pages, and the
file after ``VACUUM`` (what an operator gets back by running it with the server stopped).

    PYTHONPATH=src python bench/payload_compact.py [--traces 3000] [--text-runs 1000,10000]
        [--rounds 1] [--words bench|prose]

Results go to bench/results/payload-compact-<time>.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import payload_disk  # noqa: E402  (puts src/ and tests/ on the path)
import results_file  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from goldloop.services import payload_compression, payload_maintenance  # noqa: E402
from goldloop.services.context import ServiceContext  # noqa: E402
from goldloop.store import payload_compaction  # noqa: E402
from goldloop.store.schema import runs  # noqa: E402


def on_disk(ctx: ServiceContext) -> dict[str, int]:
    sizes = payload_disk.sqlite_bytes(ctx)  # checkpoints the WAL first
    with ctx.db.engine.connect() as conn:
        free = payload_compaction.free_bytes(conn)
        text = conn.exec_driver_sql(
            "SELECT count(*) FROM runs WHERE typeof(inputs) = 'text' AND length(inputs) >= 200"
        ).scalar_one()
    path = Path(ctx.settings.data_dir) / "goldloop.db"
    return {
        "table": sizes["table"],
        "indexes": sizes["indexes"],
        "payload_columns": sum(sizes["columns"][c] for c in ("inputs", "outputs", "extra")),
        "file": path.stat().st_size,
        "free": free,
        "text_inputs": int(text),
    }


def scenario(load: str, requests: list[bytes], text_runs: int) -> dict[str, Any]:
    payload_compression.MIN_RUNS = text_runs
    with payload_disk.fresh("", compression=True) as (ctx, who):
        payload_disk.ingest(ctx, who, requests)
        count = sa.select(sa.func.count()).select_from(runs)
        spans = ctx.db.read(lambda c: int(c.execute(count).scalar_one()))
        before = on_disk(ctx)
        held: list[float] = []
        replace = payload_compaction.replace

        def timed(conn: sa.Connection, changes: Any, dict_id: int) -> Any:
            t0 = time.perf_counter()
            try:
                return replace(conn, changes, dict_id)
            finally:
                held.append(time.perf_counter() - t0)

        payload_compaction.replace = timed  # type: ignore[assignment]
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            done = payload_maintenance.compact(ctx)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            again_wall = time.perf_counter()
            again = payload_maintenance.compact(ctx)
            again_wall = time.perf_counter() - again_wall
        finally:
            payload_compaction.replace = replace  # type: ignore[assignment]
        after = on_disk(ctx)
        with ctx.db.engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")
        vacuumed = on_disk(ctx)
    per10k = 10_000 / max(done.rows, 1)
    return {
        "load": load,
        "text_runs_setting": text_runs,
        "spans": spans,
        "rows_compacted": done.rows,
        "values_compacted": done.values,
        "payload_bytes_rewritten": [done.bytes_before, done.bytes_after],
        "before": before,
        "after": after,
        "after_vacuum": vacuumed,
        "compact_wall_s": round(wall, 3),
        "compact_cpu_s": round(cpu, 3),
        "wall_s_per_10k_rows": round(wall * per10k, 2),
        "cpu_s_per_10k_rows": round(cpu * per10k, 2),
        "write_tx_ms_median": round(statistics.median(held) * 1000, 1) if held else 0,
        "write_tx_ms_max": round(max(held) * 1000, 1) if held else 0,
        "write_txs": len(held),
        "rerun_rows": again.rows,
        "rerun_wall_s": round(again_wall, 3),
    }


def show(r: dict[str, Any]) -> None:
    b, a, v = r["before"], r["after"], r["after_vacuum"]
    spans = r["spans"]

    def per(d: dict[str, int]) -> str:
        return f"{(d['table'] + d['indexes']) / spans:,.0f} B/span"

    print(
        f"{r['load']:13} first {r['text_runs_setting']:>6,} runs text: {spans:,} spans, "
        f"{r['rows_compacted']:,} runs compacted; table+indexes {per(b)} -> {per(a)}; "
        f"payload columns {b['payload_columns'] / 1e6:.1f} -> {a['payload_columns'] / 1e6:.1f} "
        f"MB; file {b['file'] / 1e6:.1f} MB (free {b['free'] / 1e6:.1f}) -> "
        f"{a['file'] / 1e6:.1f} MB (free {a['free'] / 1e6:.1f}), after VACUUM "
        f"{v['file'] / 1e6:.1f} MB; {r['wall_s_per_10k_rows']} s wall, "
        f"{r['cpu_s_per_10k_rows']} s CPU per 10,000 runs; write transactions median "
        f"{r['write_tx_ms_median']} ms, max {r['write_tx_ms_max']} ms ({r['write_txs']}); "
        f"rerun {r['rerun_rows']} runs in {r['rerun_wall_s']} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=3000)
    parser.add_argument("--text-runs", default="1000,10000")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--words",
        choices=("bench", "prose"),
        default="bench",
        help="as in bench/payload_disk.py: prose compresses far less than the bench words",
    )
    args = parser.parse_args()
    if args.words == "prose":
        payload_disk.ingest_bench.WORDS = payload_disk.prose_words()
    results: dict[str, Any] = {
        "traces": args.traces,
        "rounds": args.rounds,
        "words": args.words,
        "runs": [],
    }
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for _ in range(args.rounds):
        for load, make in payload_disk.LOADS.items():
            requests = payload_disk.bodies(make(args.traces, 3 if load == "openinference" else 1))
            for text_runs in (int(x) for x in args.text_runs.split(",")):
                r = scenario(load, requests, text_runs)
                results["runs"].append(r)
                show(r)
    results_file.write("payload-compact", results)


if __name__ == "__main__":
    main()
