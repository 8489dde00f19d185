"""Conversation threads on Goldloop's own API: ``GET /api/v1/projects/{id}/threads`` and
``GET /api/v1/projects/{id}/threads/{thread_id}``, on both backends."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from goldloop.client import ApiError, Client
from goldloop.services import auth
from goldloop.settings import Settings
from langsmith_live import live_server

T0 = 1_764_000_000_000_000
URL = "/api/v1/runs/batch"


def _trace(
    trace: str,
    start: int,
    *,
    thread: str | None,
    project: str = "chat",
    on_root: bool = True,
    error: bool = False,
) -> list[dict[str, Any]]:
    """A root and a child; the thread id on both, or (OTel style) only on the child."""
    root: dict[str, Any] = {
        "id": f"{trace}-root",
        "trace_id": trace,
        "name": "turn",
        "kind": "chain",
        "start_time": start,
        "end_time": start + 2000,
        "inputs": {"question": f"q-{trace}"},
        "outputs": {"answer": f"a-{trace}"},
        "project": project,
    }
    child: dict[str, Any] = {
        "id": f"{trace}-llm",
        "trace_id": trace,
        "parent_id": root["id"],
        "name": "llm",
        "kind": "llm",
        "start_time": start + 10,
        "end_time": start + 1000,
        "project": project,
    }
    if thread is not None:
        child["session_id"] = thread
        if on_root:
            root["session_id"] = thread
    if error:
        child["error"] = {"message": "boom"}
    return [root, child]


async def _post(client: httpx.AsyncClient, runs: list[dict[str, Any]]) -> None:
    r = await client.post(URL, json={"runs": runs})
    assert r.status_code == 202, r.text


async def _project_id(client: httpx.AsyncClient, name: str) -> str:
    items = (await client.get("/api/v1/projects", params={"name": name})).json()["items"]
    return str(items[0]["id"])


async def test_threads_list_and_read_as_a_conversation(client: httpx.AsyncClient) -> None:
    runs: list[dict[str, Any]] = []
    runs += _trace("a1", T0, thread="conv-a")
    runs += _trace("a2", T0 + 60_000_000, thread="conv-a", on_root=False, error=True)
    runs += _trace("a3", T0 + 120_000_000, thread="conv-a")
    runs += _trace("b1", T0 + 90_000_000, thread="conv/b")
    runs += _trace("none", T0 + 500_000_000, thread=None)
    runs += _trace("x1", T0 + 900_000_000, thread="conv-a", project="elsewhere")
    await _post(client, runs)
    pid = await _project_id(client, "chat")

    page = (await client.get(f"/api/v1/projects/{pid}/threads")).json()
    assert page["project_id"] == pid
    assert page["next_cursor"] is None
    assert [t["thread_id"] for t in page["items"]] == ["conv-a", "conv/b"]
    a, b = page["items"]
    # five runs carry conv-a (the OTel-style trace only on its child), in three traces
    assert (a["run_count"], a["turn_count"], a["error_count"]) == (5, 3, 1)
    assert (a["first_time"], a["last_time"]) == (T0, T0 + 120_000_000 + 10)
    assert a["last_time_iso"].endswith("+00:00")
    assert (b["run_count"], b["turn_count"]) == (2, 1)

    thread = (await client.get(f"/api/v1/projects/{pid}/threads/conv-a")).json()
    assert thread["turn_count"] == 3
    assert [t["trace_id"] for t in thread["turns"]] == ["a1", "a2", "a3"]
    first = thread["turns"][0]
    assert first["run_id"] == "a1-root"
    assert first["inputs"] == {"question": "q-a1"}
    assert first["outputs"] == {"answer": "a-a1"}
    assert first["latency_ms"] == 2.0
    # the turn whose thread id was only on a child is there, by its root run
    assert thread["turns"][1]["run_id"] == "a2-root"
    # the other project's conv-a is another thread
    assert all(t["trace_id"] != "x1" for t in thread["turns"])
    slashed = (await client.get(f"/api/v1/projects/{pid}/threads/conv/b")).json()
    assert [t["trace_id"] for t in slashed["turns"]] == ["b1"]
    # by project name too; a window on start time
    by_name = (await client.get("/api/v1/projects/chat/threads")).json()
    assert [t["thread_id"] for t in by_name["items"]] == ["conv-a", "conv/b"]
    late = await client.get(
        f"/api/v1/projects/{pid}/threads", params={"start": str(T0 + 100_000_000)}
    )
    assert [(t["thread_id"], t["turn_count"]) for t in late.json()["items"]] == [("conv-a", 1)]
    paged = await client.get(
        f"/api/v1/projects/{pid}/threads/conv-a", params={"offset": 1, "limit": 1}
    )
    assert [t["trace_id"] for t in paged.json()["turns"]] == ["a2"]


async def test_thread_errors_are_4xx(client: httpx.AsyncClient) -> None:
    await _post(client, _trace("e1", T0, thread="conv-e"))
    pid = await _project_id(client, "chat")
    base = f"/api/v1/projects/{pid}/threads"
    missing = await client.get(f"{base}/nobody")
    assert missing.status_code == 404
    assert "nobody" in missing.json()["error"]["message"]
    assert (await client.get("/api/v1/projects/nope/threads")).status_code == 404
    bad_cursor = await client.get(base, params={"cursor": "!!"})
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["error"]["details"]["field"] == "cursor"
    assert (await client.get(base, params={"start": "yesterday"})).status_code == 400
    for params in ({"limit": 0}, {"limit": 100_000}):
        r = await client.get(base, params=params)
        assert 400 <= r.status_code < 500
    assert 400 <= (await client.get(f"{base}/conv-e", params={"offset": -1})).status_code < 500


async def test_another_workspace_sees_no_threads(
    client: httpx.AsyncClient, app: FastAPI, anon: httpx.AsyncClient
) -> None:
    await _post(client, _trace("s1", T0, thread="secret"))
    pid = await _project_id(client, "chat")
    ctx = app.state.ctx
    key = auth.create_key(ctx, auth.create_workspace(ctx, "intruder").id, "k").secret
    headers = {"x-api-key": key}
    for path in (f"/api/v1/projects/{pid}/threads", f"/api/v1/projects/{pid}/threads/secret"):
        assert (await anon.get(path, headers=headers)).status_code == 404
        assert (await anon.get(path)).status_code == 401


@pytest.mark.parametrize("seed", [1, 2])
async def test_paging_visits_every_thread_once_in_order(
    client: httpx.AsyncClient, seed: int
) -> None:
    """Random threads (ties in last time included) against an oracle of the same runs."""
    rng = random.Random(seed)
    runs: list[dict[str, Any]] = []
    expected: dict[str, dict[str, Any]] = defaultdict(lambda: {"turns": 0, "last": -1})
    for t in range(60):
        thread = f"t{rng.randrange(25):02d}"
        start = T0 + rng.randrange(20) * 1_000_000  # coarse: many ties
        runs += _trace(f"tr{t}", start, thread=thread)
        expected[thread]["turns"] += 1
        expected[thread]["last"] = max(expected[thread]["last"], start + 10)
    await _post(client, runs)
    pid = await _project_id(client, "chat")
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"/api/v1/projects/{pid}/threads", params=params)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    order = sorted(expected, key=lambda k: (-expected[k]["last"], k))
    assert [t["thread_id"] for t in seen] == order
    for t in seen:
        assert t["turn_count"] == expected[t["thread_id"]]["turns"]
        assert t["run_count"] == 2 * t["turn_count"]
        assert t["last_time"] == expected[t["thread_id"]]["last"]


def test_python_client_lists_and_reads_threads(settings: Settings) -> None:
    with live_server(settings) as live:
        with live.api() as api:
            body = {"runs": _trace("c1", T0, thread="conv/x") + _trace("c2", T0 + 5, thread="y")}
            assert api.post("/runs/batch", json=body).status_code == 202
        with Client(live.base, api_key=live.key) as gl:
            threads = list(gl.list_threads("chat", page_size=1))
            assert [t["thread_id"] for t in threads] == ["y", "conv/x"]
            thread = gl.get_thread("chat", "conv/x")
            assert [t["trace_id"] for t in thread["turns"]] == ["c1"]
            with pytest.raises(ApiError) as missing:
                gl.get_thread("chat", "nobody")
            assert missing.value.status == 404
