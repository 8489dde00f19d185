"""Pairwise review queues on both backends: made from two experiments or from pairs of runs,
reviewed A/B/tie by two members through the API, the results (win rate, ties, sign test,
agreement) and the comparison API's human preference; roles and workspace isolation; the review
page's plain form (no JavaScript) mapping left/right through the pair's drawn order."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from dashboard_helpers import csrf_of
from fixture_runs import insert_run, other_workspace_client
from goldloop.domain import pairwise
from goldloop.services import auth

API = "/api/v1"
Q = f"{API}/annotation-queues"
T0 = 1_764_150_816_000_000


def key_client(app: FastAPI, name: str, role: str = "member") -> httpx.AsyncClient:
    ctx = app.state.ctx
    ws = auth.workspace_by_name(ctx, auth.DEFAULT_WORKSPACE)
    key = auth.create_key(ctx, ws.id, name, role=role)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://goldloop.test",
        headers={"x-api-key": key.secret},
    )


async def experiment(client: httpx.AsyncClient, name: str, examples: list[str]) -> str:
    made = await client.post(f"{API}/experiments", json={"name": name, "dataset": "golden"})
    assert made.status_code == 201, made.text
    runs = [
        {
            "id": f"{name}-{ex}", "trace_id": f"{name}-t-{ex}", "name": "agent", "kind": "chain",
            "start_time": T0 + i, "end_time": T0 + i + 1000,
            "inputs": {"messages": [{"role": "user", "content": f"question {ex}"}]},
            "outputs": {"messages": [{"role": "assistant", "content": f"{name} says {ex}"}]},
            "metadata": {"experiment": name, "example_id": ex, "repetition": 0},
            "reference_example_id": ex,
        }
        for i, ex in enumerate(examples)
    ]  # fmt: skip
    sent = await client.post(f"{API}/runs/batch", json={"runs": runs, "project": name})
    assert sent.status_code == 202, sent.text
    return str(made.json()["id"])


async def judge(reviewer: httpx.AsyncClient, queue_id: str, choose: dict[str, str]) -> None:
    """Ask for the next pair until none is left, preferring per example as ``choose`` says."""
    while True:
        got = (await reviewer.post(f"{Q}/{queue_id}/next")).json()
        if got["item"] is None:
            return
        pair = (await reviewer.get(f"{Q}/{queue_id}/pairs/{got['item']['id']}")).json()
        assert pair["a"]["id"] == pair["pair"]["run_a"]
        assert pair["b"]["id"] == pair["pair"]["run_b"]
        body = {"preference": choose[pair["pair"]["example_id"]], "comment": "read both"}
        sent = await reviewer.post(
            f"{Q}/{queue_id}/pairs/{got['item']['id']}/preference", json=body
        )
        assert sent.status_code == 201, sent.text
        again = await reviewer.post(
            f"{Q}/{queue_id}/pairs/{got['item']['id']}/preference", json=body
        )
        assert again.status_code == 409


async def test_pairwise_review(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    """One app per backend for all parts (each app costs seconds to set up)."""
    await _from_two_experiments(app, client)
    await _pairs_of_runs_roles_and_isolation(app, client)
    await _review_page_without_javascript(app, client, browser)


async def _from_two_experiments(app: FastAPI, client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{API}/datasets", json={"name": "golden"})).status_code == 201
    examples = ["e1", "e2", "e3", "e4", "e5"]
    a = await experiment(client, "bot-v1", examples)
    b = await experiment(client, "bot-v2", examples[:4])  # e5 only in A: no pair
    async with key_client(app, "ann") as ann, key_client(app, "bob") as bob:
        body = {"name": "v2 vs v1", "experiments": [a, "bot-v2"], "reviewers_needed": 2}
        assert (await ann.post(f"{Q}/pairwise", json=body)).status_code == 403
        for wrong, status in [
            ({**body, "pairs": [{"run_a": "x", "run_b": "y"}]}, 400),
            ({**body, "experiments": [a, a]}, 400),
            ({**body, "experiments": [a]}, 400),
            ({**body, "experiments": [a, "nope"]}, 404),
        ]:
            answer = await client.post(f"{Q}/pairwise", json=wrong)
            assert answer.status_code == status, (wrong, answer.text)
        made = await client.post(f"{Q}/pairwise", json=body)
        assert made.status_code == 201, made.text
        created = made.json()
        assert (created["added"], created["experiment_a"], created["experiment_b"]) == (4, a, b)
        queue_id = created["queue"]["id"]
        pairs = (await ann.get(f"{Q}/{queue_id}/pairs")).json()
        assert sorted(p["example_id"] for p in pairs) == ["e1", "e2", "e3", "e4"]
        assert {p["run_a"] for p in pairs} == {f"bot-v1-{e}" for e in examples[:4]}
        assert all(p["run_b"] == p["run_a"].replace("v1", "v2") for p in pairs)
        # the drawn order is recorded: every read gives the same side
        again = {p["item_id"]: p["left"] for p in (await bob.get(f"{Q}/{queue_id}/pairs")).json()}
        assert {p["item_id"]: p["left"] for p in pairs} == again
        assert set(again.values()) <= {"A", "B"}

        bad = await ann.post(
            f"{Q}/{queue_id}/pairs/{pairs[0]['item_id']}/preference", json={"preference": "C"}
        )
        assert bad.status_code == 400
        # ann: B, B, B, A; bob: B, B, tie, A -> pairs B, B, B (0.75), A
        await judge(ann, queue_id, {"e1": "B", "e2": "B", "e3": "B", "e4": "A"})
        await judge(bob, queue_id, {"e1": "B", "e2": "B", "e3": "tie", "e4": "A"})

    results = (await client.get(f"{Q}/{queue_id}/results")).json()
    assert (results["n"], results["b_wins"], results["a_wins"], results["ties"]) == (4, 3, 1, 0)
    assert results["reviews"] == 8
    assert results["win_rate"]["value"] == pytest.approx(0.75)
    assert results["p_value"] == pytest.approx(2 * 5 / 16)  # P(X <= 1 | 4, 1/2) doubled
    assert results["tie_share"] == 0
    agreement = results["agreement"]
    assert (agreement["method"], agreement["reviewers"], agreement["items_compared"]) == (
        "cohen_kappa",
        2,
        4,
    )
    # ratings (ann, bob): (B,B), (B,B), (B,tie), (A,A): p_o = 3/4, p_e = (3*2 + 1*1)/16
    p_e = 7 / 16
    assert agreement["kappa"]["value"] == pytest.approx((0.75 - p_e) / (1 - p_e))
    assert (await client.get(f"{Q}/{queue_id}")).json()["completed"] == 4

    compared = (
        await client.get(f"{API}/experiments/compare", params={"baseline": a, "candidate": b})
    ).json()
    human = compared["human_preference"]
    assert (human["queue_id"], human["n"], human["flipped"]) == (queue_id, 4, False)
    assert human["win_rate"]["value"] == pytest.approx(0.75)
    swapped = await client.get(f"{API}/experiments/compare", params={"baseline": b, "candidate": a})
    flipped = swapped.json()["human_preference"]
    assert (flipped["b_wins"], flipped["a_wins"], flipped["flipped"]) == (1, 3, True)
    assert flipped["win_rate"]["value"] == pytest.approx(0.25)


async def _pairs_of_runs_roles_and_isolation(app: FastAPI, client: httpx.AsyncClient) -> None:
    for run_id in ("prod-1", "cand-1", "prod-2", "cand-2", "single"):
        insert_run(app, run_id, inputs={"q": run_id[-1]}, outputs={"a": run_id})
    made = await client.post(
        f"{Q}/pairwise",
        json={"name": "prod vs candidate", "pairs": [{"run_a": "prod-1", "run_b": "cand-1"}]},
    )
    assert made.status_code == 201, made.text
    queue_id = made.json()["queue"]["id"]
    plain = (await client.post(Q, json={"name": "plain"})).json()
    async with key_client(app, "member") as member:
        added = await member.post(
            f"{Q}/{queue_id}/pairs",
            json={
                "pairs": [
                    {"run_a": "prod-2", "run_b": "cand-2"},
                    {"run_a": "prod-1", "run_b": "cand-2"},
                ]
            },
        )
        assert added.json() == {"added": 1, "already_queued": ["prod-1"]}
        for path, body, status in [
            (f"{Q}/{queue_id}/pairs", {"pairs": [{"run_a": "prod-2", "run_b": "prod-2"}]}, 400),
            (f"{Q}/{queue_id}/pairs", {"pairs": [{"run_a": "prod-2", "run_b": "ghost"}]}, 404),
            (f"{Q}/{plain['id']}/pairs", {"pairs": [{"run_a": "single", "run_b": "cand-1"}]}, 400),
        ]:
            answer = await member.post(path, json=body)
            assert answer.status_code == status, (path, body, answer.text)
        assert (await member.get(f"{Q}/{plain['id']}/results")).status_code == 400
        item = (await member.post(f"{Q}/{queue_id}/next")).json()["item"]
        sent = await member.post(
            f"{Q}/{queue_id}/pairs/{item['id']}/preference", json={"preference": "tie"}
        )
        assert sent.json()["completed"] is True
        assert sent.json()["review"]["scores"] == {
            pairwise.PREFERENCE_KEY: {"score": None, "value": "tie"}
        }
    results = (await client.get(f"{Q}/{queue_id}/results")).json()
    assert (results["n"], results["ties"], results["win_rate"]["value"]) == (1, 1, 0.5)
    assert results["p_value"] is None
    # single-run operations are refused on a pairwise queue
    single = await client.post(f"{Q}/{queue_id}/items", json={"run_ids": ["single"]})
    assert single.status_code == 400
    assert "pairwise" in single.json()["error"]["message"]
    scored = await client.post(f"{Q}/{queue_id}/items/{item['id']}/reviews", json={"scores": {}})
    assert scored.status_code == 400
    # deleting a pair's B run takes the pair out of the queue
    gone = await client.post(f"{API}/traces/delete", json={"trace_ids": ["cand-2"]})
    assert gone.status_code == 200, gone.text
    assert [p["run_a"] for p in (await client.get(f"{Q}/{queue_id}/pairs")).json()] == ["prod-1"]

    other = await other_workspace_client(app)
    async with other:
        insert_run(app, "theirs", workspace="other", inputs={"q": 1})
        base = f"{Q}/{queue_id}"
        for method, path, body in [
            ("GET", f"{base}/pairs", None),
            ("GET", f"{base}/pairs/{item['id']}", None),
            ("POST", f"{base}/pairs", {"pairs": [{"run_a": "theirs", "run_b": "theirs2"}]}),
            ("POST", f"{base}/pairs/{item['id']}/preference", {"preference": "A"}),
            ("GET", f"{base}/results", None),
        ]:
            answer = await other.request(method, path, json=body)
            assert answer.status_code == 404, (method, path, answer.text)
        # their own pairwise queue cannot take our runs
        stolen = await other.post(
            f"{Q}/pairwise",
            json={"name": "x", "pairs": [{"run_a": "prod-1", "run_b": "theirs"}]},
        )
        assert stolen.status_code == 404


XSS = "<script>window.__xss=1</script>"


async def _review_page_without_javascript(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    """The plain form: the choice "left" means whichever run the pair shows on the left."""
    for i in (1, 2):
        insert_run(app, f"dw-a{i}", inputs={"q": f"question {i}"}, outputs={"a": f"A {XSS}"})
        insert_run(app, f"dw-b{i}", inputs={"q": f"question {i}"}, outputs={"a": f"B {i}"})
    made = await client.post(
        f"{Q}/pairwise",
        json={
            "name": "blind",
            "pairs": [{"run_a": f"dw-a{i}", "run_b": f"dw-b{i}"} for i in (1, 2)],
        },
    )
    queue_id = made.json()["queue"]["id"]
    page = await browser.get(f"/queues/{queue_id}/review")
    assert page.status_code == 200
    assert "Output 1" in page.text
    assert "Output 2" in page.text
    assert XSS not in page.text
    action = re.search(rf'action="/queues/{queue_id}/pairs/([^/"]+)/review"', page.text)
    assert action is not None
    item_id = action.group(1)
    pair = (await client.get(f"{Q}/{queue_id}/pairs/{item_id}")).json()["pair"]
    sent = await browser.post(
        f"/queues/{queue_id}/pairs/{item_id}/review",
        data={"csrf": csrf_of(page.text), "choice": "left", "comment": "clearer"},
    )
    assert sent.status_code == 303, sent.text
    review = (await client.get(f"{Q}/{queue_id}/reviews")).json()[0]
    assert review["scores"]["preference"]["value"] == pair["left"]
    assert review["comment"] == "clearer"
    page = await browser.get(f"/queues/{queue_id}/review?done=1")
    other = re.search(rf'action="/queues/{queue_id}/pairs/([^/"]+)/review"', page.text)
    assert other is not None
    assert other.group(1) != item_id
    refused = await browser.post(
        f"/queues/{queue_id}/pairs/{other.group(1)}/review",
        data={"csrf": csrf_of(page.text), "choice": "middle"},
    )
    assert refused.status_code == 400
    assert "choose Output 1, Output 2 or a tie" in refused.text
    listed = await browser.get("/queues")
    assert "pairwise: A / B / tie" in listed.text
    queue_page = await browser.get(f"/queues/{queue_id}")
    assert 'of <strong class="pw-n">1</strong> judged pairs' in queue_page.text
