"""``client.get_run_stats`` (``POST /runs/stats``) against an oracle computed from the runs the
test itself sent; ``execution_order: 1`` in ``list_runs``; the caller's costs on run reads."""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import langsmith
import pytest

from goldloop.services import auth
from goldloop.settings import Settings
from langsmith_live import HTTP_TIMEOUT, Live, live_server, sdk_client

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

T0 = datetime(2026, 11, 20, 8, 0, 0, tzinfo=UTC)


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    with live_server(settings) as server:
        yield server


@dataclass
class Sent:
    id: str
    trace_id: str
    is_root: bool
    run_type: str
    name: str
    start: datetime
    latency_s: float
    error: bool
    tokens: tuple[int, int]
    cost: tuple[float, float] | None


def _segment(start: datetime, run_id: str) -> str:
    return start.strftime("%Y%m%dT%H%M%S%fZ") + run_id


def _make_runs(rng: random.Random, n_traces: int) -> list[Sent]:
    out: list[Sent] = []
    for t in range(n_traces):
        root_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        start = T0 + timedelta(minutes=10 * t)
        out.append(
            Sent(
                root_id,
                root_id,
                True,
                "chain",
                "agent",
                start,
                rng.uniform(2, 9),
                False,
                (0, 0),
                None,
            )
        )
        for _ in range(rng.randint(1, 4)):
            child = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            kind = rng.choice(["llm", "tool", "retriever"])
            tokens = (rng.randint(1, 500), rng.randint(1, 500)) if kind == "llm" else (0, 0)
            cost = (rng.randint(1, 900) / 1e4, rng.randint(1, 900) / 1e4) if kind == "llm" else None
            offset = timedelta(milliseconds=rng.randint(1, 900))
            out.append(
                Sent(
                    child,
                    root_id,
                    False,
                    kind,
                    kind + "-step",
                    start + offset,
                    rng.uniform(0.01, 1.5),
                    rng.random() < 0.2,
                    tokens,
                    cost,
                )
            )
    return out


def _wire(run: Sent, project: str, root: Sent) -> dict[str, Any]:
    dotted = _segment(root.start, root.id)
    if not run.is_root:
        dotted += "." + _segment(run.start, run.id)
    meta: dict[str, Any] = {}
    if run.run_type == "llm":
        usage: dict[str, Any] = {
            "input_tokens": run.tokens[0],
            "output_tokens": run.tokens[1],
            "total_tokens": sum(run.tokens),
        }
        if run.cost is not None:
            usage |= {"input_cost": run.cost[0], "output_cost": run.cost[1]}
            usage["total_cost"] = sum(run.cost)
        meta = {"usage_metadata": usage}
    body: dict[str, Any] = {
        "id": run.id,
        "trace_id": run.trace_id,
        "dotted_order": dotted,
        "parent_run_id": None if run.is_root else root.id,
        "name": run.name,
        "run_type": run.run_type,
        "start_time": run.start.isoformat(),
        "end_time": (run.start + timedelta(seconds=run.latency_s)).isoformat(),
        "inputs": {"q": run.name},
        "outputs": {"a": 1},
        "session_name": project,
        "extra": {"metadata": meta},
    }
    if run.error:
        body["error"] = "ValueError('boom')"
    return body


def _send(live: Live, project: str, runs: list[Sent]) -> None:
    roots = {r.id: r for r in runs if r.is_root}
    with sdk_client(live) as client:
        client.batch_ingest_runs(create=[_wire(r, project, roots[r.trace_id]) for r in runs])


