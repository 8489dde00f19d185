"""Ingestion benchmark: OTLP protobuf and native batch against a real `goldloop serve`.

Load (issue 3): 10,000 spans of ~3 KB in 2,000 five-span GenAI traces. Modes: ``otlp-protobuf``
and ``native`` send request bodies built before the clock starts (500 spans each, 4 client
threads), so the client's CPU is mostly HTTP; ``otel-sdk`` creates the spans with the unmodified
OpenTelemetry SDK and exports them with its OTLP/HTTP exporter (one BatchSpanProcessor, as an
application would); ``otel-sdk-grpc`` is the same with its OTLP/gRPC exporter, to the server's
gRPC receiver (``--otlp-grpc``). The server runs as its own process; its CPU time (with that of
its ingest worker processes; "of it main" is the server process alone) is read from /proc after
a warm-up request.
"Queryable" is checked by counting the stored runs once every
request was acknowledged (the server acknowledges only after commit), inside the timed window;
the load's HTTP clients and the counting connection are opened before it.

    python bench/ingest.py                          # SQLite, OTLP protobuf and native
    python bench/ingest.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/ingest.py --modes otel-sdk,otel-sdk-grpc,otel-sdk-grpc,otel-sdk --traces 4000

Prints a table and writes bench/results/ingest-<backend>-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from goldloop.settings import normalize_database_url  # noqa: E402
from otlp_builders import request, span  # noqa: E402

WORDS = "refund order parcel delayed customer agent weather booking invoice policy".split()  # noqa: SIM905


def _text(rng: random.Random, size: int) -> str:
    out: list[str] = []
    n = 0
    while n < size:
        w = rng.choice(WORDS)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)[:size]


def _msgs(role: str, content: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": content}]}])


def build_traces(n_traces: int, span_bytes: int, seed: int = 1) -> list[list[Any]]:
    """Five-span GenAI traces: agent -> (llm, tool, llm, retriever), each span ~span_bytes."""
    rng = random.Random(seed)
    base = time.time_ns() - 3_600_000_000_000
    traces = []
    body = span_bytes - 900  # the rest is attribute keys, ids and fixed attributes
    for t in range(n_traces):
        trace = uuid.UUID(int=rng.getrandbits(128)).hex
        ids = [f"{rng.getrandbits(64) | 1:016x}" for _ in range(5)]
        start = base + t * 10_000_000
        common = {"session.id": f"s-{t % 200}", "user.id": f"u-{t % 50}", "tag.tags": ["bench"]}
        agent = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "support",
            "input.value": _text(rng, body),
            **common,
        }

        def llm(i: int, common: dict[str, Any] = common) -> dict[str, Any]:
            return {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 400 + i,
                "gen_ai.usage.output_tokens": 60 + i,
                "gen_ai.request.temperature": 0.2,
                "gen_ai.input.messages": _msgs("user", _text(rng, body * 2 // 3)),
                "gen_ai.output.messages": _msgs("assistant", _text(rng, body // 3)),
                **common,
            }

        tool = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "lookup_order",
            "gen_ai.tool.call.arguments": json.dumps({"q": _text(rng, body // 2)}),
            "gen_ai.tool.call.result": json.dumps({"r": _text(rng, body // 2)}),
            **common,
        }
        retr = {
            "gen_ai.operation.name": "retrieval",
            "gen_ai.retrieval.query.text": _text(rng, 100),
            "gen_ai.retrieval.documents": json.dumps(
                [{"id": f"d{i}", "content": _text(rng, body // 3)} for i in range(3)]
            ),
            **common,
        }
        ms = 1_000_000
        traces.append(
            [
                span(
                    trace,
                    ids[0],
                    None,
                    "invoke_agent support",
                    agent,
                    start=start,
                    end=start + 90 * ms,
                ),
                span(
                    trace,
                    ids[1],
                    ids[0],
                    "chat gpt-4o-mini",
                    llm(1),
                    start=start + ms,
                    end=start + 30 * ms,
                    kind=3,
                ),
                span(
                    trace,
                    ids[2],
                    ids[0],
                    "execute_tool lookup_order",
                    tool,
                    start=start + 31 * ms,
                    end=start + 40 * ms,
                ),
                span(
                    trace,
                    ids[3],
                    ids[0],
                    "chat gpt-4o-mini",
                    llm(2),
                    start=start + 41 * ms,
                    end=start + 80 * ms,
                    kind=3,
                ),
                span(
                    trace,
                    ids[4],
                    ids[0],
                    "retrieval kb",
                    retr,
                    start=start + 81 * ms,
                    end=start + 89 * ms,
                    kind=3,
                ),
            ]
        )
    return traces


def _attr_value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def native_items(traces: list[list[Any]]) -> list[dict[str, Any]]:
    """The same spans as native items (one item per run, start and end together)."""
    items = []
    for spans in traces:
        for s in spans:
            attrs = {kv.key: kv.value.WhichOneof("value") for kv in s.attributes}
            values = {}
            for kv in s.attributes:
                kind = attrs[kv.key]
                val = getattr(kv.value, kind)
                values[kv.key] = (
                    [v.string_value for v in val.values] if kind == "array_value" else val
                )
            op = values.get("gen_ai.operation.name")
            kind = {"chat": "llm", "execute_tool": "tool", "retrieval": "retriever"}.get(
                op, "agent"
            )
            item: dict[str, Any] = {
                "id": s.span_id.hex(),
                "trace_id": s.trace_id.hex(),
                "parent_id": s.parent_span_id.hex() or None,
                "name": s.name,
                "kind": kind,
                "start_time": s.start_time_unix_nano // 1000,
                "end_time": s.end_time_unix_nano // 1000,
                "session_id": values["session.id"],
                "user_id": values["user.id"],
                "tags": ["bench"],
            }
            if kind == "llm":
                item["inputs"] = {"messages": json.loads(values["gen_ai.input.messages"])}
                item["outputs"] = {"messages": json.loads(values["gen_ai.output.messages"])}
                item["model"] = values["gen_ai.response.model"]
                item["provider"] = "openai"
                item["usage"] = {
                    "input_tokens": values["gen_ai.usage.input_tokens"],
                    "output_tokens": values["gen_ai.usage.output_tokens"],
                }
            elif kind == "tool":
                item["inputs"] = json.loads(values["gen_ai.tool.call.arguments"])
                item["outputs"] = json.loads(values["gen_ai.tool.call.result"])
            elif kind == "retriever":
                item["inputs"] = {"query": values["gen_ai.retrieval.query.text"]}
                item["outputs"] = {"documents": json.loads(values["gen_ai.retrieval.documents"])}
            else:
                item["inputs"] = {"input": values["input.value"]}
            items.append(item)
    return items


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    data_dir: Path,
    database_url: str,
    env_extra: dict[str, str] | None = None,
    args_extra: tuple[str, ...] = (),
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "goldloop",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    cmd += ["--log-level", "warning", *args_extra]
    if database_url:
        cmd += ["--database-url", database_url]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env_extra or {})}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        out.setdefault(ppid, []).append(int(d.name))
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (the server's ingest worker processes, for one)."""
    kids = _children()
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += kids.get(p, [])
    return found


