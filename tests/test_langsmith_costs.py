"""The caller's costs (``usage_metadata``'s ``input_cost``, ``output_cost``, ``total_cost`` and
``*_cost_details``) are the run's costs, on LangSmith reads, Goldloop's API and the dashboard;
Goldloop's price estimate fills in only what the caller left out."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import langsmith
import langsmith as ls
import pytest
from langsmith import traceable

from dashboard_helpers import sign_in
from goldloop.settings import Settings
from langsmith_live import HTTP_TIMEOUT, INGEST_MODES, Live, live_server, sdk_client, sdk_env

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

MODEL = "gpt-4o-mini"  # in the built-in price table: 0.15 in, 0.60 out per million tokens
IN_PRICE, OUT_PRICE = 0.15 / 1e6, 0.60 / 1e6


@pytest.fixture(params=INGEST_MODES)
def live(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Live]:
    with live_server(settings, str(request.param)) as server:
        yield server


FULL = {
    "input_tokens": 100,
    "output_tokens": 40,
    "total_tokens": 140,
    "input_token_details": {"cache_read": 30, "audio": 5},
    "output_token_details": {"reasoning": 12},
    "input_cost": 0.25,
    "output_cost": 0.5,
    "total_cost": 0.75,
    "input_cost_details": {"cache_read": 0.05},
    "output_cost_details": {"reasoning": 0.125},
}
INPUT_ONLY = {"input_tokens": 1000, "output_tokens": 2000, "total_tokens": 3000, "input_cost": 0.1}
TOTAL_ONLY = {"input_tokens": 10, "output_tokens": 20, "total_tokens": 30, "total_cost": 2.5}
NONE = {"input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500}


def _trace(live: Live, monkeypatch: pytest.MonkeyPatch, project: str) -> dict[str, str]:
    sdk_env(monkeypatch, live, project)
    ids: dict[str, str] = {}

    @traceable(run_type="llm", metadata={"ls_model_name": MODEL, "ls_provider": "openai"})
    def call(label: str, usage: dict[str, Any]) -> dict[str, Any]:
        run = ls.get_current_run_tree()
        assert run is not None
        ids[label] = str(run.id)
        return {"text": label, "usage_metadata": usage}

    with sdk_client(live) as client:
        with ls.tracing_context(client=client, project_name=project, enabled=True):
            for label, usage in (
                ("full", FULL),
                ("input_only", INPUT_ONLY),
                ("total_only", TOTAL_ONLY),
                ("none", NONE),
            ):
                call(label, usage)
        client.flush()
    return ids


def _close(value: Any, expected: float) -> bool:
    return value is not None and abs(float(value) - expected) < 1e-9


def test_caller_costs_win_and_the_estimate_fills_the_rest(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = f"ls-cost-{uuid.uuid4().hex[:6]}"
    ids = _trace(live, monkeypatch, project)
    with sdk_client(live) as client:
        full = client.read_run(ids["full"])
        assert full.total_cost == Decimal("0.75")
        assert (full.prompt_cost, full.completion_cost) == (Decimal("0.25"), Decimal("0.5"))
        assert full.prompt_cost_details == {"cache_read": Decimal("0.05")}
        assert full.completion_cost_details == {"reasoning": Decimal("0.125")}
        assert full.prompt_token_details == {"cache_read": 30, "audio": 5}
        assert full.completion_token_details == {"reasoning": 12}
        assert (full.prompt_tokens, full.completion_tokens, full.total_tokens) == (100, 40, 140)

        part = client.read_run(ids["input_only"])
        assert _close(part.prompt_cost, 0.1)  # the caller's
        assert _close(part.completion_cost, 2000 * OUT_PRICE)  # the estimate, for what is missing
        assert _close(part.total_cost, 0.1 + 2000 * OUT_PRICE)

        total = client.read_run(ids["total_only"])
        assert total.total_cost == Decimal("2.5")  # never replaced by the estimate
        assert (total.prompt_cost, total.completion_cost) == (None, None)

        estimated = client.read_run(ids["none"])
        assert _close(estimated.prompt_cost, 1000 * IN_PRICE)
        assert _close(estimated.completion_cost, 500 * OUT_PRICE)
        assert _close(estimated.total_cost, 1000 * IN_PRICE + 500 * OUT_PRICE)

        listed = {str(r.id): r for r in client.list_runs(project_name=project)}
        assert listed[ids["full"]].total_cost == Decimal("0.75")
        assert listed[ids["full"]].prompt_cost_details == {"cache_read": Decimal("0.05")}

    async def read_async() -> Any:
        async with langsmith.AsyncClient(api_url=live.endpoint, api_key=live.key) as client:
            return await client.read_run(ids["full"])

    assert asyncio.run(read_async()).total_cost == Decimal("0.75")

    # Goldloop's own API: the caller's figure is the run's cost
    with live.api() as api:
        mine = api.get(f"/runs/{ids['full']}").json()
        assert mine["cost"] == 0.75
        assert mine["extra"]["cost"] == {
            "input": 0.25,
            "output": 0.5,
            "total": 0.75,
            "input_details": {"cache_read": 0.05},
            "output_details": {"reasoning": 0.125},
            "source": "sender",
        }
        filled = api.get(f"/runs/{ids['input_only']}").json()["extra"]["cost"]
        assert filled["estimated"] == ["output"]
        assert filled["price_model"] == MODEL
        project_id = mine["project_id"]

    # and the dashboard shows it (runs table and the run's panel)
    async def dashboard() -> tuple[str, str]:
        async with httpx.AsyncClient(base_url=live.base, timeout=HTTP_TIMEOUT) as browser:
            assert (await sign_in(browser, live.key)).status_code == 303
            table = (await browser.get(f"/projects/{project_id}/runs")).text
            tid = ids["total_only"]
            panel = (await browser.get(f"/traces/{tid}/panel", params={"run": tid})).text
            return table, panel

    table, panel = asyncio.run(dashboard())
    assert "$0.7500" in table
    assert "$2.50" in panel


def test_bad_caller_costs_are_a_400_naming_the_field(live: Live) -> None:
    run_id = str(uuid.uuid4())
    run = {
        "id": run_id,
        "trace_id": run_id,
        "dotted_order": f"20261126T100000000000Z{run_id}",
        "name": "x",
        "run_type": "llm",
        "start_time": "2026-11-26T10:00:00Z",
        "inputs": {},
    }
    headers = {"x-api-key": live.key}
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=live.endpoint, headers=headers) as raw:
        for usage, field in (
            ({"input_cost": -1}, "cost.input"),
            ({"total_cost": "lots"}, "cost.total"),
            ({"output_cost_details": {"reasoning": "x"}}, "cost.output_details.reasoning"),
            ({"input_cost_details": [1]}, "cost.input_details"),
        ):
            body = {**run, "extra": {"metadata": {"usage_metadata": usage}}}
            r = raw.post("/runs/batch", json={"post": [body]})
            assert r.status_code == 400, r.text
            assert field in r.text
