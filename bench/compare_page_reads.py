"""The experiment comparison page with its lean reads and without them, alternating in one
process (issue #23): the page's server time both ways, and whether the page is the same.

    python bench/compare_page_reads.py --data-dir /tmp/pages-1m --rounds 12
    python bench/compare_page_reads.py --data-dir /tmp/pages-1m --rounds 12 --what kept-sides

``--what kept-sides`` alternates instead a request that reads both experiments afresh (what
the first view costs, or the next view after a run or a score changed: the kept sides are
emptied before it) with one served from the sides kept since (``services.comparison_cache``).

Needs a directory filled by ``bench/dashboard_pages.py`` (its two experiments of 1,000 examples
x 3 repetitions). "Without" puts back the reads of before: every score's value and comment for
the comparison's two sides, and every result column of each experiment's root runs to find the
shown examples' runs. The first round of each is a warm-up. Writes
``bench/results/compare-page-reads-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import results_file  # noqa: E402
from dashboard import sign_in  # noqa: E402

from goldloop.http.app import create_app  # noqa: E402
from goldloop.services.comparison_cache import StampedCache  # noqa: E402
from goldloop.settings import load_settings  # noqa: E402
from goldloop.store import experiments as store  # noqa: E402

LEAN_SCORES, LEAN_PAGE = store.scores_for_project, store.root_runs_page


def full_scores(conn: Any, workspace_id: str, project_id: str, **_: Any) -> Any:
    return LEAN_SCORES(conn, workspace_id, project_id, with_text=True)


def full_page(*args: Any, **kwargs: Any) -> Any:
    return LEAN_PAGE(*args, **{**kwargs, "positions_only": False})


async def run(data_dir: Path, rounds: int, what: str) -> dict[str, Any]:
    settings = load_settings({"data_dir": data_dir, "workers_in_process": False}, environ={})
    app = create_app(settings)
    world = json.loads((data_dir / "bench-world.json").read_text())
    path = f"/experiments/compare?baseline={world['base']}&candidate={world['cand']}"
    modes = ("without", "with") if what == "lean-reads" else ("fresh", "kept")
    times: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    pages: dict[str, str] = {}
    async with app.router.lifespan_context(app):
        key = settings.admin_key_path.read_text().strip()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://b") as browser:
            await sign_in(browser, key)
            for i in range(2 * (rounds + 1)):
                mode = modes[i % 2]
                if what == "lean-reads":
                    lean = mode == "with"
                    store.scores_for_project = LEAN_SCORES if lean else full_scores  # type: ignore[assignment]
                    store.root_runs_page = LEAN_PAGE if lean else full_page  # type: ignore[assignment]
                elif mode == "fresh":
                    app.state.ctx.comparison_sides = StampedCache()
                started, on_cpu = time.perf_counter(), time.process_time()
                resp = await browser.get(path)
                ms = (time.perf_counter() - started) * 1000
                on_cpu = time.process_time() - on_cpu
                assert resp.status_code == 200, resp.status_code
                pages[mode] = resp.text
                if i >= 2:
                    times[mode].append(ms)
                    cpu[mode].append(on_cpu * 1000)
    out: dict[str, Any] = {
        "loadavg": os.getloadavg(),
        "what": what,
        "same_page": pages[modes[0]] == pages[modes[1]],
    }
    for mode, values in times.items():
        out[mode] = {
            "p50_ms": round(statistics.median(values), 1),
            "min_ms": round(min(values), 1),
            "cpu_p50_ms": round(statistics.median(cpu[mode]), 1),
            "n": len(values),
        }
        print(
            f"{mode:8}: p50 {out[mode]['p50_ms']:7.1f} ms  min {out[mode]['min_ms']:7.1f} ms"
            f"  server CPU p50 {out[mode]['cpu_p50_ms']:7.1f} ms"
        )
    print(f"same page both ways: {out['same_page']}; load average {out['loadavg']}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--what", choices=["lean-reads", "kept-sides"], default="lean-reads")
    args = parser.parse_args()
    out = asyncio.run(run(args.data_dir, args.rounds, args.what))
    results_file.write("compare-page-reads", out)


if __name__ == "__main__":
    main()
