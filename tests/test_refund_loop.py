"""The refund incident, end to end over the HTTP API: a run that told a guest a non-refundable
rate is refundable, a correction, the run added to `support-golden`, and the versions."""

from __future__ import annotations

from typing import Any

import httpx

API = "/api/v1"
QUESTION = {"question": "Can I cancel booking B-1042 and get my money back?"}
WRONG = {"answer": "Yes, your rate is fully refundable.", "label": "refundable"}
CORRECTION = {
    "answer": "Your rate is non-refundable; you can change dates.",
    "label": "non-refundable",
}


async def ingest(client: httpx.AsyncClient, *runs: dict[str, Any]) -> None:
    r = await client.post(
        f"{API}/runs/batch", json={"project": "agent-support", "runs": list(runs)}
    )
    assert r.status_code == 202, r.text


async def test_a_corrected_production_run_becomes_a_versioned_test_case(
    client: httpx.AsyncClient,
) -> None:
    await ingest(
        client,
        {
            "id": "run-refund",
            "trace_id": "trace-refund",
            "name": "support-agent",
            "kind": "agent",
            "start_time": "2025-11-26T23:00:00Z",
            "inputs": QUESTION,
        },
        {
            "id": "run-refund",
            "trace_id": "trace-refund",
            "end_time": "2025-11-26T23:00:02Z",
            "outputs": WRONG,
        },
        {
            "id": "run-ok",
            "trace_id": "trace-ok",
            "name": "support-agent",
            "kind": "agent",
            "start_time": "2025-11-26T23:05:00Z",
            "inputs": {"question": "Is breakfast included?"},
            "end_time": "2025-11-26T23:05:01Z",
            "outputs": {"answer": "Yes, 7-10am.", "label": "included"},
        },
    )
    await client.put(
        f"{API}/feedback-keys/correctness", json={"kind": "continuous", "min": 0, "max": 1}
    )
    fb = await client.post(
        f"{API}/feedback",
        json={
            "run_id": "run-refund",
            "key": "correctness",
            "score": 0,
            "correction": CORRECTION,
            "source": "human",
            "source_info": {"user": "oncall"},
            "comment": "complaint ticket T-88: told guest the rate is refundable",
        },
    )
    assert fb.status_code == 201, fb.text
    feedback = fb.json()
    assert feedback["trace_id"] == "trace-refund"

    ds = await client.post(
        f"{API}/datasets",
        json={
            "name": "support-golden",
            "inputs_schema": {"type": "object", "required": ["question"]},
            "outputs_schema": {"type": "object", "required": ["label"]},
        },
    )
    assert ds.status_code == 201
    baseline = await client.post(
        f"{API}/datasets/support-golden/runs", json={"run_ids": ["run-ok"]}
    )
    assert baseline.json()["version"] == 1
    good = await client.put(f"{API}/datasets/support-golden/tags/baseline", json={})
    assert good.json()["version"] == 1

    added = await client.post(
        f"{API}/datasets/support-golden/runs",
        json={"run_ids": ["run-refund"], "prefer_correction": True, "splits": ["regression"]},
    )
    assert added.status_code == 201, added.text
    body = added.json()
    assert (body["version"], body["changed"], body["skipped"]) == (2, True, [])
    [item] = body["added"]
    assert (item["run_id"], item["outputs_from"]) == ("run-refund", "correction")

    example = (
        await client.get(f"{API}/datasets/support-golden/examples/{item['example_id']}")
    ).json()
    assert example["inputs"] == QUESTION
    assert example["outputs"] == CORRECTION
    assert example["splits"] == ["regression"]
    assert example["version"] == 2
    assert example["lineage"] == {
        "run_id": "run-refund",
        "trace_id": "trace-refund",
        "project_id": example["lineage"]["project_id"],
        "feedback_ids": [feedback["id"]],
        "correction_feedback_id": feedback["id"],
        "correction_feedback_ids": [feedback["id"]],
        "outputs_from": "correction",
    }
    project = (await client.get(f"{API}/projects", params={"name": "agent-support"})).json()
    assert example["lineage"]["project_id"] == project["items"][0]["id"]

    before = await client.get(f"{API}/datasets/support-golden/examples", params={"as_of": 1})
    assert [e["lineage"]["run_id"] for e in before.json()["items"]] == ["run-ok"]
    pinned = await client.get(
        f"{API}/datasets/support-golden/examples", params={"as_of": "baseline"}
    )
    assert pinned.json()["items"] == before.json()["items"]
    now = (await client.get(f"{API}/datasets/support-golden/examples")).json()
    assert [e["lineage"]["run_id"] for e in now["items"]] == ["run-ok", "run-refund"]
    diff = await client.get(f"{API}/datasets/support-golden/diff", params={"from": "baseline"})
    assert diff.json()["added"] == [item["example_id"]]

    # Adding the same run again does not duplicate it, and makes no version.
    again = await client.post(
        f"{API}/datasets/support-golden/runs",
        json={"run_ids": ["run-refund"], "prefer_correction": True},
    )
    assert again.json()["changed"] is False
    assert again.json()["version"] == 2
    assert again.json()["skipped"] == [
        {"run_id": "run-refund", "reason": "already_added", "example_id": item["example_id"]}
    ]


