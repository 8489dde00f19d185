"""Goldloop beside Arize Phoenix (and MLflow): the same OTLP span load, the same machine, one run.

Loads (``--load``, see ``bench/peer_loads.py``): ``genai`` (the default, issue 3): 10,000
OpenTelemetry spans of ~3 KB in 2,000 five-span GenAI traces, built by ``bench/ingest.py``'s
``build_traces``; ``openinference`` (issue #24): 10,000 spans of ~3.4 KB in 2,000 five-span
OpenInference traces (chain, two LLM calls, tool, retriever), built by ``bench/otel_storage.py``'s
``openinference_traces``. Each product runs as its own server on 127.0.0.1 with its data in a
fresh temporary directory, on SQLite:

- ``goldloop serve --data-dir TMP`` (this checkout, the bench's interpreter);
- ``phoenix serve`` from its own virtualenv (default ``/tmp/goldloop-bench/phoenix-venv``,
  created with ``pip install arize-phoenix`` when missing), ``PHOENIX_WORKING_DIR=TMP``,
  telemetry and external resources off;
- with ``--products ...,sink``: the instant sink of ``bench/peer_loads.py`` (a stdlib HTTP
  server in its own process that answers each request as soon as it has read the body, and
  counts the spans after answering): the stock exporter's own ceiling on this machine. Its
  spans are "queryable" once answered; it stores nothing, so it has no lists or bytes;
- with ``--products ...,mlflow``: ``mlflow server --workers 4`` from its own virtualenv (default
  ``/tmp/goldloop-bench/mlflow-venv``, ``pip install mlflow`` when missing), SQLite backend
  store in TMP, telemetry off. The load goes to its OTLP endpoint with the
  ``x-mlflow-experiment-id`` header of a fresh experiment (the warm-up span to another one).

Modes (a fresh server for each product and mode):

- ``otel-sdk``: the unmodified OpenTelemetry SDK creates the spans and its OTLP/HTTP exporter
  (opentelemetry-exporter-otlp-proto-http, protobuf) sends them to ``/v1/traces``, as an
  application would; the SDK's CPU shares the machine with the server. One BatchSpanProcessor
  at its defaults (queue 2,048, batches of 512; the generator waits for room in the queue
  rather than let spans drop); ``--sdk-queue load`` gives it a queue that holds the whole load
  instead (the runs before 7 December 2026);
- ``otlp-protobuf``: the same spans as ExportTraceServiceRequest bodies of 500 spans, encoded
  before the clock starts, posted by 4 threads (the server's capacity rather than the SDK's).

In ``otel-sdk`` mode each export call (one batch of up to 512 spans, one in flight) is timed
as the client sees it: the whole call, and the HTTP request alone (the rest is the SDK encoding
the batch); for Goldloop also the server's own time answering those requests (the sum and count
of ``goldloop_http_request_duration_seconds`` for ``POST /v1/traces`` in ``/metrics``, before
and after). ``--rounds N`` runs the products N times in turn, alternating; with the sink in the
run, every other product's rate is also given as a fraction of the sink's in the same round.

Before the clock, each server gets the same warm-up (``ingest.warm_up``: one span in another
project, then a wait until its processes are idle). Measured per product and mode: wall time
from the first span to "all 10,000 queryable" through
the product's own query API (Goldloop: ``GET /api/v1/projects/{p}/stats``; Phoenix: GraphQL
``Project.recordCount``; MLflow: its trace search, five spans per trace found), polled every
0.1 s; server CPU (user + system of the server's process tree, from /proc) per span, and the
client's (this process until the last answer: in ``otel-sdk`` mostly the SDK); the
database files' growth per span (after a WAL checkpoint, server stopped; for Goldloop also the
share of runs with a payload stored compressed); and the latency of listing the latest 50 root
spans through each product's query API (p50/p95 over ``--list-calls`` calls on one keep-alive
connection):

- Goldloop ``GET /api/v1/runs?project=P&filter=root&limit=50&select=light`` (table columns:
  latency, tokens, cost, status) and ``select=full`` (with inputs/outputs);
- Phoenix GraphQL ``Project.spans(first: 50, sort: startTime desc, filterCondition: "parent_id
  is None")`` with the traces table's columns, and REST ``GET /v1/projects/P/spans?limit=50&
  sort=start_time&order=desc&parent_id=null`` (whole spans with attributes);
- MLflow ``POST /api/3.0/mlflow/traces/search`` (50 newest trace infos, with previews) and
  ``GET /api/3.0/mlflow/traces/batchGet`` of those 50 (whole traces with their spans).

``--grow-to 100000`` then adds spans (pre-encoded protobuf, not timed as ingest) until the store
holds that many and lists again.

    python bench/peer_phoenix.py                               # both products, both modes
    python bench/peer_phoenix.py --products goldloop           # Goldloop half only
    python bench/peer_phoenix.py --products goldloop,mlflow --modes otlp-protobuf
    python bench/peer_phoenix.py --modes otel-sdk --grow-to 100000
    python bench/peer_phoenix.py --load openinference          # issue #24's load
    python bench/peer_phoenix.py --load openinference --modes otel-sdk \
        --products goldloop,phoenix,sink --rounds 2            # and the exporter's ceiling

Prints one table and writes bench/results/peer-phoenix-<time>.json. Servers are killed on exit.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

# bench/ingest.py: the load, the senders, the Goldloop server; it puts tests/ on sys.path
import ingest  # noqa: E402
import peer_loads  # noqa: E402

from otlp_builders import request  # noqa: E402

DEFAULT_VENV = Path(tempfile.gettempdir()) / "goldloop-bench" / "phoenix-venv"
DEFAULT_MLFLOW_VENV = DEFAULT_VENV.with_name("mlflow-venv")
GOLDLOOP_PROJECT = "agent-svc"  # the load's resource service.name
PHOENIX_PROJECT = "default"  # Phoenix reads openinference.project.name, absent here

_servers: list[subprocess.Popen[bytes]] = []


# --- processes ---------------------------------------------------------------------------------


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if proc in _servers:
        _servers.remove(proc)


@atexit.register
def _kill_servers() -> None:
    for proc in list(_servers):
        if proc.poll() is None:
            proc.kill()


def sqlite_bytes(data_dir: Path, name: str) -> int:
    """Size of the SQLite database files after folding the WAL into the main file."""
    db = data_dir / name
    if db.exists():
        conn = sqlite3.connect(db)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    return sum(p.stat().st_size for p in data_dir.glob(name + "*"))


# --- the products --------------------------------------------------------------------------------


class Product:
    name: str
    db_file: str
    proc: subprocess.Popen[bytes]
    base: str
    data_dir: Path
    headers: dict[str, str]
    project: str
    ingest_headers: dict[str, str] = {}
    """Headers the product needs on OTLP requests besides ``headers`` (MLflow's experiment)."""
    warm_up_headers: dict[str, str] = {}
    """The same for the warm-up span, which must not land where the load is counted."""

    def start(self) -> None:
        raise NotImplementedError

    def count(self, client: httpx.Client) -> int:
        raise NotImplementedError

    def list_calls(self, client: httpx.Client) -> dict[str, Callable[[], Any]]:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def stored(self) -> dict[str, Any]:
        """What the product says about its stored spans once stopped (nothing by default)."""
        return {}

    def request_seconds(self, client: httpx.Client) -> tuple[int, float] | None:
        """OTLP trace requests answered so far and the server's seconds on them, if it says."""
        return None

    def launch(self, argv: list[str], env: dict[str, str], port: int, health: str) -> None:
        """Start the server in its data dir (output to ``server.log`` there) and wait until
        ``GET health`` answers 200; if it exits or 180 s pass, show the end of its log and
        exit."""
        log = (self.data_dir / "server.log").open("wb")
        self.proc = subprocess.Popen(
            argv, env=env, cwd=self.data_dir, stdout=log, stderr=subprocess.STDOUT
        )
        _servers.append(self.proc)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.base}{health}", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        tail = (self.data_dir / "server.log").read_text(errors="replace")[-3000:]
        stop(self.proc)
        command = " ".join([Path(argv[0]).name, *argv[1:2]])
        raise SystemExit(f"{command} did not start (exit {self.proc.returncode}):\n{tail}")


