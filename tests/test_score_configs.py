"""Score configs (declared feedback keys with a rubric) and feedback history, through the API:
validation on every path that writes feedback, categorical value <-> score mapping, edits and
deletions kept with who and when, workspaces and roles."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa
from alembic import command
from fastapi import FastAPI

from fixture_runs import insert_run, other_workspace_client
from goldloop.services import auth
from goldloop.store import migrate
from goldloop.store.database import Database
from goldloop.store.schema import feedback_keys
from goldloop.workers.service_loops import Workers

API = "/api/v1"

TONE = {
    "kind": "categorical",
    "categories": [
        {"label": "rude", "score": 0},
        {"label": "neutral", "score": 0.5},
        {"label": "warm", "score": 1},
    ],
    "description": "How the answer sounds to the guest.",
    "rubric": "warm: friendly and specific.\nrude: dismissive or blaming.",
    "correction_expected": True,
}


async def post(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post(f"{API}/feedback", json=body)


def member_client(app: FastAPI) -> httpx.AsyncClient:
    ctx = app.state.ctx
    ws = auth.workspace_by_name(ctx, auth.DEFAULT_WORKSPACE)
    key = auth.create_key(ctx, ws.id, "reviewer ann", role="member")
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://goldloop.test",
        headers={"x-api-key": key.secret},
    )


async def test_a_score_config_round_trips_with_rubric_and_category_scores(
    client: httpx.AsyncClient,
) -> None:
    put = await client.put(f"{API}/feedback-keys/tone", json=TONE)
    assert put.status_code == 201, put.text
    assert put.json() == {
        "key": "tone",
        "kind": "categorical",
        "min": None,
        "max": None,
        "categories": [
            {"label": "rude", "score": 0.0},
            {"label": "neutral", "score": 0.5},
            {"label": "warm", "score": 1.0},
        ],
        "description": "How the answer sounds to the guest.",
        "rubric": "warm: friendly and specific.\nrude: dismissive or blaming.",
        "correction_expected": True,
        "lower_is_better": False,
    }
    assert (await client.get(f"{API}/feedback-keys/tone")).json() == put.json()
    # plain labels still declare categories without scores
    labels = await client.put(
        f"{API}/feedback-keys/topic", json={"kind": "categorical", "categories": ["a", "b"]}
    )
    assert labels.json()["categories"] == [
        {"label": "a", "score": None},
        {"label": "b", "score": None},
    ]


async def test_bad_score_configs_say_which_field_and_why(client: httpx.AsyncClient) -> None:
    cases = [
        (
            {"kind": "categorical", "categories": [{"label": "a", "score": 1}, "b"]},
            "every category a score, or none",
        ),
        (
            {
                "kind": "categorical",
                "categories": [{"label": "a", "score": 1}, {"label": "b", "score": 1}],
            },
            "category scores must be distinct",
        ),
        ({"kind": "categorical", "categories": ["a", "a"]}, "labels must be distinct"),
        (
            {"kind": "categorical", "categories": [{"label": "", "score": 1}]},
            "categories[0]: a label is a string",
        ),
        ({"kind": "categorical", "categories": [{"label": "a", "points": 1}]}, "Extra inputs"),
        ({"kind": "boolean", "rubric": "x" * 20_001}, "rubric is longer than 20000"),
        ({"kind": "boolean", "rubric": "a\x00b"}, "rubric must not contain a NUL character"),
        ({"kind": "boolean", "description": "a\x00b"}, "description must not contain a NUL"),
        ({"kind": "stars"}, "kind must be one of continuous, categorical, boolean, freeform"),
    ]
    for body, message in cases:
        r = await client.put(f"{API}/feedback-keys/k", json=body)
        assert r.status_code in (400, 422), (body, r.text)
        assert message in r.text, (body, r.text)
    assert (await client.get(f"{API}/feedback-keys/k")).status_code == 404


async def test_categorical_values_map_to_scores_and_back(client: httpx.AsyncClient) -> None:
    await client.put(f"{API}/feedback-keys/tone", json=TONE)
    by_value = (await post(client, run_id="r1", key="tone", value="warm")).json()
    assert (by_value["value"], by_value["score"]) == ("warm", 1.0)
    by_score = (await post(client, run_id="r2", key="tone", score=0.5)).json()
    assert (by_score["value"], by_score["score"]) == ("neutral", 0.5)
    both = await post(client, run_id="r3", key="tone", value="rude", score=0)
    assert both.status_code == 201
    assert (both.json()["value"], both.json()["score"]) == ("rude", 0.0)

    clash = await post(client, run_id="r4", key="tone", value="rude", score=1)
    assert clash.status_code == 400
    assert clash.json()["error"]["message"] == (
        "feedback key 'tone' is declared categorical: score 1 does not match category 'rude', "
        "whose score is 0"
    )
    assert clash.json()["error"]["details"]["field"] == "score"
    nowhere = await post(client, run_id="r4", key="tone", score=0.7)
    assert nowhere.status_code == 400
    assert (
        "score 0.7 is not the score of any of its categories (0 (rude), 0.5 (neutral), "
        in (nowhere.json()["error"]["message"])
    )

    # an edit of the category brings its score along, an edit of the score its category
    edited = await client.patch(f"{API}/feedback/{by_value['id']}", json={"value": "rude"})
    assert (edited.json()["value"], edited.json()["score"]) == ("rude", 0.0)
    edited = await client.patch(f"{API}/feedback/{by_value['id']}", json={"score": 0.5})
    assert (edited.json()["value"], edited.json()["score"]) == ("neutral", 0.5)
    refused = await client.patch(f"{API}/feedback/{by_value['id']}", json={"value": "shouty"})
    assert refused.status_code == 400
    assert "'shouty' is not one of its categories ('rude', 'neutral', 'warm')" in refused.text
    kept = (await client.get(f"{API}/feedback/{by_value['id']}")).json()
    assert (kept["value"], kept["score"]) == ("neutral", 0.5)


async def test_langsmith_feedback_is_checked_against_the_config(client: httpx.AsyncClient) -> None:
    await client.put(
        f"{API}/feedback-keys/quality", json={"kind": "continuous", "min": 0, "max": 1}
    )
    await client.put(f"{API}/feedback-keys/tone", json=TONE)
    bad = await client.post(
        "/langsmith/feedback", json={"run_id": "r", "key": "quality", "score": 1.5}
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == (
        "feedback key 'quality' is declared continuous: score 1.5 is outside its range [0, 1]"
    )
    good = await client.post("/langsmith/feedback", json={"run_id": "r", "key": "tone", "score": 1})
    assert good.status_code == 200
    assert good.json()["value"] == "warm"
    # a multipart ingest that carries feedback goes through the same check
    undeclared = await client.post(
        "/langsmith/feedback", json={"run_id": "r", "key": "free", "score": 99, "value": "x"}
    )
    assert undeclared.status_code == 200


async def test_rule_written_feedback_that_does_not_fit_is_reported_not_stored(
    client: httpx.AsyncClient, workers: Workers
) -> None:
    from test_rules_flow import post_runs, project_id, run_items

    await client.put(f"{API}/feedback-keys/ok", json={"kind": "continuous", "min": 2, "max": 3})
    pid = await project_id(client)
    rule = await client.post(
        "/api/v1/rules",
        json={
            "project_id": pid,
            "name": "regex check",
            "actions": [
                {
                    "type": "evaluate",
                    "evaluators": [{"name": "regex", "config": {"key": "ok", "pattern": "a"}}],
                }
            ],
        },
    )
    assert rule.status_code == 201, rule.text
    await post_runs(client, run_items(2))
    workers.flush()
    history = (await client.get(f"/api/v1/rules/{rule.json()['id']}/history")).json()
    assert len(history) == 2
    for action in history:
        assert action["detail"]["scores"] == []
        (error,) = action["detail"]["errors"]
        assert error["key"] == "ok"
        assert (
            "feedback key 'ok' is declared continuous: score 1 is outside its range [2, 3]"
            in (error["error"])
        )
    assert (await client.get(f"{API}/feedback", params={"key": "ok"})).json()["items"] == []


async def test_edits_and_deletion_keep_history_with_who_and_when(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    insert_run(app, "run-h", trace_id="trace-h")
    await client.put(f"{API}/feedback-keys/tone", json=TONE)
    fb = (await post(client, run_id="run-h", key="tone", value="warm", comment="nice")).json()
    async with member_client(app) as ann:
        r = await ann.patch(f"{API}/feedback/{fb['id']}", json={"value": "neutral"})
        assert r.status_code == 200
        # a PATCH that changes nothing leaves no history
        same = await ann.patch(f"{API}/feedback/{fb['id']}", json={"comment": "nice"})
        assert same.status_code == 200
    await client.patch(f"{API}/feedback/{fb['id']}", json={"comment": None})
    assert (await client.delete(f"{API}/feedback/{fb['id']}")).status_code == 200
    assert (await client.get(f"{API}/feedback/{fb['id']}")).status_code == 404

    hist = (await client.get(f"{API}/feedback/{fb['id']}/history")).json()
    assert hist["id"] == fb["id"]
    items = hist["items"]
    assert [h["action"] for h in items] == ["edited", "edited", "deleted"]
    assert [(h["old"]["value"], h["old"]["score"], h["old"]["comment"]) for h in items] == [
        ("warm", 1.0, "nice"),
        ("neutral", 0.5, "nice"),
        ("neutral", 0.5, None),
    ]
    assert items[0]["changed_by_name"] == "reviewer ann"
    assert items[1]["changed_by_name"] == items[2]["changed_by_name"] == "bootstrap admin"
    assert all(h["changed_by"] for h in items)
    times = [h["changed_at"] for h in items]
    assert times == sorted(times)
    assert times[0] >= fb["created_at"]
    assert items[0]["changed_at_iso"].endswith("+00:00")
    assert (await client.get(f"{API}/feedback/nope/history")).status_code == 404
    async with await other_workspace_client(app) as other:
        assert (await other.get(f"{API}/feedback/{fb['id']}/history")).status_code == 404


async def test_workspace_b_cannot_see_or_change_workspace_a_configs(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await client.put(f"{API}/feedback-keys/tone", json=TONE)
    async with await other_workspace_client(app) as other:
        assert (await other.get(f"{API}/feedback-keys")).json()["items"] == []
        assert (await other.get(f"{API}/feedback-keys/tone")).status_code == 404
        assert (await other.delete(f"{API}/feedback-keys/tone")).status_code == 404
        assert (await other.get("/langsmith/feedback-configs")).json() == []
        gone = await other.request("DELETE", "/langsmith/feedback-configs?feedback_key=tone")
        assert gone.status_code == 404
        # their own "tone" is theirs; A's rule does not apply to B's feedback
        free = await other.post(
            f"{API}/feedback", json={"run_id": "r", "key": "tone", "value": "x"}
        )
        assert free.status_code == 201
        mine = await other.put(f"{API}/feedback-keys/tone", json={"kind": "boolean"})
        assert mine.status_code == 201
    still = (await client.get(f"{API}/feedback-keys/tone")).json()
    assert still["kind"] == "categorical"
    assert still["rubric"] == TONE["rubric"]
    refused = await post(client, run_id="r", key="tone", value="x")
    assert refused.status_code == 400


async def test_members_read_score_configs_but_only_admins_write_them(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await client.put(f"{API}/feedback-keys/tone", json=TONE)
    async with member_client(app) as member:
        assert (await member.get(f"{API}/feedback-keys")).status_code == 200
        assert (await member.get(f"{API}/feedback-keys/tone")).json()["kind"] == "categorical"
        assert (await member.get("/langsmith/feedback-configs")).status_code == 200
        for method, url, body in [
            ("PUT", f"{API}/feedback-keys/tone", {"kind": "boolean"}),
            ("PUT", f"{API}/feedback-keys/new", {"kind": "boolean"}),
            ("DELETE", f"{API}/feedback-keys/tone", None),
            ("POST", "/langsmith/feedback-configs", {"feedback_key": "x"}),
            ("PATCH", "/langsmith/feedback-configs", {"feedback_key": "tone"}),
            ("DELETE", "/langsmith/feedback-configs?feedback_key=tone", None),
        ]:
            r = await member.request(method, url, json=body)
            assert r.status_code == 403, (method, url, r.text)
            assert "admin API key" in r.json()["error"]["message"]
        # members still give feedback, checked like anyone's
        ok = await member.post(
            f"{API}/feedback", json={"run_id": "r", "key": "tone", "value": "warm"}
        )
        assert ok.status_code == 201
    assert (await client.get(f"{API}/feedback-keys/tone")).json()["kind"] == "categorical"
    assert (await client.get(f"{API}/feedback-keys/new")).status_code == 404


def test_migration_0020_turns_labels_into_categories_and_back(db: Database) -> None:
    cfg = migrate._config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0019_retention_audit")
    old = sa.table(
        "feedback_keys",
        sa.column("workspace_id"),
        sa.column("key"),
        sa.column("kind"),
        sa.column("categories", sa.JSON),
        sa.column("created_at"),
        sa.column("updated_at"),
    )
    with db.engine.begin() as conn:
        conn.execute(
            sa.insert(old).values(
                workspace_id="w",
                key="tone",
                kind="categorical",
                categories=["calm", "rude"],
                created_at=1,
                updated_at=1,
            )
        )
    migrate.upgrade(db.engine)
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(feedback_keys)).one()
    assert row.categories == [{"label": "calm", "score": None}, {"label": "rude", "score": None}]
    assert (row.rubric, row.correction_expected, row.lower_is_better) == (None, False, False)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0019_retention_audit")
    with db.engine.connect() as conn:
        back = conn.execute(sa.select(old.c.categories)).scalar_one()
    assert back == ["calm", "rude"]
    migrate.upgrade(db.engine)
    assert migrate.current_revision(db.engine) == migrate.head_revision()
