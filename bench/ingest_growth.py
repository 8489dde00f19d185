"""Ingest rate as the runs table grows (issue 24: "a rate that stays flat").

Starts ``goldloop serve`` (SQLite in ``--data-dir`` or a temporary directory, or
``--database-url``) and drives OTLP protobuf requests into it through the real ingest path (the
HTTP receiver, its ingest worker processes, the store's writer) from ``--threads`` client
threads, as fast as it takes them, until the table holds ``--runs`` runs or ``--seconds`` pass.
A sampler reads the runs stored so far (the server acknowledges a request once it is committed)
and the CPU time of the server and its worker processes every 0.5 s, and the rate is reported
in windows of ``--window`` runs starting at each size of ``--at`` (10,000, 100,000, 1,000,000,
10,000,000 by default, those the run reaches) and over the last ``--window`` runs, with the
server's CPU per run in each window.

The load is ``bench/ingest.py``'s five-span GenAI traces of ~3 KB per span, 500 spans per
request, encoded once; but unlike ``bench/ingest_memory.py`` (whose ids grow with the request
number and whose timestamps are the same in every request, so every index is appended to in a
few places) each request gets what an instrumented application sends: random 128-bit trace ids
and 64-bit span ids (parents kept), start times that advance (2^32 ns, ~4.3 s, per request) and
random durations (1 ms to 3 s), written into the body at known offsets.

Besides the rate: the server's CPU per run and the bytes it wrote and read per run (the WAL,
checkpoints, pages read back; from /proc, so they do not depend on how busy other processes keep
the machine), and on PostgreSQL the CPU and bytes written of the backends serving it.

With ``--data-dir`` an existing database there is grown further (a second run continues the
first); the sizes of ``--at`` count the runs already stored.

    python bench/ingest_growth.py --runs 1000000                  # SQLite, a fresh temp dir
    python bench/ingest_growth.py --runs 1000000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/test

Prints the windows and writes bench/results/ingest-growth-<backend>-<time>.json with every
sample.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

# bench/ingest.py: the load, the Goldloop server; it puts src/ and tests/ on sys.path
import ingest  # noqa: E402
import results_file  # noqa: E402

from goldloop.settings import normalize_database_url  # noqa: E402
from otlp_builders import request  # noqa: E402

_HIGH = 1 << 32  # one request's spans share the upper 32 bits of their times (ns)


class Template:
    """One encoded request and where its ids and times are, so each request can be given fresh
    random ids and later times by overwriting bytes (protobuf ids and fixed64 times have fixed
    widths, so the body keeps its length)."""

    def __init__(self, spans_per_request: int, span_bytes: int) -> None:
        traces = ingest.build_traces(spans_per_request // 5, span_bytes)
        flat = [s for t in traces for s in t]
        first = min(s.start_time_unix_nano for s in flat)
        base = (time.time_ns() // _HIGH) * _HIGH  # replaced per request; only the low half stays
        self.starts_low: list[int] = []
        for i, s in enumerate(flat):  # starts even, ends odd: every value unique
            low = s.start_time_unix_nano - first + 1_000 + 2 * i
            s.start_time_unix_nano = base + low
            s.end_time_unix_nano = base + low + 1  # unique values, found below
            self.starts_low.append(low)
        assert max(self.starts_low) + 3_001_000_000 < _HIGH
        body = bytes(request(flat).SerializeToString())
        self.body = body
        self.spans = len(flat)
        self.trace_at = [self._find(t[0].trace_id, len(t)) for t in traces]
        children = {s.span_id: 1 for s in flat}
        for s in flat:
            if s.parent_span_id:
                children[s.parent_span_id] += 1
        self.span_at = [self._find(s.span_id, children[s.span_id]) for s in flat]
        self.start_at = [self._find(struct.pack("<Q", s.start_time_unix_nano), 1)[0] for s in flat]
        self.end_at = [self._find(struct.pack("<Q", s.end_time_unix_nano), 1)[0] for s in flat]

    def _find(self, value: bytes, expected: int) -> list[int]:
        found, at = [], self.body.find(value)
        while at >= 0:
            found.append(at)
            at = self.body.find(value, at + 1)
        assert len(found) == expected, f"{value.hex()} found {len(found)} times, not {expected}"
        return found

    def make(self, batch: int, first_high: int) -> bytes:
        """Request number ``batch``: random ids, times ``batch`` * 2^32 ns after ``first_high``."""
        out = bytearray(self.body)
        rnd = os.urandom(16 * len(self.trace_at) + 12 * self.spans)
        r = 0
        for places in self.trace_at:
            value = rnd[r : r + 16]
            r += 16
            for at in places:
                out[at : at + 16] = value
        high = struct.pack("<I", first_high + batch)
        for i, places in enumerate(self.span_at):
            value = rnd[r : r + 8]
            duration = 1_000_000 + int.from_bytes(rnd[r + 8 : r + 12]) % 3_000_000_000
            r += 12
            for at in places:
                out[at : at + 8] = value
            start, end = self.start_at[i], self.end_at[i]
            out[start + 4 : start + 8] = high
            out[end : end + 4] = struct.pack("<I", self.starts_low[i] + duration)
            out[end + 4 : end + 8] = high
        return bytes(out)


# seconds, runs stored, server CPU s, bytes written, read; PostgreSQL's backends: CPU s, written
Sample = tuple[float, int, float, int, int, float, int]


def io_bytes(pid: int) -> tuple[int, int]:
    fields = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(fields["wchar"]), int(fields["rchar"])


class Backends:
    """CPU and bytes written of the PostgreSQL backends that serve the server's connections
    (found by the application_name its URL sets): what each has used, summed over every
    backend seen, the last value kept for one that closed."""

    def __init__(self, url: str, app: str) -> None:
        self._engine = sa.create_engine(url)
        self._app = app
        self._seen: dict[int, tuple[float, int]] = {}

    def used(self) -> tuple[float, int]:
        q = sa.text(
            "SELECT pid FROM pg_stat_activity"
            " WHERE application_name = :app AND pid <> pg_backend_pid()"
        )
        with self._engine.connect() as conn:
            pids = [int(v) for v in conn.execute(q, {"app": self._app}).scalars()]
        for p in pids:
            with contextlib.suppress(OSError, ValueError, IndexError):
                self._seen[p] = (ingest.cpu_seconds(p), io_bytes(p)[0])
        return sum(c for c, _ in self._seen.values()), sum(w for _, w in self._seen.values())

    def close(self) -> None:
        self._engine.dispose()


def tree_io_bytes(pid: int) -> tuple[int, int]:
    """Bytes the server and its worker processes wrote and read through system calls
    (``wchar``, ``rchar`` of /proc/<pid>/io: the WAL, checkpoints into the database file, the
    pages read back; also the sockets). Unlike the rate, these do not depend on how busy the
    machine's other processes keep its cores."""
    wrote = read = 0
    for p in ingest.process_tree(pid):
        with contextlib.suppress(OSError):
            w, r = io_bytes(p)
            wrote, read = wrote + w, read + r
    return wrote, read


