"""Concurrent writers: consecutive dataset versions, one feedback per client id; and a workspace
cannot reach another's runs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi import FastAPI

from fixture_runs import insert_run, other_workspace_client
from goldloop.services import datasets, examples, feedback
from goldloop.services.auth import create_key, create_workspace
from goldloop.services.context import Principal, ServiceContext
from goldloop.store.feedback import FeedbackFilter


def test_concurrent_writes_make_consecutive_versions(ctx: ServiceContext) -> None:
    ws = create_workspace(ctx, "w")
    who = Principal(ws.id, create_key(ctx, ws.id, "k").record.id, "member")
    datasets.create(ctx, who, "d")

    def write(i: int) -> int:
        item = examples.ExampleIn(inputs={"i": i})
        return examples.add(ctx, who, "d", [item], message=f"writer {i}").version

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = sorted(pool.map(write, range(16)))
    assert got == list(range(1, 17))
    versions, _ = datasets.list_versions(ctx, who, "d")
    assert [v.row.version for v in versions] == list(range(16, -1, -1))
    assert all(v.row.added == 1 for v in versions[:-1])
    times = [v.row.created_at for v in reversed(versions)]
    assert times == sorted(times)
    for n in range(17):
        page = examples.list_examples(ctx, who, "d", as_of=str(n), limit=100)
        assert len(page.items) == n


async def test_runs_and_feedback_of_another_workspace_are_out_of_reach(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    insert_run(app, "mine", inputs={"q": 1}, outputs={"a": "run"})
    await client.post(
        "/api/v1/feedback", json={"run_id": "mine", "key": "k", "correction": {"a": "mine"}}
    )
    async with await other_workspace_client(app) as other:
        await other.post("/api/v1/datasets", json={"name": "theirs"})
        stolen = await other.post("/api/v1/datasets/theirs/runs", json={"run_ids": ["mine"]})
        assert stolen.status_code == 404
        # their own run with the same id; my correction must not leak into their example
        await other.post(
            "/api/v1/runs/batch",
            json={
                "runs": [
                    {
                        "id": "mine",
                        "trace_id": "t",
                        "name": "n",
                        "inputs": {"q": 2},
                        "outputs": {"a": "theirs"},
                    }
                ]
            },
        )
        added = await other.post(
            "/api/v1/datasets/theirs/runs", json={"run_ids": ["mine"], "prefer_correction": True}
        )
        assert added.status_code == 201
        [item] = added.json()["added"]
        assert item["outputs_from"] == "run"
        example = await other.get(f"/api/v1/datasets/theirs/examples/{item['example_id']}")
        assert example.json()["outputs"] == {"a": "theirs"}
        assert example.json()["lineage"]["feedback_ids"] == []


def test_concurrent_retries_of_one_feedback_create_it_once(ctx: ServiceContext) -> None:
    ws = create_workspace(ctx, "w")
    who = Principal(ws.id, create_key(ctx, ws.id, "k").record.id, "member")
    new = feedback.NewFeedback(key="k", run_id="r", score=1.0, feedback_id="retry-me")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: feedback.create(ctx, who, new), range(16)))
    assert sum(r.created for r in results) == 1
    assert {r.feedback.id for r in results} == {"retry-me"}
    page = feedback.list_feedback(ctx, who, FeedbackFilter())
    assert [f.id for f in page.items] == ["retry-me"]
