"""Dashboard benchmark: server time of every page at a large run count.

    python bench/dashboard_pages.py --runs 1000000                      # SQLite in a temp dir
    python bench/dashboard_pages.py --runs 200000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_pages

Runs the real app in-process (httpx over ASGI, so no socket in the timing; workers off, their
work done by hand). Fills a workspace the way one looks after months of use:

- ``--runs`` runs bulk-inserted in the store's format (``bench/query.py``'s fill: traces of 5
  runs over 30 days, 90% in ``agent-support`` and 10% in ``other``, one trace of 10,000 runs),
  then a 50-run trace and 1,000 traces of the last 10 minutes through the ingest service;
- scores on 5% of the roots (two declared keys), an annotation queue of 500 runs;
- a dataset of 1,000 examples over 23 versions, and ``bench/experiment_compare.py``'s two
  experiments (1,000 examples x 3 repetitions, two score keys each);
- a rule scoring root runs of agent-support with the regex evaluator (the figures in
  docs/benchmarks.md were taken when a new rule read its project from the start: 177,438
  actions and scores; since 2137cee it acts only on the 1,000 traces that arrive after it),
  an alert rule on that score that fired, a channel, a retention policy.

Then ``ANALYZE`` (and ``VACUUM`` on PostgreSQL, as autovacuum would), lets the hourly rollup
worker catch up (``services.rollups``; the time it took is printed and saved), signs in like a
browser and requests each page once (cold: the first request of that page), once more untimed, then
``--repeat`` times (fewer, at least 3, for a page whose requests pass ``--budget`` seconds),
and prints p50/p95 against the goal (100 ms for the runs list and a 50-run
trace, 300 ms for every other page). Writes ``bench/results/dashboard-pages-<time>.json``.
With ``--data-dir``, a second run reuses the workspace the first one filled there (times only).
``--live`` also times each page read without rollups (every run of the range, as before them),
alternating with the page read with them, so both are measured under the same machine load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import experiment_compare  # noqa: E402
import query  # noqa: E402
import results_file  # noqa: E402
from dashboard import percentile, sign_in  # noqa: E402

from goldloop.http.app import create_app  # noqa: E402
from goldloop.services import (  # noqa: E402
    alerts,
    auth,
    feedback,
    ingest,
    projects,
    rollup_reads,
    rule_actions,
    rules,
)
from goldloop.services.context import Principal, ServiceContext  # noqa: E402
from goldloop.services.rollups import RollupWorker  # noqa: E402
from goldloop.settings import load_settings  # noqa: E402

FAST_MS = 100  # the runs list and a 50-run trace
PAGE_MS = 300  # every other page
TRACE_50 = "trace-50"
LLM_SLOW = 'kind = "llm" and latency > 2s'
ERRORS = 'status = "error"'
SCORED = "feedback.correct.score = 0"
COMMON = 'text ~ "lorem"'
RARE = 'text ~ "question 4242"'


def q(text: str) -> str:
    return quote(text, safe="")


def fifty_run_trace(now: int) -> list[dict[str, Any]]:
    """An agent turn of 50 runs: a root, 7 steps, each with an LLM call and 5 tool calls."""
    start = now - 3_600_000_000
    items: list[dict[str, Any]] = [
        {
            "id": f"{TRACE_50}-0",
            "trace_id": TRACE_50,
            "name": "support-agent",
            "kind": "agent",
            "start_time": start,
            "end_time": start + 49_000_000,
            "inputs": {"question": "Can I cancel my Summer Deal booking?"},
            "outputs": {"answer": "Your rate is non-refundable."},
            "tags": ["prod"],
        },
    ]
    n = 1
    for step in range(7):
        parent = f"{TRACE_50}-{n}"
        items.append(
            {
                "id": parent,
                "trace_id": TRACE_50,
                "parent_id": f"{TRACE_50}-0",
                "name": f"step-{step}",
                "kind": "chain",
                "start_time": start + n * 900_000,
                "end_time": start + n * 900_000 + 6_000_000,
            }
        )
        n += 1
        for i in range(6):
            llm = i == 0
            items.append(
                {
                    "id": f"{TRACE_50}-{n}",
                    "trace_id": TRACE_50,
                    "parent_id": parent,
                    "name": "chat" if llm else f"lookup-{i}",
                    "kind": "llm" if llm else "tool",
                    "model": "gpt-4o-mini" if llm else None,
                    "usage": {"input_tokens": 900, "output_tokens": 80} if llm else None,
                    "start_time": start + n * 900_000,
                    "end_time": start + n * 900_000 + 800_000,
                    "inputs": {"step": step, "call": i},
                    "outputs": {"ok": True},
                }
            )
            n += 1
    assert n == 50
    return items


def rule_traffic(now: int, traces: int) -> list[dict[str, Any]]:
    """New traffic after the rule was created: a root and an LLM child per trace."""
    items: list[dict[str, Any]] = []
    for t in range(traces):
        start, tid = now - 600_000_000 + t * 500_000, f"scored-{t:05d}"
        answer = "full refund" if t % 5 == 0 else "non-refundable, sorry"
        items.append(
            {
                "id": f"{tid}-0",
                "trace_id": tid,
                "name": "support-agent",
                "kind": "agent",
                "start_time": start,
                "end_time": start + 1_200_000,
                "inputs": {"question": f"cancel booking {t}?"},
                "outputs": {"answer": answer},
            }
        )
        items.append(
            {
                "id": f"{tid}-1",
                "trace_id": tid,
                "parent_id": f"{tid}-0",
                "name": "chat",
                "kind": "llm",
                "start_time": start + 100_000,
                "end_time": start + 1_100_000,
                "outputs": {"content": answer},
            }
        )
    return items


def score_roots(ctx: ServiceContext, who: Principal, traces: int) -> int:
    """A human ``correct`` on 5% of the roots of agent-support, an evaluator's ``quality`` on
    half of those (fill: trace ``t{t:07d}``, in agent-support when ``t % 10``)."""
    wanted = list(range(5, traces, 20))

    def one(t: int) -> None:
        run_id = f"t{t:07d}-0"
        feedback.create(ctx, who, feedback.NewFeedback(run_id=run_id, key="correct", score=t % 3))
        if t % 40 == 5:
            new = feedback.NewFeedback(
                run_id=run_id, key="quality", score=(t % 7) / 6, source="online-evaluator"
            )
            feedback.create(ctx, who, new)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, wanted))
    return len(wanted)


async def fill_world(ctx: ServiceContext, api: httpx.AsyncClient, args: argparse.Namespace) -> Any:
    key = ctx.settings.admin_key_path.read_text().strip()
    who = auth.authenticate(ctx, key)
    now = ctx.clock()
    pids = [projects.get_or_create(ctx, who, n).id for n in ("agent-support", "other")]
    t0 = time.perf_counter()
    print(f"bulk-inserting {args.runs:,} runs into {ctx.db.dialect} ...", flush=True)
    await asyncio.to_thread(query.fill, ctx.db, who.workspace_id, pids, args.runs, now=now)
    if ctx.db.dialect == "postgresql":  # the fill numbered the runs itself
        await asyncio.to_thread(
            ctx.db.write,
            lambda c: c.exec_driver_sql("SELECT setval('runs_seq', (SELECT max(seq) FROM runs))"),
        )
    fill_s = time.perf_counter() - t0
    print(f"  runs in {fill_s:.0f} s", flush=True)

    async def ok(resp: Any) -> dict[str, Any]:
        r = await resp
        assert r.status_code < 300, r.text
        return r.json() if r.content else {}

    await asyncio.to_thread(
        ingest.ingest_native, ctx, who, {"project": "agent-support", "runs": fifty_run_trace(now)}
    )
    await ok(
        api.put(
            "/api/v1/feedback-keys/correct",
            json={
                "kind": "categorical",
                "categories": [
                    {"label": "wrong", "score": 0},
                    {"label": "partly", "score": 1},
                    {"label": "right", "score": 2},
                ],
            },
        )
    )
    await ok(
        api.put("/api/v1/feedback-keys/quality", json={"kind": "continuous", "min": 0, "max": 1})
    )
    scored = await asyncio.to_thread(score_roots, ctx, who, (args.runs - 10_000) // 5)
    print(f"  {scored:,} roots scored", flush=True)

    queue = await ok(
        api.post(
            "/api/v1/annotation-queues",
            json={
                "name": "support review",
                "keys": ["correct"],
                "instructions": "Read the whole answer.",
            },
        )
    )
    queued = [f"t{t:07d}-0" for t in range(1, min(5000, (args.runs - 10_000) // 5), 10)]
    for first in range(0, len(queued), 100):
        ids = queued[first : first + 100]
        await ok(api.post(f"/api/v1/annotation-queues/{queue['id']}/items", json={"run_ids": ids}))

    await ok(api.post("/api/v1/datasets", json={"name": "support-golden"}))
    for first in range(0, 1000, 500):
        batch = [
            {
                "id": f"g{i:04d}",
                "inputs": {"question": f"Can I cancel booking {i}?"},
                "outputs": {"answer": f"Booking {i} is {'non-' if i % 3 else ''}refundable."},
            }
            for i in range(first, first + 500)
        ]
        await ok(api.post("/api/v1/datasets/support-golden/examples", json={"examples": batch}))
    for i in range(0, 200, 10):
        await ok(
            api.patch(
                f"/api/v1/datasets/support-golden/examples/g{i:04d}",
                json={"outputs": {"answer": f"Booking {i}: see the rate's terms."}},
            )
        )
    await ok(
        api.post(
            "/api/v1/datasets/support-golden/examples/delete",
            json={"ids": [f"g{i:04d}" for i in range(900, 910)]},
        )
    )
    base, cand = await asyncio.to_thread(experiment_compare.load, ctx, who, 1000, 3)
    print("  dataset, experiments and queue made", flush=True)

    rule = await ok(
        api.post(
            "/api/v1/rules",
            json={
                "project_id": pids[0],
                "name": "refund policy check",
                "filter": "root",
                "actions": [
                    {
                        "type": "evaluate",
                        "evaluators": [
                            {
                                "name": "regex",
                                "config": {
                                    "key": "refund_policy_ok",
                                    "pattern": "full refund",
                                    "negate": True,
                                },
                            }
                        ],
                    }
                ],
            },
        )
    )
    traffic = rule_traffic(now, 1000)
    for first in range(0, len(traffic), 500):
        chunk = {"project": "agent-support", "runs": traffic[first : first + 500]}
        await asyncio.to_thread(ingest.ingest_native, ctx, who, chunk)
    while await asyncio.to_thread(rules.tail_once, ctx):
        pass
    while await asyncio.to_thread(rule_actions.execute_due, ctx, limit=200):
        pass
    channel = await ok(
        api.post(
            "/api/v1/channels",
            json={"name": "on-call", "kind": "webhook", "url": "http://127.0.0.1:9/hook"},
        )
    )
    alert = await ok(
        api.post(
            "/api/v1/alert-rules",
            json={
                "project_id": pids[0],
                "name": "refund answers",
                "channel_ids": [channel["id"]],
                "metric": {"kind": "feedback_pass_rate", "key": "refund_policy_ok"},
                "condition": {"type": "threshold", "op": "<", "value": 0.9, "min_samples": 10},
                "window_s": 3600,
            },
        )
    )
    fired = alerts.evaluate_rule(ctx, alerts.get_rule(ctx, who, alert["id"]), ctx.clock())
    print(f"  rule and alert ({fired}) made", flush=True)
    await ok(api.put(f"/api/v1/projects/{pids[0]}/retention", json={"keep_days": 90}))
    with ctx.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if ctx.db.dialect == "postgresql" else "ANALYZE")
    return {
        "pid": pids[0],
        "queue": queue["id"],
        "rule": rule["id"],
        "alert": alert["id"],
        "base": base,
        "cand": cand,
        "fill_runs_s": round(fill_s, 1),
        "fill_all_s": round(time.perf_counter() - t0, 1),
    }


def pages(w: dict[str, Any], runs_page2: str) -> dict[str, tuple[str, int]]:
    """Label -> (path, goal in ms)."""
    p = f"/projects/{w['pid']}"
    runs = f"{p}/runs"
    ds = "/datasets/support-golden"
    return {
        "projects list (24 h)": ("/projects", PAGE_MS),
        "projects list (30 d)": ("/projects?range=30d", PAGE_MS),
        "project overview (24 h)": (p, PAGE_MS),
        "project overview (7 d)": (f"{p}?range=7d", PAGE_MS),
        "project overview (30 d)": (f"{p}?range=30d", PAGE_MS),
        "project overview (24 h, by run)": (f"{p}?level=runs", PAGE_MS),
        "project overview (30 d, by run)": (f"{p}?range=30d&level=runs", PAGE_MS),
        "runs list (default: roots, newest first)": (runs, FAST_MS),
        "runs list page 2 (cursor)": (runs_page2, FAST_MS),
        "runs list, last 7 days": (f"{runs}?range=7d", FAST_MS),
        f"runs list, filter {LLM_SLOW}": (f"{runs}?filter={q(LLM_SLOW)}", FAST_MS),
        f"runs list, filter {ERRORS}": (f"{runs}?filter={q(ERRORS)}", FAST_MS),
        f"runs list, filter {SCORED}": (f"{runs}?filter={q(SCORED)}", FAST_MS),
        f"runs list, search {COMMON} (common)": (f"{runs}?filter={q(COMMON)}", FAST_MS),
        f"runs list, search {RARE} (rare)": (f"{runs}?filter={q(RARE)}", FAST_MS),
        "runs list, sorted by latency": (f"{runs}?sort=latency&order=desc", FAST_MS),
        "trace page, 50 runs": (f"/traces/{TRACE_50}", FAST_MS),
        "trace page, 5 runs": ("/traces/t0000042", FAST_MS),
        "trace page, 10,000 runs": (f"/traces/{query.BIG_TRACE}", PAGE_MS),
        "trace subtree, 99 runs (of the 10,000)": (
            f"/traces/{query.BIG_TRACE}/subtree?run={query.BIG_TRACE}-1",
            PAGE_MS,
        ),
        "run panel": (f"/traces/{TRACE_50}/panel?run={TRACE_50}-2", PAGE_MS),
        "run page (redirect to its trace)": (f"/runs/{TRACE_50}-2", PAGE_MS),
        "threads list": (f"{p}/threads", PAGE_MS),
        "thread page": (f"{p}/threads/conv-42", PAGE_MS),
        "users list": (f"{p}/users", PAGE_MS),
        "datasets list": ("/datasets", PAGE_MS),
        "dataset page (1,000 examples)": (ds, PAGE_MS),
        "dataset versions (23)": (f"{ds}/versions", PAGE_MS),
        "dataset diff (v1 -> head)": (f"{ds}/diff?from=1", PAGE_MS),
        "dataset's experiments": ("/datasets/bench-golden/experiments", PAGE_MS),
        "experiments list": ("/experiments", PAGE_MS),
        "experiment page (3,000 runs)": (f"/experiments/{w['cand']}", PAGE_MS),
        "experiments compare (1,000 x 3 each)": (
            f"/experiments/compare?baseline={w['base']}&candidate={w['cand']}",
            PAGE_MS,
        ),
        "rules list": ("/rules", PAGE_MS),
        "rule page (every root scored)": (f"/rules/{w['rule']}", PAGE_MS),
        "alerts list (rules and channels)": ("/alerts", PAGE_MS),
        "alert page": (f"/alerts/{w['alert']}", PAGE_MS),
        "queues list (score configs)": ("/queues", PAGE_MS),
        "queue page (500 items)": (f"/queues/{w['queue']}", PAGE_MS),
        "queue review page": (f"/queues/{w['queue']}/review", PAGE_MS),
        "project settings (retention)": (f"{p}/settings", PAGE_MS),
        "audit log": ("/audit", PAGE_MS),
    }


async def time_page(browser: httpx.AsyncClient, path: str, repeat: int, budget_s: float) -> Any:
    """The first (cold) request, one untimed warm-up, then up to ``repeat`` timed requests (at
    least 3, fewer when they take more than ``budget_s`` in all)."""
    samples: list[float] = []
    started = time.perf_counter()
    resp = None
    for i in range(repeat + 2):
        if i >= 5 and time.perf_counter() - started > budget_s:
            break
        t0 = time.perf_counter()
        resp = await browser.get(path)
        ms = (time.perf_counter() - t0) * 1000
        if resp.status_code not in (200, 303):
            return {"error": f"{resp.status_code}", "path": path}
        if i != 1:  # the second request is the warm-up
            samples.append(ms)
    warm = samples[1:]
    assert resp is not None
    return {
        "cold_ms": round(samples[0], 1),
        "p50_ms": round(statistics.median(warm), 1),
        "p95_ms": round(percentile(warm, 0.95), 1),
        "n": len(warm),
        "kb": round(len(resp.content) / 1024),
        "path": path,
    }


async def time_pages(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="gl-bench-pages-"))
    settings = load_settings(
        {"data_dir": data_dir, "database_url": args.database_url, "workers_in_process": False},
        environ={},
    )
    app = create_app(settings)
    out: dict[str, Any] = {"data_dir": str(data_dir)}
    saved = data_dir / "bench-world.json"
    async with app.router.lifespan_context(app):
        ctx: ServiceContext = app.state.ctx
        key = settings.admin_key_path.read_text().strip()
        transport = httpx.ASGITransport(app=app)
        headers = {"x-api-key": key}
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://b", headers=headers) as api,
            httpx.AsyncClient(transport=transport, base_url="http://b") as browser,
        ):
            if saved.exists():  # filled by an earlier run: time only
                world = json.loads(saved.read_text())
                print(f"reusing the workspace filled in {data_dir}", flush=True)
            else:
                world = await fill_world(ctx, api, args)
                saved.write_text(json.dumps(world))
            out["fill"] = {k: v for k, v in world.items() if k.startswith("fill_")}
            out["rollups"] = await asyncio.to_thread(catch_up, ctx)
            await sign_in(browser, key)
            first = await browser.get(f"/projects/{world['pid']}/runs")
            nxt = re.search(r'<a href="([^"]+)">Next page', first.text)
            assert nxt, "no second page"
            timings: dict[str, dict[str, Any]] = {}
            print(f"{'page':52} {'cold':>8} {'p50':>8} {'p95':>8} {'goal':>6}  KB")
            for label, (path, goal) in pages(world, nxt.group(1).replace("&amp;", "&")).items():
                if args.only and not any(o in label for o in args.only):
                    continue
                r = await time_page(browser, path, args.repeat, args.budget)
                r["goal_ms"] = goal
                timings[label] = r
                if "error" in r:
                    print(f"{label:52} failed: HTTP {r['error']}", flush=True)
                    continue
                r["met"] = r["p50_ms"] < goal
                print(
                    f"{label:52} {r['cold_ms']:8.1f} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} "
                    f"{goal:6} {r['kb']:4} {'' if r['met'] else 'MISSED'}",
                    flush=True,
                )
                if args.live:  # the same page without rollups, timed right after
                    with without_rollups():
                        live = await time_page(browser, path, args.repeat, args.budget)
                    timings[label + " [no rollups]"] = {**live, "goal_ms": goal}
                    if "error" not in live:
                        print(
                            f"{'  ... without rollups':52} {live['cold_ms']:8.1f} "
                            f"{live['p50_ms']:8.1f} {live['p95_ms']:8.1f}",
                            flush=True,
                        )
            out["pages"] = timings
    out["database"] = ctx.db.dialect
    return out


def catch_up(ctx: ServiceContext) -> dict[str, Any]:
    """Run the hourly rollup worker until it has nothing left (a backfill on a fresh fill)."""
    worker = RollupWorker(ctx)
    t0, ticks = time.perf_counter(), 0
    while worker.tick():
        ticks += 1
    took = time.perf_counter() - t0
    print(f"rollups caught up in {took:.1f} s ({ticks} ticks)", flush=True)
    return {"catch_up_s": round(took, 1), "ticks": ticks, "hours": worker.backfilled_hours}


class without_rollups:
    """Read every page as before rollups: ``rollup_reads.collect`` finds nothing to use."""

    def __enter__(self) -> None:
        self.saved = rollup_reads.collect
        rollup_reads.collect = lambda *a, **k: None  # type: ignore[assignment]

    def __exit__(self, *exc: object) -> None:
        rollup_reads.collect = self.saved  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--data-dir", type=Path, help="keep the data here; a second run reuses what it holds"
    )
    parser.add_argument("--budget", type=float, default=30, help="seconds of requests per page")
    parser.add_argument("--only", action="append", help="time only pages whose label has this")
    parser.add_argument(
        "--live", action="store_true", help="also time each page without rollups, alternating"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {"runs": args.runs, "repeat": args.repeat, "cpus": os.cpu_count()}
    results["server"] = asyncio.run(time_pages(args))
    missed = [
        k
        for k, v in results["server"]["pages"].items()
        if not v.get("met") and not k.endswith("[no rollups]")
    ]
    print(f"{len(missed)} pages missed their goal" + (": " + "; ".join(missed) if missed else ""))
    results_file.write("dashboard-pages", results)


if __name__ == "__main__":
    main()