def _percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), computed independently."""
    if not values:
        return None
    xs = sorted(values)
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def _oracle(runs: list[Sent]) -> dict[str, Any]:
    latencies = [r.latency_s for r in runs]
    costs = [r.cost for r in runs if r.cost is not None]
    return {
        "run_count": len(runs),
        "latency_p50": _percentile(latencies, 0.5),
        "latency_p99": _percentile(latencies, 0.99),
        "prompt_tokens": sum(r.tokens[0] for r in runs),
        "completion_tokens": sum(r.tokens[1] for r in runs),
        "total_tokens": sum(sum(r.tokens) for r in runs),
        "error_rate": (sum(r.error for r in runs) / len(runs)) if runs else None,
        "prompt_cost": sum(c[0] for c in costs),
        "completion_cost": sum(c[1] for c in costs),
        "total_cost": sum(c[0] + c[1] for c in costs),
        "last_run_start_time": max(r.start for r in runs) if runs else None,
    }


def _check(stats: dict[str, Any], expected: dict[str, Any]) -> None:
    assert stats["run_count"] == expected["run_count"]
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert stats[key] == expected[key], key
    for key in ("latency_p50", "latency_p99"):
        if expected[key] is None:
            assert stats[key] is None
        else:  # stored at microsecond precision
            assert stats[key] == pytest.approx(expected[key], abs=2e-6), key
    for key in ("prompt_cost", "completion_cost", "total_cost"):
        assert stats[key] == pytest.approx(expected[key], abs=1e-9), key
    if expected["error_rate"] is None:
        assert stats["error_rate"] is None
    else:
        assert stats["error_rate"] == pytest.approx(expected["error_rate"])
    last = stats["last_run_start_time"]
    if expected["last_run_start_time"] is None:
        assert last is None
    else:
        parsed = datetime.fromisoformat(last.replace("Z", "+00:00"))
        assert parsed == expected["last_run_start_time"]


def test_run_stats_match_an_oracle_for_every_filter(live: Live) -> None:
    rng = random.Random(2126)
    project, other = f"stats-{uuid.uuid4().hex[:6]}", f"stats-other-{uuid.uuid4().hex[:6]}"
    runs = _make_runs(rng, 12)
    noise = _make_runs(random.Random(7), 3)
    _send(live, project, runs)
    _send(live, other, noise)
    by_id = {r.id: r for r in runs}
    failed_traces = {r.trace_id for r in runs if r.error}
    window = (T0 + timedelta(minutes=25), T0 + timedelta(minutes=75))
    cases: list[tuple[dict[str, Any], Callable[[Sent], bool]]] = [
        ({}, lambda r: True),
        ({"run_type": "llm"}, lambda r: r.run_type == "llm"),
        ({"is_root": True}, lambda r: r.is_root),
        ({"is_root": False, "error": True}, lambda r: not r.is_root and r.error),
        ({"error": False}, lambda r: not r.error),
        ({"filter": "gt(total_tokens, 300)"}, lambda r: sum(r.tokens) > 300),
        ({"filter": 'eq(name, "tool-step")'}, lambda r: r.name == "tool-step"),
        (
            {"start_time": window[0].isoformat(), "end_time": window[1].isoformat()},
            lambda r: window[0] <= r.start <= window[1],
        ),
        # runs of the traces that hold a failed run, and the failed runs' own siblings
        ({"tree_filter": "neq(error, null)"}, lambda r: r.trace_id in failed_traces),
        (
            {"trace_filter": 'eq(name, "agent")', "run_type": "tool"},
            lambda r: r.run_type == "tool",
        ),
        ({"trace_filter": 'eq(name, "nobody")'}, lambda r: False),
        ({"id": [runs[0].id, runs[1].id]}, lambda r: r.id in (runs[0].id, runs[1].id)),
        ({"trace": runs[0].id}, lambda r: r.trace_id == runs[0].id),
    ]
    with sdk_client(live) as client:
        project_id = str(client.read_project(project_name=project).id)
        for kwargs, keep in cases:
            expected = _oracle([r for r in by_id.values() if keep(r)])
            stats = client.get_run_stats(project_ids=[project_id], **kwargs)
            _check(stats, expected)
        # by name too, and over two projects at once
        both = client.get_run_stats(project_names=[project, other])
        _check(both, _oracle(runs + noise))
        # the same fields LangSmith returns, and nothing Goldloop cannot know is invented
        stats = client.get_run_stats(project_ids=[project_id])
        assert stats["first_token_p50"] is None
        # the median over the runs that report tokens (the LLM calls)
        with_tokens = [float(sum(r.tokens)) for r in runs if r.run_type == "llm"]
        assert stats["median_tokens"] == round(_percentile(with_tokens, 0.5) or 0)

        # a project read with include_stats: counts, latency and errors of its traces (root
        # runs), tokens and costs of all its runs
        everything = _oracle(runs)
        roots = _oracle([r for r in runs if r.is_root]) | {
            key: everything[key]
            for key in (
                "prompt_tokens",
                "completion_tokens",
                "total_tokens",
                "prompt_cost",
                "completion_cost",
                "total_cost",
            )
        }
        assert roots["total_tokens"] > 0
        for read in (
            client.read_project(project_id=project_id, include_stats=True),
            client.read_project(project_name=project, include_stats=True),
            next(p for p in client.list_projects(include_stats=True) if str(p.id) == project_id),
        ):
            assert read.latency_p50 is not None
            assert read.latency_p99 is not None
            assert read.last_run_start_time is not None
            _check(
                {
                    "run_count": read.run_count,
                    "latency_p50": read.latency_p50.total_seconds(),
                    "latency_p99": read.latency_p99.total_seconds(),
                    "prompt_tokens": read.prompt_tokens,
                    "completion_tokens": read.completion_tokens,
                    "total_tokens": read.total_tokens,
                    "error_rate": read.error_rate,
                    "prompt_cost": float(read.prompt_cost or 0),
                    "completion_cost": float(read.completion_cost or 0),
                    "total_cost": float(read.total_cost or 0),
                    "last_run_start_time": read.last_run_start_time.isoformat(),
                },
                roots,
            )
        assert client.read_project(project_id=project_id).run_count is None  # not asked for


def test_run_stats_refuse_bad_input_and_stay_in_the_workspace(live: Live) -> None:
    project = f"stats-iso-{uuid.uuid4().hex[:6]}"
    _send(live, project, _make_runs(random.Random(3), 2))
    headers = {"x-api-key": live.key}
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=live.endpoint, headers=headers) as raw:
        r = raw.post("/runs/stats", json={"filter": "eq(name"})
        assert r.status_code == 400
        assert r.json()["error"]["details"]["field"] == "filter"
        r = raw.post("/runs/stats", json={"trace_filter": "bogus(name, 1)"})
        assert r.status_code == 400
        assert "trace_filter" in r.json()["error"]["message"]
        assert raw.post("/runs/stats", json=[1]).status_code == 400
        assert raw.post("/runs/stats", json={"start_time": "yesterday"}).status_code == 400
        assert httpx.post(live.endpoint + "/runs/stats", json={}).status_code == 401
        everything = raw.post("/runs/stats", json={}).json()
        assert everything["run_count"] > 0
        # a second workspace sees none of it
        ctx = live.app.state.ctx
        other = auth.create_workspace(ctx, f"ws-{uuid.uuid4().hex[:6]}")
        other_key = auth.create_key(ctx, other.id, "other").secret
        theirs = httpx.post(
            live.endpoint + "/runs/stats", json={}, headers={"x-api-key": other_key}
        ).json()
        assert theirs["run_count"] == 0
        assert theirs["latency_p50"] is None
        assert theirs["error_rate"] is None


def test_execution_order_one_lists_root_runs_only(live: Live) -> None:
    project = f"exec-{uuid.uuid4().hex[:6]}"
    runs = _make_runs(random.Random(11), 3)
    _send(live, project, runs)
    roots = {r.id for r in runs if r.is_root}
    with sdk_client(live) as client:
        listed = {str(r.id) for r in client.list_runs(project_name=project, execution_order=1)}
        assert listed == roots
        everything = {str(r.id) for r in client.list_runs(project_name=project)}
        assert everything == {r.id for r in runs}

    async def scenario() -> set[str]:
        async with langsmith.AsyncClient(api_url=live.endpoint, api_key=live.key) as client:
            return {
                str(r.id) async for r in client.list_runs(project_name=project, execution_order=1)
            }

    assert asyncio.run(scenario()) == roots
    headers = {"x-api-key": live.key}
    r = httpx.post(
        live.endpoint + "/runs/query",
        json={"execution_order": 2},
        headers=headers,
        timeout=HTTP_TIMEOUT,
    )
    assert r.status_code == 400
    assert r.json()["error"]["details"]["field"] == "execution_order"
