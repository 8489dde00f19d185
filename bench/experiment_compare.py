"""Experiment comparison page: server time for two experiments of N examples x R repetitions.

    python bench/experiment_compare.py                          # 1,000 x 3, SQLite in a temp dir
    python bench/experiment_compare.py --examples 200 --repeat 3
    python bench/experiment_compare.py --database-url postgresql://postgres@127.0.0.1:5432/bench

Runs the real app in-process (httpx over ASGI, no socket in the timing): registers a dataset of
``--examples`` examples and two experiments on it, stores one root run per (example,
repetition) with two score keys as feedback (``correct`` pass/fail, ``quality`` in [0, 1]; the
candidate is slightly worse on some examples), signs in like a browser and times the comparison
page (first page: statistics and 50 examples side by side), the experiment page and the list.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from goldloop.http.app import create_app  # noqa: E402
from goldloop.services import auth, datasets, examples, experiments, feedback, ingest  # noqa: E402
from goldloop.services.context import Principal, ServiceContext  # noqa: E402
from goldloop.services.feedback import NewFeedback  # noqa: E402
from goldloop.settings import load_settings  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import results_file  # noqa: E402
from dashboard import sign_in  # noqa: E402


def load(ctx: ServiceContext, who: Principal, n: int, reps: int) -> tuple[str, str]:
    datasets.create(ctx, who, "bench-golden")
    rows = [
        examples.ExampleIn(id=f"ex{i:05d}", inputs={"question": f"q{i}"}, outputs={"a": i})
        for i in range(n)
    ]
    for first in range(0, n, 500):
        examples.add(ctx, who, "bench-golden", rows[first : first + 500])
    ids = []
    for side, name in enumerate(("bench-base", "bench-candidate")):
        new = experiments.NewExperiment(name, dataset="bench-golden", repetitions=reps)
        ids.append(experiments.register(ctx, who, new)[0].id)
        items: list[dict[str, Any]] = []
        scores: list[tuple[str, float, float]] = []
        for i in range(n):
            for rep in range(reps):
                rid = f"{name}-{i}-{rep}"
                worse = side == 1 and (i * 7 + rep) % 10 == 0
                items.append(
                    {
                        "id": rid,
                        "trace_id": f"t-{rid}",
                        "name": "agent",
                        "kind": "chain",
                        "start_time": 1_764_150_816_000_000 + i * 1000 + rep,
                        "end_time": 1_764_150_816_000_000 + i * 1000 + rep + 900_000,
                        "inputs": {"question": f"q{i}"},
                        "outputs": {"answer": f"answer {i} from {name}, repetition {rep}"},
                        "metadata": {"experiment": name, "example_id": f"ex{i:05d}",
                                     "repetition": rep},
                        "reference_example_id": f"ex{i:05d}",
                    }
                )  # fmt: skip
                scores.append((rid, 0.0 if worse else 1.0, 0.5 + ((i + rep) % 5) / 10))
        for first in range(0, len(items), 1000):
            ingest.ingest_native(ctx, who, {"project": name, "runs": items[first : first + 1000]})

        def score(item: tuple[str, float, float]) -> None:
            rid, correct, quality = item
            feedback.create(ctx, who, NewFeedback(run_id=rid, key="correct", score=correct))
            feedback.create(ctx, who, NewFeedback(run_id=rid, key="quality", score=quality))

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(score, scores))
    return ids[0], ids[1]


async def main(args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="gl-bench-exp-"))
    settings = load_settings(
        {"data_dir": data_dir, "database_url": args.database_url or ""}, environ={}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        ctx: ServiceContext = app.state.ctx
        key = settings.admin_key_path.read_text().strip()
        who = auth.authenticate(ctx, key)
        started = time.perf_counter()
        base, cand = await asyncio.to_thread(load, ctx, who, args.examples, args.repetitions)
        print(f"loaded {2 * args.examples * args.repetitions:,} runs with 2 scores each "
              f"into {ctx.db.dialect} in {time.perf_counter() - started:.1f} s")  # fmt: skip
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as browser:
            await sign_in(browser, key)
            pages = {
                "comparison (stats + first 50 examples)": (
                    f"/experiments/compare?baseline={base}&candidate={cand}"
                ),
                "comparison, regressed only": (
                    f"/experiments/compare?baseline={base}&candidate={cand}&show=regressed"
                ),
                "experiment page (first 50 results)": f"/experiments/{cand}",
                "experiment page, failures only": f"/experiments/{cand}?failing=1",
                "experiments list": "/experiments",
            }
            print(f"{'page':45} {'median':>9} {'max':>9} {'KB':>6}")
            out: dict[str, Any] = {"args": vars(args), "dialect": ctx.db.dialect, "pages": {}}
            for label, path in pages.items():
                times, size = [], 0
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    page = await browser.get(path)
                    times.append((time.perf_counter() - t0) * 1000)
                    assert page.status_code == 200, page.text[:500]
                    size = len(page.content)
                print(f"{label:45} {statistics.median(times):7.0f} ms {max(times):7.0f} ms "
                      f"{size / 1024:6.0f}")  # fmt: skip
                out["pages"][label] = {"median_ms": statistics.median(times), "ms": times,
                                       "bytes": size}  # fmt: skip
            results_file.write("experiment_compare", out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default="")
    asyncio.run(main(parser.parse_args()))
