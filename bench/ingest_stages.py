"""Where an OTLP span's server CPU goes: the ingest path split into stages, in-process.

Same load as ``bench/ingest.py`` (10,000 GenAI spans of ~3 KB in 500-span protobuf requests).
Each stage is run on its own over the whole load and timed with the thread's CPU clock, best of
``--rounds``; the write stages go to a fresh migrated SQLite file (WAL, the server's PRAGMAs).
No HTTP: the difference between the sum here and ``bench/ingest.py``'s "server CPU per span" is
the web stack (uvicorn, Starlette, routing, auth) and the thread hand-offs.

    PYTHONPATH=src python bench/ingest_stages.py [--rounds 3] [--profile]

``--profile`` also prints cProfile's top functions for decode + mapping + write.
``--compare-index NAME`` also times the write stage on a second fresh file without the runs
index NAME, the two alternating round by round (what one more index costs ingest).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import sqlalchemy as sa  # noqa: E402
from ingest import build_traces  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)
from sqlalchemy.engine import Engine  # noqa: E402

from goldloop.domain.otel import decode as otel_decode  # noqa: E402
from goldloop.domain.otel.mapping import span_to_patch  # noqa: E402
from goldloop.domain.prices import PriceTable  # noqa: E402
from goldloop.domain.run_merge import merge, truncate_payloads  # noqa: E402
from goldloop.store import migrate, run_writes  # noqa: E402
from goldloop.store.database import create_engine  # noqa: E402
from goldloop.store.schema import projects, workspaces  # noqa: E402
from otlp_builders import request  # noqa: E402

PER = 500


def _cpu(
    fn: Callable[[], Any], rounds: int, setup: Callable[[], Any] | None = None
) -> tuple[float, float]:
    """Best (thread CPU, wall) seconds of ``fn`` over ``rounds``, ``setup`` run untimed."""
    best, best_wall = float("inf"), float("inf")
    for _ in range(rounds):
        if setup is not None:
            setup()
        w0, t0 = time.perf_counter(), time.thread_time()
        fn()
        best = min(best, time.thread_time() - t0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return best, best_wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--compare-index", help="also time the write stage without this runs index, alternating"
    )
    args = parser.parse_args()
    traces = build_traces(args.traces, 3450)
    flat = [s for t in traces for s in t]
    n = len(flat)
    bodies = [request(flat[i : i + PER]).SerializeToString() for i in range(0, n, PER)]
    enc = otel_decode.PROTOBUF
    prices = PriceTable.load(None)
    limit = 1_000_000

    tmp = Path(tempfile.mkdtemp(prefix="gl-stages-"))
    ws, proj = str(uuid.uuid4()), str(uuid.uuid4())

    def fresh(name: str) -> Engine:
        made = create_engine(f"sqlite:///{tmp / name}")
        migrate.upgrade(made)
        with made.begin() as conn:
            conn.execute(sa.insert(workspaces).values(id=ws, name="bench", created_at=0))
            conn.execute(
                sa.insert(projects).values(id=proj, workspace_id=ws, name="agent-svc", created_at=0)
            )
        return made

    engine = fresh("db.sqlite")

    decoded = [otel_decode.decode_traces(b, enc)[0] for b in bodies]
    patches = [[span_to_patch(s) for s in spans] for spans in decoded]

    def merge_fn(existing: Any, patch: Any, project_id: str) -> dict[str, Any]:
        return merge(existing, patch, project_id=project_id, now=1, prices=prices)

    def pb_parse() -> None:
        for b in bodies:
            ExportTraceServiceRequest.FromString(b)

    def decode() -> None:
        for b in bodies:
            otel_decode.decode_traces(b, enc)

    def decode_generated() -> None:
        for b in bodies:
            otel_decode.decode_traces(b, enc, c_decoder=False)

    def mapping() -> None:
        for spans in decoded:
            for s in spans:
                span_to_patch(s)

    def truncate() -> None:
        for batch in patches:
            for p in batch:
                truncate_payloads(p, limit)

    def merging() -> None:
        for batch in patches:
            for p in batch:
                merge_fn(None, p, proj)

    merged = [[merge_fn(None, p, proj) for p in batch] for batch in patches]
    for rows in merged:
        for r in rows:
            r.update(workspace_id=ws, id="x", seq=1)

    def encode() -> None:
        values = run_writes._row_encoder(run_writes._INSERT["sqlite"][1])
        for rows in merged:
            for r in rows:
                values(r)

    def empty(on: Engine = engine) -> None:  # before each round: every run is new
        with on.begin() as conn:
            conn.exec_driver_sql("DELETE FROM runs")
        with on.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def write(on: Engine = engine) -> None:
        for batch in patches:
            with on.begin() as conn:
                run_writes.upsert_runs(conn, ws, [(proj, p) for p in batch], merge_fn)

    stages = [
        ("protobuf parse (upb)", pb_parse),
        ("decode -> OtelSpan, generated classes", decode_generated),
        (
            "decode -> OtelSpan, "
            + ("C decoder" if otel_decode.c_decode_trace_request else "(C decoder not built)"),
            decode,
        ),
        ("GenAI mapping -> RunPatch", mapping),
        ("payload size check (truncate)", truncate),
        ("merge (new runs)", merging),
        ("JSON encode of row values", encode),
    ]
    print(f"{n} spans, {len(bodies)} requests, best of {args.rounds}, µs per span")
    print(f"  {'stage':42} {'CPU':>8} {'wall':>8}")
    for name, fn in stages:
        cpu, wall = _cpu(fn, args.rounds)
        print(f"  {name:42} {cpu * 1e6 / n:8.1f} {wall * 1e6 / n:8.1f}")
    cpu, wall = _cpu(write, args.rounds, empty)
    name = "write: select+merge+encode+insert+commit"
    print(f"  {name:42} {cpu * 1e6 / n:8.1f} {wall * 1e6 / n:8.1f}")
    if args.compare_index:
        compare_index(args.compare_index, args.rounds, n, engine, fresh, write, empty)
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        decode()
        mapping()
        truncate()
        empty()
        write()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)


def compare_index(
    index: str,
    rounds: int,
    n: int,
    engine: Engine,
    fresh: Callable[[str], Engine],
    write: Callable[[Engine], None],
    empty: Callable[[Engine], None],
) -> None:
    """The write stage with and without the runs index ``index``, alternating round by round
    (so both see the same machine load), best and median of ``rounds`` each."""
    without = fresh("without.sqlite")
    with without.begin() as conn:
        conn.execute(sa.schema.DropIndex(sa.Index(index)))
    times: dict[str, list[tuple[float, float]]] = {"with": [], "without": []}
    for _ in range(rounds):
        for label, on in (("with", engine), ("without", without)):
            empty(on)
            w0, t0 = time.perf_counter(), time.thread_time()
            write(on)
            times[label].append((time.thread_time() - t0, time.perf_counter() - w0))
    print(f"write stage with and without {index}, {rounds} alternating rounds, µs per span")
    print(f"  {'':10} {'CPU best':>9} {'CPU p50':>9} {'wall best':>9} {'wall p50':>9}")
    for label, samples in times.items():
        cpu = [c * 1e6 / n for c, _ in samples]
        wall = [w * 1e6 / n for _, w in samples]
        print(
            f"  {label:10} {min(cpu):9.1f} {statistics.median(cpu):9.1f} "
            f"{min(wall):9.1f} {statistics.median(wall):9.1f}"
        )
    ratio = statistics.median(c for c, _ in times["with"]) / statistics.median(
        c for c, _ in times["without"]
    )
    print(f"  CPU p50 with / without: {ratio:.3f}")


if __name__ == "__main__":
    main()
