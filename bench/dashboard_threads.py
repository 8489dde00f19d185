"""Dashboard benchmark: server time of the Threads, thread and Users pages at a large run count.

    python bench/dashboard_threads.py --runs 200000
    python bench/dashboard_threads.py --runs 200000 --database-url postgresql+psycopg://...

Runs the real app in-process (httpx over ASGI, so no socket in the timing). Loads ``--runs`` runs
in one project: traces of 4 runs (a root and three children, every run carrying the thread id as
the LangSmith SDK's inherited metadata does), each trace a turn of one of runs/40 threads (about
10 turns a thread, spread over 30 days), the roots carrying one of runs/160 user ids. Signs in
like a browser and times each page ``--repeat`` times: the threads list (first page and page 21,
or the last), one thread (10 turns), and the users list.

Prints a table and writes ``bench/results/dashboard-threads-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import results_file  # noqa: E402
from dashboard import percentile, sign_in  # noqa: E402

from goldloop.http.app import create_app  # noqa: E402
from goldloop.services import auth, ingest  # noqa: E402
from goldloop.services.context import ServiceContext  # noqa: E402
from goldloop.settings import load_settings  # noqa: E402

DAY_US = 86_400_000_000
RUNS_PER_TRACE = 4
TURNS_PER_THREAD = 10


def trace_items(t: int, threads: int, users: int, now: int) -> list[dict[str, Any]]:
    thread = t % threads
    start = now - (t * 7_919_000_003) % (30 * DAY_US)
    tid = f"t{t:08d}"
    session = f"conv-{thread:07d}"
    items: list[dict[str, Any]] = [
        {
            "id": f"{tid}-0",
            "trace_id": tid,
            "name": "support-agent",
            "kind": "agent",
            "start_time": start,
            "end_time": start + 1_000_000 + (t % 97) * 40_000,
            "inputs": {"question": f"where is order {t}?"},
            "outputs": {"answer": "It ships tomorrow."},
            "session_id": session,
            "user_id": f"user-{thread % users:06d}",
        }
    ]
    for i in range(1, RUNS_PER_TRACE):
        items.append(
            {
                "id": f"{tid}-{i}",
                "trace_id": tid,
                "parent_id": f"{tid}-0",
                "name": f"step-{i}",
                "kind": "llm" if i == 1 else "tool",
                "start_time": start + i * 90_000,
                "end_time": start + i * 90_000 + 80_000,
                "inputs": {"step": i},
                "outputs": {"ok": True},
                "session_id": session,
            }
        )
    return items


def load_runs(ctx: ServiceContext, key: str, runs: int, batch_traces: int = 500) -> float:
    who = auth.authenticate(ctx, key)
    now = ctx.clock()
    traces = runs // RUNS_PER_TRACE
    threads = max(1, traces // TURNS_PER_THREAD)
    users = max(1, threads // 4)
    started = time.perf_counter()
    for first in range(0, traces, batch_traces):
        items: list[dict[str, Any]] = []
        for t in range(first, min(traces, first + batch_traces)):
            items += trace_items(t, threads, users, now)
        ingest.ingest_native(ctx, who, {"project": "bench", "runs": items})
        done = min(traces, first + batch_traces) * RUNS_PER_TRACE
        if done % 100_000 == 0:
            print(f"  loaded {done:,} runs", flush=True)
    return time.perf_counter() - started


async def page_times(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="gl-bench-"))
    settings = load_settings(
        {"data_dir": data_dir, "database_url": args.database_url or ""}, environ={}
    )
    app = create_app(settings)
    results: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        ctx: ServiceContext = app.state.ctx
        key = settings.admin_key_path.read_text().strip()
        print(f"loading {args.runs:,} runs into {ctx.db.dialect} ...", flush=True)
        results["load_seconds"] = round(await asyncio.to_thread(load_runs, ctx, key, args.runs), 1)
        # Fresh statistics and visibility map, as autovacuum keeps them on a running database
        # (without them PostgreSQL cannot read the thread index alone).
        with ctx.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE" if ctx.db.dialect == "postgresql" else "ANALYZE")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as browser:
            await sign_in(browser, key)
            api = httpx.AsyncClient(
                transport=transport, base_url="http://bench", headers={"x-api-key": key}
            )
            projects = (await api.get("/api/v1/projects")).json()["items"]
            await api.aclose()
            pid = next(p["id"] for p in projects if p["name"] == "bench")
            base = f"/projects/{pid}/threads"
            deep, depth = base, 1
            while depth < 21:
                page = await browser.get(deep)
                nxt = re.search(r'<a href="([^"]+)">Next page', page.text)
                if nxt is None:
                    break
                deep, depth = nxt.group(1).replace("&amp;", "&"), depth + 1
            variants = {
                "threads page 1 (50 threads)": base,
                f"threads page {depth} (keyset cursor)": deep,
                "thread page (10 turns)": f"{base}/conv-0000042",
                "users page 1 (50 users)": f"/projects/{pid}/users",
            }
            timings: dict[str, dict[str, float]] = {}
            for label, url in variants.items():
                samples = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    resp = await browser.get(url)
                    samples.append((time.perf_counter() - t0) * 1000)
                    assert resp.status_code == 200, (label, resp.status_code)
                timings[label] = {
                    "p50_ms": round(statistics.median(samples), 1),
                    "p95_ms": round(percentile(samples, 0.95), 1),
                }
                print(f"  {label:40s} p50 {timings[label]['p50_ms']:8.1f} ms", flush=True)
            results["pages"] = timings
    results["database"] = ctx.db.dialect
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    results: dict[str, Any] = {"runs": args.runs, "cpus": os.cpu_count()}
    results["server"] = asyncio.run(page_times(args))
    results_file.write("dashboard-threads", results)


if __name__ == "__main__":
    main()
