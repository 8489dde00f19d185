"""SDK overhead: added cost per traced call, memory per queued run, exporter throughput.

    PYTHONPATH=src python bench/sdk_overhead.py            # everything, ~2 minutes
    PYTHONPATH=src python bench/sdk_overhead.py --quick    # smaller loops
    PYTHONPATH=src python bench/sdk_overhead.py --first-call   # the first traced call only
    PYTHONPATH=src python bench/sdk_overhead.py --live     # against a live server, ~3 minutes

Each scenario runs in its own subprocess (fresh interpreter, no state shared between tracers);
the exporters send to a local HTTP sink in this process that accepts anything (``202 {}``), so
no tracer pays for a real server there. Added cost = (time per traced call) - (time per plain
call), median of several bounded repeats. "in call" is what the traced call itself pays;
"with export" also spreads over the calls the time the background exporter needed afterwards to
deliver everything (flush), i.e. the whole CPU cost of tracing in the process.

First, the cost of the first traced call in a fresh process (configured from GOLDLOOP_* by
that call, or by an explicit ``configure()``, or with the server down) next to the calls after it.
Scenarios: Goldloop ``@traced`` on/off, LangSmith ``@traceable`` on/off, an OpenTelemetry span
with BatchSpanProcessor + OTLP/HTTP exporter, and the same span with the no-op tracer. Then:
memory held per queued Goldloop run (tracemalloc), and the exporter's throughput delivering runs
to a real ``goldloop serve`` (SQLite) over a socket. Results: printed, and written to
bench/results/sdk_overhead-<time>.json.

``--live`` starts one real ``goldloop serve`` (SQLite, default settings) and runs against it:
three bursts of 21,000 traced calls in a tight loop with the SDK's DEFAULT exporter settings
(runs sent, stored by the server, dropped), then the cost per traced call of Goldloop, LangSmith
(its compatible API) and OpenTelemetry (OTLP/HTTP) with that server as their backend. Results:
bench/results/sdk_live-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


# -- the sink: a local server that accepts anything ---------------------------------------------
class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # No Nagle: otherwise the split header/body writes meet the client's delayed ACK and
        # every request waits ~40 ms, which would be charged to the tracers.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = b"{}"
        self.send_response(202 if self.command == "POST" else 200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET = do_PUT = do_PATCH = _answer


def start_sink() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# -- measuring inside a scenario subprocess ------------------------------------------------------
def plain(x: int) -> int:
    return x + 1


def per_call_us(
    fn: Callable[[int], int], n: int, repeats: int, cpu: list[float] | None = None
) -> list[float]:
    """Wall-clock µs per call of each repeat; ``cpu`` gets the calling thread's CPU µs per call
    (``time.thread_time``: what the call itself costs, whatever else runs on the machine)."""
    out = []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.thread_time()
        for i in range(n):
            fn(i)
        out.append((time.perf_counter() - start) / n * 1e6)
        if cpu is not None:
            cpu.append((time.thread_time() - start_cpu) / n * 1e6)
    return out


def scenario(name: str, sink: str, n: int, repeats: int, key: str = "bench") -> dict[str, Any]:
    """One tracer's cost per call; ``sink`` is the local sink, or a live server (``--live``)."""
    base_cpu: list[float] = []
    base = per_call_us(plain, n, repeats, base_cpu)
    flush: Callable[[], None] = lambda: None  # noqa: E731
    traced: Callable[[int], int]
    if name.startswith("goldloop"):
        import goldloop

        size = n * repeats + 10  # no drops: every call is exported and paid for
        goldloop.configure(
            tracing=name != "goldloop-off",
            endpoint=sink,
            api_key=key,
            project="bench-overhead",
            queue_size=size,
            # "-deferred": the worker sleeps through the loop and sends everything at flush(),
            # which separates the traced call's own cost from GIL contention with the worker
            **({"batch_size": size, "flush_interval_s": 3600} if name.endswith("deferred") else {}),
        )
        traced = goldloop.traced(plain)

        def flush() -> None:
            goldloop.flush(300)

    elif name.startswith("langsmith"):
        os.environ["LANGSMITH_TRACING"] = "true" if name == "langsmith-on" else "false"
        ls_url = sink if key == "bench" else f"{sink}/langsmith"  # live: the compatible API
        os.environ["LANGSMITH_ENDPOINT"] = ls_url
        os.environ["LANGSMITH_API_KEY"] = key
        os.environ["LANGSMITH_PROJECT"] = "bench-overhead"
        import langsmith

        client = langsmith.Client(api_url=ls_url, api_key=key)
        traced = langsmith.traceable(client=client)(plain)

        def flush() -> None:
            client.flush()

    elif name.startswith("otel"):
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        if name == "otel-batch":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider = TracerProvider()
            processor = BatchSpanProcessor(
                OTLPSpanExporter(endpoint=f"{sink}/v1/traces", headers={"x-api-key": key}),
                max_queue_size=n * repeats + 10,
            )
            provider.add_span_processor(processor)
            tracer = provider.get_tracer("bench")

            def flush() -> None:
                processor.force_flush(300_000)

        else:
            tracer = trace.NoOpTracerProvider().get_tracer("bench")

        def traced(x: int) -> int:
            with tracer.start_as_current_span("plain"):
                return plain(x)

    else:
        raise SystemExit(f"unknown scenario {name}")
    traced(0)  # warm up (first-call configuration, imports)
    flush()
    start = time.perf_counter()
    on_cpu: list[float] = []
    on = per_call_us(traced, n, repeats, on_cpu)
    calls_done = time.perf_counter()
    flush()
    flushed = time.perf_counter()
    base_med = statistics.median(base)
    result = {
        "scenario": name,
        "calls": n * repeats,
        "plain_us": round(base_med, 3),
        "added_us_median": round(statistics.median(on) - base_med, 3),
        "added_us_min": round(min(on) - base_med, 3),
        "added_us_with_export": round((flushed - start) / (n * repeats) * 1e6 - base_med, 3),
        "added_cpu_us_median": round(statistics.median(on_cpu) - statistics.median(base_cpu), 3),
        "flush_s": round(flushed - calls_done, 3),
    }
    if name.startswith("goldloop-on"):
        import goldloop

        stats = goldloop.exporter_stats()
        result["exported"] = stats["exported"]
        result["dropped"] = dropped_total(stats)
    return result


