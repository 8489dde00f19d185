"""Rule workers: actions per second per worker process, scaling to two, fairness, lag.

Starts `goldloop serve --no-workers` (ingest only) and `goldloop worker` processes on a database
of their own (a new PostgreSQL schema per phase, dropped at the end; or SQLite in a temporary
directory), sends runs through the native batch API and reads every action's outcome and lag
(run ingested -> action done) from the database at the end. The judge is a fake
OpenAI-compatible server on 127.0.0.1 that answers after --judge-ms.

Phases (each bounded, about 20-70 s):
- throughput: --actions runs queued for a rule with two deterministic checks, then 1 worker
  process, then (a fresh database) 2; actions done per second between the first and last done.
- fairness: a cheap rule (two deterministic checks) gets --cheap-rate runs/s while, on another
  project, a judge rule has a backlog of --backlog runs; the cheap rule's lag against the same
  traffic with no backlog.
- lag: --rate runs/s for --seconds, sampled 20% into two deterministic checks and a judge that
  is always called; the lag of every action.

    python bench/rule_workers.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/rule_workers.py --only lag --seconds 30

Prints a table per phase and writes bench/results/rule_workers-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from results_file import write

from goldloop.settings import normalize_database_url

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
CHECKS = [
    {"name": "regex", "config": {"key": "no_refund_promise", "pattern": "fully refundable"}},
    {"name": "contains", "config": {"key": "mentions_policy", "substrings": "policy"}},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


class Judge:
    """A judge endpoint answering every chat completion after ``delay_s``."""

    def __init__(self, delay_s: float) -> None:
        self.calls = 0
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                judge.calls += 1
                time.sleep(delay_s)
                content = '{"reasoning": "fine", "score": 1}'
                data = orjson.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "model": "judge-1",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 10},
                    }
                )
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def database(url: str) -> Iterator[tuple[str, Path]]:
    """(database URL, data dir): a new PostgreSQL schema (dropped after) or SQLite in a temp dir."""
    data = Path(tempfile.mkdtemp(prefix="goldloop-bench-"))
    if not url:
        yield "", data
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(normalize_database_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    # the schema as the connections' application_name too: their PostgreSQL backends' CPU
    # is read from /proc (``Deployment.cpu_s``)
    params = f"options=-csearch_path%3D{schema}&application_name={schema}"
    try:
        yield f"{url}{'&' if '?' in url else '?'}{params}", data
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


class Deployment:
    """One API process (no workers) and N worker processes on one database."""

    def __init__(
        self, url: str, data: Path, profile_dir: str = "", no_rollups: bool = False
    ) -> None:
        self.url, self.data, self.profile_dir = url, data, profile_dir
        self.no_rollups = no_rollups
        self.procs: list[subprocess.Popen[bytes]] = []
        port = free_port()
        cmd = [sys.executable, "-m", "goldloop", "serve", "--no-workers", "--port", str(port)]
        self.procs.append(self._start(cmd))
        self.base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        key = (data / "admin-key").read_text().strip()
        self.api = httpx.Client(base_url=self.base, headers={"x-api-key": key}, timeout=60)
        db_url = normalize_database_url(url) if url else f"sqlite:///{data / 'goldloop.db'}"
        self.engine = sa.create_engine(db_url)

    def _start(self, cmd: list[str]) -> subprocess.Popen[bytes]:
        cmd = [*cmd, "--data-dir", str(self.data), "--log-level", "warning"]
        if self.url:
            cmd += ["--database-url", self.url]
        return subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start_workers(self, n: int) -> None:
        """Start ``n`` worker processes and wait until each has started its loops (its
        heartbeat row is written then)."""
        for i in range(n):
            cmd = [sys.executable, "-m", "goldloop", "worker"]
            if self.profile_dir:  # cProfile in every thread, stats written when it stops
                out = Path(self.profile_dir) / f"worker-{n}-{i}.prof"
                cmd = [
                    sys.executable,
                    str(ROOT / "bench" / "profile_threads.py"),
                    str(out),
                    "worker",
                ]
            elif self.no_rollups:  # the hourly rollup loop idle (rule actions alone)
                cmd = [sys.executable, str(ROOT / "bench" / "worker_without_rollups.py"), "worker"]
            self.procs.append(self._start(cmd))
        q = sa.text("SELECT count(*) FROM worker_heartbeats WHERE stopped_at IS NULL")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                if int(conn.execute(q).scalar_one()) >= n:
                    return
            time.sleep(0.1)

    def project(self, name: str) -> str:
        return str(self.api.post("/api/v1/projects", json={"name": name}).json()["id"])

    def rule(self, project_id: str, name: str, sample: float, judge: str | None = None) -> str:
        action: dict[str, Any] = {"type": "evaluate", "evaluators": CHECKS}
        if judge:
            action["judge"] = {
                "name": "llm_judge",
                "config": {"base_url": judge, "model": "judge-1", "api_key": "k", "cache": False},
            }
            action["judge_mode"] = "always"
        body = {"project_id": project_id, "name": name, "sample_rate": sample, "actions": [action]}
        made = self.api.post("/api/v1/rules", json=body)
        if made.status_code != 201:
            raise SystemExit(f"could not create the rule: {made.text}")
        return str(made.json()["id"])

    def send(self, project: str, n: int) -> None:
        now_us = time.time_ns() // 1000
        items = []
        for i in range(n):
            rid = str(uuid.uuid4())
            answer = "Per our policy this is non-refundable." if i % 7 else "Fully refundable."
            items.append(
                {
                    "id": rid,
                    "trace_id": rid,
                    "name": "agent",
                    "kind": "agent",
                    "start_time": now_us - 700_000,
                    "end_time": now_us,
                    "inputs": {"q": "refund?"},
                    "outputs": {"answer": answer},
                }
            )
        r = self.api.post("/api/v1/runs/batch", json={"project": project, "runs": items})
        r.raise_for_status()

    def actions(self, rule_id: str) -> list[Any]:
        q = sa.text(
            "SELECT status, ingested_at, created_at, updated_at, attempts FROM rule_actions "
            "WHERE rule_id = :r"
        )
        with self.engine.connect() as conn:
            return list(conn.execute(q, {"r": rule_id}))

    def worker_cpu_s(self) -> float:
        """CPU seconds (user + system) the worker processes have used so far (Linux /proc)."""
        return sum(proc_cpu_s(p.pid) for p in self.procs[1:])

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds used so far by the API server, each worker process, and the PostgreSQL
        backends serving them (by pid: those connected now, under this schema's
        application_name; a backend that closed in between is not counted)."""
        out = {"server": proc_cpu_s(self.procs[0].pid)}
        for i, p in enumerate(self.procs[1:]):
            out[f"worker{i}"] = proc_cpu_s(p.pid)
        if self.engine.dialect.name == "postgresql":
            q = sa.text(
                "SELECT pid FROM pg_stat_activity WHERE application_name = "
                "current_setting('application_name') AND pid <> pg_backend_pid()"
            )
            with self.engine.connect() as conn:
                pids = [int(v) for v in conn.execute(q).scalars()]
            for pid in pids:
                out[f"pg{pid}"] = proc_cpu_s(pid)
        return out

    def done_count(self, rule_id: str) -> int:
        q = sa.text("SELECT count(*) FROM rule_actions WHERE rule_id = :r AND status = 'done'")
        with self.engine.connect() as conn:
            return int(conn.execute(q, {"r": rule_id}).scalar_one())

    def wait_done(self, rule_id: str, expected: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            rows = self.actions(rule_id)
            if len(rows) >= expected and all(r.status != "pending" for r in rows):
                return True
            time.sleep(0.25)
        return False

    def close(self) -> None:
        self.api.close()
        self.engine.dispose()
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc; 0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per kind of process (server, workers, postgres) between two ``cpu_s``."""
    out = {"server": 0.0, "workers": 0.0, "postgres": 0.0}
    for name, used in after.items():
        kind = {"s": "server", "w": "workers", "p": "postgres"}[name[0]]
        out[kind] += used - before.get(name, 0.0)
    return {k: round(v, 2) for k, v in out.items()}


def lag_summary(rows: list[Any]) -> dict[str, Any]:
    lags = [(r.updated_at - r.ingested_at) / 1e6 for r in rows if r.status == "done"]
    return {
        "actions": len(rows),
        "done": len(lags),
        "run_twice": sum(1 for r in rows if r.attempts > 1),
        "lag_s_p50": round(statistics.median(lags), 2) if lags else None,
        "lag_s_p95": round(pct(lags, 0.95), 2) if lags else None,
        "lag_s_max": round(max(lags), 2) if lags else None,
    }


def throughput(args: argparse.Namespace, workers: int) -> dict[str, Any]:
    load_avg = round(os.getloadavg()[0], 2)
    with database(args.database_url) as (url, data):
        d = Deployment(url, data, args.profile_dir, args.no_rollups)
        try:
            rule = d.rule(d.project("bench"), "checks", 1.0)
            for _ in range(args.actions // 500):
                d.send("bench", 500)
            d.start_workers(workers)
            # CPU of the worker processes from their first action done to the last (their
            # start-up, importing and connecting, left out)
            deadline = time.monotonic() + 60
            while d.done_count(rule) == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            first_done, cpu_start = d.done_count(rule), d.worker_cpu_s()
            procs_start, wall_start = d.cpu_s(), time.monotonic()
            done = d.wait_done(rule, args.actions, 150)
            cpu = d.worker_cpu_s() - cpu_start
            procs = cpu_between(procs_start, d.cpu_s())
            wall = time.monotonic() - wall_start
            rows = d.actions(rule)
        finally:
            d.close()
    ends = sorted(r.updated_at for r in rows if r.status == "done")
    span = (ends[-1] - ends[0]) / 1e6 if len(ends) > 1 else float("nan")
    # when the tailer queued them: if they were queued about as fast as they were done, the
    # tailer set the pace, not the actions
    made = sorted(r.created_at for r in rows)
    made_s = (made[-1] - made[0]) / 1e6 if len(made) > 1 else float("nan")
    after = sum(1 for e in ends if e > made[-1]) if made else 0
    return {
        "workers": workers,
        "actions": len(rows),
        "all_done": done,
        "run_twice": sum(1 for r in rows if r.attempts > 1),
        "seconds": round(span, 2),
        "actions_per_s": round((len(ends) - 1) / span, 1) if len(ends) > 1 else None,
        "queued_per_s": round((len(made) - 1) / made_s, 1) if made_s > 0 else None,
        # actions still queued when the tailer queued the last one: their wait was on the runner
        "done_after_last_queued": after,
        # the rate at which those were done: the runners alone, the tailer idle
        "drain_per_s": round(after / ((ends[-1] - made[-1]) / 1e6), 1) if after > 1 else None,
        "worker_cpu_ms_per_action": round(cpu / max(1, len(ends) - first_done) * 1000, 2),
        "actions_per_worker_cpu_s": round((len(ends) - first_done) / cpu, 1) if cpu else None,
        # CPU seconds of each kind of process while the bench waited for the last action
        # (wall_s: that wait; 2 cores give at most 2 * wall_s in all)
        "wall_s": round(wall, 2),
        "cpu_s": procs,
        "cpu_s_all": round(sum(procs.values()), 2),
        "load_avg_start": load_avg,
        "rollup_loop": not args.no_rollups,
    }


def fairness(args: argparse.Namespace, backlog: int) -> dict[str, Any]:
    judge = Judge(args.judge_ms / 1000)
    with database(args.database_url) as (url, data):
        d = Deployment(url, data)
        try:
            slow = d.rule(d.project("slow"), "judged backlog", 1.0, judge=judge.url)
            cheap = d.rule(d.project("cheap"), "cheap checks", 1.0)
            for _ in range(backlog // 500):
                d.send("slow", 500)
            d.start_workers(1)
            started = time.monotonic()
            sent = 0
            while time.monotonic() - started < args.cheap_seconds:
                d.send("cheap", 5)
                sent += 5
                time.sleep(max(0.0, started + sent / args.cheap_rate - time.monotonic()))
            d.wait_done(cheap, sent, 60)
            result = {"backlog": backlog, "cheap": lag_summary(d.actions(cheap))}
            slow_rows = d.actions(slow)
            result["slow_pending_at_end"] = sum(1 for r in slow_rows if r.status == "pending")
            result["slow_done"] = sum(1 for r in slow_rows if r.status == "done")
        finally:
            d.close()
            judge.stop()
    return result


def lag(args: argparse.Namespace) -> dict[str, Any]:
    judge = Judge(args.judge_ms / 1000)
    with database(args.database_url) as (url, data):
        d = Deployment(url, data)
        try:
            rule = d.rule(d.project("bench"), "sampled", 0.2, judge=judge.url)
            d.start_workers(1)
            started = time.monotonic()
            sent = 0
            while time.monotonic() - started < args.seconds:
                d.send("bench", args.batch)
                sent += args.batch
                time.sleep(max(0.0, started + sent / args.rate - time.monotonic()))
            elapsed = time.monotonic() - started
            expected = len(d.actions(rule))
            d.wait_done(rule, expected, 60)
            result = {
                "runs_sent": sent,
                "rate_achieved": round(sent / elapsed, 1),
                "judge_calls": judge.calls,
                **lag_summary(d.actions(rule)),
            }
        finally:
            d.close()
            judge.stop()
    return result


def show(title: str, row: dict[str, Any]) -> None:
    print(f"{title}: " + ", ".join(f"{k}={v}" for k, v in row.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default="", help="empty: SQLite in a temp dir")
    ap.add_argument("--only", choices=["throughput", "fairness", "lag"], default=None)
    ap.add_argument("--actions", type=int, default=6000, help="throughput: actions queued")
    ap.add_argument("--workers", default="1,2", help="throughput: worker processes, per phase")
    ap.add_argument("--backlog", type=int, default=2000, help="fairness: judge rule backlog")
    ap.add_argument("--cheap-rate", type=float, default=20.0, help="fairness: cheap runs/s")
    ap.add_argument("--cheap-seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=100.0, help="lag: runs per second")
    ap.add_argument("--seconds", type=float, default=60.0, help="lag: how long to send")
    ap.add_argument("--batch", type=int, default=25, help="lag: runs per request")
    ap.add_argument("--judge-ms", type=float, default=200.0)
    ap.add_argument(
        "--profile-dir",
        default="",
        help="throughput: run the workers under cProfile (every thread), stats written here",
    )
    ap.add_argument(
        "--no-rollups",
        action="store_true",
        help="throughput: the workers' hourly rollup loop idle (bench/worker_without_rollups.py)",
    )
    args = ap.parse_args()

    results: dict[str, Any] = {
        "database": "postgresql" if args.database_url else "sqlite",
        "cpus": os.cpu_count(),
    }
    if args.only in (None, "throughput"):
        phases = [throughput(args, int(n)) for n in args.workers.split(",")]
        for row in phases:
            show(f"throughput, {row['workers']} worker(s)", row)
        if len(phases) == 2 and phases[0]["actions_per_s"] and phases[1]["actions_per_s"]:
            phases[1]["speedup"] = round(phases[1]["actions_per_s"] / phases[0]["actions_per_s"], 2)
        results["throughput"] = phases
    if args.only in (None, "fairness"):
        alone, behind = fairness(args, 0), fairness(args, args.backlog)
        show("cheap rule, no backlog", alone)
        show("cheap rule, judge backlog", behind)
        results["fairness"] = [alone, behind]
    if args.only in (None, "lag"):
        results["lag"] = lag(args)
        show("lag at rate", results["lag"])
    write("rule_workers", results)


if __name__ == "__main__":
    main()
