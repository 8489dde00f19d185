"""Online evaluation lag: ingest -> rule -> two deterministic evaluators -> stored score.

Starts `goldloop serve` (SQLite by default, workers in-process) in a temporary data directory,
creates a rule that samples 20% of root runs into two deterministic evaluators, sends runs at a
steady rate through the native batch API, samples the backlog every few seconds, and at the end
reads every action's lag (ingest to score stored) from the rule history.

    python bench/rules_lag.py --seconds 600 --rate 100        # the issue's 10-minute run
    python bench/rules_lag.py --seconds 60                    # a quick look

Prints a table and writes bench/results/rules_lag.json. Traffic goes to 127.0.0.1 only; the load
loop is bounded by --seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long to send traffic")
    ap.add_argument("--rate", type=float, default=100.0, help="runs per second")
    ap.add_argument("--sample", type=float, default=0.2, help="rule sampling rate")
    ap.add_argument("--database-url", default="", help="empty: SQLite in a temp dir")
    args = ap.parse_args()

    data = Path(tempfile.mkdtemp(prefix="goldloop-bench-"))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "GOLDLOOP_WORKER_POLL_S": "0.5"}
    cmd = [
        sys.executable,
        "-m",
        "goldloop",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--log-level",
        "warning",
    ]
    if args.database_url:
        cmd += ["--database-url", args.database_url]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        key = (data / "admin-key").read_text().strip()
        api = httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=30)
        pid = api.post("/api/v1/projects", json={"name": "bench"}).json()["id"]
        made = api.post(
            "/api/v1/rules",
            json={
                "project_id": pid,
                "name": "online checks",
                "sample_rate": args.sample,
                "actions": [
                    {
                        "type": "evaluate",
                        "evaluators": [
                            {
                                "name": "regex",
                                "config": {
                                    "key": "no_refund_promise",
                                    "pattern": "fully refundable",
                                    "negate": True,
                                },
                            },
                            {
                                "name": "contains",
                                "config": {"key": "mentions_policy", "substrings": "policy"},
                            },
                        ],
                    }
                ],
            },
        )
        if made.status_code != 201:
            raise SystemExit(f"could not create the rule: {made.text}")
        rule = made.json()

        batch = 10
        interval = batch / args.rate
        sent = 0
        backlog: list[tuple[float, int]] = []
        started = time.monotonic()
        next_at = started
        last_probe = started
        while time.monotonic() - started < args.seconds:
            now_us = time.time_ns() // 1000
            items = []
            for i in range(batch):
                rid = str(uuid.uuid4())
                answer = (
                    "Per our policy this rate is non-refundable."
                    if i % 7
                    else "Your rate is fully refundable."
                )
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
            r = api.post("/api/v1/runs/batch", json={"project": "bench", "runs": items})
            r.raise_for_status()
            sent += batch
            if time.monotonic() - last_probe >= 5:
                last_probe = time.monotonic()
                status = api.get(f"/api/v1/rules/{rule['id']}").json()
                backlog.append(
                    (round(last_probe - started, 1), status["outcomes"].get("pending", 0))
                )
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        elapsed = time.monotonic() - started

        # Drain (bounded), then read every action's lag.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if api.get(f"/api/v1/rules/{rule['id']}").json()["outcomes"].get("pending", 0) == 0:
                break
            time.sleep(0.5)
        lags: list[float] = []
        before = None
        while True:
            params: dict[str, object] = {"limit": 1000, "status": "done"}
            if before is not None:
                params["before"] = before
            page = api.get(f"/api/v1/rules/{rule['id']}/history", params=params).json()
            if not page:
                break
            lags += [a["lag_ms"] for a in page if a["lag_ms"] is not None]
            before = page[-1]["id"]
        status = api.get(f"/api/v1/rules/{rule['id']}").json()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)

    result = {
        "database": "postgresql" if args.database_url else "sqlite",
        "seconds": round(elapsed, 1),
        "runs_sent": sent,
        "rate_achieved": round(sent / elapsed, 1),
        "sample_rate": args.sample,
        "scored_runs": len(lags),
        "lag_ms_p50": round(statistics.median(lags), 1) if lags else None,
        "lag_ms_p95": round(pct(lags, 0.95), 1) if lags else None,
        "lag_ms_max": round(max(lags), 1) if lags else None,
        "pending_over_time": backlog,
        "outcomes": status["outcomes"],
    }
    out = ROOT / "bench" / "results" / "rules_lag.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"{'metric':24} value")
    for k in (
        "database",
        "seconds",
        "runs_sent",
        "rate_achieved",
        "scored_runs",
        "lag_ms_p50",
        "lag_ms_p95",
        "lag_ms_max",
        "outcomes",
    ):
        print(f"{k:24} {result[k]}")
    peak = max((n for _, n in backlog), default=0)
    print(f"{'pending actions (peak)':24} {peak}  samples: {backlog[:3]} ... {backlog[-3:]}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