def fifty(r: httpx.Response, key: str) -> Any:
    """The 50 items under ``key`` of a list call's answer (anything else ends the benchmark)."""
    r.raise_for_status()
    items = r.json()[key]
    assert len(items) == 50, r.text[:200]
    return items


def venv_version(venv: Path, module: str) -> str:
    """``module.__version__`` as the interpreter of ``venv`` imports it."""
    code = f"import {module}; print({module}.__version__)"
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


class Goldloop(Product):
    name = "Goldloop"
    db_file = "goldloop.db"
    project = GOLDLOOP_PROJECT

    def start(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="gl-peer-goldloop-"))
        self.proc, self.base = ingest.start_server(self.data_dir, "")
        _servers.append(self.proc)
        self.headers = {"x-api-key": (self.data_dir / "admin-key").read_text().strip()}

    def count(self, client: httpx.Client) -> int:
        now = time.time_ns() // 1000
        r = client.get(
            f"/api/v1/projects/{self.project}/stats",
            params={"bucket": "1d", "start": now - 3 * 86_400_000_000, "end": now + 60_000_000},
        )
        if r.status_code == 404:  # the project appears with its first span
            return 0
        r.raise_for_status()
        return sum(int(b["count"]) for b in r.json()["buckets"])

    def list_calls(self, client: httpx.Client) -> dict[str, Callable[[], Any]]:
        def runs(select: str) -> Callable[[], Any]:
            params: dict[str, str | int] = {
                "project": self.project,
                "filter": "root",
                "limit": 50,
                "select": select,
            }

            def call() -> Any:
                r = client.get("/api/v1/runs", params=params)
                r.raise_for_status()
                items = r.json()["items"]
                assert len(items) == 50, r.text[:200]
                assert all(i["is_root"] for i in items)
                return items

            return call

        return {
            "latest 50 roots, table columns": runs("light"),
            "latest 50 roots, full": runs("full"),
        }

    def version(self) -> str:
        sys.path.insert(0, str(ROOT / "src"))
        from goldloop import __version__

        return str(__version__)

    def request_seconds(self, client: httpx.Client) -> tuple[int, float] | None:
        r = client.get("/metrics")
        r.raise_for_status()
        name = "goldloop_http_request_duration_seconds"
        labels = '{method="POST",route="/v1/traces"}'
        found: dict[str, float] = {}
        for line in r.text.splitlines():
            for part in ("sum", "count"):
                if line.startswith(f"{name}_{part}{labels} "):
                    found[part] = float(line.rsplit(" ", 1)[1])
        return int(found.get("count", 0)), found.get("sum", 0.0)

    def stored(self) -> dict[str, Any]:
        """Runs, and of them those with a payload column stored as a zstd frame."""
        frame = "X'28B52FFD'"  # payload_codec.FRAME_MAGIC
        first4 = [
            f"substr(CAST({c} AS BLOB), 1, 4) = {frame}" for c in ("inputs", "outputs", "extra")
        ]
        conn = sqlite3.connect(self.data_dir / self.db_file)
        try:
            runs, compressed = conn.execute(
                f"SELECT count(*), coalesce(sum({' OR '.join(first4)}), 0) FROM runs"
            ).fetchone()
        finally:
            conn.close()
        return {
            "runs": runs,
            "runs_compressed": compressed,
            "compressed_fraction": round(compressed / runs, 3) if runs else 0.0,
        }


