"""The experiment comparison page with its lean reads and without them, alternating in one
process (issue #23): the page's server time both ways, and whether the page is the same.

    python bench/compare_page_reads.py --data-dir /tmp/pages-1m --rounds 12

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
from goldloop.settings import load_settings  # noqa: E402
from goldloop.store import experiments as store  # noqa: E402

LEAN_SCORES, LEAN_PAGE = store.scores_for_project, store.root_runs_page


def full_scores(conn: Any, workspace_id: str, project_id: str, **_: Any) -> Any:
    return LEAN_SCORES(conn, workspace_id, project_id, with_text=True)


def full_page(*args: Any, **kwargs: Any) -> Any:
    return LEAN_PAGE(*args, **{**kwargs, "positions_only": False})


async def run(data_dir: Path, rounds: int) -> dict[str, Any]:
    settings = load_settings({"data_dir": data_dir, "workers_in_process": False}, environ={})
    app = create_app(settings)
    world = json.loads((data_dir / "bench-world.json").read_text())
    path = f"/experiments/compare?baseline={world['base']}&candidate={world['cand']}"
    times: dict[str, list[float]] = {"without": [], "with": []}
    pages: dict[str, str] = {}
    async with app.router.lifespan_context(app):
        key = settings.admin_key_path.read_text().strip()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://b") as browser:
            await sign_in(browser, key)
            for i in range(2 * (rounds + 1)):
                mode = "without" if i % 2 == 0 else "with"
                lean = mode == "with"
                store.scores_for_project = LEAN_SCORES if lean else full_scores  # type: ignore[assignment]
                store.root_runs_page = LEAN_PAGE if lean else full_page  # type: ignore[assignment]
                started = time.perf_counter()
                resp = await browser.get(path)
                ms = (time.perf_counter() - started) * 1000
                assert resp.status_code == 200, resp.status_code
                pages[mode] = resp.text
                if i >= 2:
                    times[mode].append(ms)
    out: dict[str, Any] = {
        "loadavg": os.getloadavg(),
        "same_page": pages["with"] == pages["without"],
    }
    for mode, values in times.items():
        out[mode] = {
            "p50_ms": round(statistics.median(values), 1),
            "min_ms": round(min(values), 1),
            "n": len(values),
        }
        print(
            f"{mode:8} reads: p50 {out[mode]['p50_ms']:7.1f} ms  min {out[mode]['min_ms']:7.1f} ms"
        )
    print(f"same page both ways: {out['same_page']}; load average {out['loadavg']}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    out = asyncio.run(run(args.data_dir, args.rounds))
    results_file.write("compare-page-reads", out)


if __name__ == "__main__":
    main()
