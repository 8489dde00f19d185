"""The SDK's thread resource (``client.threads.query``, ``.list_traces``, ``.stats``, the
``/api/v2/threads`` routes) against threads whose every figure is known: turns written through
Goldloop's own API with chosen times, tokens, costs and errors, read back through the SDK."""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import langsmith
import pytest

from goldloop.services import auth
from goldloop.settings import Settings
from langsmith_live import Live, live_server

pytestmark = [
    pytest.mark.slow,
    # the SDK warns that Goldloop's version predates the resource; the calls work regardless
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

NOW = datetime.now(UTC).replace(microsecond=0)


def _us(when: datetime) -> int:
    return int(when.timestamp() * 1_000_000)


def _turn(
    trace: str,
    thread: str,
    start: datetime,
    latency_ms: int,
    tokens: tuple[int, int],
    *,
    error: bool,
) -> list[dict[str, Any]]:
    begin = _us(start)
    root: dict[str, Any] = {
        "id": f"{trace}-root",
        "trace_id": trace,
        "name": f"turn {trace}",
        "kind": "chain",
        "start_time": begin,
        "end_time": begin + latency_ms * 1000,
        "inputs": {"question": f"q-{trace}"},
        "outputs": {"answer": f"a-{trace}"},
        "usage": {"input_tokens": tokens[0], "output_tokens": tokens[1]},
        "cost": round(0.001 * (tokens[0] + tokens[1]), 6),
        "session_id": thread,
        "project": "support",
    }
    if error:
        root["error"] = {"message": f"timeout in {trace}"}
    child = {
        "id": f"{trace}-tool",
        "trace_id": trace,
        "parent_id": root["id"],
        "name": "lookup",
        "kind": "tool",
        "start_time": begin + 10,
        "end_time": begin + 500,
        "session_id": thread,
        "project": "support",
    }
    return [root, child]


# thread -> turns (trace, minutes ago, latency ms, (input, output) tokens, error)
THREADS: dict[str, list[tuple[str, int, int, tuple[int, int], bool]]] = {
    "conv-a": [
        ("a1", 50, 1200, (10, 5), False),
        ("a2", 40, 800, (20, 7), True),
        ("a3", 30, 3000, (30, 9), False),
    ],
    "conv/b": [("b1", 20, 400, (5, 1), False), ("b2", 10, 600, (6, 2), False)],
    "old": [("o1", 60 * 30, 100, (1, 1), False)],  # 30 hours ago: outside the default day
}


@asynccontextmanager
async def async_client(live: Live) -> AsyncIterator[langsmith.AsyncClient]:
    """The SDK's AsyncClient. Its ``aclose`` leaves the generated (v2) client's connections
    open (both lines), which would surface as a ResourceWarning in a later test: close it too."""
    async with langsmith.AsyncClient(api_url=live.endpoint, api_key=live.key) as client:
        try:
            yield client
        finally:
            await client._langsmith_api.close()


@pytest.fixture
def seeded(settings: Settings) -> Iterator[tuple[Live, str]]:
    """A live server holding THREADS in project "support", and that project's id."""
    with live_server(settings) as server:
        runs: list[dict[str, Any]] = []
        for thread, turns in THREADS.items():
            for trace, ago, latency, tokens, error in turns:
                runs += _turn(
                    trace, thread, NOW - timedelta(minutes=ago), latency, tokens, error=error
                )
        with server.api() as api:
            assert api.post("/runs/batch", json={"runs": runs}).status_code == 202
            items = api.get("/projects", params={"name": "support"}).json()["items"]
        yield server, str(items[0]["id"])


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


async def test_query_pages_threads_with_their_figures(seeded: tuple[Live, str]) -> None:
    live, project_id = seeded
    async with async_client(live) as client:
        first = await client.threads.query(project_id=project_id, page_size=1)
        assert [t.thread_id for t in first.items] == ["conv/b"]
        assert first.next_cursor is not None
        # the SDK follows next_cursor through every page
        seen = [t async for t in client.threads.query(project_id=project_id, page_size=1)]
        assert [t.thread_id for t in seen] == ["conv/b", "conv-a"]  # last activity first

        a = seen[1]
        assert a.count == 3
        assert (a.first_trace_id, a.last_trace_id) == ("a1", "a3")
        assert a.num_errored_turns == 1
        assert a.last_error == "timeout in a2"
        assert a.first_inputs == '{"question":"q-a1"}'
        assert a.last_outputs == '{"answer":"a-a3"}'
        assert a.total_tokens == 15 + 27 + 39
        assert a.total_cost == pytest.approx(0.015 + 0.027 + 0.039)
        assert a.latency_p50 == pytest.approx(1.2)
        assert a.latency_p99 == pytest.approx(_p([1.2, 0.8, 3.0], 0.99))
        assert a.min_start_time == NOW - timedelta(minutes=50)
        assert a.max_start_time == NOW - timedelta(minutes=30)

        # an explicit window takes the thread that the default day leaves out, and only it
        since = NOW - timedelta(hours=48)
        old = [
            t
            async for t in client.threads.query(
                project_id=project_id,
                min_start_time=since,
                max_start_time=NOW - timedelta(hours=24),
            )
        ]
        assert [(t.thread_id, t.count) for t in old] == [("old", 1)]


async def test_list_traces_and_stats_of_one_thread(seeded: tuple[Live, str]) -> None:
    live, project_id = seeded
    async with async_client(live) as client:
        traces = [
            t
            async for t in client.threads.list_traces(
                "conv-a",
                project_id=project_id,
                page_size=2,
                selects=["NAME", "TURN_NUMBER", "TOTAL_TOKENS", "ERROR", "LATENCY", "INPUTS"],
            )
        ]
        assert [(t.trace_id, t.turn_number, t.name) for t in traces] == [
            ("a1", 1, "turn a1"),
            ("a2", 2, "turn a2"),
            ("a3", 3, "turn a3"),
        ]
        assert [t.total_tokens for t in traces] == [15, 27, 39]
        assert [t.error for t in traces] == [None, "timeout in a2", None]
        assert [t.latency for t in traces] == pytest.approx([1.2, 0.8, 3.0])
        assert traces[0].inputs == {"question": "q-a1"}
        assert traces[0].outputs is None  # not selected: left out
        # a thread id with a slash travels escaped and arrives whole
        slashed = client.threads.list_traces("conv/b", project_id=project_id)
        assert [t.trace_id async for t in slashed] == ["b1", "b2"]

        stats = await client.threads.stats(
            "conv-a",
            session_id=project_id,
            selects=["TURNS", "TOTAL_TOKENS", "PROMPT_TOKENS", "TOTAL_COST", "LATENCY_P50"],
        )
        assert stats.turns == 3
        assert (stats.total_tokens, stats.prompt_tokens) == (81, 60)
        assert stats.total_cost == pytest.approx(0.081)
        assert stats.model_dump()["latency_p50"] == pytest.approx(1.2)  # not a declared field
        assert stats.completion_tokens is None  # not selected


def test_refusals_are_4xx_naming_the_parameter(seeded: tuple[Live, str]) -> None:
    live, project_id = seeded
    base = f"{live.base}/langsmith/api/v2/threads"
    headers = {"x-api-key": live.key}
    with httpx.Client(headers=headers, timeout=60) as http:
        for body, field in [
            ({"project_id": project_id, "filter": 'eq(status, "error")'}, "filter"),
            ({"project_id": project_id, "ai_search": "angry users"}, "ai_search"),
            ({"project_id": project_id, "page_size": 101}, "page_size"),
            ({"project_id": project_id, "cursor": "not-ours"}, "cursor"),
            ({"project_id": project_id, "min_start_time": "yesterday"}, "min_start_time"),
        ]:
            r = http.post(f"{base}/query", json=body)
            assert r.status_code == 400, (body, r.text)
            assert field in r.text
        assert http.post(f"{base}/query", json={}).status_code == 400
        assert http.post(f"{base}/query", json={"project_id": "nope"}).status_code == 404
        r = http.get(f"{base}/conv-a/stats", params={"session_id": project_id, "selects": "X"})
        assert r.status_code == 400
        assert "X" in r.text
        r = http.get(f"{base}/nobody/stats", params={"session_id": project_id, "selects": "TURNS"})
        assert r.status_code == 404
        r = http.get(f"{base}/conv-a/traces", params={"project_id": project_id, "cursor": "zz"})
        assert r.status_code == 400
        # no key, a wrong key: refused before anything is read
        assert httpx.post(f"{base}/query", json={"project_id": project_id}).status_code == 401
        assert (
            httpx.get(
                f"{base}/conv-a/traces",
                params={"project_id": project_id},
                headers={"x-api-key": "gl_wrong"},
            ).status_code
            == 401
        )
    # another workspace's key finds no such project, and no thread of it
    other = auth.create_workspace(live.app.state.ctx, "other")
    intruder = auth.create_key(live.app.state.ctx, other.id, "other").secret
    with httpx.Client(headers={"x-api-key": intruder}, timeout=60) as http:
        assert http.post(f"{base}/query", json={"project_id": project_id}).status_code == 404
        r = http.get(f"{base}/conv-a/traces", params={"project_id": project_id})
        assert r.status_code == 404