PHOENIX_SPANS = """
query ($id: ID!) {
  node(id: $id) {
    ... on Project {
      spans(first: 50, sort: {col: startTime, dir: desc}, filterCondition: "parent_id is None") {
        edges { node {
          id spanId name spanKind statusCode startTime latencyMs
          tokenCountTotal tokenCountPrompt tokenCountCompletion
          cumulativeTokenCountTotal costSummary { total { cost } }
          trace { traceId }
        } }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
}
"""


class Phoenix(Product):
    name = "Phoenix"
    db_file = "phoenix.db"
    project = PHOENIX_PROJECT

    def __init__(self, venv: Path) -> None:
        self.venv = venv
        self.headers = {}
        self._project_gid: str | None = None

    def start(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="gl-peer-phoenix-"))
        port, grpc = ingest._free_port(), ingest._free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))} | {
            "PHOENIX_WORKING_DIR": str(self.data_dir),
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(port),
            "PHOENIX_GRPC_PORT": str(grpc),
            "PHOENIX_TELEMETRY_ENABLED": "false",
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        }
        self.launch([str(self.venv / "bin" / "phoenix"), "serve"], env, port, "/healthz")

    def _gql(self, client: httpx.Client, query: str, **variables: Any) -> Any:
        r = client.post("/graphql", json={"query": query, "variables": variables})
        r.raise_for_status()
        body = r.json()
        if body.get("errors"):
            raise SystemExit(f"Phoenix GraphQL error: {body['errors']}")
        return body["data"]

    def count(self, client: httpx.Client) -> int:
        data = self._gql(client, "{ projects { edges { node { id name recordCount } } } }")
        for edge in data["projects"]["edges"]:
            if edge["node"]["name"] == self.project:
                self._project_gid = edge["node"]["id"]
                return int(edge["node"]["recordCount"])
        return 0

    def list_calls(self, client: httpx.Client) -> dict[str, Callable[[], Any]]:
        if self._project_gid is None:
            self.count(client)

        def graphql() -> Any:
            data = self._gql(client, PHOENIX_SPANS, id=self._project_gid)
            edges = data["node"]["spans"]["edges"]
            assert len(edges) == 50, edges[:1]
            return edges

        def rest() -> Any:
            r = client.get(
                f"/v1/projects/{self.project}/spans",
                params={"limit": 50, "sort": "start_time", "order": "desc", "parent_id": "null"},
            )
            return fifty(r, "data")

        return {"latest 50 roots, table columns": graphql, "latest 50 roots, full": rest}

    def version(self) -> str:
        return venv_version(self.venv, "phoenix")


