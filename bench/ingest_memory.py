"""Server memory while ingesting a long stream of runs (issue 3: "memory bounded while ingesting
1,000,000 runs").

Starts ``goldloop serve`` (SQLite in a temporary directory, or ``--database-url``) and drives N
runs (default 1,000,000) into it as fast as it takes them, over OTLP protobuf (``/v1/traces``) or
the native batch API, from 4 client threads, while a sampler reads the resident memory of the
server and its ingest worker processes
(``VmRSS`` in /proc/<pid>/status) every ``--interval`` seconds. ``--seconds`` bounds the run: it
stops sending when the time is up, whatever N.

The load is ``bench/ingest.py``'s: five-span GenAI traces of ~3 KB per span, 500 spans per
request. One request body is encoded once; each request gets fresh trace and span ids by
replacing fixed byte markers in it, so the client stays cheap and its own memory flat.

    python bench/ingest_memory.py                      # 1,000,000 runs over OTLP, SQLite
    python bench/ingest_memory.py --api native --runs 200000 --seconds 300

Prints the RSS curve (start, p50, max, end; and at each tenth of the runs sent) and writes
bench/results/ingest-memory-<backend>-<time>.json with every sample.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

# bench/ingest.py: the load, the Goldloop server; it puts src/ and tests/ on sys.path
import ingest  # noqa: E402

from goldloop.settings import normalize_database_url  # noqa: E402
from otlp_builders import request  # noqa: E402

TRACE_MARK = b"\xf3\x9a\x1c\x77\xe2\x0d\x5b\xc4"  # first 8 bytes of every trace id in the body
SPAN_MARK = b"\xd7\x41\xa6\x0e"  # first 4 bytes of every span / parent span id
TEXT_MARK = "B7Q9ZX"  # the same for the native body's string ids


def otlp_template(spans_per_request: int, span_bytes: int) -> bytes:
    traces = ingest.build_traces(spans_per_request // 5, span_bytes)
    flat = [s for t in traces for s in t]
    new_ids: dict[bytes, bytes] = {}
    for i, s in enumerate(flat):
        new_ids[s.span_id] = SPAN_MARK + struct.pack(">I", i + 1)
    for i, t in enumerate(traces):
        for s in t:
            s.trace_id = TRACE_MARK + struct.pack(">Q", i + 1)
            s.span_id = new_ids[s.span_id]
            if s.parent_span_id:
                s.parent_span_id = new_ids[s.parent_span_id]
    body = bytes(request(flat).SerializeToString())
    parents = sum(1 for s in flat if s.parent_span_id)
    assert body.count(TRACE_MARK) == len(flat), "trace marker collides with the content"
    assert body.count(SPAN_MARK) == len(flat) + parents, "span marker collides with the content"
    return body


def otlp_body(template: bytes, batch: int) -> bytes:
    b = batch + 1
    return template.replace(TRACE_MARK, struct.pack(">Q", b)).replace(
        SPAN_MARK, struct.pack(">I", b)
    )


def native_template(spans_per_request: int, span_bytes: int) -> bytes:
    traces = ingest.build_traces(spans_per_request // 5, span_bytes)
    items = ingest.native_items(traces)
    ids = {it["id"]: f"{TEXT_MARK}-{i}" for i, it in enumerate(items)}
    traces_ids: dict[str, str] = {}
    for it in items:
        it["id"] = ids[it["id"]]
        it["parent_id"] = ids[it["parent_id"]] if it["parent_id"] else None
        tid = traces_ids.setdefault(it["trace_id"], f"{TEXT_MARK}-t{len(traces_ids)}")
        it["trace_id"] = tid
    body = json.dumps({"project": "agent-svc", "runs": items}).encode()
    assert body.count(TEXT_MARK.encode()) == 2 * len(items) + sum(
        1 for it in items if it["parent_id"]
    )
    return body


def native_body(template: bytes, batch: int) -> bytes:
    return template.replace(TEXT_MARK.encode(), f"b{batch:09d}".encode())


def vm_rss_mib(pid: int) -> float:
    """Resident memory of the server and its live descendants (its ingest worker processes)."""
    return ingest.tree_status_mib(pid, "VmRSS")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=900, help="stop sending after this")
    parser.add_argument("--api", choices=["otlp", "native"], default="otlp")
    parser.add_argument("--span-bytes", type=int, default=3450)
    parser.add_argument("--spans-per-request", type=int, default=500)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--interval", type=float, default=0.5, help="RSS sampling period")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL; empty = SQLite")
    parser.add_argument("--keep", action="store_true", help="keep the data dir")
    args = parser.parse_args()

    per = args.spans_per_request
    if args.api == "otlp":
        template, make, path = otlp_template(per, args.span_bytes), otlp_body, "/v1/traces"
        ctype = "application/x-protobuf"
    else:
        template, make = native_template(per, args.span_bytes), native_body
        path, ctype = "/api/v1/runs/batch", "application/json"
    batches = -(-args.runs // per)

    data_dir = Path(tempfile.mkdtemp(prefix="gl-bench-memory-"))
    schema = contextlib.ExitStack()  # a PostgreSQL schema of its own, dropped at the end
    url = schema.enter_context(ingest.private_schema(args.database_url))
    proc, base = ingest.start_server(data_dir, url)
    key = (data_dir / "admin-key").read_text().strip()
    pid = proc.pid

    lock = threading.Lock()
    state = {"next": 0, "acked": 0, "retries": 0}
    samples: list[tuple[float, int, float]] = []  # (seconds, runs acknowledged, RSS MiB)
    done = threading.Event()
    errors: list[str] = []
    t0 = time.monotonic()
    deadline = t0 + args.seconds

    def count_retry() -> None:
        with lock:
            state["retries"] += 1

    def sender() -> None:
        with httpx.Client(
            base_url=base, headers={"x-api-key": key, "content-type": ctype}, timeout=120
        ) as c:
            while not errors:
                with lock:
                    batch = state["next"]
                    if batch >= batches or time.monotonic() >= deadline:
                        return
                    state["next"] += 1
                body = make(template, batch)
                failed = ingest.post_until_accepted(c, path, body, on_retry=count_retry)
                if failed is not None:
                    errors.append(failed)
                    return
                with lock:
                    state["acked"] += per

    def sampler() -> None:
        while not done.is_set():
            samples.append((time.monotonic() - t0, state["acked"], vm_rss_mib(pid)))
            done.wait(args.interval)

    rss_idle = vm_rss_mib(pid)
    sampling = threading.Thread(target=sampler, daemon=True)
    sampling.start()
    pool = [threading.Thread(target=sender) for _ in range(args.threads)]
    try:
        for t in pool:
            t.start()
        last = 0.0
        while any(t.is_alive() for t in pool):
            time.sleep(1)
            if time.monotonic() - last >= 30:
                last = time.monotonic()
                s = samples[-1]
                print(f"{s[0]:7.0f} s {s[1]:>9} runs  RSS {s[2]:7.1f} MiB", flush=True)
        for t in pool:
            t.join()
        elapsed = time.monotonic() - t0
        done.set()
        sampling.join()
        rss_after = vm_rss_mib(pid)
        hwm = ingest.rss_mib(pid)
    finally:
        proc.terminate()
        proc.wait(120)
    if errors:
        raise SystemExit(errors[0])
    acked = state["acked"]
    db_url = normalize_database_url(url) if url else f"sqlite:///{data_dir / 'goldloop.db'}"
    stored = ingest.count_runs(db_url)
    size = ingest.disk_bytes(db_url, data_dir)
    schema.close()
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)

    busy = [s for s in samples if s[1] > 0]  # from the first acknowledged request
    rss = [s[2] for s in busy] or [rss_idle]
    second_half = [s[2] for s in busy if s[1] >= acked / 2] or rss
    tenths = []
    for k in range(1, 11):
        mark = acked * k / 10
        at = next((s for s in busy if s[1] >= mark), busy[-1] if busy else (0, 0, rss_idle))
        tenths.append({"runs": at[1], "seconds": round(at[0], 1), "rss_mib": round(at[2], 1)})
    summary = {
        "api": args.api,
        "backend": "postgresql" if args.database_url else "sqlite",
        "runs_requested": args.runs,
        "runs_acknowledged": acked,
        "runs_stored": stored,
        "seconds": round(elapsed, 1),
        "runs_per_s": round(acked / elapsed),
        "retries_503": state["retries"],
        "rss_idle_mib": round(rss_idle, 1),
        "rss_start_mib": round(rss[0], 1),
        "rss_p50_mib": round(statistics.median(rss), 1),
        "rss_p95_mib": round(pct(rss, 0.95), 1),
        "rss_max_mib": round(max(rss), 1),
        "rss_end_mib": round(rss[-1], 1),
        "rss_after_mib": round(rss_after, 1),
        "rss_steady_p50_mib": round(statistics.median(second_half), 1),
        "vm_hwm_mib": round(hwm, 1),
        "bytes_on_disk_per_run": size // max(stored, 1),
        "rss_by_tenth": tenths,
        "loadavg_end": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    file = out / f"ingest-memory-{summary['backend']}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    file.write_text(
        json.dumps(
            {"summary": summary, "args": vars(args), "samples": samples, "cpus": os.cpu_count()},
            indent=1,
        )
    )
    print(json.dumps({k: v for k, v in summary.items() if k != "rss_by_tenth"}))
    print(f"\n{'runs acknowledged':>18} {'seconds':>8} {'RSS MiB':>8}")
    for row in tenths:
        print(f"{row['runs']:>18} {row['seconds']:>8} {row['rss_mib']:>8}")
    print(f"written to {file}")
    assert stored == acked, f"stored {stored}, acknowledged {acked}"


if __name__ == "__main__":
    main()
