"""The pages fixed in "Sort, search and alert pages after the fixes" (issue #23), before and after
each fix, alternating in one process on a workspace ``bench/dashboard_pages.py`` filled.

    python bench/dashboard_pages.py --runs 1000000 --data-dir /tmp/pages-1m-c --only "runs list"
    python bench/slow_pages.py --data-dir /tmp/pages-1m-c [--rounds 3] [--repeat 10]
    python bench/slow_pages.py --data-dir /tmp/pages-pg --database-url postgresql+psycopg://...

Each round times every page once with the fix off and once with it on (the order flips from
one round to the next, so both see the same machine load), with ``dashboard_pages.time_page``
(cold, one warm-up, ``--repeat`` timed requests). How a fix is turned off:

- latency sort: ``DROP INDEX ix_runs_project_root_latency`` (on: ``CREATE INDEX`` again, then
  ``ANALYZE`` of that index, of ``runs`` on PostgreSQL; the build time is printed);
- text searches: the runs list's ``SEARCH_SCAN`` set to None (the exact, unbounded search);
- alert page: ``store.feedback.project_stats`` swapped for the version before the fix (below,
  verbatim), which listed every run of the project with ``run_id IN (SELECT id ...)``.

The comparison page is timed too (no fix to toggle: a reference). Writes
``bench/results/slow-pages-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Connection

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import results_file  # noqa: E402
from dashboard import sign_in  # noqa: E402
from dashboard_pages import COMMON, RARE, q, time_page  # noqa: E402

from goldloop.http.app import create_app  # noqa: E402
from goldloop.http.dashboard import run_list_pages  # noqa: E402
from goldloop.services.context import ServiceContext  # noqa: E402
from goldloop.settings import load_settings  # noqa: E402
from goldloop.store import feedback as feedback_store  # noqa: E402
from goldloop.store.schema import feedback, runs  # noqa: E402

LATENCY_INDEX = "ix_runs_project_root_latency"


def old_project_stats(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    *,
    bucket_us: int,
    since: int | None,
    until: int | None,
    key: str | None,
) -> list[feedback_store.StatsBucket]:
    """``store.feedback.project_stats`` before the fix (commit 12c448b)."""
    run_ids = sa.select(runs.c.id).where(
        runs.c.workspace_id == workspace_id, runs.c.project_id == project_id
    )
    trace_ids = sa.select(runs.c.trace_id).where(
        runs.c.workspace_id == workspace_id, runs.c.project_id == project_id
    )
    bucket = ((feedback.c.created_at // bucket_us) * bucket_us).label("bucket")
    query = (
        sa.select(
            feedback.c.key,
            bucket,
            sa.func.count().label("n"),
            sa.func.count(feedback.c.score).label("scored"),
            sa.func.avg(feedback.c.score).label("mean"),
        )
        .where(
            feedback.c.workspace_id == workspace_id,
            sa.or_(
                feedback.c.run_id.in_(run_ids),
                sa.and_(feedback.c.run_id.is_(None), feedback.c.trace_id.in_(trace_ids)),
            ),
        )
        .group_by(feedback.c.key, bucket)
        .order_by(feedback.c.key, bucket)
    )
    if since is not None:
        query = query.where(feedback.c.created_at >= since)
    if until is not None:
        query = query.where(feedback.c.created_at < until)
    if key is not None:
        query = query.where(feedback.c.key == key)
    return [
        feedback_store.StatsBucket(
            key=r.key,
            bucket_start=int(r.bucket),
            count=int(r.n),
            scored=int(r.scored),
            mean_score=None if r.mean is None else float(r.mean),
        )
        for r in conn.execute(query)
    ]


def toggles(ctx: ServiceContext) -> dict[str, Callable[[bool], None]]:
    """Fix name -> a function that turns that fix on (True) or off (False)."""
    new_stats = feedback_store.project_stats
    scan = run_list_pages.SEARCH_SCAN

    def latency(on: bool) -> None:
        with ctx.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if on:
                t0 = time.perf_counter()
                index = next(i for i in runs.indexes if i.name == LATENCY_INDEX)
                index.create(conn, checkfirst=True)
                pg = ctx.db.dialect == "postgresql"
                conn.exec_driver_sql("ANALYZE runs" if pg else f"ANALYZE {LATENCY_INDEX}")
                print(f"  ({LATENCY_INDEX} built in {time.perf_counter() - t0:.1f} s)")
            else:
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {LATENCY_INDEX}")

    def search(on: bool) -> None:
        run_list_pages.SEARCH_SCAN = scan if on else None  # type: ignore[assignment]

    def alert(on: bool) -> None:
        feedback_store.project_stats = new_stats if on else old_project_stats  # type: ignore[assignment]

    return {"latency": latency, "search": search, "alert": alert}


def pages(world: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(label, path, the fix it depends on)."""
    runs_url = f"/projects/{world['pid']}/runs"
    return [
        ("runs list, sorted by latency", f"{runs_url}?sort=latency&order=desc", "latency"),
        (
            "runs list, sorted by latency, ascending",
            f"{runs_url}?sort=latency&order=asc",
            "latency",
        ),
        (f"runs list, search {RARE} (rare)", f"{runs_url}?filter={q(RARE)}", "search"),
        (f"runs list, search {COMMON} (common)", f"{runs_url}?filter={q(COMMON)}", "search"),
        ("alert page", f"/alerts/{world['alert']}", "alert"),
        (
            "experiments compare (1,000 x 3 each)",
            f"/experiments/compare?baseline={world['base']}&candidate={world['cand']}",
            None,
        ),
    ]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    world = json.loads((args.data_dir / "bench-world.json").read_text())
    settings = load_settings(
        {
            "data_dir": args.data_dir,
            "database_url": args.database_url,
            "workers_in_process": False,
        },
        environ={},
    )
    app = create_app(settings)
    out: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        ctx: ServiceContext = app.state.ctx
        switch = toggles(ctx)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://b") as browser:
            await sign_in(browser, settings.admin_key_path.read_text().strip())
            for rnd in range(args.rounds):
                states = [False, True] if rnd % 2 == 0 else [True, False]
                for on in states:
                    for fix in switch.values():
                        fix(on)
                    label_on = "after" if on else "before"
                    print(f"round {rnd + 1}, {label_on}:", flush=True)
                    for label, path, needs in pages(world):
                        if args.only and not any(o in label for o in args.only):
                            continue
                        r = await time_page(browser, path, args.repeat, args.budget)
                        key = label if needs is None else f"{label} [{label_on}]"
                        out.setdefault(key, []).append(r)
                        if "error" in r:
                            print(f"  {label:52} failed: HTTP {r['error']}", flush=True)
                            continue
                        print(
                            f"  {label:52} p50 {r['p50_ms']:8.1f}  p95 {r['p95_ms']:8.1f}  "
                            f"cold {r['cold_ms']:8.1f}  {r['kb']} KB",
                            flush=True,
                        )
            for fix in switch.values():
                fix(True)
    print("p50 per round (ms)")
    for key, samples in out.items():
        p50s = [s["p50_ms"] for s in samples if "p50_ms" in s]
        med = statistics.median(p50s) if p50s else float("nan")
        print(f"  {key:66} {', '.join(f'{x:.0f}' for x in p50s):>24}  median {med:.0f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--database-url", default="", help="as given to dashboard_pages.py")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--budget", type=float, default=20, help="seconds of requests per page")
    parser.add_argument("--only", action="append", help="time only pages whose label has this")
    args = parser.parse_args()
    results = {
        "rounds": args.rounds,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "pages": asyncio.run(run(args)),
    }
    results_file.write("slow-pages", results)


if __name__ == "__main__":
    main()