class Sink(Product):
    """The instant sink of ``bench/peer_loads.py``: answers 200 as soon as it has read a
    request, stores nothing. Spans count once answered (counted after the answer is sent)."""

    name = "sink"
    db_file = "sink.db"  # none: zero bytes
    project = "-"

    def __init__(self) -> None:
        self.headers = {}

    def start(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="gl-peer-sink-"))
        port = ingest._free_port()
        argv = [sys.executable, str(BENCH / "peer_loads.py"), "sink", "--port", str(port)]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.launch(argv, env, port, "/healthz")

    def count(self, client: httpx.Client) -> int:
        r = client.get("/count")
        r.raise_for_status()
        return int(r.json()["spans"])

    def list_calls(self, client: httpx.Client) -> dict[str, Callable[[], Any]]:
        return {}

    def version(self) -> str:
        return f"stdlib http.server, Python {sys.version.split()[0]}"


MLFLOW_SEARCH_PAGE = 500  # the most MLflow's trace search returns per call


class MLflow(Product):
    """``mlflow server`` with 4 workers (the setting the issue's figure names) on SQLite. Its
    OTLP endpoint stores a request before it answers; spans are counted as its trace search
    finds traces, five spans each (every trace of the load has five)."""

    name = "MLflow"
    db_file = "mlflow.db"
    project = "bench"

    def __init__(self, venv: Path) -> None:
        self.venv = venv
        self.headers = {}

    def start(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="gl-peer-mlflow-"))
        port = ingest._free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OTEL_"))} | {
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
        }
        argv = [str(self.venv / "bin" / "mlflow"), "server", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--workers", "4"]
        argv += ["--backend-store-uri", f"sqlite:///{self.data_dir / self.db_file}"]
        argv += ["--default-artifact-root", str(self.data_dir / "artifacts")]
        self.launch(argv, env, port, "/health")
        self.experiment = self._experiment(self.project)
        self.ingest_headers = {"x-mlflow-experiment-id": self.experiment}
        self.warm_up_headers = {"x-mlflow-experiment-id": self._experiment("bench-warmup")}

    def _experiment(self, name: str) -> str:
        r = httpx.post(
            f"{self.base}/api/2.0/mlflow/experiments/create", json={"name": name}, timeout=60
        )
        r.raise_for_status()
        return str(r.json()["experiment_id"])

    def _search(self, client: httpx.Client, limit: int, token: str | None = None) -> Any:
        body: dict[str, Any] = {
            "locations": [
                {
                    "type": "MLFLOW_EXPERIMENT",
                    "mlflow_experiment": {"experiment_id": self.experiment},
                }
            ],
            "max_results": limit,
            "order_by": ["timestamp_ms DESC"],
        }
        if token:
            body["page_token"] = token
        r = client.post("/api/3.0/mlflow/traces/search", json=body)
        r.raise_for_status()
        return r.json()

    def count(self, client: httpx.Client) -> int:
        traces, token = 0, None
        while True:
            page = self._search(client, MLFLOW_SEARCH_PAGE, token)
            traces += len(page.get("traces", []))
            token = page.get("next_page_token")
            if not token:
                return traces * 5

    def list_calls(self, client: httpx.Client) -> dict[str, Callable[[], Any]]:
        def infos() -> Any:
            traces = self._search(client, 50)["traces"]
            assert len(traces) == 50, traces[:1]
            return traces

        ids = [t["trace_id"] for t in infos()]

        def whole() -> Any:  # the same 50 traces with every span
            r = client.get("/api/3.0/mlflow/traces/batchGet", params={"trace_ids": ids})
            return fifty(r, "traces")

        return {"latest 50 roots, table columns": infos, "latest 50 roots, full": whole}

    def version(self) -> str:
        return venv_version(self.venv, "mlflow")


def ensure_venv(venv: Path, spec: str, program: str) -> None:
    """Create the virtualenv and install ``spec`` into it when ``program`` is not there yet."""
    if (venv / "bin" / program).exists():
        return
    print(f"installing {spec} into {venv} (its own virtualenv)", flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    proc = subprocess.run([*pip, spec], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"pip install {spec} failed:\n{proc.stderr[-3000:]}")


# --- measuring ------------------------------------------------------------------------------------


def wait_queryable(p: Product, client: httpx.Client, n: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        seen = p.count(client)
        if seen >= n:
            return seen
        time.sleep(0.1)
    raise SystemExit(f"{p.name}: only {seen} of {n} spans queryable after {timeout:.0f} s")


def time_calls(fn: Callable[[], Any], calls: int) -> dict[str, float]:
    for _ in range(3):
        fn()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
    }


def encode(mode: str, traces: list[list[Any]], per: int) -> list[bytes]:
    """The request bodies of a pre-encoded mode (built before the clock starts)."""
    if mode == "otel-sdk":
        return []
    flat = [s for t in traces for s in t]
    return [request(flat[i : i + per]).SerializeToString() for i in range(0, len(flat), per)]


def send(
    p: Product,
    mode: str,
    traces: list[list[Any]],
    bodies: list[bytes],
    senders: ingest.Senders,
    sdk_queue: str,
) -> tuple[int, peer_loads.SdkRun]:
    """Send the load; returns the number of 503 retries (the SDK exporter retries by itself)
    and, with the SDK at its defaults, its generator's wait and each export's timing."""
    if mode == "otel-sdk" and sdk_queue == "load":
        key = p.headers.get("x-api-key", "")
        retries = ingest.send_with_sdk(p.base, key, traces, extra_headers=p.ingest_headers)
        return retries, peer_loads.SdkRun()
    if mode == "otel-sdk":
        headers = {**p.headers, **p.ingest_headers}
        return 0, peer_loads.send_with_sdk_defaults(p.base, headers, traces)
    return senders.send(bodies, "/v1/traces"), peer_loads.SdkRun()


def grow(p: Product, client: httpx.Client, target: int, args: argparse.Namespace) -> float:
    """Add pre-encoded spans until the store holds ``target``; returns the seconds it took."""
    have = p.count(client)
    extra = (target - have) // 5
    if extra <= 0:
        return 0.0
    t0 = time.perf_counter()
    key = p.headers.get("x-api-key", "")
    chunk = 2000  # traces built and sent per round, so the client's memory stays small
    for start in range(0, extra, chunk):
        traces = peer_loads.LOADS[args.load](
            min(chunk, extra - start), args.span_bytes, 100 + start
        )
        flat = [s for t in traces for s in t]
        per = args.spans_per_request
        bodies = [request(flat[i : i + per]).SerializeToString() for i in range(0, len(flat), per)]
        ingest.send_all(p.base, key, bodies, "/v1/traces", "application/x-protobuf", args.threads)
    wait_queryable(p, client, have + extra * 5, args.timeout)
    return time.perf_counter() - t0


def run_one(
    p: Product, mode: str, traces: list[list[Any]], args: argparse.Namespace
) -> dict[str, Any]:
    n = sum(len(t) for t in traces)
    p.start()
    try:
        with httpx.Client(base_url=p.base, headers=p.headers, timeout=120) as client:
            # the same warm-up for both: one span in another project, then idle (first-use
            # costs such as imports and Goldloop's ingest worker starting are not counted)
            ingest.warm_up(p.base, p.headers.get("x-api-key", ""), p.proc.pid, p.warm_up_headers)
            size0 = sqlite_bytes(p.data_dir, p.db_file)
            # Phoenix puts the warm-up span in the load's project ("default"): not counted
            before = p.count(client)
            bodies = encode(mode, traces, args.spans_per_request)
            key = p.headers.get("x-api-key", "")
            ctype = "application/x-protobuf"
            served0 = p.request_seconds(client)
            with ingest.Senders(p.base, key, ctype, args.threads, p.ingest_headers) as senders:
                cpu0 = ingest.tree_cpu_seconds(p.proc.pid)
                client0 = time.process_time()
                t0 = time.perf_counter()
                retries, sdk = send(p, mode, traces, bodies, senders, args.sdk_queue)
                sent = time.perf_counter() - t0
                client_cpu = time.process_time() - client0
            stored = wait_queryable(p, client, before + n, args.timeout) - before
            elapsed = time.perf_counter() - t0
            cpu = ingest.tree_cpu_seconds(p.proc.pid) - cpu0
            served1 = p.request_seconds(client)
            server_side: dict[str, Any] = {}
            if served0 is not None and served1 is not None and served1[0] > served0[0]:
                requests = served1[0] - served0[0]
                seconds = served1[1] - served0[1]
                server_side = {
                    "requests": requests,
                    "seconds_total": round(seconds, 3),
                    "mean_ms": round(seconds * 1000 / requests, 1),
                }
            # peaks summed over the server's process tree (Goldloop's ingest worker included)
            rss = ingest.tree_status_mib(p.proc.pid, "VmHWM")
            lists = {k: time_calls(fn, args.list_calls) for k, fn in p.list_calls(client).items()}
            grown: dict[str, Any] = {}
            if args.grow_to > n:
                seconds = grow(p, client, args.grow_to, args)
                grown = {
                    "spans": p.count(client),
                    "fill_seconds": round(seconds, 1),
                    "lists": {
                        k: time_calls(fn, args.list_calls) for k, fn in p.list_calls(client).items()
                    },
                }
    finally:
        stop(p.proc)
    size = sqlite_bytes(p.data_dir, p.db_file)
    stored_detail = p.stored()
    if not args.keep:
        shutil.rmtree(p.data_dir, ignore_errors=True)
    spans_on_disk = grown.get("spans", stored)
    return {
        "product": p.name,
        "mode": mode,
        "spans": n,
        "queryable": stored,
        "send_seconds": round(sent, 3),
        "seconds": round(elapsed, 3),
        "spans_per_s": round(n / elapsed),
        "server_cpu_s": round(cpu, 2),
        "server_cpu_ms_per_span": round(cpu * 1000 / n, 3),
        # the load generator's process until the last answer (the SDK and its exporter thread)
        "client_cpu_ms_per_span": round(client_cpu * 1000 / n, 3),
        "server_peak_rss_mib": round(rss, 1),
        "db_bytes_empty": size0,
        "db_bytes": size,
        "db_bytes_per_span": (size - size0) // spans_on_disk,
        "list_at_10k": lists,
        "grown": grown,
        "retries_503": retries,
        "sdk_queue_wait_seconds": round(sdk.waited, 2),
        # each export call as the client saw it (one batch in flight), and the server's own time
        "sdk_exports": sdk.latency(),
        "server_request_time": server_side,
        "stored": stored_detail,
        "data_dir": str(p.data_dir),
    }


def against_sink(results: list[dict[str, Any]]) -> None:
    """Each result's rate as a fraction of the sink's in the same mode and round."""
    sinks = {(r["mode"], r["round"]): r["spans_per_s"] for r in results if r["product"] == "sink"}
    for r in results:
        ceiling = sinks.get((r["mode"], r["round"]))
        if ceiling and r["product"] != "sink":
            r["fraction_of_sink"] = round(r["spans_per_s"] / ceiling, 3)


def uptime() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", default="goldloop,phoenix")
    parser.add_argument("--modes", default="otel-sdk,otlp-protobuf")
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--load", choices=sorted(peer_loads.LOADS), default="genai")
    parser.add_argument(
        "--span-bytes", type=int, help="content per span (3450 GenAI, 3000 OpenInference: ~3 KB)"
    )
    parser.add_argument(
        "--sdk-queue",
        choices=["default", "load"],
        default="default",
        help="otel-sdk: the BatchSpanProcessor's default queue, or one holding the whole load",
    )
    parser.add_argument("--spans-per-request", type=int, default=500)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--list-calls", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1, help="run the products this many times")
    parser.add_argument("--grow-to", type=int, default=0, help="then list again at this many spans")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds to wait for queryable")
    parser.add_argument("--keep", action="store_true", help="keep the servers' data dirs")
    parser.add_argument("--phoenix-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--phoenix-spec", default="arize-phoenix", help="pip requirement")
    parser.add_argument("--mlflow-venv", type=Path, default=DEFAULT_MLFLOW_VENV)
    parser.add_argument("--mlflow-spec", default="mlflow", help="pip requirement")
    args = parser.parse_args()
    if args.span_bytes is None:
        args.span_bytes = peer_loads.SPAN_BYTES[args.load]

    traces = peer_loads.LOADS[args.load](
        args.traces, args.span_bytes, 1 if args.load == "genai" else 3
    )
    n = sum(map(len, traces))
    sample = traces[: min(len(traces), 100)]
    size = sum(len(request(t).SerializeToString()) for t in sample) // (5 * len(sample))
    print(
        f"{args.load}: {n} spans in {len(traces)} traces, ~{size} bytes per span (protobuf)",
        flush=True,
    )
    products: list[Product] = []
    for name in args.products.split(","):
        if name == "goldloop":
            products.append(Goldloop())
        elif name == "phoenix":
            ensure_venv(args.phoenix_venv, args.phoenix_spec, "phoenix")
            products.append(Phoenix(args.phoenix_venv))
        elif name == "sink":
            products.append(Sink())
        elif name == "mlflow":
            ensure_venv(args.mlflow_venv, args.mlflow_spec, "mlflow")
            products.append(MLflow(args.mlflow_venv))
        else:
            raise SystemExit(f"unknown product {name!r}")
    versions = {p.name: p.version() for p in products}
    load_before = uptime()
    results = []
    for mode in args.modes.split(","):
        for round_ in range(1, args.rounds + 1):
            for p in products:
                res = run_one(p, mode, traces, args)
                res["round"] = round_
                res["loadavg_after"] = uptime()
                results.append(res)
                print(json.dumps(res), flush=True)
    load_after = uptime()
    against_sink(results)

    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"peer-phoenix-{time.strftime('%Y%m%dT%H%M%S')}.json"
    meta = {
        "versions": versions,
        "cpus": os.cpu_count(),
        "load": args.load,
        "span_bytes_protobuf": size,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=2))

    print(f"\n{args.load} load; versions {versions}; load average {load_before} -> {load_after}")
    head = (
        f"{'product':9} {'mode':14} {'spans/s':>8} {'CPU ms/span':>11} {'bytes/span':>10} "
        f"{'RSS MiB':>8} {'list p50 table':>14} {'list p50 full':>13}"
    )
    print(head)
    for r in results:
        lists = r["list_at_10k"]
        table = lists.get("latest 50 roots, table columns", {}).get("p50_ms", "-")
        full = lists.get("latest 50 roots, full", {}).get("p50_ms", "-")
        print(
            f"{r['product']:9} {r['mode']:14} {r['spans_per_s']:>8} "
            f"{r['server_cpu_ms_per_span']:>11} {r['db_bytes_per_span']:>10} "
            f"{r['server_peak_rss_mib']:>8} {table:>11} ms {full:>10} ms"
        )
        exports = r["sdk_exports"]
        if exports:
            req = exports.get("request", {})
            line = (
                f"{'':9} round {r['round']}: {exports['batches']} exports of "
                f"{exports['spans_per_batch']} spans, each p50/p95 "
                f"{exports['export']['p50_ms']}/{exports['export']['p95_ms']} ms, "
                f"request {req.get('p50_ms')}/{req.get('p95_ms')} ms"
            )
            if r["server_request_time"]:
                line += f", server {r['server_request_time']['mean_ms']} ms mean"
            if "fraction_of_sink" in r:
                line += f"; {r['fraction_of_sink']:.0%} of the sink's rate"
            print(line)
        if r["stored"]:
            print(f"{'':9} payloads compressed: {r['stored']}")
        if r["grown"]:
            g = r["grown"]["lists"]
            print(
                f"{'':9} {'at ' + str(r['grown']['spans']):14} {'':>8} {'':>11} {'':>10} {'':>8} "
                f"{g['latest 50 roots, table columns']['p50_ms']:>11} ms "
                f"{g['latest 50 roots, full']['p50_ms']:>10} ms"
            )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
