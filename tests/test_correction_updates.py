"""A corrected correction is not lost: a later correction on a run already in a dataset updates
that run's example (a new version, lineage naming every correction in order), through a rule,
the API and the dashboard, on SQLite and PostgreSQL. Replays and identical corrections make no
version; old versions keep the old reference."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pyarrow.parquet as pq
from fastapi import FastAPI

from dashboard_helpers import csrf_of
from goldloop.domain import lineage
from goldloop.services import rule_handlers
from goldloop.services.context import ServiceContext
from goldloop.store.rule_reads import rule_by_id
from goldloop.workers.service_loops import Workers
from test_dashboard_runs import ingest, trace_items

API = "/api/v1"
QUESTION = {"question": "Can I cancel booking B-1042 and get my money back?"}
WRONG = {"answer": "Yes, fully refundable."}
FIRST = {"answer": "Refundable within 24 hours."}  # the first correction, itself wrong
SECOND = {"answer": "Non-refundable; dates can be changed."}


async def ingest_run(client: httpx.AsyncClient, run_id: str = "run-refund") -> None:
    r = await client.post(
        f"{API}/runs/batch",
        json={
            "project": "agent-support",
            "runs": [
                {
                    "id": run_id,
                    "trace_id": f"trace-{run_id}",
                    "name": "support-agent",
                    "start_time": "2025-11-26T23:00:00Z",
                    "end_time": "2025-11-26T23:00:02Z",
                    "inputs": {**QUESTION, "run": run_id},
                    "outputs": WRONG,
                }
            ],
        },
    )
    assert r.status_code == 202, r.text


async def correct(
    client: httpx.AsyncClient, correction: Any, run_id: str = "run-refund"
) -> dict[str, Any]:
    body = {"run_id": run_id, "key": "correctness", "score": 0, "source": "human"}
    if correction is not None:
        body["correction"] = correction
    r = await client.post(f"{API}/feedback", json=body)
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    return made


async def examples(client: httpx.AsyncClient, as_of: int | None = None) -> list[dict[str, Any]]:
    params = {"as_of": as_of} if as_of is not None else {}
    r = await client.get(f"{API}/datasets/golden/examples", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def head_version(client: httpx.AsyncClient) -> int:
    return int((await client.get(f"{API}/datasets/golden/versions")).json()["items"][0]["version"])


async def test_a_rule_updates_the_example_when_a_correction_is_corrected(
    client: httpx.AsyncClient, app: FastAPI, workers: Workers
) -> None:
    await ingest_run(client)
    pid = (await client.get(f"{API}/projects", params={"name": "agent-support"})).json()
    assert (await client.post(f"{API}/datasets", json={"name": "golden"})).status_code == 201
    made = await client.post(
        f"{API}/rules",
        json={
            "project_id": pid["items"][0]["id"],
            "name": "corrections become golden examples",
            "trigger": "feedback",
            "feedback_match": {"has_correction": True},
            "actions": [{"type": "add_to_dataset", "dataset": "golden", "prefer_correction": True}],
        },
    )
    assert made.status_code == 201, made.text
    rule_id = made.json()["id"]

    first = await correct(client, FIRST)
    workers.flush()
    [example] = await examples(client)
    assert (example["outputs"], example["version"]) == (FIRST, 1)
    assert example["lineage"]["correction_feedback_ids"] == [first["id"]]

    second = await correct(client, SECOND)
    workers.flush()
    [example] = await examples(client)
    assert (example["outputs"], example["version"]) == (SECOND, 2)
    assert example["inputs"] == {**QUESTION, "run": "run-refund"}
    assert example["metadata"] == {"added_by_rule": rule_id}  # kept from the first add
    lineage = example["lineage"]
    assert lineage["correction_feedback_id"] == second["id"]
    assert lineage["correction_feedback_ids"] == [first["id"], second["id"]]
    assert lineage["feedback_ids"] == [first["id"], second["id"]]
    assert (lineage["run_id"], lineage["outputs_from"]) == ("run-refund", "correction")
    [v1] = await examples(client, as_of=1)
    assert v1["outputs"] == FIRST  # the old version still reads the old reference
    assert v1["lineage"]["correction_feedback_ids"] == [first["id"]]
    diff = (await client.get(f"{API}/datasets/golden/diff", params={"from": 1})).json()
    assert (diff["added"], diff["changed"]) == ([], [example["id"]])
    history = (await client.get(f"{API}/rules/{rule_id}/history")).json()
    latest = next(a for a in history if a["object_id"] == second["id"])
    assert latest["status"] == "done"
    assert latest["detail"] == {
        "dataset": "golden",
        "example_id": example["id"],
        "outputs_from": "correction",
        "updated": True,
        "correction_feedback_id": second["id"],
        "previous_correction_feedback_id": first["id"],
        "version": 2,
    }

    # Replaying the rule on either feedback (a retry after a lost lease) changes nothing.
    ctx: ServiceContext = app.state.ctx
    rule = ctx.db.read(lambda c: rule_by_id(c, rule_id))
    assert rule is not None
    for fb in (second, first, second):
        action = {"object_id": fb["id"], "trace_id": fb["trace_id"]}
        detail = rule_handlers.add_to_dataset(ctx, rule, action, rule["actions"][0])
        assert detail["skipped"] == "already_added"
    workers.flush()
    assert await head_version(client) == 2

    # A correction equal to the reference now makes no version.
    same = await correct(client, SECOND)
    workers.flush()
    assert await head_version(client) == 2
    [example] = await examples(client)
    assert example["lineage"]["correction_feedback_ids"] == [first["id"], second["id"]]
    history = (await client.get(f"{API}/rules/{rule_id}/history")).json()
    assert next(a for a in history if a["object_id"] == same["id"])["detail"] == {
        "dataset": "golden",
        "skipped": "already_added",
        "example_id": example["id"],
    }

    # The export carries the whole history, in JSONL and Parquet.
    jsonl = await client.get(f"{API}/datasets/golden/export", params={"format": "jsonl"})
    [line] = [json.loads(x) for x in jsonl.text.splitlines()]
    assert line["lineage"]["correction_feedback_ids"] == [first["id"], second["id"]]
    parquet = await client.get(
        f"{API}/datasets/golden/export", params={"format": "parquet", "as_of": 1}
    )
    [cell] = pq.read_table(io.BytesIO(parquet.content)).column("lineage").to_pylist()
    assert json.loads(cell)["correction_feedback_ids"] == [first["id"]]


async def test_adding_runs_explicitly_with_a_correction_updates_their_examples(
    client: httpx.AsyncClient,
) -> None:
    await ingest_run(client, "r1")
    await ingest_run(client, "r2")
    await client.post(f"{API}/datasets", json={"name": "golden"})

    async def add(*run_ids: str, prefer: bool = True) -> dict[str, Any]:
        r = await client.post(
            f"{API}/datasets/golden/runs",
            json={"run_ids": list(run_ids), "prefer_correction": prefer},
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    made = await add("r1", prefer=False)  # from the run's (wrong) outputs
    example_id = made["added"][0]["example_id"]
    first = await correct(client, FIRST, "r1")
    without = await add("r1", prefer=False)  # not explicitly using a correction: unchanged
    assert (without["changed"], without["updated"]) == (False, [])
    assert without["skipped"] == [
        {"run_id": "r1", "reason": "already_added", "example_id": example_id}
    ]

    taken = await add("r1")
    assert (taken["version"], taken["changed"], taken["added"]) == (2, True, [])
    assert taken["updated"] == [
        {
            "run_id": "r1",
            "example_id": example_id,
            "correction_feedback_id": first["id"],
            "previous_correction_feedback_id": None,
        }
    ]
    again = await add("r1")
    assert (again["version"], again["changed"], again["updated"]) == (2, False, [])
    assert [s["reason"] for s in again["skipped"]] == ["already_added"]

    # Later feedback without a correction: still skipped, with the same reason.
    await correct(client, None, "r1")
    assert [s["reason"] for s in (await add("r1"))["skipped"]] == ["already_added"]

    # A new run and a corrected correction in one request: one version with both.
    second = await correct(client, SECOND, "r1")
    both = await add("r2", "r1")
    assert (both["version"], both["skipped"]) == (3, [])
    assert [a["run_id"] for a in both["added"]] == ["r2"]
    assert [(u["run_id"], u["previous_correction_feedback_id"]) for u in both["updated"]] == [
        ("r1", first["id"])
    ]
    versions = (await client.get(f"{API}/datasets/golden/versions")).json()["items"]
    assert [(v["version"], v["added"], v["updated"]) for v in versions[:2]] == [
        (3, 1, 1),
        (2, 0, 1),
    ]
    ex = (await client.get(f"{API}/datasets/golden/examples/{example_id}")).json()
    assert ex["outputs"] == SECOND
    assert ex["lineage"]["correction_feedback_ids"] == [first["id"], second["id"]]
    assert len(ex["lineage"]["feedback_ids"]) == 3  # every feedback on the run, in order
    old = (
        await client.get(f"{API}/datasets/golden/examples/{example_id}", params={"as_of": 1})
    ).json()
    assert (old["outputs"], old["lineage"]["outputs_from"]) == (WRONG, "run")


async def test_an_example_edited_by_hand_is_not_reverted_by_a_replay(
    client: httpx.AsyncClient,
) -> None:
    await ingest_run(client)
    await client.post(f"{API}/datasets", json={"name": "golden"})
    await correct(client, FIRST)
    body = {"run_ids": ["run-refund"], "prefer_correction": True}
    made = (await client.post(f"{API}/datasets/golden/runs", json=body)).json()
    example_id = made["added"][0]["example_id"]
    edited = {"answer": "Fixed by hand."}
    patched = await client.patch(
        f"{API}/datasets/golden/examples/{example_id}", json={"outputs": edited}
    )
    assert patched.json()["version"] == 2
    again = (await client.post(f"{API}/datasets/golden/runs", json=body)).json()
    assert (again["version"], again["changed"]) == (2, False)
    ex = (await client.get(f"{API}/datasets/golden/examples/{example_id}")).json()
    assert ex["outputs"] == edited


async def test_the_dashboard_takes_a_later_correction(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await ingest(client, trace_items("tc"))
    page = await browser.get("/traces/tc", params={"run": "tc-root"})
    token = csrf_of(page.text)
    form = {"csrf": token, "dataset": "golden", "prefer_correction": "on"}
    await correct(client, FIRST, "tc-root")
    added = await browser.post("/runs/tc-root/dataset", data=form)
    assert added.status_code == 303
    await correct(client, SECOND, "tc-root")
    updated = await browser.post("/runs/tc-root/dataset", data=form)
    assert updated.status_code == 303
    assert "updated=" in updated.headers["location"]
    shown = await browser.get(updated.headers["location"])
    assert "its reference output is now the run's latest correction" in shown.text
    assert "as version 2" in shown.text
    assert "Non-refundable; dates can be changed." in shown.text
    again = await browser.post("/runs/tc-root/dataset", data=form)
    assert again.status_code == 400
    assert "already in the dataset, with no correction its example has not taken" in again.text


def test_lineage_written_before_the_history_was_kept_reads_as_one_correction() -> None:
    old = {
        "run_id": "r",
        "feedback_ids": ["a", "x"],
        "correction_feedback_id": "a",
        "outputs_from": "correction",
        "note": "kept",
    }
    assert lineage.correction_history(old) == ["a"]
    assert lineage.corrected(old, "b", ["a", "b", "x"]) == {
        "run_id": "r",
        "feedback_ids": ["a", "x", "b"],
        "correction_feedback_id": "b",
        "correction_feedback_ids": ["a", "b"],
        "outputs_from": "correction",
        "note": "kept",
    }
    assert lineage.correction_history(None) == []
    assert lineage.correction_history({"correction_feedback_id": None}) == []
