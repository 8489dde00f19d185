from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from fixture_runs import StepClock, insert_run, other_workspace_client
from goldloop.domain.errors import InvalidInput, NotFound
from goldloop.services import feedback as feedback_svc
from goldloop.services.context import ServiceContext
from goldloop.services.feedback import NewFeedback
from run_rows import insert, principal, project_id, run_row

API = "/api/v1"


async def post(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post(f"{API}/feedback", json=body)


async def test_feedback_on_a_stored_run_gets_its_trace(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    insert_run(app, "run-1", trace_id="trace-1")
    r = await post(
        client,
        run_id="run-1",
        key="correctness",
        score=0,
        comment="told the guest a non-refundable rate is refundable",
        correction={"label": "non-refundable"},
        source="human",
        source_info={"user": "oncall@example.com"},
    )
    assert r.status_code == 201, r.text
    fb = r.json()
    assert fb["trace_id"] == "trace-1"
    assert fb["score"] == 0
    assert fb["correction"] == {"label": "non-refundable"}
    assert fb["source_info"] == {"user": "oncall@example.com"}
    assert fb["created_at_iso"].endswith("+00:00")
    assert (await client.get(f"{API}/feedback/{fb['id']}")).json() == fb
    by_run = (await client.get(f"{API}/feedback", params={"run_id": "run-1"})).json()
    assert [f["id"] for f in by_run["items"]] == [fb["id"]]
    by_trace = (await client.get(f"{API}/feedback", params={"trace_id": "trace-1"})).json()
    assert [f["id"] for f in by_trace["items"]] == [fb["id"]]


async def test_feedback_before_its_run_attaches_when_the_run_lands(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    early = (await post(client, run_id="late-run", key="helpful", score=True)).json()
    assert early["trace_id"] is None
    assert early["score"] is True
    on_trace = (await post(client, trace_id="late-trace", key="helpful", score=1)).json()
    missing = await client.get(f"{API}/feedback", params={"trace_id": "late-trace"})
    assert [f["id"] for f in missing.json()["items"]] == [on_trace["id"]]

    insert_run(app, "late-run", trace_id="late-trace")

    attached = (await client.get(f"{API}/feedback/{early['id']}")).json()
    assert attached["trace_id"] == "late-trace"
    both = (await client.get(f"{API}/feedback", params={"trace_id": "late-trace"})).json()
    assert {f["id"] for f in both["items"]} == {early["id"], on_trace["id"]}


async def test_client_id_makes_creation_idempotent(client: httpx.AsyncClient) -> None:
    body = {"feedback_id": "fb-1", "run_id": "r", "key": "correctness", "score": 0.5}
    first = await post(client, **body)
    again = await post(client, **body)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert len((await client.get(f"{API}/feedback")).json()["items"]) == 1

    clash = await post(client, **{**body, "score": 0.9})
    assert clash.status_code == 409
    assert "fb-1" in clash.json()["error"]["message"]


async def test_declared_keys_are_enforced(client: httpx.AsyncClient) -> None:
    put = await client.put(
        f"{API}/feedback-keys/quality", json={"kind": "continuous", "min": 0, "max": 1}
    )
    assert put.status_code == 201
    assert put.json() == {
        "key": "quality",
        "kind": "continuous",
        "min": 0.0,
        "max": 1.0,
        "categories": None,
        "description": None,
        "rubric": None,
        "correction_expected": False,
        "lower_is_better": False,
    }
    await client.put(
        f"{API}/feedback-keys/tone", json={"kind": "categorical", "categories": ["calm", "rude"]}
    )
    await client.put(f"{API}/feedback-keys/resolved", json={"kind": "boolean"})
    again = await client.put(
        f"{API}/feedback-keys/quality", json={"kind": "continuous", "min": 0, "max": 5}
    )
    assert again.status_code == 200
    assert again.json()["max"] == 5

    async def error(**body: Any) -> str:
        r = await post(client, run_id="r", **body)
        assert r.status_code == 400, r.text
        return str(r.json()["error"]["message"])

    assert "must be a number, not a boolean" in await error(key="quality", score=True)
    assert "outside its range [0, 5]" in await error(key="quality", score=7)
    assert "not a value" in await error(key="quality", value="good")
    assert "'angry' is not one of its categories ('calm', 'rude')" in await error(
        key="tone", value="angry"
    )
    assert "must be true or false, not 0.5" in await error(key="resolved", score=0.5)
    assert "number or a boolean, not str" in await error(key="anything", score="high")

    ok = [
        await post(client, run_id="r", key="quality", score=4.5),
        await post(client, run_id="r", key="tone", value="calm"),
        await post(client, run_id="r", key="resolved", score=1),
        await post(client, run_id="r", key="undeclared", score=42, value="anything"),
    ]
    assert [r.status_code for r in ok] == [201] * 4
    assert ok[2].json()["score"] is True

    listed = (await client.get(f"{API}/feedback-keys")).json()["items"]
    assert [k["key"] for k in listed] == ["quality", "resolved", "tone"]
    assert (await client.delete(f"{API}/feedback-keys/tone")).status_code == 200
    assert (await client.get(f"{API}/feedback-keys/tone")).status_code == 404
    assert (await post(client, run_id="r", key="tone", value="angry")).status_code == 201


async def test_bad_declarations_say_why(client: httpx.AsyncClient) -> None:
    cases = [
        ({"kind": "stars"}, "kind must be one of continuous, categorical, boolean"),
        ({"kind": "categorical"}, "needs a non-empty list of categories"),
        ({"kind": "continuous", "min": 2, "max": 1}, "greater than max"),
        ({"kind": "boolean", "categories": ["a"]}, "only to categorical keys"),
    ]
    for body, message in cases:
        r = await client.put(f"{API}/feedback-keys/k", json=body)
        assert r.status_code == 400
        assert message in r.json()["error"]["message"]
    bad_name = await client.put(f"{API}/feedback-keys/%20lead", json={"kind": "boolean"})
    assert bad_name.status_code == 400


async def test_update_and_delete(client: httpx.AsyncClient) -> None:
    await client.put(f"{API}/feedback-keys/quality", json={"kind": "continuous", "max": 1})
    fb = (await post(client, run_id="r", key="quality", score=0.2, comment="meh")).json()
    patched = await client.patch(
        f"{API}/feedback/{fb['id']}", json={"score": 0.9, "comment": None, "correction": "x"}
    )
    assert patched.status_code == 200
    body = patched.json()
    assert (body["score"], body["comment"], body["correction"]) == (0.9, None, "x")
    assert body["run_id"] == "r"
    assert body["updated_at"] >= fb["updated_at"]

    out_of_range = await client.patch(f"{API}/feedback/{fb['id']}", json={"score": 3})
    assert out_of_range.status_code == 400
    cannot = await client.patch(f"{API}/feedback/{fb['id']}", json={"run_id": "other"})
    assert cannot.status_code == 400
    assert cannot.json()["error"]["details"][0]["field"] == "run_id"

    assert (await client.delete(f"{API}/feedback/{fb['id']}")).json()["deleted"] is True
    assert (await client.get(f"{API}/feedback/{fb['id']}")).status_code == 404
    assert (await client.delete(f"{API}/feedback/{fb['id']}")).status_code == 404
    assert (await client.patch(f"{API}/feedback/{fb['id']}", json={})).status_code == 404


async def test_list_filters_and_pagination(app: FastAPI, client: httpx.AsyncClient) -> None:
    app.state.ctx.clock = StepClock()
    made = []
    for i in range(7):
        r = await post(
            client,
            run_id=f"r{i % 2}",
            key="correctness" if i < 5 else "tone",
            score=i / 10,
            source="human" if i % 3 == 0 else "model",
            correction={"n": i} if i in (2, 4) else None,
        )
        made.append(r.json())

    async def ids(**params: Any) -> list[str]:
        page = (await client.get(f"{API}/feedback", params=params)).json()
        return [f["id"] for f in page["items"]]

    newest_first = [f["id"] for f in reversed(made)]
    assert await ids() == newest_first
    assert await ids(key="tone") == newest_first[:2]
    assert await ids(source="human") == [made[6]["id"], made[3]["id"], made[0]["id"]]
    assert await ids(has_correction="true") == [made[4]["id"], made[2]["id"]]
    assert len(await ids(has_correction="false")) == 5
    assert await ids(run_id="r1", key="correctness") == [made[3]["id"], made[1]["id"]]
    assert await ids(since=made[5]["created_at"]) == newest_first[:2]
    assert await ids(until=made[1]["created_at_iso"]) == [made[0]["id"]]

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"{API}/feedback", params=params)).json()
        seen += [f["id"] for f in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first


async def test_bad_input_gets_a_clear_4xx(client: httpx.AsyncClient) -> None:
    no_target = await post(client, key="k", score=1)
    assert no_target.status_code == 400
    assert "run_id or a trace_id" in no_target.json()["error"]["message"]
    bad_source = await post(client, run_id="r", key="k", source="robot")
    assert bad_source.status_code == 400
    assert "source must be one of human, api, app" in bad_source.json()["error"]["message"]
    no_key = await post(client, run_id="r", score=1)
    assert no_key.status_code == 400
    assert no_key.json()["error"]["details"][0]["field"] == "key"
    long_id = await post(client, run_id="r" * 65, key="k")
    assert long_id.status_code == 400
    bad_value = await post(client, run_id="r", key="k", value={"a": 1})
    assert "value must be a string" in bad_value.json()["error"]["message"]
    bad_time = await client.get(f"{API}/feedback", params={"since": "yesterday"})
    assert bad_time.status_code == 400
    assert "since 'yesterday' is not a time" in bad_time.json()["error"]["message"]
    bad_cursor = await client.get(f"{API}/feedback", params={"cursor": "x"})
    assert bad_cursor.status_code == 400
    unknown = await client.get(f"{API}/feedback/nope")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "no feedback with id 'nope'"


async def test_workspaces_are_isolated(app: FastAPI, client: httpx.AsyncClient) -> None:
    mine = (await post(client, feedback_id="same-id", run_id="r", key="k", score=1)).json()
    await client.put(f"{API}/feedback-keys/k", json={"kind": "boolean"})
    async with await other_workspace_client(app) as other:
        assert (await other.get(f"{API}/feedback/{mine['id']}")).status_code == 404
        assert (await other.get(f"{API}/feedback")).json()["items"] == []
        assert (await other.patch(f"{API}/feedback/{mine['id']}", json={})).status_code == 404
        assert (await other.delete(f"{API}/feedback/{mine['id']}")).status_code == 404
        assert (await other.get(f"{API}/feedback-keys")).json()["items"] == []
        theirs = await other.post(
            f"{API}/feedback",
            json={"feedback_id": "same-id", "run_id": "r", "key": "k", "score": 0.3},
        )
        assert theirs.status_code == 201
        assert theirs.json()["score"] == 0.3
    assert (await client.get(f"{API}/feedback/same-id")).json()["score"] == 1


HOUR = 3_600_000_000


async def test_project_feedback_stats(app: FastAPI, client: httpx.AsyncClient) -> None:
    day = 1_764_115_200_000_000  # 2025-11-26T00:00:00Z
    clock = StepClock(start=day, step=0)
    app.state.ctx.clock = clock
    insert_run(app, "a1", trace_id="t1", project="agent-support")
    insert_run(app, "a2", trace_id="t2", project="agent-support")
    insert_run(app, "b1", trace_id="t3", project="elsewhere")
    project = (await client.get(f"{API}/projects", params={"name": "agent-support"})).json()
    pid = project["items"][0]["id"]

    async def at(hour: int, **body: Any) -> None:
        clock.now = day + hour * HOUR + 5
        assert (await post(client, **body)).status_code == 201

    await at(0, run_id="a1", key="correctness", score=0)
    await at(0, run_id="a2", key="correctness", score=1)
    await at(0, trace_id="t2", key="correctness", score=True)
    await at(1, run_id="a1", key="correctness", score=0.5)
    await at(1, run_id="a1", key="correctness", comment="no score")
    await at(1, run_id="a2", key="tone", value="calm")
    await at(1, run_id="b1", key="correctness", score=0)  # another project
    await at(1, run_id="not-arrived", key="correctness", score=0)  # no project yet

    r = await client.get(f"{API}/projects/{pid}/feedback-stats", params={"bucket": "1h"})
    assert r.status_code == 200, r.text
    items = [
        (i["key"], i["bucket_start_iso"], i["count"], i["scored"], i["mean_score"])
        for i in r.json()["items"]
    ]
    assert items == [
        ("correctness", "2025-11-26T00:00:00+00:00", 3, 3, 2 / 3),
        ("correctness", "2025-11-26T01:00:00+00:00", 2, 1, 0.5),
        ("tone", "2025-11-26T01:00:00+00:00", 1, 0, None),
    ]
    daily = await client.get(
        f"{API}/projects/{pid}/feedback-stats",
        params={"key": "correctness", "since": "2025-11-26T01:00:00Z"},
    )
    assert [(i["count"], i["mean_score"]) for i in daily.json()["items"]] == [(2, 0.5)]

    bad = await client.get(f"{API}/projects/{pid}/feedback-stats", params={"bucket": "soon"})
    assert bad.status_code == 400
    assert "not a duration" in bad.json()["error"]["message"]
    unknown = await client.get(f"{API}/projects/nope/feedback-stats")
    assert unknown.status_code == 404


async def test_export_feedback_as_jsonl_and_parquet(client: httpx.AsyncClient) -> None:
    await post(client, run_id="r1", key="correctness", score=0, correction={"label": "x"})
    await post(client, run_id="r2", key="helpful", score=True, source_info={"user": "u"})
    await post(client, trace_id="t3", key="tone", value="calm", comment="ok")

    r = await client.get(f"{API}/feedback-export", params={"format": "jsonl"})
    assert r.status_code == 200
    assert r.headers["x-goldloop-feedback-count"] == "3"
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert [x["key"] for x in lines] == ["tone", "helpful", "correctness"]
    assert lines[1]["score"] is True
    assert lines[2]["correction"] == {"label": "x"}
    listed = (await client.get(f"{API}/feedback")).json()["items"]
    assert [x["id"] for x in lines] == [x["id"] for x in listed]

    only = await client.get(
        f"{API}/feedback-export", params={"format": "parquet", "has_correction": "true"}
    )
    table = pq.read_table(io.BytesIO(only.content))
    assert table.schema.metadata[b"goldloop.format"] == b"feedback/1"
    assert table.column("key").to_pylist() == ["correctness"]
    assert table.column("correction").to_pylist() == ['{"label":"x"}']

    bad = await client.get(f"{API}/feedback-export", params={"format": "xml"})
    assert bad.status_code == 400
    assert "format must be one of jsonl, parquet" in bad.json()["error"]["message"]


def test_create_many_gives_each_item_the_outcome_create_would(ctx: ServiceContext) -> None:
    """What an online rule stores for one run: several scores in one write transaction, each
    accepted or refused on its own, exactly as one ``create`` each would answer."""
    who = principal(ctx)
    feedback_svc.put_key(ctx, who, "quality", "continuous", min_score=0, max_score=1)
    insert(ctx.db, [run_row(who.workspace_id, project_id(ctx, who), "r1", trace_id="t1")])
    earlier = feedback_svc.create(
        ctx, who, NewFeedback(key="ok", run_id="r1", score=1, feedback_id="fb-earlier")
    )
    items = [
        NewFeedback(key="quality", run_id="r1", score=0.25, feedback_id="fb-1"),
        NewFeedback(key="quality", run_id="r1", score=7, feedback_id="fb-2"),  # outside 0..1
        NewFeedback(key="ok", run_id="r1", score=1, feedback_id="fb-earlier"),  # a replay
        NewFeedback(key="ok", run_id="r1", score=0, feedback_id="fb-earlier"),  # other body
        NewFeedback(key="", run_id="r1", score=1),  # no key: refused before the write
        NewFeedback(key="tone", run_id="r1", value="calm", feedback_id="fb-3"),
    ]
    commits: list[object] = []

    def count(conn: object) -> None:
        commits.append(conn)

    sa.event.listen(ctx.db.engine, "commit", count)
    try:
        out = feedback_svc.create_many(ctx, who, items)
    finally:
        sa.event.remove(ctx.db.engine, "commit", count)
    assert len(commits) == 1  # one write transaction for the whole list

    assert [type(o).__name__ for o in out] == [
        "Created",
        "InvalidInput",
        "Created",
        "Conflict",
        "InvalidInput",
        "Created",
    ]
    first, _, replay, _, _, last = out
    assert isinstance(first, feedback_svc.Created)
    assert first.created
    assert (first.feedback.trace_id, first.feedback.score) == ("t1", 0.25)
    assert isinstance(replay, feedback_svc.Created)
    assert not replay.created
    assert replay.feedback == earlier.feedback
    assert isinstance(out[1], InvalidInput)
    assert "quality" in out[1].message
    assert isinstance(last, feedback_svc.Created)
    assert last.feedback.value == "calm"
    # what create_many answered is what is stored, and nothing refused was
    for done in (first, last):
        assert isinstance(done, feedback_svc.Created)
        assert feedback_svc.get(ctx, who, done.feedback.id) == done.feedback
    with pytest.raises(NotFound):
        feedback_svc.get(ctx, who, "fb-2")
    assert feedback_svc.get(ctx, who, "fb-earlier").score == 1
