"""The project overview: trace-level figures by default, run-level on request, the runs filter,
custom time ranges, and feedback bucketed by the start time of the run it scores (SQLite and
PostgreSQL, in-process over httpx)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fake_clock import FakeClock
from goldloop.http.dashboard.formatting import duration_us
from goldloop.services import auth, projects

NOW = 1_765_000_000_000_000
MIN = 60_000_000
DAY = 86_400_000_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


def trace(tid: str, start: int, *, error: bool = False, customer: str = "") -> list[dict[str, Any]]:
    root: dict[str, Any] = {
        "id": f"{tid}-root",
        "trace_id": tid,
        "name": "answer",
        "kind": "chain",
        "start_time": start,
        "end_time": start + 2_000_000,
        "metadata": {"customer": customer} if customer else {},
    }
    steps: list[dict[str, Any]] = [
        {
            "id": f"{tid}-{kind}",
            "trace_id": tid,
            "parent_id": f"{tid}-root",
            "name": kind,
            "kind": kind,
            "start_time": start + 100_000,
            "end_time": start + 500_000,
            "usage": {"total_tokens": 100} if kind == "llm" else None,
        }
        for kind in ("llm", "tool")
    ]
    if error:
        steps[1]["error"] = "timeout"  # a step fails; the root itself succeeds
    return [root, *steps]


async def load(client: httpx.AsyncClient) -> str:
    items = (
        trace("a", NOW - 10 * MIN, customer="acme")
        + trace("b", NOW - 20 * MIN, error=True)
        + trace("c", NOW - 30 * MIN)
        + trace("old", NOW - 5 * DAY)
    )
    r = await client.post("/api/v1/runs/batch", json={"project": "support", "runs": items})
    assert r.status_code == 202, r.text
    page = (await client.get("/api/v1/projects")).json()
    return str(next(p["id"] for p in page["items"] if p["name"] == "support"))


def tile(page: str, name: str) -> str:
    found = re.search(rf'id="tile-{name}">([^<]*)<', page)
    assert found, name
    return found.group(1)


async def test_traces_by_default_runs_on_request_and_the_filter(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    pid = await load(client)
    page = await browser.get(f"/projects/{pid}")
    assert page.status_code == 200
    assert tile(page.text, "count") == "3"  # three traces in the last 24 hours
    assert tile(page.text, "error-rate") == "33.3%"  # one of them had a failing step
    assert "Trace latency p50" in page.text
    assert page.text.count("<svg") == 6

    spans = await browser.get(f"/projects/{pid}", params={"level": "runs"})
    assert tile(spans.text, "count") == "9"
    assert tile(spans.text, "error-rate") == "11.1%"

    acme = await browser.get(f"/projects/{pid}", params={"filter": 'metadata.customer = "acme"'})
    assert tile(acme.text, "count") == "1"
    assert tile(acme.text, "error-rate") == "0.0%"
    with_tool_errors = await browser.get(f"/projects/{pid}", params={"filter": 'status = "error"'})
    assert tile(with_tool_errors.text, "count") == "1"  # traces holding a matching run
    llm_runs = await browser.get(
        f"/projects/{pid}", params={"filter": 'kind = "llm"', "level": "runs"}
    )
    assert tile(llm_runs.text, "count") == "3"
    assert "filter=kind+%3D+%22llm%22" in llm_runs.text  # the runs link keeps the filter

    bad = await browser.get(f"/projects/{pid}", params={"filter": "latency >> 2"})
    assert bad.status_code == 200
    assert "invalid filter at position" in bad.text
    assert tile(bad.text, "count") == "3"


async def test_custom_ranges_presets_and_feedback_by_run_start(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    pid = await load(client)
    week = await browser.get(f"/projects/{pid}", params={"range": "7d"})
    assert tile(week.text, "count") == "4"
    window = {"from": "2025-12-06T05:00:00", "to": "2025-12-06T05:25:00"}  # NOW is 05:46:40
    custom = await browser.get(f"/projects/{pid}", params=window)
    assert tile(custom.text, "count") == "1"  # only trace c started in it
    assert 'value="2025-12-06T05:00:00"' in custom.text
    assert "buckets of 1m" in custom.text
    backwards = await browser.get(f"/projects/{pid}", params={**window, "to": "2025-12-01"})
    assert "the end of the range must be after its start" in backwards.text
    assert tile(backwards.text, "count") == "3"  # the default range instead

    # the feedback chart: scores by the start time of the run they score
    body = {"run_id": "old-root", "key": "helpfulness", "score": 0.5}
    assert (await client.post("/api/v1/feedback", json=body)).status_code in (200, 201)
    # scored now, on a run that started five days ago: not in the last 24 hours' chart
    day = await browser.get(f"/projects/{pid}")
    assert "helpfulness" not in day.text
    week = await browser.get(f"/projects/{pid}", params={"range": "7d"})
    assert "helpfulness" in week.text


def test_durations_read_at_a_useful_precision() -> None:
    assert duration_us(4_200) == "4.2 ms"
    assert duration_us(12_300) == "12 ms"
    assert duration_us(1_240_000) == "1.24 s"
    assert duration_us(125_000_000) == "2 m 05 s"
    assert duration_us(3 * 3_600_000_000 + 7 * 60_000_000) == "3 h 07 m"


async def test_projects_list_figures_and_experiments_apart(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, app: FastAPI, admin_key: str
) -> None:
    pid = await load(client)
    for run_id, score in (("a-root", 1), ("b-llm", 0)):
        body = {"run_id": run_id, "key": "helpfulness", "score": score}
        assert (await client.post("/api/v1/feedback", json=body)).status_code in (200, 201)
    r = await client.post("/api/v1/projects", json={"name": "exp-1 <b>"})
    ctx = app.state.ctx
    projects.update(
        ctx, auth.authenticate(ctx, admin_key), r.json()["id"], extra={"experiment": {"n": 1}}
    )
    page = await browser.get("/projects")
    assert page.status_code == 200
    production, experiments = page.text.split('id="experiments"')
    row = re.search(r'<tr data-project="support">(.*?)</tr>', production, flags=re.S)
    assert row, "support is a production project"
    cells = row.group(1)
    assert '<td class="num traces">3</td>' in cells
    assert '<td class="num error-rate">33.3%</td>' in cells
    assert "helpfulness 0.5" in cells
    assert "n=2" in cells
    assert "2025-12-06 05:36:40" in cells  # the latest run start: trace a's
    assert f'href="/projects/{pid}"' in cells
    assert 'data-project="exp-1 &lt;b&gt;"' in experiments  # apart, and escaped
    assert "exp-1" not in production

    week = await browser.get("/projects", params={"range": "7d"})
    row = re.search(r'<tr data-project="support">(.*?)</tr>', week.text, flags=re.S)
    assert row
    assert '<td class="num traces">4</td>' in row.group(1)
    assert f'href="/projects/{pid}?range=7d"' in row.group(1)