def dropped_total(stats: dict[str, Any]) -> int:
    """Every run the exporter dropped, whatever the cause (older versions had no total)."""
    if "dropped" in stats:
        return int(stats["dropped"])
    return sum(int(v) for k, v in stats.items() if k.startswith("dropped_"))


def memory_per_run(n: int) -> dict[str, Any]:
    """Bytes held per queued run (the exporter is idle: the batch never fills, no interval)."""
    import tracemalloc

    import goldloop

    goldloop.configure(
        tracing=True,
        endpoint="http://127.0.0.1:9",
        queue_size=n + 10,
        batch_size=n + 10,
        flush_interval_s=3600,
    )

    @goldloop.traced
    def small(x: int) -> int:
        return x + 1

    @goldloop.traced(kind="llm")
    def chat(messages: list[dict[str, str]], model: str) -> dict[str, Any]:
        return {"role": "assistant", "content": messages[-1]["content"][::-1]}

    out: dict[str, Any] = {}
    content = "How do I reset my password? " * 10  # ~280 characters
    for label, call in (
        ("trivial_run_bytes", lambda i: small(i)),
        (
            "chat_run_bytes",
            lambda i: chat([{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": content}], "gpt-4o-mini"),
        ),
    ):  # fmt: skip
        call(0)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            call(i)
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        out[label] = round((after - before) / n)
        goldloop.configure(
            tracing=True,
            endpoint="http://127.0.0.1:9",
            queue_size=n + 10,
            batch_size=n + 10,
            flush_interval_s=3600,
            retry_s=0.01,
        )
    goldloop.configure(tracing=False)
    return out


@contextlib.contextmanager
def live_server() -> Iterator[tuple[str, str]]:
    """A real `goldloop serve` (SQLite, default settings) on 127.0.0.1: (base URL, admin key)."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = Path(tempfile.mkdtemp(prefix="gl-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDLOOP_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    proc = subprocess.Popen(
        [sys.executable, "-m", "goldloop", "serve", "--port", str(port), "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base, (data / "admin-key").read_text().strip()
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(data, ignore_errors=True)


def stored_runs(base: str, key: str, project: str) -> int:
    """Runs the server has committed in ``project`` (its per-day statistics, summed)."""
    import goldloop

    with goldloop.Client(base, api_key=key) as client:
        if client.find_project(project) is None:
            return 0
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86_400))
        stats = client.project_stats(project, bucket="1d", start=since)
    return sum(int(b["count"]) for b in stats["buckets"])


def throughput(m: int) -> dict[str, Any]:
    """Runs/s the exporter delivers to a real `goldloop serve` (SQLite) over a socket."""
    import goldloop

    with live_server() as (base, key):
        goldloop.configure(
            tracing=True, endpoint=base, api_key=key, project="bench", queue_size=m + 10
        )

        @goldloop.traced(kind="tool")
        def tool(query: str, k: int = 3) -> list[str]:
            return [query] * k

        tool("warm-up")
        goldloop.flush(60)
        start = time.perf_counter()
        for i in range(m):
            tool(f"question {i}")
        enqueued = time.perf_counter()
        ok = goldloop.flush(600)
        done = time.perf_counter()
        stats = goldloop.exporter_stats()
        goldloop.shutdown(10)
        return {
            "runs": m,
            "flushed": ok,
            "exported": stats["exported"] - 1,
            "dropped": dropped_total(stats),
            "seconds": round(done - start, 3),
            "runs_per_s": round((stats["exported"] - 1) / (done - start)),
            "enqueue_s": round(enqueued - start, 3),
        }


def burst(m: int, base: str, key: str) -> dict[str, Any]:
    """A tight loop of ``m`` traced calls with the DEFAULT exporter settings (queue, batch,
    concurrency) against a live server: how many runs were sent, stored and dropped."""
    import goldloop

    project = f"burst-{os.getpid()}"
    goldloop.configure(tracing=True, endpoint=base, api_key=key, project=project)

    @goldloop.traced(kind="tool")
    def tool(query: str, k: int = 3) -> list[str]:
        return [query] * k

    tool("warm-up")
    goldloop.flush(60)
    start = time.perf_counter()
    for i in range(m):
        tool(f"question {i}")
    looped = time.perf_counter()
    ok = goldloop.flush(300)
    done = time.perf_counter()
    stats = goldloop.exporter_stats()
    goldloop.shutdown(10)
    return {
        "burst_calls": m,
        "loop_s": round(looped - start, 3),
        "drained_s": round(done - start, 3),
        "flushed": ok,
        "sent": stats["exported"] - 1,
        "stored": stored_runs(base, key, project) - 1,
        "dropped": dropped_total(stats),
        "dropped_by_cause": {k: v for k, v in stats.items() if k.startswith("dropped_")},
        "peak_in_flight": stats.get("peak_in_flight"),
        "largest_batch": stats.get("largest_batch"),
        "retries": stats["retries"],
    }


# -- orchestration -------------------------------------------------------------------------------
SCENARIOS = [
    "goldloop-off",
    "goldloop-on",
    "goldloop-on-deferred",
    "langsmith-off",
    "langsmith-on",
    "otel-noop",
    "otel-batch",
]


def first_calls(how: str, sink: str) -> dict[str, Any]:
    """What the first traced call in a fresh process costs the caller, next to the later ones.

    ``how``: "env" (GOLDLOOP_* variables: the first call configures), "configure" (an explicit
    ``goldloop.configure()`` before it, timed too), "env-down" (the variables name a port nobody
    listens on). The exporter sends in the background whatever the server's state."""
    if how.startswith("env"):
        os.environ["GOLDLOOP_TRACING"] = "true"
        os.environ["GOLDLOOP_ENDPOINT"] = sink
        os.environ["GOLDLOOP_API_KEY"] = "bench"
    t0 = time.perf_counter()
    import goldloop

    imported = time.perf_counter()
    configure_ms = None
    if how == "configure":
        goldloop.configure(tracing=True, endpoint=sink, api_key="bench")
        configure_ms = (time.perf_counter() - imported) * 1e3
    traced = goldloop.traced(plain)
    calls = []
    for i in range(1000):
        start = time.perf_counter()
        traced(i)
        calls.append((time.perf_counter() - start) * 1e6)
    flushed = goldloop.flush(10)
    return {
        "first_call": how,
        "import_ms": round((imported - t0) * 1e3, 2),
        "configure_ms": None if configure_ms is None else round(configure_ms, 2),
        "first_call_us": round(calls[0], 1),
        "second_call_us": round(calls[1], 1),
        "later_calls_median_us": round(statistics.median(calls[2:]), 1),
        "later_calls_max_us": round(max(calls[2:]), 1),
        "flushed": flushed,
    }


def run_child(args: list[str], **extra_env: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **extra_env}
    env = {k: v for k, v in env.items() if not k.startswith(("GOLDLOOP_", "LANGSMITH_", "OTEL_"))}
    env = {k: v for k, v in env.items() if v != ""}
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, env=env, timeout=1800
    )
    if done.returncode != 0:
        return {"args": args, "error": done.stderr[-2000:]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def live(burst_calls: int, quick: bool, before: str | None) -> None:
    """``--live``: everything against one real server (SQLite), in fresh interpreters.

    ``before``: the ``src`` directory of another version of the SDK (e.g. a worktree of the
    previous commit), run beside this one in the same session, for a before/after."""
    rows: list[dict[str, Any]] = []
    bursts: list[dict[str, Any]] = []
    n, repeats = (2_000, 3) if quick else (10_000, 5)
    sdks = [("this", {})] + ([("before", {"PYTHONPATH": before})] if before else [])
    with live_server() as (base, key):
        for _ in range(1 if quick else 3):
            for label, env in sdks:
                row = run_child(["--child", "burst", "--sink", base, "--key", key,
                                 "--n", str(burst_calls)], **env)  # fmt: skip
                bursts.append({"sdk": label, **row})
                print(json.dumps(bursts[-1]), flush=True)
        plan = [(f"goldloop-on ({label})", "goldloop-on", env) for label, env in sdks]
        plan += [("langsmith-on", "langsmith-on", {}), ("otel-batch", "otel-batch", {})]
        for label, name, env in plan:
            calls = max(500, n // 10) if name == "langsmith-on" else n
            row = run_child(["--child", name, "--sink", base, "--key", key,
                             "--n", str(calls), "--repeats", str(repeats)], **env)  # fmt: skip
            rows.append({**row, "scenario": label})
            print(json.dumps(rows[-1]), flush=True)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": os.getloadavg(),
        "server": "goldloop serve, SQLite, default settings, 127.0.0.1",
        "bursts": bursts,
        "scenarios_live_server": rows,
    }
    print()
    print("| SDK | burst calls | sent | stored | dropped | loop s | drained s |")
    print("|---|---|---|---|---|---|---|")
    for row in bursts:
        if "error" not in row:
            print(f"| {row['sdk']} | {row['burst_calls']} | {row['sent']} | {row['stored']} "
                  f"| {row['dropped']} | {row['loop_s']} | {row['drained_s']} |")  # fmt: skip
    print()
    print("| tracer (live server) | added µs per call (median) | min | with export | "
          "added CPU µs of the calling thread |")  # fmt: skip
    print("|---|---|---|---|---|")
    for row in rows:
        if "error" not in row:
            print(f"| {row['scenario']} | {row['added_us_median']} | {row['added_us_min']} | "
                  f"{row['added_us_with_export']} | {row['added_cpu_us_median']} |")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"sdk_live-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwritten to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller loops")
    parser.add_argument(
        "--first-call", action="store_true", help="only the first-call cost (a few seconds)"
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="against a live `goldloop serve`: the 21,000-call burst with default settings, "
        "then the cost per call of Goldloop, LangSmith and OpenTelemetry (a few minutes)",
    )
    parser.add_argument("--burst", type=int, default=21_000, help="calls in the burst (--live)")
    parser.add_argument(
        "--before",
        metavar="SRC",
        help="with --live: also run the src directory of another SDK version (a worktree of an "
        "earlier commit), for a before/after in the same session",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    parser.add_argument("--key", default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "memory":
        print(json.dumps(memory_per_run(args.n)))
        return
    if args.child == "throughput":
        print(json.dumps(throughput(args.n)))
        return
    if args.child and args.child.startswith("first-"):
        print(json.dumps(first_calls(args.child.removeprefix("first-"), args.sink)))
        return
    if args.child == "burst":
        print(json.dumps(burst(args.n, args.sink, args.key)))
        return
    if args.child:
        print(json.dumps(scenario(args.child, args.sink, args.n, args.repeats, args.key)))
        return
    if args.live:
        live(args.burst, args.quick, args.before)
        return

    n_on, n_off, repeats = (2_000, 50_000, 3) if args.quick else (10_000, 200_000, 5)
    sink, url = start_sink()
    first = []
    with tempfile.TemporaryDirectory() as pycache:
        # as installed: compiled modules on disk (a first run writes them, and is not counted)
        compiled = {"PYTHONPYCACHEPREFIX": pycache, "PYTHONDONTWRITEBYTECODE": ""}
        run_child(["--child", "first-configure", "--sink", url], **compiled)
        for how in ("env", "configure", "env-down"):
            target = "http://127.0.0.1:9" if how == "env-down" else url  # discard port: refused
            first.append(run_child(["--child", f"first-{how}", "--sink", target], **compiled))
            print(json.dumps(first[-1]), flush=True)
    if args.first_call:
        sink.shutdown()
        return
    rows = []
    for name in SCENARIOS:
        slow = name.endswith(("-on", "-batch", "-deferred"))
        n = n_on if slow else n_off
        if name == "langsmith-on":
            n = max(500, n // 10)  # ~200 µs a call: keep the loop bounded in time
        row = run_child(["--child", name, "--sink", url, "--n", str(n), "--repeats", str(repeats)])
        rows.append(row)
        print(json.dumps(row), flush=True)
    sink.shutdown()
    memory = run_child(["--child", "memory", "--n", str(5_000 if args.quick else 20_000)])
    print(json.dumps(memory), flush=True)
    through = run_child(["--child", "throughput", "--n", str(5_000 if args.quick else 20_000)])
    print(json.dumps(through), flush=True)

    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "scenarios": rows,
        "first_calls": first,
        "memory_per_queued_run": memory,
        "exporter_throughput": through,
    }
    print()
    print("| tracer | added µs per call (median) | min | with export | calls |")
    print("|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['args'][1]} | error | | | |")
            continue
        print(
            f"| {row['scenario']} | {row['added_us_median']} | {row['added_us_min']} | "
            f"{row['added_us_with_export']} | {row['calls']} |"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"sdk_overhead-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
