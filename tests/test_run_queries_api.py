"""The read API over the real app: get a run, list with filter/sort/pages, errors, isolation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from goldloop.services import auth
from goldloop.services.context import Principal, ServiceContext
from goldloop.store.schema import runs
from run_rows import T0, post_runs, run_row


def _ctx(app: FastAPI) -> ServiceContext:
    ctx: ServiceContext = app.state.ctx
    return ctx


def _default(app: FastAPI) -> Principal:
    ws = auth.workspace_by_name(_ctx(app), auth.DEFAULT_WORKSPACE)
    return Principal(ws.id, "test", "admin")


@pytest.fixture
async def seeded(app: FastAPI, client: httpx.AsyncClient) -> dict[str, Any]:
    """30 root runs in project "support" (and one child), 5 in "other", of the default workspace,
    sent through the ingestion API."""
    ws = _default(app).workspace_id
    rows = []
    for i in range(30):
        rows.append(
            run_row(
                ws,
                "support",
                f"run-{i:02d}",
                start_time=T0 + (i // 2) * 1000,  # pairs share a start time: ties need the pk
                latency_us=None if i % 7 == 0 else (i * 37 % 11) * 100_000,
                kind="llm" if i % 3 == 0 else "chain",
                tags=["prod"] if i % 2 == 0 else ["dev"],
                cost=None if i % 5 == 0 else i / 100,
                total_tokens=i * 10,
                inputs={"question": f"question {i}", "blob": "x" * 200},
                metadata={"customer": "acme" if i < 10 else "globex"},
            )
        )
    rows.append(run_row(ws, "support", "child", trace_id="run-00", parent_id="run-00"))
    await post_runs(client, "support", rows)
    others = [run_row(ws, "other", f"o-{i}") for i in range(5)]
    await post_runs(client, "other", others)
    ids = {}
    for name in ("support", "other"):
        found = (await client.get("/api/v1/projects", params={"name": name})).json()
        ids[name] = found["items"][0]["id"]
    pks = _ctx(app).db.read(lambda c: dict(c.execute(sa.select(runs.c.id, runs.c.pk)).all()))
    for row in rows:
        row["_pk"] = pks[row["id"]]
    return {"support": ids["support"], "other": ids["other"], "rows": rows}


async def test_get_run(client: httpx.AsyncClient, seeded: dict[str, Any]) -> None:
    r = await client.get("/api/v1/runs/run-03")
    assert r.status_code == 200
    run = r.json()
    assert run["id"] == "run-03"
    assert run["project_id"] == seeded["support"]
    assert run["kind"] == "llm"
    assert run["start_time"] == T0 + 1000
    assert run["start_time_iso"] == "2025-11-26T09:40:00.001000+00:00"
    assert run["latency_ms"] == (3 * 37 % 11) * 100
    assert run["end_time"] == run["start_time"] + run["latency_ms"] * 1000
    assert run["usage"]["total_tokens"] == 30
    assert run["inputs"]["question"] == "question 3"
    assert run["tags"] == ["dev"]
    assert run["metadata"] == {"customer": "acme"}
    assert run["events"] == []
    missing = await client.get("/api/v1/runs/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


async def test_other_workspaces_runs_are_invisible(
    app: FastAPI, client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    ctx = _ctx(app)
    ws = auth.create_workspace(ctx, "intruder")
    key = auth.create_key(ctx, ws.id, "k").secret
    headers = {"x-api-key": key}
    assert (await client.get("/api/v1/runs/run-01", headers=headers)).status_code == 404
    assert (await client.get("/api/v1/traces/run-00", headers=headers)).status_code == 404
    listed = await client.get("/api/v1/runs", params={"filter": "root"}, headers=headers)
    assert listed.json() == {"items": [], "next_cursor": None}
    by_id = await client.get("/api/v1/runs", params={"project": seeded["support"]}, headers=headers)
    assert by_id.status_code == 404
    stats = await client.get(f"/api/v1/projects/{seeded['support']}/stats", headers=headers)
    assert stats.status_code == 404


async def _all_pages(client: httpx.AsyncClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        page = (await client.get("/api/v1/runs", params=query)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def _sort_key(sort: str) -> Callable[[dict[str, Any]], tuple[int, float, int]]:
    column = {"latency": "latency_us", "tokens": "total_tokens"}.get(sort, sort)

    def key(row: dict[str, Any]) -> tuple[int, float, int]:
        value = row[column]
        # NULL is the smallest value; ties broken by insertion order (the pk)
        return (0 if value is None else 1, value or 0, row["_pk"])

    return key


@pytest.mark.parametrize("sort", ["start_time", "latency", "cost", "tokens"])
@pytest.mark.parametrize("order", ["desc", "asc"])
async def test_keyset_pages_visit_every_run_once_in_order(
    client: httpx.AsyncClient, seeded: dict[str, Any], sort: str, order: str
) -> None:
    params = {"project": "support", "sort": sort, "order": order, "limit": 4, "filter": "root"}
    got = [r["id"] for r in await _all_pages(client, params)]
    rows = [r for r in seeded["rows"] if r["id"].startswith("run-")]
    rows.sort(key=_sort_key(sort), reverse=order == "desc")
    assert got == [r["id"] for r in rows]


async def test_filter_light_mode_and_post_query(
    client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    filt = 'kind = "llm" and tag = "prod" and latency >= 300ms and metadata.customer = "globex"'
    expected = [
        r["id"]
        for r in reversed(seeded["rows"])
        if r["kind"] == "llm"
        and "prod" in r["tags"]
        and (r["latency_us"] or 0) >= 300_000
        and r["metadata"].get("customer") == "globex"
    ]
    assert expected  # the data has some
    r = await client.get(
        "/api/v1/runs", params={"project": "support", "filter": filt, "select": "light"}
    )
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["id"] for i in items] == expected
    assert all("inputs" not in i and "outputs" not in i and "extra" not in i for i in items)
    assert items[0]["latency_ms"] is not None
    posted = await client.post(
        "/api/v1/runs/query", json={"project": seeded["support"], "filter": filt, "limit": 2}
    )
    assert [i["id"] for i in posted.json()["items"]] == expected[:2]
    assert posted.json()["items"][0]["inputs"]["blob"] == "x" * 200
    pinned = await client.post(
        "/api/v1/runs/query", json={"filter": f'project = "support" and {filt}'}
    )
    assert [i["id"] for i in pinned.json()["items"]] == expected
    nowhere = await client.post("/api/v1/runs/query", json={"filter": 'project = "nope"'})
    assert nowhere.json()["items"] == []
    other = await client.get("/api/v1/runs", params={"project": "other"})
    assert {i["id"] for i in other.json()["items"]} == {f"o-{i}" for i in range(5)}


async def test_bad_requests_say_what_is_wrong(
    client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    bad = await client.get("/api/v1/runs", params={"filter": 'kind = "llm" and latency > 2'})
    assert bad.status_code == 400
    err = bad.json()["error"]
    assert err["code"] == "invalid_input"
    assert err["details"]["position"] == 27
    assert "duration" in err["message"]
    posted = await client.post("/api/v1/runs/query", json={"filter": "(root"})
    assert posted.status_code == 400
    assert posted.json()["error"]["details"]["position"] == 5

    first = (await client.get("/api/v1/runs", params={"limit": 2})).json()
    mixed = await client.get(
        "/api/v1/runs", params={"limit": 2, "sort": "cost", "cursor": first["next_cursor"]}
    )
    assert mixed.status_code == 400
    assert mixed.json()["error"]["details"]["field"] == "cursor"
    garbage = await client.get("/api/v1/runs", params={"cursor": "not-a-cursor"})
    assert garbage.status_code == 400
    assert (await client.get("/api/v1/runs", params={"sort": "name"})).status_code == 400
    assert (await client.get("/api/v1/runs", params={"limit": 0})).status_code == 400
    assert (await client.get("/api/v1/runs", params={"project": "nope"})).status_code == 404
