"""Annotation queues through the API, on both backends: queues (admin) and their items,
reservations that keep two reviewers off one item, reviews stored as feedback, completed items
becoming dataset examples with lineage, skips, roles and workspace isolation."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fake_clock import FakeClock
from fixture_runs import insert_run, other_workspace_client
from goldloop.services import annotation_reviews, auth
from goldloop.services.context import Principal
from goldloop.workers.service_loops import Workers

API = "/api/v1"
Q = f"{API}/annotation-queues"
START = 1_764_150_816_000_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


def key_client(app: FastAPI, name: str, role: str = "member") -> httpx.AsyncClient:
    ctx = app.state.ctx
    ws = auth.workspace_by_name(ctx, auth.DEFAULT_WORKSPACE)
    key = auth.create_key(ctx, ws.id, name, role=role)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://goldloop.test",
        headers={"x-api-key": key.secret},
    )


async def declare_keys(client: httpx.AsyncClient) -> None:
    tone = {
        "kind": "categorical",
        "categories": [{"label": "rude", "score": 0}, {"label": "warm", "score": 1}],
        "rubric": "warm: friendly and specific.",
    }
    assert (await client.put(f"{API}/feedback-keys/tone", json=tone)).status_code in (200, 201)
    correct = {"kind": "boolean", "rubric": "Did it answer the question?"}
    assert (await client.put(f"{API}/feedback-keys/correct", json=correct)).status_code in (
        200,
        201,
    )


async def make_queue(client: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    body = {"name": "support review", "instructions": "Read the whole answer.", **extra}
    body.setdefault("keys", ["correct", "tone"])
    created = await client.post(Q, json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


def add_runs(app: FastAPI, n: int, prefix: str = "r") -> list[str]:
    ids = [f"{prefix}{i}" for i in range(n)]
    for i, run_id in enumerate(ids):
        insert_run(
            app,
            run_id,
            inputs={"question": f"refund for order {i}?"},
            outputs={"answer": f"no refund {i}"},
        )
    return ids


async def review(
    client: httpx.AsyncClient, queue_id: str, item_id: str, **body: Any
) -> httpx.Response:
    body.setdefault("scores", {"correct": True, "tone": "warm"})
    return await client.post(f"{Q}/{queue_id}/items/{item_id}/reviews", json=body)


async def _lifecycle_and_roles(app: FastAPI, client: httpx.AsyncClient) -> None:
    await declare_keys(client)
    undeclared = await client.post(Q, json={"name": "x", "keys": ["helpfulness"]})
    assert undeclared.status_code == 400
    assert "helpfulness" in undeclared.json()["error"]["message"]
    bad = await client.post(Q, json={"name": "x", "reviewers_needed": 0})
    assert bad.status_code == 400
    no_dataset = await client.post(Q, json={"name": "x", "dataset": "nope"})
    assert no_dataset.status_code == 404

    await client.post(f"{API}/datasets", json={"name": "golden"})
    queue = await make_queue(client, reviewers_needed=2, dataset="golden")
    assert queue["keys"] == ["correct", "tone"]
    assert queue["dataset_name"] == "golden"
    assert (queue["items"], queue["completed"], queue["reviewers_needed"]) == (0, 0, 2)
    again = await client.post(Q, json={"name": "support review"})
    assert again.status_code == 409

    async with key_client(app, "ann") as member:
        refused = await member.post(Q, json={"name": "mine"})
        assert refused.status_code == 403
        assert (await member.patch(f"{Q}/{queue['id']}", json={"name": "y"})).status_code == 403
        assert (await member.delete(f"{Q}/{queue['id']}")).status_code == 403
        listed = await member.get(Q)
        assert [q["id"] for q in listed.json()["items"]] == [queue["id"]]

    patched = await client.patch(
        f"{Q}/{queue['id']}", json={"name": "renamed", "dataset": None, "keys": ["tone"]}
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["dataset_id"], patched.json()["keys"]) == (
        "renamed",
        None,
        ["tone"],
    )
    assert (await client.get(Q, params={"name_contains": "RENAM"})).json()["items"][0][
        "id"
    ] == queue["id"]
    assert (await client.delete(f"{Q}/{queue['id']}")).status_code == 204
    assert (await client.get(f"{Q}/{queue['id']}")).status_code == 404


async def _reservations(app: FastAPI, client: httpx.AsyncClient, clock: FakeClock) -> None:
    await declare_keys(client)
    queue = await make_queue(client, lease_seconds=60)
    runs = add_runs(app, 3)
    added = await client.post(f"{Q}/{queue['id']}/items", json={"run_ids": [*runs, runs[0]]})
    assert added.status_code == 200, added.text
    assert [i["run_id"] for i in added.json()["added"]] == runs
    again = await client.post(f"{Q}/{queue['id']}/items", json={"run_ids": [runs[1]]})
    assert again.json() == {"added": [], "already_queued": [runs[1]]}
    missing = await client.post(f"{Q}/{queue['id']}/items", json={"run_ids": ["nope"]})
    assert missing.status_code == 404

    async with key_client(app, "ann") as ann, key_client(app, "bob") as bob:
        first = (await ann.post(f"{Q}/{queue['id']}/next")).json()
        assert first["item"]["run_id"] == runs[0]
        assert first["run"]["inputs"] == {"question": "refund for order 0?"}
        assert first["lease_expires_at"] == START + 60_000_000
        # asking again gives the same item; another reviewer gets the next one
        assert (await ann.post(f"{Q}/{queue['id']}/next")).json()["item"]["id"] == first["item"][
            "id"
        ]
        second = (await bob.post(f"{Q}/{queue['id']}/next")).json()
        assert second["item"]["run_id"] == runs[1]
        # bob may not answer ann's reserved item
        stolen = await review(bob, queue["id"], first["item"]["id"])
        assert stolen.status_code == 409
        # once ann's reservation lapses, her item is free again
        clock.now += 61_000_000
        await bob.post(f"{Q}/{queue['id']}/items/{second['item']['id']}/skip")
        taken = (await bob.post(f"{Q}/{queue['id']}/next")).json()
        assert taken["item"]["run_id"] == runs[0]


async def test_reviews_complete_items_into_a_new_dataset_version(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await declare_keys(client)
    await client.post(f"{API}/datasets", json={"name": "golden"})
    queue = await make_queue(client, dataset="golden", reviewers_needed=2)
    runs = add_runs(app, 2)
    await client.post(f"{Q}/{queue['id']}/items", json={"run_ids": runs})

    async with key_client(app, "ann") as ann, key_client(app, "bob") as bob:
        item = (await ann.post(f"{Q}/{queue['id']}/next")).json()["item"]
        # two reviewers needed: bob is given the same item, a third is not
        assert (await bob.post(f"{Q}/{queue['id']}/next")).json()["item"]["id"] == item["id"]
        async with key_client(app, "cat") as cat:
            assert (await cat.post(f"{Q}/{queue['id']}/next")).json()["item"]["run_id"] == runs[1]

        missing = await review(ann, queue["id"], item["id"], scores={"correct": True})
        assert missing.status_code == 400
        assert "tone" in missing.json()["error"]["message"]
        wrong = await review(ann, queue["id"], item["id"], scores={"correct": 1, "tone": "meh"})
        assert wrong.status_code == 400
        assert "'tone'" in wrong.json()["error"]["message"]

        first = await review(
            ann,
            queue["id"],
            item["id"],
            scores={"correct": False, "tone": {"value": "rude"}},
            correction={"answer": "Yes: refunds within 30 days."},
            comment="wrong policy",
        )
        assert first.status_code == 201, first.text
        assert first.json()["completed"] is False
        assert (await review(ann, queue["id"], item["id"])).status_code == 409
        second = await review(bob, queue["id"], item["id"], scores={"correct": False, "tone": 0})
        assert second.json()["completed"] is True
        done = second.json()["item"]
        assert done["status"] == "completed"
        assert done["dataset_result"]["outcome"] == "added"
        assert done["dataset_result"]["outputs_from"] == "correction"

    feedback = (await client.get(f"{API}/feedback", params={"run_id": runs[0]})).json()["items"]
    assert sorted((f["key"], f["score"], f["value"]) for f in feedback) == [
        ("correct", False, None),
        ("correct", False, None),
        ("tone", 0.0, "rude"),
        ("tone", 0.0, "rude"),
    ]
    assert {f["source"] for f in feedback} == {"human"}
    assert {f["source_info"]["reviewer"] for f in feedback} == {"ann", "bob"}

    versions = (await client.get(f"{API}/datasets/golden/versions")).json()["items"]
    assert versions[0]["version"] == 1
    assert versions[0]["added"] == 1
    assert "support review" in versions[0]["message"]
    examples = (await client.get(f"{API}/datasets/golden/examples")).json()["items"]
    assert len(examples) == 1
    assert examples[0]["inputs"] == {"question": "refund for order 0?"}
    assert examples[0]["outputs"] == {"answer": "Yes: refunds within 30 days."}
    lineage = examples[0]["lineage"]
    assert lineage["run_id"] == runs[0]
    assert lineage["outputs_from"] == "correction"
    assert lineage["correction_feedback_id"] in {f["id"] for f in feedback}

    queue_now = (await client.get(f"{Q}/{queue['id']}")).json()
    assert (queue_now["items"], queue_now["completed"], queue_now["reviews"]) == (2, 1, 2)
    completed = await client.get(f"{Q}/{queue['id']}/items", params={"status": "completed"})
    assert [i["run_id"] for i in completed.json()["items"]] == [runs[0]]
    detail = (await client.get(f"{Q}/{queue['id']}/items/{item['id']}")).json()
    assert [r["reviewer_name"] for r in detail["reviews"]] == ["ann", "bob"]
    assert detail["run"]["outputs"] == {"answer": "no refund 0"}

    # one review of the second item, then the queue needs only one: the item completes and
    # joins the dataset (its run's outputs as reference: no correction)
    async with key_client(app, "dan") as dan:
        other = (await dan.post(f"{Q}/{queue['id']}/next")).json()["item"]
        assert other["run_id"] == runs[1]
        assert (await review(dan, queue["id"], other["id"])).json()["completed"] is False
    lowered = await client.patch(f"{Q}/{queue['id']}", json={"reviewers_needed": 1})
    assert lowered.json()["completed"] == 2
    examples = (await client.get(f"{API}/datasets/golden/examples")).json()["items"]
    assert sorted(e["outputs"]["answer"] for e in examples) == [
        "Yes: refunds within 30 days.",
        "no refund 1",
    ]

    # deleting the run's trace takes it out of the queue, with the reviews that copied its
    # correction and comment
    deleted = await client.post(f"{API}/traces/delete", json={"trace_ids": [runs[0]]})
    assert deleted.status_code == 200, deleted.text
    left = (await client.get(f"{Q}/{queue['id']}/reviews")).json()
    assert [r["run_id"] for r in left] == [runs[1]]
    remaining = (await client.get(f"{Q}/{queue['id']}/items")).json()["items"]
    assert [i["run_id"] for i in remaining] == [runs[1]]


async def _skips(app: FastAPI, client: httpx.AsyncClient) -> None:
    await declare_keys(client)
    queue = await make_queue(client, name="skips")
    runs = add_runs(app, 2, prefix="skip")
    await client.post(f"{Q}/{queue['id']}/items", json={"run_ids": runs})
    async with key_client(app, "ann") as ann:
        item = (await ann.post(f"{Q}/{queue['id']}/next")).json()["item"]
        skipped = await ann.post(f"{Q}/{queue['id']}/items/{item['id']}/skip")
        assert skipped.status_code == 200
        assert (await ann.post(f"{Q}/{queue['id']}/items/{item['id']}/skip")).status_code == 409
        nxt = (await ann.post(f"{Q}/{queue['id']}/next")).json()["item"]
        assert nxt["run_id"] == runs[1]
        assert (await review(ann, queue["id"], nxt["id"])).status_code == 201
        assert (await ann.post(f"{Q}/{queue['id']}/next")).json()["item"] is None
        mine = await ann.get(f"{Q}/{queue['id']}/items", params={"mine": "true"})
        assert mine.json()["items"] == []
        # the skipped item is still there for someone else
        async with key_client(app, "bob") as bob:
            assert (await bob.post(f"{Q}/{queue['id']}/next")).json()["item"]["run_id"] == runs[0]
        assert (await ann.delete(f"{Q}/{queue['id']}/items/{item['id']}")).status_code == 403
    assert (await client.delete(f"{Q}/{queue['id']}/items/{item['id']}")).status_code == 204
    assert (await client.get(f"{Q}/{queue['id']}")).json()["items"] == 1


async def _agreement(app: FastAPI, client: httpx.AsyncClient) -> None:
    await declare_keys(client)
    queue = await make_queue(client, reviewers_needed=2)
    runs = add_runs(app, 4)
    await client.post(f"{Q}/{queue['id']}/items", json={"run_ids": runs})
    # ann: T T F F ; bob: T F F F  -> 3 of 4 agree; p_e = (2*1 + 2*3)/16 = 0.5 -> kappa 0.5
    labels = {"ann": [True, True, False, False], "bob": [True, False, False, False]}
    for name, answers in labels.items():
        async with key_client(app, name) as reviewer:
            for answer in answers:
                item = (await reviewer.post(f"{Q}/{queue['id']}/next")).json()["item"]
                sent = await review(
                    reviewer, queue["id"], item["id"], scores={"correct": answer, "tone": "warm"}
                )
                assert sent.status_code == 201, sent.text
    got = (await client.get(f"{Q}/{queue['id']}/agreement")).json()
    by_key = {k["key"]: k for k in got["keys"]}
    correct = by_key["correct"]
    assert (correct["method"], correct["reviewers"], correct["items_compared"]) == (
        "cohen_kappa",
        2,
        4,
    )
    assert correct["kappa"]["value"] == pytest.approx(0.5)
    assert correct["kappa"]["n"] == 4
    assert correct["kappa"]["low"] < 0.5 < correct["kappa"]["high"]
    # alpha of the same data: n = 8 ratings (3 true, 5 false), one disagreeing unit:
    # 1 - (n - 1) * 2 / (n^2 - 3^2 - 5^2)
    assert correct["alpha"]["value"] == pytest.approx(1 - 7 * 2 / (64 - 25 - 9))
    # everyone said "warm": no variation, so agreement beyond chance is undefined
    assert by_key["tone"]["alpha"]["value"] is None
    assert [r["name"] for r in got["reviewers"]] == ["ann", "bob"]


async def _isolation(app: FastAPI, client: httpx.AsyncClient) -> None:
    await declare_keys(client)
    queue = await make_queue(client)
    runs = add_runs(app, 1)
    item = (await client.post(f"{Q}/{queue['id']}/items", json={"run_ids": runs})).json()["added"][
        0
    ]
    other = await other_workspace_client(app)
    async with other:
        insert_run(app, "theirs", workspace="other", inputs={"q": 1})
        assert (await other.get(Q)).json()["items"] == []
        base = f"{Q}/{queue['id']}"
        for method, path, body in [
            ("GET", base, None),
            ("PATCH", base, {"name": "x"}),
            ("DELETE", base, None),
            ("POST", f"{base}/items", {"run_ids": ["theirs"]}),
            ("GET", f"{base}/items", None),
            ("POST", f"{base}/next", None),
            ("GET", f"{base}/items/{item['id']}", None),
            ("POST", f"{base}/items/{item['id']}/reviews", {"scores": {}}),
            ("POST", f"{base}/items/{item['id']}/skip", None),
            ("GET", f"{base}/agreement", None),
        ]:
            answer = await other.request(method, path, json=body)
            assert answer.status_code == 404, (method, path, answer.text)
        # their own queue cannot take our run
        await other.put(f"{API}/feedback-keys/ok", json={"kind": "boolean"})
        theirs = (await other.post(Q, json={"name": "support review"})).json()
        stolen = await other.post(f"{Q}/{theirs['id']}/items", json={"run_ids": runs})
        assert stolen.status_code == 404
    assert (await client.get(f"{Q}/{queue['id']}")).json()["items"] == 1


async def _rule_action(client: httpx.AsyncClient, workers: Workers) -> None:
    queue = await make_queue(client, name="failures", keys=[])
    listed = (await client.get(f"{API}/projects", params={"name": "agent-support"})).json()
    project = listed["items"][0]  # the project of the runs queued before
    rule = await client.post(
        f"{API}/rules",
        json={
            "project_id": project["id"],
            "name": "failures to review",
            "filter": "error",
            "actions": [{"type": "add_to_queue", "queue": "failures"}],
        },
    )
    assert rule.status_code == 201, rule.text
    bad = await client.post(
        f"{API}/rules",
        json={"project_id": project["id"], "name": "x", "actions": [{"type": "add_to_queue"}]},
    )
    assert bad.status_code == 400
    assert "queue" in bad.json()["error"]["message"]
    items = []
    for i in range(6):
        item = {
            "id": f"rule-run-{i}",
            "trace_id": f"rule-run-{i}",
            "name": "answer",
            "kind": "chain",
            "start_time": START + i,
            "end_time": START + 500_000 + i,
            "inputs": {"question": f"q{i}"},
            "outputs": {"answer": f"a{i}"},
        }
        if i % 2 == 0:
            item["error"] = {"type": "ValueError", "message": "boom"}
        items.append(item)
    sent = await client.post(f"{API}/runs/batch", json={"project": "agent-support", "runs": items})
    assert sent.status_code == 202
    workers.flush()
    workers.flush()
    queued = (await client.get(f"{Q}/{queue['id']}/items")).json()["items"]
    assert sorted(i["run_id"] for i in queued) == ["rule-run-0", "rule-run-2", "rule-run-4"]
    assert {i["added_by"] for i in queued} == {f"rule:{rule.json()['id']}"}


async def test_queues_roles_and_workspace_isolation(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await _lifecycle_and_roles(app, client)
    await _isolation(app, client)


async def test_reservations_and_skips(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await _reservations(app, client, clock)
    await _skips(app, client)


async def test_agreement_and_a_rule_that_fills_a_queue(
    app: FastAPI, client: httpx.AsyncClient, workers: Workers
) -> None:
    await _agreement(app, client)
    await _rule_action(client, workers)


async def test_concurrent_reviewers_never_share_an_item(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await declare_keys(client)
    queue = await make_queue(client)
    runs = add_runs(app, 4, prefix="race")
    await client.post(f"{Q}/{queue['id']}/items", json={"run_ids": runs})
    ctx = app.state.ctx
    ws = auth.workspace_by_name(ctx, auth.DEFAULT_WORKSPACE).id
    reviewers = [
        Principal(workspace_id=ws, key_id=f"reviewer-{i}", role="member") for i in range(8)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(
            pool.map(lambda who: annotation_reviews.next_item(ctx, who, queue["id"]), reviewers)
        )
    handed = [g.item.run_id for g in got if g is not None]
    # four items needing one review each: four reviewers get one each, the others nothing
    assert sorted(handed) == sorted(runs)
    assert sum(g is None for g in got) == 4