def windows(samples: list[Sample], sizes: list[int], width: int) -> list[dict[str, Any]]:
    """Rate, server CPU and bytes written and read per run over [size, size + width) stored
    runs, from the samples: from the first sample at or past ``size`` to the first at or past
    ``size + width``."""
    out = []
    for size in sizes:
        a = next((s for s in samples if s[1] >= size), None)
        b = next((s for s in samples if s[1] >= size + width), None)
        if a is None or b is None or b[1] == a[1]:
            continue
        runs = b[1] - a[1]
        out.append(
            {
                "stored_at_start": a[1],
                "runs": runs,
                "seconds": round(b[0] - a[0], 2),
                "runs_per_s": round(runs / (b[0] - a[0])),
                "server_cpu_ms_per_run": round((b[2] - a[2]) * 1000 / runs, 4),
                "kib_written_per_run": round((b[3] - a[3]) / 1024 / runs, 1),
                "kib_read_per_run": round((b[4] - a[4]) / 1024 / runs, 1),
                "postgres_cpu_ms_per_run": round((b[5] - a[5]) * 1000 / runs, 4),
                "postgres_kib_written_per_run": round((b[6] - a[6]) / 1024 / runs, 1),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1_000_000, help="grow the table to this")
    parser.add_argument("--seconds", type=float, default=1800, help="stop sending after this")
    parser.add_argument("--window", type=int, default=20_000, help="runs per measured window")
    parser.add_argument("--at", default="10000,100000,1000000,10000000")
    parser.add_argument("--span-bytes", type=int, default=3450)
    parser.add_argument("--spans-per-request", type=int, default=500)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL; empty = SQLite")
    parser.add_argument("--data-dir", default="", help="keep (or grow further) the data here")
    parser.add_argument(
        "--keep-schema",
        default="",
        help="PostgreSQL: use (and keep) this schema; grow it again with the same --data-dir, "
        "where the first run's server wrote the admin key",
    )
    parser.add_argument("--label", default="", help="a name for this run in the results file")
    args = parser.parse_args()

    template = Template(args.spans_per_request, args.span_bytes)
    per = template.spans
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="gl-bench-growth-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    schema = contextlib.ExitStack()
    if args.database_url and args.keep_schema:
        ingest._admin(args.database_url, f'CREATE SCHEMA IF NOT EXISTS "{args.keep_schema}"')
        sep = "&" if "?" in args.database_url else "?"
        url = f"{args.database_url}{sep}options=-csearch_path%3D{args.keep_schema}"
    else:
        url = schema.enter_context(ingest.private_schema(args.database_url))
    app = f"gl-growth-{os.getpid()}"
    if url:
        url += f"&application_name={app}"
    proc, base = ingest.start_server(data_dir, url)
    pid = proc.pid
    db_url = normalize_database_url(url) if url else f"sqlite:///{data_dir / 'goldloop.db'}"
    try:
        # with --keep-schema, only the first run's server writes the key (to its --data-dir)
        key = (data_dir / "admin-key").read_text().strip()
        counter = ingest.RunCounter(db_url)
        backends = Backends(db_url, app) if url else None
        ingest.warm_up(base, key, pid)
        stored0 = counter.count()
    except BaseException:  # never leave the server running
        proc.terminate()
        proc.wait(120)
        raise
    # requests continue after those of an earlier run on this database: later times
    first_batch = stored0 // per + 1
    first_high = (time.time_ns() - 5 * 86_400 * 10**9) // _HIGH
    batches = max(0, -(-(args.runs - stored0) // per))

    lock = threading.Lock()
    state = {"next": 0, "acked": 0, "retries": 0}
    samples: list[Sample] = []
    errors: list[str] = []
    done = threading.Event()
    t0 = time.monotonic()
    deadline = t0 + args.seconds

    def count_retry() -> None:
        with lock:
            state["retries"] += 1

    def sender(client: Any) -> None:
        while not errors:
            with lock:
                n = state["next"]
                if n >= batches or time.monotonic() >= deadline:
                    return
                state["next"] += 1
            body = template.make(first_batch + n, first_high)
            failed = ingest.post_until_accepted(client, "/v1/traces", body, on_retry=count_retry)
            if failed is not None:
                errors.append(failed)
                return
            with lock:
                state["acked"] += per

    def sampler() -> None:
        while not done.is_set():
            cpu = ingest.tree_cpu_seconds(pid)
            wrote, read = tree_io_bytes(pid)
            db_cpu, db_wrote = backends.used() if backends else (0.0, 0)
            at = time.monotonic() - t0
            samples.append((at, stored0 + state["acked"], cpu, wrote, read, db_cpu, db_wrote))
            done.wait(0.5)

    sampling = threading.Thread(target=sampler, daemon=True)
    with ingest.Senders(base, key, "application/x-protobuf", args.threads) as senders:
        pool = [threading.Thread(target=sender, args=(c,)) for c in senders.clients]
        sampling.start()
        try:
            for t in pool:
                t.start()
            last = 0.0
            while any(t.is_alive() for t in pool):
                time.sleep(1)
                if time.monotonic() - last >= 30 and len(samples) > 61:
                    last = time.monotonic()
                    (t1, n1, c1, *_), (t2, n2, c2, *_) = samples[-61], samples[-1]
                    rate = (n2 - n1) / (t2 - t1)
                    cpu = (c2 - c1) * 1000 / max(n2 - n1, 1)
                    load = os.getloadavg()[0]
                    print(
                        f"{t2:6.0f} s {n2:>10,} runs  last 30 s: {rate:7,.0f} runs/s, "
                        f"{cpu:.3f} ms CPU/run, load {load:.1f}",
                        flush=True,
                    )
            for t in pool:
                t.join()
            elapsed = time.monotonic() - t0
            done.set()
            sampling.join()
        finally:
            proc.terminate()
            proc.wait(120)
    if errors:
        raise SystemExit(errors[0])
    stored = counter.count()
    counter.close()
    if backends:
        backends.close()
    size = ingest.disk_bytes(db_url, data_dir)
    schema.close()
    if not args.data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)

    # the sizes asked for that the run reached, and its last window
    sizes = [int(x) for x in args.at.split(",") if x and int(x) + args.window < stored]
    measured = windows(samples, [*sizes, stored - args.window - per], args.window)
    curve = windows(
        samples, [stored0 + (stored - stored0) * k // 20 for k in range(20)], args.window
    )
    summary = {
        "label": args.label,
        "backend": "postgresql" if args.database_url else "sqlite",
        "stored_before": stored0,
        "stored_after": stored,
        "runs_acknowledged": state["acked"],
        "seconds": round(elapsed, 1),
        "runs_per_s": round(state["acked"] / max(elapsed, 1e-9)),
        "retries_503": state["retries"],
        "bytes_on_disk_per_run": size // max(stored, 1),
        "windows": measured,
        "curve": curve,
    }
    results_file.write(
        f"ingest-growth-{summary['backend']}",
        {"summary": summary, "args": vars(args), "samples": samples, "cpus": os.cpu_count()},
    )
    print(
        f"\n{'stored at start':>16} {'runs':>8} {'seconds':>8} {'runs/s':>8} {'CPU ms/run':>11}"
        f" {'KiB written/run':>16} {'KiB read/run':>13} {'PG CPU ms/run':>14}"
        f" {'PG KiB written/run':>19}"
    )
    for w in [*measured, {}, *curve]:
        if not w:
            print("  curve (every twentieth of the run):")
            continue
        print(
            f"{w['stored_at_start']:>16,} {w['runs']:>8,} {w['seconds']:>8} "
            f"{w['runs_per_s']:>8,} {w['server_cpu_ms_per_run']:>11}"
            f" {w['kib_written_per_run']:>16} {w['kib_read_per_run']:>13}"
            f" {w['postgres_cpu_ms_per_run']:>14} {w['postgres_kib_written_per_run']:>19}"
        )
    if measured:
        ratio = measured[-1]["runs_per_s"] / measured[0]["runs_per_s"]
        print(
            f"rate at {measured[-1]['stored_at_start']:,} / rate at "
            f"{measured[0]['stored_at_start']:,}: {ratio:.2f}"
        )
    print(f"stored {stored:,} runs ({summary['bytes_on_disk_per_run']} bytes on disk per run)")
    assert stored == stored0 + state["acked"], f"stored {stored}, expected {stored0} + acked"


if __name__ == "__main__":
    main()
