"""The comparison's kept sides (``services.comparison_cache``) on both backends: a repeated
comparison is served from memory, and after any change to either experiment's runs or to the
scores on them (a run arrives, a run is updated, feedback is given, edited or deleted, a run is
erased) the comparison equals one read afresh, through the API and on the page."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import FastAPI

from goldloop.services.comparison_cache import StampedCache
from test_experiments_api import API, T0, make_dataset, register, store_calls

PARAMS = {"baseline": "base", "candidate": "cand", "examples": "true"}


async def _compare(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get(f"{API}/experiments/compare", params=PARAMS)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _page(browser: httpx.AsyncClient, ids: tuple[str, str]) -> str:
    r = await browser.get("/experiments/compare", params={"baseline": ids[0], "candidate": ids[1]})
    assert r.status_code == 200, r.text
    return re.sub(r'name="csrf" value="[^"]*"', "", r.text)


Clients = tuple[httpx.AsyncClient, httpx.AsyncClient]


async def _both(clients: Clients, ids: tuple[str, str]) -> tuple[Any, str]:
    return await _compare(clients[0]), await _page(clients[1], ids)


async def _fresh(app: FastAPI, clients: Clients, ids: tuple[str, str]) -> Any:
    """The same comparison with nothing kept."""
    kept = app.state.ctx.comparison_sides
    app.state.ctx.comparison_sides = StampedCache()
    try:
        return await _both(clients, ids)
    finally:
        app.state.ctx.comparison_sides = kept


async def test_a_kept_comparison_follows_every_change(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await make_dataset(client, "golden", 4)
    base = await register(client, "base", dataset="golden", repetitions=2)
    cand = await register(client, "cand", dataset="golden", repetitions=2)
    calls = [(f"ex{i}", rep, {"correct": 1}, False) for i in range(4) for rep in range(2)]
    await store_calls(client, "base", calls)
    cand_runs = await store_calls(client, "cand", calls)
    ids = (base["id"], cand["id"])
    both = (client, browser)

    cache: StampedCache[Any] = app.state.ctx.comparison_sides
    first = await _both(both, ids)
    misses = cache.misses
    assert await _both(both, ids) == first
    assert cache.misses == misses  # served from memory: twice per call
    assert cache.hits >= 4

    async def changed(what: str) -> None:
        seen = await _both(both, ids)
        assert seen != first, f"{what}: the comparison did not move"
        assert seen == await _fresh(app, both, ids), f"{what}: kept sides are stale"

    # feedback given: a second key on one candidate run
    r = await client.post(
        f"{API}/feedback", json={"run_id": cand_runs[0], "key": "tone", "score": 0}
    )
    assert r.status_code == 201, r.text
    added = r.json()["id"]
    await changed("feedback given")
    # feedback edited: the candidate's first score drops
    found = await client.get(f"{API}/feedback", params={"run_id": cand_runs[1], "key": "correct"})
    (score,) = found.json()["items"]
    r = await client.patch(f"{API}/feedback/{score['id']}", json={"score": 0})
    assert r.status_code == 200, r.text
    await changed("feedback edited")
    # feedback deleted
    assert (await client.delete(f"{API}/feedback/{added}")).status_code == 200
    await changed("feedback deleted")
    # a run updated in place (the same id, now failed): a merge takes a new seq
    failed = {
        "id": cand_runs[2], "trace_id": "cand-t2", "name": "agent", "kind": "chain",
        "start_time": T0 + 2, "end_time": T0 + 9_000,
        "error": {"type": "RuntimeError", "message": "timeout"},
    }  # fmt: skip
    r = await client.post(f"{API}/runs/batch", json={"runs": [failed], "project": "cand"})
    assert r.status_code == 202, r.text
    await changed("run updated")
    # a run arrives: a third repetition of ex0 on the baseline
    await store_calls(client, "base", [("ex0", 2, {"correct": 0}, False)])
    await changed("run added")


async def test_kept_sides_are_per_workspace_and_bounded() -> None:
    cache: StampedCache[str] = StampedCache(max_entries=2)
    made: list[str] = []

    def make(value: str) -> Any:
        def inner() -> str:
            made.append(value)
            return value

        return inner

    assert cache.get_or_make(("ws1", "p"), (1,), make("a")) == "a"
    assert cache.get_or_make(("ws2", "p"), (1,), make("b")) == "b"  # another workspace
    assert cache.get_or_make(("ws1", "p"), (1,), make("x")) == "a"  # kept
    assert cache.get_or_make(("ws1", "p"), (2,), make("c")) == "c"  # a new stamp: made again
    assert cache.get_or_make(("ws3", "p"), (1,), make("d")) == "d"  # evicts ws2 (oldest)
    assert cache.get_or_make(("ws2", "p"), (1,), make("e")) == "e"
    assert made == ["a", "b", "c", "d", "e"]
