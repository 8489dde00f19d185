"""/api/v1/experiments on both backends: aggregates computed in SQL on known data, results,
comparison, tags unique per dataset, workspace isolation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fixture_runs import other_workspace_client

T0 = 1_764_150_816_000_000
API = "/api/v1"


async def make_dataset(client: httpx.AsyncClient, name: str, n: int) -> None:
    assert (await client.post(f"{API}/datasets", json={"name": name})).status_code == 201
    examples = [{"id": f"ex{i}", "inputs": {"q": i}, "outputs": {"a": i}} for i in range(n)]
    r = await client.post(f"{API}/datasets/{name}/examples", json={"examples": examples})
    assert r.status_code == 201, r.text


async def register(client: httpx.AsyncClient, name: str, **kw: Any) -> dict[str, Any]:
    r = await client.post(f"{API}/experiments", json={"name": name, **kw})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def store_calls(
    client: httpx.AsyncClient,
    experiment: str,
    calls: list[tuple[str, int, dict[str, float | bool | None], bool]],
) -> list[str]:
    """One root run per (example, repetition, scores, failed), a child run under each, and the
    scores as feedback on the root runs; returns the root run ids."""
    items, ids = [], []
    for i, (example, rep, _scores, failed) in enumerate(calls):
        root, trace = f"{experiment}-r{i}", f"{experiment}-t{i}"
        ids.append(root)
        items += [
            {
                "id": root, "trace_id": trace, "name": "agent", "kind": "chain",
                "start_time": T0 + i, "end_time": T0 + i + 2000 * (i + 1),
                "inputs": {"q": example}, "outputs": {"a": f"{example}/{rep}"},
                "metadata": {"experiment": experiment, "example_id": example, "repetition": rep},
                "reference_example_id": example,
                "error": {"type": "RuntimeError", "message": "tool down\nmore"} if failed else None,
            },
            {
                "id": f"{root}-child", "trace_id": trace, "parent_id": root, "name": "tool",
                "kind": "tool", "start_time": T0 + i, "end_time": T0 + i + 10,
            },
        ]  # fmt: skip
    r = await client.post(f"{API}/runs/batch", json={"runs": items, "project": experiment})
    assert r.status_code == 202, r.text
    for root, (_ex, _rep, scores, _failed) in zip(ids, calls, strict=True):
        for key, score in scores.items():
            body: dict[str, Any] = {"run_id": root, "key": key, "score": score}
            if score is None:
                body["value"] = "n/a"
            assert (await client.post(f"{API}/feedback", json=body)).status_code == 201
        # feedback on a child run is not the experiment's score
        body = {"run_id": f"{root}-child", "key": "correct", "score": 0}
        assert (await client.post(f"{API}/feedback", json=body)).status_code == 201
    return ids


async def test_aggregates_results_and_listing(client: httpx.AsyncClient) -> None:
    await make_dataset(client, "golden", 3)
    exp = await register(
        client, "agent-v1-aaaa", dataset="golden", dataset_version=1, repetitions=2,
        evaluators=["exact_match"], metadata={"git_sha": "abc"},
    )  # fmt: skip
    assert exp["dataset"] == "golden"
    assert exp["dataset_version"] == 1
    assert exp["run_count"] == 0
    assert exp["scores"] == {}
    calls = [
        ("ex0", 0, {"correct": True, "quality": 0.5}, False),
        ("ex0", 1, {"correct": True, "quality": 0.7}, False),
        ("ex1", 0, {"correct": False, "quality": 0.2}, True),
        ("ex1", 1, {"correct": 1, "quality": None}, False),
        ("ex2", 0, {"correct": 0}, False),
    ]
    await store_calls(client, "agent-v1-aaaa", calls)
    # a plain project is not an experiment
    plain = [{"id": "p1", "trace_id": "pt1", "name": "x", "start_time": T0}]
    await client.post(f"{API}/runs/batch", json={"runs": plain, "project": "prod"})

    got = (await client.get(f"{API}/experiments/agent-v1-aaaa")).json()
    assert (got["run_count"], got["error_count"]) == (5, 1)
    assert got["scores"]["correct"] == {"count": 5, "n": 5, "mean": 0.6, "binary": True}
    quality = got["scores"]["quality"]
    assert (quality["count"], quality["n"], quality["binary"]) == (4, 3, False)
    assert quality["mean"] == pytest.approx((0.5 + 0.7 + 0.2) / 3)
    assert got["metadata"] == {"git_sha": "abc"}
    assert got["evaluators"] == ["exact_match"]
    assert got["repetitions"] == 2
    assert (await client.get(f"{API}/experiments/{got['id']}")).json()["name"] == "agent-v1-aaaa"
    assert (await client.get(f"{API}/experiments/prod")).status_code == 404

    await register(client, "agent-v2-bbbb", dataset="golden")
    await register(client, "scratch-cccc")  # no dataset
    listed = (await client.get(f"{API}/experiments")).json()["items"]
    assert [e["name"] for e in listed] == ["scratch-cccc", "agent-v2-bbbb", "agent-v1-aaaa"]
    on_golden = (await client.get(f"{API}/experiments", params={"dataset": "golden"})).json()
    assert [e["name"] for e in on_golden["items"]] == ["agent-v2-bbbb", "agent-v1-aaaa"]
    assert on_golden["items"][0]["dataset_version"] == 1  # the newest when not given
    names, cursor = [], None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{API}/experiments", params=params)).json()
        names += [e["name"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert names == ["scratch-cccc", "agent-v2-bbbb", "agent-v1-aaaa"]
    assert (await client.get(f"{API}/experiments", params={"dataset": "nope"})).status_code == 404

    rows, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{API}/experiments/agent-v1-aaaa/results", params=params)).json()
        rows += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [(r["example_id"], r["repetition"]) for r in rows] == [
        ("ex0", 0), ("ex0", 1), ("ex1", 0), ("ex1", 1), ("ex2", 0)
    ]  # fmt: skip
    assert rows[2]["error"] == "RuntimeError: tool down"
    assert rows[0]["scores"] == {"correct": True, "quality": 0.5}
    assert rows[0]["outputs"] == {"a": "ex0/0"}
    assert rows[0]["inputs"] == {"q": "ex0"}
    assert rows[1]["latency_ms"] == pytest.approx(4.0)


async def test_register_checks_the_dataset_version(client: httpx.AsyncClient) -> None:
    await make_dataset(client, "golden", 1)
    r = await client.post(
        f"{API}/experiments", json={"name": "e", "dataset": "golden", "dataset_version": 7}
    )
    assert r.status_code == 400
    assert "version" in r.json()["error"]["message"]
    r = await client.post(f"{API}/experiments", json={"name": "e", "dataset": "missing"})
    assert r.status_code == 404
    # an existing project (runs came first) becomes the experiment
    runs = [{"id": "r1", "trace_id": "t1", "name": "x", "start_time": T0}]
    await client.post(f"{API}/runs/batch", json={"runs": runs, "project": "late"})
    r = await client.post(f"{API}/experiments", json={"name": "late", "dataset": "golden"})
    assert r.status_code == 200
    assert r.json()["run_count"] == 1


async def test_tags_move_within_a_dataset(client: httpx.AsyncClient) -> None:
    await make_dataset(client, "golden", 1)
    await make_dataset(client, "other", 1)
    a = await register(client, "exp-a", dataset="golden")
    b = await register(client, "exp-b", dataset="golden")
    c = await register(client, "exp-c", dataset="other")
    r = await client.put(f"{API}/experiments/exp-a/tags/main")
    assert r.status_code == 200
    assert r.json()["previous"] is None
    assert r.json()["experiment"]["tags"] == ["main"]
    assert (await client.put(f"{API}/experiments/exp-c/tags/main")).json()["previous"] is None
    r = await client.put(f"{API}/experiments/{b['id']}/tags/main")
    assert r.json()["previous"] == a["id"]
    assert (await client.get(f"{API}/experiments/exp-a")).json()["tags"] == []
    found = await client.get(f"{API}/experiments", params={"dataset": "golden", "tag": "main"})
    assert [e["id"] for e in found.json()["items"]] == [b["id"]]
    other = await client.get(f"{API}/experiments", params={"dataset": "other", "tag": "main"})
    assert [e["id"] for e in other.json()["items"]] == [c["id"]]
    # tagging again is harmless; untagging twice is not
    assert (await client.put(f"{API}/experiments/exp-b/tags/main")).json()["previous"] is None
    assert (await client.put(f"{API}/experiments/exp-b/tags/v1.2")).status_code == 200
    assert (await client.get(f"{API}/experiments/exp-b")).json()["tags"] == ["main", "v1.2"]
    assert (await client.delete(f"{API}/experiments/exp-b/tags/main")).json()["tags"] == ["v1.2"]
    assert (await client.delete(f"{API}/experiments/exp-b/tags/main")).status_code == 404
    assert (await client.put(f"{API}/experiments/exp-b/tags/bad%20tag")).status_code == 400
    await register(client, "no-dataset")
    r = await client.put(f"{API}/experiments/no-dataset/tags/main")
    assert r.status_code == 400
    assert "dataset" in r.json()["error"]["message"]
    # a deleted experiment takes its tags with it
    assert (await client.put(f"{API}/experiments/exp-a/tags/old")).status_code == 200
    assert (await client.delete(f"{API}/projects/{a['id']}")).status_code == 200
    found = await client.get(f"{API}/experiments", params={"dataset": "golden", "tag": "old"})
    assert found.json()["items"] == []


async def test_compare_needs_the_same_dataset(client: httpx.AsyncClient) -> None:
    await make_dataset(client, "golden", 2)
    await make_dataset(client, "other", 2)
    await register(client, "a", dataset="golden")
    await register(client, "b", dataset="golden")
    await register(client, "c", dataset="other")
    await register(client, "d")
    await store_calls(client, "a", [("ex0", 0, {"correct": 1}, False)])
    await store_calls(client, "b", [("ex0", 0, {"correct": 0}, False)])
    await store_calls(client, "c", [("ex0", 0, {"correct": 0}, False)])
    await store_calls(client, "d", [("zz", 0, {"correct": 0}, False)])
    r = await client.get(f"{API}/experiments/compare", params={"baseline": "a", "candidate": "c"})
    assert r.status_code == 400
    assert "different datasets" in r.json()["error"]["message"]
    r = await client.get(f"{API}/experiments/compare", params={"baseline": "a", "candidate": "d"})
    assert r.status_code == 400
    assert "share no examples" in r.json()["error"]["message"]
    r = await client.get(f"{API}/experiments/compare", params={"baseline": "a", "candidate": "b"})
    assert r.status_code == 200, r.text
    (cmp,) = r.json()["comparisons"]
    assert (cmp["key"], cmp["n_pairs"], cmp["regressed"], cmp["mean_diff"]) == (
        "correct", 1, 1, -1.0
    )  # fmt: skip
    assert "examples" not in cmp
    assert cmp["verdict"]["regression"] is False
    r = await client.get(
        f"{API}/experiments/compare", params={"baseline": "a", "candidate": "nope"}
    )
    assert r.status_code == 404


async def test_another_workspace_sees_nothing(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await make_dataset(client, "golden", 1)
    exp = await register(client, "mine", dataset="golden")
    await store_calls(client, "mine", [("ex0", 0, {"correct": 1}, False)])
    assert (await anon.get(f"{API}/experiments")).status_code == 401
    assert (await anon.get(f"{API}/experiments/mine")).status_code == 401
    other = await other_workspace_client(app)
    async with other:
        assert (await other.get(f"{API}/experiments")).json()["items"] == []
        for ref in ("mine", exp["id"]):
            assert (await other.get(f"{API}/experiments/{ref}")).status_code == 404
            assert (await other.get(f"{API}/experiments/{ref}/results")).status_code == 404
            assert (await other.put(f"{API}/experiments/{ref}/tags/main")).status_code == 404
            assert (await other.delete(f"{API}/experiments/{ref}/tags/main")).status_code == 404
        params = {"baseline": "mine", "candidate": "mine"}
        assert (await other.get(f"{API}/experiments/compare", params=params)).status_code == 404
        # its own experiment of the same name does not see my runs or feedback
        await make_dataset(other, "golden", 1)
        theirs = await register(other, "mine", dataset="golden")
        assert theirs["run_count"] == 0
        assert theirs["scores"] == {}
        params = {"dataset": exp["dataset_id"]}
        assert (await other.get(f"{API}/experiments", params=params)).status_code == 404
    mine = (await client.get(f"{API}/experiments/mine")).json()
    assert mine["run_count"] == 1
    assert mine["scores"]["correct"]["n"] == 1