def tree_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of ``pid`` and its live descendants."""
    total = 0.0
    for p in process_tree(pid):
        try:
            total += cpu_seconds(p)
        except (OSError, IndexError, ValueError):
            continue
    return total


def tree_status_mib(pid: int, field: str) -> float:
    """A memory field of /proc/<pid>/status (``VmRSS``, ``VmHWM``) summed over ``pid`` and its
    live descendants (for ``VmHWM``: a sum of peaks, an upper bound of the tree's peak)."""
    total = 0
    for p in process_tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith(field + ":"):
                total += int(line.split()[1])
    return total / 1024


def rss_mib(pid: int) -> float:
    """Peak resident memory of the server and its ingest worker processes."""
    return tree_status_mib(pid, "VmHWM")


class Senders:
    """One HTTP client per sending thread, opened before the clock starts: an exporter opens its
    session once, and creating an httpx client costs ~18 ms of CPU (its TLS context loads the
    CA certificates), which on 2 cores would be counted against the server's throughput."""

    def __init__(
        self,
        base: str,
        key: str,
        ctype: str,
        threads: int,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        headers = {"x-api-key": key, "content-type": ctype, **(extra_headers or {})}
        self.clients = [
            httpx.Client(base_url=base, headers=headers, timeout=60) for _ in range(threads)
        ]

    def __enter__(self) -> Senders:
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self.clients:
            client.close()

    def send(self, bodies: list[bytes], path: str) -> int:
        """POST every body (threads take them in order); returns the number of 503 retries."""
        queue = list(reversed(bodies))
        lock = threading.Lock()
        retries = [0]

        def count_retry() -> None:
            with lock:
                retries[0] += 1

        def worker(c: httpx.Client) -> None:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                failed = post_until_accepted(c, path, body, on_retry=count_retry)
                if failed is not None:
                    raise SystemExit(failed)

        pool = [threading.Thread(target=worker, args=(c,)) for c in self.clients]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return retries[0]


def post_until_accepted(
    client: Any, path: str, body: bytes, on_retry: Callable[[], None]
) -> str | None:
    """POST ``body`` until the server accepts it (200/202), waiting a tenth of what a 503's
    ``retry-after`` asks before trying again (``on_retry`` counts it); otherwise the error."""
    while True:
        r = client.post(path, content=body)
        if r.status_code in (200, 202):
            return None
        if r.status_code != 503:
            return f"{path}: {r.status_code} {r.text[:300]}"
        on_retry()
        time.sleep(float(r.headers.get("retry-after", "1")) / 10)


def send_all(base: str, key: str, bodies: list[bytes], path: str, ctype: str, threads: int) -> int:
    """``Senders(...).send`` for loads whose time is not measured (its clients opened here)."""
    with Senders(base, key, ctype, threads) as senders:
        return senders.send(bodies, path)


def warm_up(base: str, key: str, pid: int, extra_headers: dict[str, str] | None = None) -> int:
    """Before the clock: one small OTLP request (a run in project ``bench-warmup``), so first-use
    costs (imports, the project, the ingest worker processes starting) are not counted, then a
    wait until the server's processes are idle. Returns the runs it stored (1)."""
    body = request(
        [span("0" * 31 + "1", "0" * 15 + "1", None, "warm-up", {})], service="bench-warmup"
    ).SerializeToString()
    r = httpx.post(
        f"{base}/v1/traces",
        content=body,
        headers={
            "x-api-key": key,
            "content-type": "application/x-protobuf",
            **(extra_headers or {}),
        },
        timeout=60,
    )
    r.raise_for_status()
    deadline = time.monotonic() + 30
    last, quiet = tree_cpu_seconds(pid), 0
    while quiet < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
        now = tree_cpu_seconds(pid)
        quiet = quiet + 1 if now - last < 0.01 else 0
        last = now
    return 1


class RunCounter:
    """Counts the stored runs over a connection opened before the clock starts (opening the
    first one in a process costs ~40 ms, mostly SQLAlchemy setting up the dialect: a client
    cost, not the server's)."""

    def __init__(self, url: str) -> None:
        self._engine = sa.create_engine(url)
        self._conn = self._engine.connect()
        self.count()

    def count(self) -> int:
        n = int(self._conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one())
        self._conn.rollback()  # end the read transaction: the next count sees new commits
        return n

    def close(self) -> None:
        self._conn.close()
        self._engine.dispose()


def count_runs(url: str) -> int:
    counter = RunCounter(url)
    try:
        return counter.count()
    finally:
        counter.close()


def disk_bytes(url: str, data_dir: Path) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if url.startswith("sqlite"):
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                return sum(p.stat().st_size for p in data_dir.glob("goldloop.db*"))
            return int(conn.execute(sa.text("SELECT pg_total_relation_size('runs')")).scalar_one())
    finally:
        engine.dispose()


def emit_trace(tracer: Any, spans: list[Any], kind: Callable[[Any], Any]) -> None:
    """One trace of protobuf spans made again through an OpenTelemetry SDK ``tracer``: the first
    span the root, the rest its children (of ``kind(span)``), with their times and attributes."""
    from opentelemetry import trace

    from goldloop.domain.otel.decode import pb_attrs

    root = spans[0]
    parent = tracer.start_span(
        root.name, start_time=root.start_time_unix_nano, attributes=pb_attrs(root.attributes)
    )
    ctx = trace.set_span_in_context(parent)
    for s in spans[1:]:
        child = tracer.start_span(
            s.name,
            context=ctx,
            kind=kind(s),
            start_time=s.start_time_unix_nano,
            attributes=pb_attrs(s.attributes),
        )
        child.end(end_time=s.end_time_unix_nano)
    parent.end(end_time=root.end_time_unix_nano)


def send_with_sdk(
    base: str,
    key: str,
    traces: list[list[Any]],
    extra_headers: dict[str, str] | None = None,
    grpc_target: str | None = None,
) -> int:
    """The same spans through the unmodified OpenTelemetry SDK and its OTLP/HTTP exporter
    (BatchSpanProcessor, protobuf), or its OTLP/gRPC exporter to ``grpc_target``: includes the
    SDK's own CPU, on the same machine."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    headers = {"x-api-key": key, **(extra_headers or {})}
    exporter: Any
    if grpc_target is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers=headers)
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        exporter = GrpcSpanExporter(endpoint=grpc_target, insecure=True, headers=headers)
    provider = TracerProvider(resource=Resource.create({"service.name": "agent-svc"}))
    # the queue holds the whole load: the figure is the exporter's and the server's, not drops
    queue = max(20_000, sum(map(len, traces)) + 10)
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=queue, max_export_batch_size=512)
    )
    tracer = provider.get_tracer("bench")
    for spans in traces:
        emit_trace(tracer, spans, lambda _: trace.SpanKind.CLIENT)
    ok = provider.force_flush(600_000)
    provider.shutdown()
    if not ok:
        raise SystemExit("the SDK exporter did not flush")
    return 0


def _admin(url: str, sql: str) -> None:
    engine = sa.create_engine(normalize_database_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(sql)
    engine.dispose()


@contextlib.contextmanager
def private_schema(url: str) -> Iterator[str]:
    """A PostgreSQL URL whose connections use a new schema of their own, dropped on exit
    (so a run starts empty and leaves nothing); an empty URL (SQLite) is given back as is."""
    if not url:
        yield url
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    _admin(url, f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        _admin(url, f'DROP SCHEMA "{schema}" CASCADE')


def run_one(mode: str, traces: list[list[Any]], args: argparse.Namespace) -> dict[str, Any]:
    with private_schema(args.database_url) as url:
        return _run_one(mode, traces, args, url)


def _run_one(
    mode: str, traces: list[list[Any]], args: argparse.Namespace, url: str
) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"gl-bench-{mode}-"))
    extra = {}
    if args.ingest_processes is not None:
        extra["GOLDLOOP_INGEST_PROCESSES"] = str(args.ingest_processes)
    grpc_port = _free_port() if mode == "otel-sdk-grpc" else 0
    grpc_args = ("--otlp-grpc", "--otlp-grpc-port", str(grpc_port)) if grpc_port else ()
    proc, base = start_server(data_dir, url, extra, grpc_args)
    db_url = normalize_database_url(url) if url else f"sqlite:///{data_dir / 'goldloop.db'}"
    key = (data_dir / "admin-key").read_text().strip()
    n_spans = sum(len(t) for t in traces)
    per = args.spans_per_request
    flat = [s for t in traces for s in t]
    bodies: list[bytes] = []
    if mode == "otlp-protobuf":
        bodies = [request(flat[i : i + per]).SerializeToString() for i in range(0, n_spans, per)]
        path, ctype = "/v1/traces", "application/x-protobuf"
    elif mode in ("otel-sdk", "otel-sdk-grpc"):
        path, ctype = "/v1/traces", "application/x-protobuf"
    else:
        items = native_items(traces)
        bodies = [
            json.dumps({"project": "bench", "runs": items[i : i + per]}).encode()
            for i in range(0, n_spans, per)
        ]
        path, ctype = "/api/v1/runs/batch", "application/json"
    warm = warm_up(base, key, proc.pid)
    counter = RunCounter(db_url)
    with Senders(base, key, ctype, args.threads) as senders:
        cpu0, main0 = tree_cpu_seconds(proc.pid), cpu_seconds(proc.pid)
        client0 = time.process_time()
        t0 = time.perf_counter()
        if mode == "otel-sdk":
            retries = send_with_sdk(base, key, traces)
        elif mode == "otel-sdk-grpc":
            retries = send_with_sdk(base, key, traces, grpc_target=f"127.0.0.1:{grpc_port}")
        else:
            retries = senders.send(bodies, path)
        stored = counter.count() - warm
        elapsed = time.perf_counter() - t0
        client_cpu = time.process_time() - client0
    counter.close()
    cpu = tree_cpu_seconds(proc.pid) - cpu0
    main_cpu = cpu_seconds(proc.pid) - main0
    peak = rss_mib(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    size = disk_bytes(db_url, data_dir)
    assert stored == n_spans, f"stored {stored} of {n_spans}"
    return {
        "mode": mode,
        "ingest_processes": args.ingest_processes,
        "spans": n_spans,
        "requests": len(bodies) or None,
        "request_bytes_avg": sum(map(len, bodies)) // len(bodies) if bodies else None,
        "seconds": round(elapsed, 3),
        "spans_per_s": round(n_spans / elapsed),
        "server_cpu_ms_per_span": round(cpu * 1000 / n_spans, 3),
        # the server process alone, without its ingest worker processes
        "server_main_cpu_ms_per_span": round(main_cpu * 1000 / n_spans, 3),
        "server_peak_rss_mib": round(peak, 1),
        # this process: the load's clients (the SDK and its exporter in the otel-sdk modes)
        "client_cpu_ms_per_span": round(client_cpu * 1000 / n_spans, 3),
        "bytes_on_disk_per_run": size // n_spans,
        "retries_503": retries,
    }


def otlp_decoder() -> str:
    """The server's OTLP protobuf decoder: it runs this checkout's src with this environment."""
    from goldloop.domain.otel.decode import c_decode_trace_request
    from goldloop.settings import load_settings

    if c_decode_trace_request is None:
        return "generated classes (goldloop._otlp_wire not built: pip install -e .)"
    return "C" if load_settings().otlp_c_decoder else "generated classes (otlp_c_decoder=false)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--span-bytes", type=int, default=3450, help="~3 KB per protobuf span")
    parser.add_argument("--spans-per-request", type=int, default=500)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL; empty = SQLite")
    parser.add_argument("--modes", default="otlp-protobuf,native,otel-sdk")
    parser.add_argument(
        "--ingest-processes",
        type=int,
        default=None,
        help="the server's ingest_processes setting (default: the server's default)",
    )
    args = parser.parse_args()
    traces = build_traces(args.traces, args.span_bytes)
    size = len(request(traces[0]).SerializeToString()) // 5
    print(
        f"{sum(map(len, traces))} spans in {len(traces)} traces, ~{size} bytes per span "
        f"(protobuf); OTLP decoder: {otlp_decoder()}"
    )
    results = []
    for mode in args.modes.split(","):
        res = run_one(mode, traces, args)
        results.append(res)
        print(json.dumps(res))
    backend = "postgresql" if args.database_url else "sqlite"
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"ingest-{backend}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    meta = {
        "backend": backend,
        "otlp_decoder": otlp_decoder(),
        "cpus": os.cpu_count(),
        "span_bytes_protobuf": size,
        "args": vars(args),
    }
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(
        f"\n{'mode':15} {'spans/s':>9} {'cpu ms/span':>12} {'of it main':>11} {'bytes/run':>10} "
        f"{'peak RSS MiB':>13}"
    )
    for r in results:
        print(
            f"{r['mode']:15} {r['spans_per_s']:>9} {r['server_cpu_ms_per_span']:>12} "
            f"{r['server_main_cpu_ms_per_span']:>11} {r['bytes_on_disk_per_run']:>10} "
            f"{r['server_peak_rss_mib']:>13}"
        )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
