"""Dashboard benchmark: runs-page server time at a large run count, and the first render of a
5,000-run trace page in headless Chromium.

    python bench/dashboard.py --runs 1000000            # both parts, SQLite in a temp dir
    python bench/dashboard.py --runs 200000 --skip-browser
    python bench/dashboard.py --database-url postgresql://postgres@127.0.0.1:5432/bench ...

Part 1 runs the real app in-process (httpx over ASGI, so no socket in the timing): it loads
``--runs`` runs (traces of 10 runs: one root, nine children, spread over 30 days), signs in like
a browser and times each runs-page variant ``--repeat`` times. Part 2 starts ``goldloop serve``,
loads one trace of ``--trace-runs`` runs over the API, and opens its page in Debian's Chromium
(``/usr/bin/chromium``), reading the browser's own navigation and paint timings.

Prints a table and writes ``bench/results/dashboard-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from goldloop.http.app import create_app  # noqa: E402
from goldloop.services import auth, feedback, ingest  # noqa: E402
from goldloop.services.context import ServiceContext  # noqa: E402
from goldloop.settings import load_settings  # noqa: E402

DAY_US = 86_400_000_000
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def sign_in(browser: httpx.AsyncClient, key: str) -> None:
    """Sign the cookie-keeping client in to the dashboard with ``key``."""
    login = await browser.get("/login")
    token = CSRF.search(login.text)
    assert token, "no CSRF field on the sign-in page"
    r = await browser.post("/login", data={"csrf": token.group(1), "api_key": key})
    assert r.status_code == 303, r.text


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def trace_items(t: int, now: int, span_days: int) -> list[dict[str, Any]]:
    start = now - (t * 7_919_000_003) % (span_days * DAY_US)
    tid = f"t{t:08d}"
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
            "tags": ["prod"],
            "metadata": {"customer": f"c{t % 50}"},
        }
    ]
    for i in range(1, 10):
        kind = "llm" if i % 3 == 1 else ("tool" if i % 3 == 2 else "retriever")
        items.append(
            {
                "id": f"{tid}-{i}",
                "trace_id": tid,
                "parent_id": f"{tid}-0",
                "name": f"{kind}-{i}",
                "kind": kind,
                "start_time": start + i * 90_000,
                "end_time": start + i * 90_000 + 80_000 + (t * i % 13) * 100_000,
                "model": "gpt-4o-mini" if kind == "llm" else None,
                "usage": {"input_tokens": 300, "output_tokens": 40, "total_tokens": 340}
                if kind == "llm"
                else None,
                "error": "timeout" if (t + i) % 53 == 0 else None,
                "inputs": {"step": i},
                "outputs": {"ok": True},
            }
        )
    return items


def load_feedback(ctx: ServiceContext, key: str, runs: int, every: int) -> None:
    """A human score on the root of every ``every``-th trace, an online evaluator's on every
    ``2 * every``-th (so the runs table has score columns to fill)."""
    who = auth.authenticate(ctx, key)
    for t in range(0, runs // 10, every):
        feedback.create(
            ctx,
            who,
            feedback.NewFeedback(run_id=f"t{t:08d}-0", key="correctness", score=t % 3 / 2),
        )
        if t % (2 * every) == 0:
            feedback.create(
                ctx,
                who,
                feedback.NewFeedback(
                    run_id=f"t{t:08d}-0", key="helpful", score=1, source="online-evaluator"
                ),
            )


def load_runs(ctx: ServiceContext, key: str, runs: int, batch_traces: int = 200) -> float:
    who = auth.authenticate(ctx, key)
    now = ctx.clock()
    started = time.perf_counter()
    traces = runs // 10
    for first in range(0, traces, batch_traces):
        items: list[dict[str, Any]] = []
        for t in range(first, min(traces, first + batch_traces)):
            items += trace_items(t, now, 30)
        ingest.ingest_native(ctx, who, {"project": "bench", "runs": items})
        done = min(traces, first + batch_traces) * 10
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
        load_s = await asyncio.to_thread(load_runs, ctx, key, args.runs)
        results["load_seconds"] = round(load_s, 1)
        # The server refreshes the planner's statistics hourly; a fresh bulk load has none yet.
        await asyncio.to_thread(ctx.db.write, lambda c: c.exec_driver_sql("ANALYZE"))
        if args.feedback_every:
            await asyncio.to_thread(load_feedback, ctx, key, args.runs, args.feedback_every)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as browser:
            await sign_in(browser, key)
            api = httpx.AsyncClient(
                transport=transport, base_url="http://bench", headers={"x-api-key": key}
            )
            projects = (await api.get("/api/v1/projects")).json()["items"]
            await api.aclose()
            pid = next(p["id"] for p in projects if p["name"] == "bench")
            base = f"/projects/{pid}/runs"
            first = await browser.get(base)
            nxt = re.search(r'<a href="([^"]+)">Next page', first.text)
            assert nxt, "no second page"
            variants = {
                "runs page (default: root runs, newest first)": base,
                "runs page 2 (keyset cursor)": nxt.group(1).replace("&amp;", "&"),
                "all runs (empty filter)": f"{base}?filter=",
                'filter: kind = "llm" and latency > 1s': base
                + "?filter=kind+%3D+%22llm%22+and+latency+%3E+1s",
                'filter: status = "error"': base + "?filter=status+%3D+%22error%22",
                "sorted by latency": f"{base}?sort=latency&order=desc",
                "runs page, last 7 days (count and all columns)": f"{base}?range=7d",
                "runs page, picked columns (no previews or scores)": f"{base}?columns=1"
                + "".join(f"&col={c}" for c in ("status", "start_time", "latency", "tokens")),
                "project overview (24 h charts)": f"/projects/{pid}",
                "project overview (30 d)": f"/projects/{pid}?range=30d",
                "project overview (24 h, runs level)": f"/projects/{pid}?level=runs",
                "project overview (30 d, runs level)": f"/projects/{pid}?range=30d&level=runs",
                "project overview (7 d, filter status = error)": f"/projects/{pid}?range=7d"
                + "&filter=status+%3D+%22error%22",
                "projects list (with run counts)": "/projects",
                "projects list (30 d)": "/projects?range=30d",
                "trace page (10 runs)": "/traces/t00000042",
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
                print(f"  {label:48s} p50 {timings[label]['p50_ms']:8.1f} ms", flush=True)
            results["pages"] = timings
    results["database"] = ctx.db.dialect
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def browser_times(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    data_dir = Path(tempfile.mkdtemp(prefix="gl-bench-browser-"))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    if args.database_url:
        env["GOLDLOOP_DATABASE_URL"] = args.database_url
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "goldloop", "serve", "--port", str(port)),
            *("--data-dir", str(data_dir), "--log-level", "warning"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        key = (data_dir / "admin-key").read_text().strip()
        n = args.trace_runs
        t0 = int(time.time() * 1_000_000) - 3_600_000_000
        items: list[dict[str, Any]] = [
            {
                "id": "big-root",
                "trace_id": "big",
                "name": "batch-agent",
                "kind": "agent",
                "start_time": t0,
                "end_time": t0 + n * 1_000_000,
            }
        ]
        for i in range(n - 1):
            parent = "big-root" if i % 50 == 0 else f"big-{i - i % 50}"
            items.append(
                {
                    "id": f"big-{i}",
                    "trace_id": "big",
                    "parent_id": parent,
                    "name": f"step {i}",
                    "kind": "llm" if i % 3 else "tool",
                    "start_time": t0 + i * 1_000_000,
                    "end_time": t0 + i * 1_000_000 + 900_000,
                    "inputs": {"i": i},
                    "outputs": {"ok": True},
                }
            )
        with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=60) as api:
            for s in range(0, len(items), 1000):
                resp = api.post(
                    "/api/v1/runs/batch", json={"project": "big", "runs": items[s : s + 1000]}
                )
                assert resp.status_code == 202, resp.text
        samples: list[dict[str, float]] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1360, "height": 860})
            page = context.new_page()
            page.goto(f"{base}/login")
            page.fill("#api_key", key)
            page.click("button[type=submit]")
            page.wait_for_url("**/projects")
            page.close()
            for _ in range(args.repeat_browser):
                page = context.new_page()  # a fresh tab each time: its own paint timings
                page.goto(f"{base}/traces/big", wait_until="load")
                page.wait_for_function(
                    "() => performance.getEntriesByName('first-contentful-paint').length > 0"
                )
                samples.append(
                    page.evaluate(
                        """() => {
                          const nav = performance.getEntriesByType('navigation')[0];
                          const fcp = performance.getEntriesByName('first-contentful-paint')[0];
                          return {
                            server_ms: nav.responseStart - nav.requestStart,
                            html_done_ms: nav.responseEnd - nav.startTime,
                            dom_content_loaded_ms: nav.domContentLoadedEventEnd - nav.startTime,
                            first_contentful_paint_ms: fcp ? fcp.startTime : -1,
                            load_ms: nav.loadEventEnd - nav.startTime,
                            html_bytes: nav.transferSize,
                          };
                        }"""
                    )
                )
                page.close()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)
    keys = samples[0].keys()
    out = {k: round(statistics.median(s[k] for s in samples), 1) for k in keys}
    out["trace_runs"] = n
    for k, v in out.items():
        print(f"  {k:28s} {v:>10}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--trace-runs", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--repeat-browser", type=int, default=5)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--feedback-every", type=int, default=0, help="score the root of every N-th trace"
    )
    parser.add_argument("--skip-pages", action="store_true")
    parser.add_argument("--skip-browser", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {"runs": args.runs, "cpus": os.cpu_count()}
    if not args.skip_pages:
        print("== runs page server time (in-process)")
        results["server"] = asyncio.run(page_times(args))
    if not args.skip_browser:
        print(f"== {args.trace_runs:,}-run trace page in headless Chromium (medians)")
        results["browser"] = browser_times(args)
    out = ROOT / "bench" / "results" / f"dashboard-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
