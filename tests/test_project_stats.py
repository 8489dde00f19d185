"""Project statistics per time bucket, percentiles checked against the statistics module."""

from __future__ import annotations

import random
import statistics
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from goldloop.domain import filters, percentiles
from goldloop.services import auth
from goldloop.store import run_queries as run_store
from goldloop.store.run_filters import compile_filter
from run_rows import T0, post_runs, run_row
from sqlite_plans import query_plans

HOUR = 3_600_000_000


def _reference(values: list[int], q: float) -> float:
    """numpy.percentile's default (linear) == statistics.quantiles(method="inclusive")."""
    if len(values) == 1:
        return float(values[0])
    cuts = statistics.quantiles(values, n=1000, method="inclusive")
    return cuts[round(q * 1000) - 1]


@pytest.mark.parametrize("n", [1, 2, 3, 10, 101, 1000])
def test_interpolation_matches_the_statistics_module(n: int) -> None:
    rng = random.Random(n)
    values = sorted(rng.randrange(0, 10_000) for _ in range(n))
    for permille in (500, 950, 990):
        ranks = dict(enumerate(values))
        got = percentiles.interpolate(n, permille, ranks)
        assert got == pytest.approx(_reference(values, permille / 1000))


@pytest.fixture
async def stats_data(app: FastAPI, client: httpx.AsyncClient) -> dict[str, Any]:
    ws = auth.workspace_by_name(app.state.ctx, auth.DEFAULT_WORKSPACE)
    pid = "stats"
    rng = random.Random(7)
    rows, buckets = [], {0: [], 1: [], 3: []}  # hour 2 stays empty
    for hour, count in ((0, 200), (1, 57), (3, 1)):
        for i in range(count):
            latency = rng.randrange(1_000, 5_000_000)
            buckets[hour].append(latency)
            rows.append(
                run_row(
                    ws.id,
                    pid,
                    f"h{hour}-{i}",
                    start_time=T0 + hour * HOUR + i * 1000,
                    latency_us=latency,
                    status="error" if i % 4 == 0 else "success",
                    kind="llm" if i % 2 else "chain",
                    input_tokens=10,
                    output_tokens=5,
                    total_tokens=15,
                    cost=0.25,
                )
            )
    rows.append(run_row(ws.id, pid, "pending", start_time=T0 + 10, latency_us=None))
    rows.append(run_row(ws.id, pid, "too-late", start_time=T0 + 4 * HOUR))
    await post_runs(client, "stats", rows)
    found = (await client.get("/api/v1/projects", params={"name": "stats"})).json()
    return {"project": found["items"][0]["id"], "latencies": buckets}


async def test_stats_per_hour(client: httpx.AsyncClient, stats_data: dict[str, Any]) -> None:
    r = await client.get(
        f"/api/v1/projects/{stats_data['project']}/stats",
        params={"bucket": "1h", "start": str(T0), "end": str(T0 + 4 * HOUR)},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    buckets = body["buckets"]
    assert [b["start"] for b in buckets] == [T0 + h * HOUR for h in range(4)]
    assert [b["count"] for b in buckets] == [201, 57, 0, 1]
    assert buckets[0]["errors"] == 50
    assert buckets[0]["error_rate"] == pytest.approx(50 / 201)
    assert buckets[2]["error_rate"] is None
    assert buckets[2]["latency_ms"]["p50"] is None
    assert buckets[1]["tokens"] == {"input": 570, "output": 285, "total": 855}
    assert buckets[1]["cost"] == pytest.approx(57 * 0.25)
    for hour, b in zip((0, 1, 3), (buckets[0], buckets[1], buckets[3]), strict=True):
        values = sorted(stats_data["latencies"][hour])
        for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            assert b["latency_ms"][label] == pytest.approx(_reference(values, q) / 1000), label
        assert b["latency_ms"]["avg"] == pytest.approx(statistics.fmean(values) / 1000)


async def test_stats_with_a_filter(client: httpx.AsyncClient, stats_data: dict[str, Any]) -> None:
    r = await client.get(
        f"/api/v1/projects/{stats_data['project']}/stats",
        params={
            "bucket": "2h",
            "start": "2025-11-26T09:40:00Z",
            "end": str(T0 + 4 * HOUR),
            "filter": 'kind = "llm" and not error',
        },
    )
    body = r.json()
    assert [b["count"] for b in body["buckets"]] == [
        sum(1 for i in range(200) if i % 2 and i % 4)
        + sum(1 for i in range(57) if i % 2 and i % 4),
        0,
    ]
    assert body["buckets"][0]["errors"] == 0


async def test_stats_bad_parameters(client: httpx.AsyncClient, stats_data: dict[str, Any]) -> None:
    url = f"/api/v1/projects/{stats_data['project']}/stats"
    for params, field in (
        ({"bucket": "1 fortnight"}, "bucket"),
        ({"bucket": "1s", "start": "0", "end": str(T0)}, "bucket"),
        ({"start": "yesterday"}, "start"),
        ({"start": str(T0), "end": str(T0)}, "end"),
        ({"filter": "latency >"}, "filter"),
    ):
        r = await client.get(url, params=params)
        assert r.status_code == 400, params
        assert r.json()["error"]["details"]["field"] == field
    assert (await client.get("/api/v1/projects/nope/stats")).status_code == 404


@pytest.mark.parametrize("text", ["", "root", 'kind = "llm"', 'root and status = "error"'])
def test_sqlite_answers_the_statistics_from_the_index_alone(tmp_path: Path, text: str) -> None:
    """Statistics read only columns of ``ix_runs_project_start_stats``: SQLite's plan for both
    queries reads that index and never a run's row (which carries its inputs and outputs)."""
    condition = compile_filter(filters.parse(text), dialect="sqlite", workspace_id="w", now=T0)
    window = {"start": T0, "end": T0 + 24 * HOUR, "bucket_us": HOUR}

    def stats(conn: Any) -> None:
        run_store.bucket_totals(conn, "w", "p", condition, **window)
        run_store.latency_order_statistics(
            conn, "w", "p", condition, permilles=[500, 950, 990], **window
        )

    plans = query_plans(tmp_path, stats)
    assert len(plans) == 2
    for plan in plans:
        reads = [step for step in plan if " runs " in f"{step} "]
        assert reads, plan
        assert all("COVERING INDEX ix_runs_project_start_stats" in step for step in reads), plan