async def test_runs_with_equal_inputs_and_without_correction(client: httpx.AsyncClient) -> None:
    same = {"question": "Late checkout?"}
    await ingest(
        client,
        {"id": "a", "trace_id": "ta", "name": "n", "inputs": same, "outputs": {"answer": "no"}},
        {"id": "b", "trace_id": "tb", "name": "n", "inputs": same, "outputs": {"answer": "yes"}},
        {
            "id": "c",
            "trace_id": "tc",
            "name": "n",
            "inputs": {"question": "Pets?"},
            "outputs": {"answer": "dogs only"},
        },
    )
    # trace-level feedback with a correction applies to the trace's root run
    await client.post(
        f"{API}/feedback",
        json={"trace_id": "tc", "key": "correctness", "score": 0, "correction": {"answer": "no"}},
    )
    await client.post(f"{API}/datasets", json={"name": "d"})
    r = await client.post(
        f"{API}/datasets/d/runs", json={"run_ids": ["a", "b", "c"], "prefer_correction": True}
    )
    body = r.json()
    assert [(a["run_id"], a["outputs_from"]) for a in body["added"]] == [
        ("a", "run"),
        ("c", "correction"),
    ]
    assert body["skipped"] == [
        {"run_id": "b", "reason": "duplicate_inputs", "example_id": body["added"][0]["example_id"]}
    ]
    items = (await client.get(f"{API}/datasets/d/examples")).json()["items"]
    assert [e["outputs"] for e in items] == [{"answer": "no"}, {"answer": "no"}]
    allowed = await client.post(
        f"{API}/datasets/d/runs", json={"run_ids": ["b"], "allow_duplicates": True}
    )
    assert [a["run_id"] for a in allowed.json()["added"]] == ["b"]


async def test_adding_runs_bad_input(client: httpx.AsyncClient) -> None:
    await ingest(client, {"id": "r1", "trace_id": "t1", "name": "n", "inputs": {"q": 1}})
    unknown_ds = await client.post(f"{API}/datasets/nope/runs", json={"run_ids": ["r1"]})
    assert unknown_ds.status_code == 404
    await client.post(
        f"{API}/datasets",
        json={"name": "d", "inputs_schema": {"type": "object", "required": ["question"]}},
    )
    unknown_run = await client.post(f"{API}/datasets/d/runs", json={"run_ids": ["r1", "ghost"]})
    assert unknown_run.status_code == 404
    err = unknown_run.json()["error"]
    assert err["message"].startswith("no run with id 'ghost' in this workspace")
    assert err["details"] == {"missing_run_ids": ["ghost"]}
    violates = await client.post(f"{API}/datasets/d/runs", json={"run_ids": ["r1"]})
    assert violates.status_code == 400
    assert "inputs at $: 'question' is a required property" in violates.json()["error"]["message"]
    none = await client.post(f"{API}/datasets/d/runs", json={"run_ids": []})
    assert none.status_code == 400
