"""Retention policies, trace deletion, erasure across dataset versions, the audit log
(issue #25): on SQLite and PostgreSQL, through the real API and the real worker loop."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from goldloop.services import auth
from goldloop.services.retention import DAY_US, RetentionWorker
from goldloop.store.schema import dataset_examples, feedback, runs
from goldloop.workers.service_loops import Workers
from run_rows import insert, run_row

API = "/api/v1"


def _workspace_id(app: FastAPI) -> str:
    db = app.state.ctx.db
    return str(db.read(lambda c: c.exec_driver_sql("SELECT id FROM workspaces").scalar()))


async def _project(client: httpx.AsyncClient, name: str) -> str:
    r = await client.post(f"{API}/projects", json={"name": name})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _trace(ws: str, project: str, trace: str, start: int | None, **kw: Any) -> list[dict[str, Any]]:
    """A root and one child run."""
    root = run_row(ws, project, f"{trace}-root", trace_id=trace, start_time=start, **kw)
    child = run_row(
        ws,
        project,
        f"{trace}-llm",
        trace_id=trace,
        parent_id=f"{trace}-root",
        start_time=start,
        kind="llm",
        **kw,
    )
    return [root, child]


def _run_ids(app: FastAPI) -> set[str]:
    return set(app.state.ctx.db.read(lambda c: c.execute(sa.select(runs.c.id)).scalars().all()))


def _feedback_run_ids(app: FastAPI) -> set[str]:
    query = sa.select(feedback.c.run_id)
    return set(app.state.ctx.db.read(lambda c: c.execute(query).scalars().all()))


async def _feedback(client: httpx.AsyncClient, run_id: str, key: str = "ok") -> None:
    r = await client.post(f"{API}/feedback", json={"run_id": run_id, "key": key, "score": 1})
    assert r.status_code == 201, r.text


async def _member(app: FastAPI) -> dict[str, str]:
    ctx = app.state.ctx
    ws = auth.workspace_by_name(ctx, "default")
    return {"x-api-key": auth.create_key(ctx, ws.id, "reader", role="member").secret}


async def _other_admin(app: FastAPI) -> dict[str, str]:
    ctx = app.state.ctx
    ws = auth.create_workspace(ctx, "other-team")
    return {"x-api-key": auth.create_key(ctx, ws.id, "theirs", role="admin").secret}


# --- retention -------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [2, 2000])
async def test_retention_deletes_expired_runs_and_keeps_what_the_policy_keeps(
    app: FastAPI, client: httpx.AsyncClient, batch: int
) -> None:
    ctx = app.state.ctx
    ws = _workspace_id(app)
    project = await _project(client, "support")
    other = await _project(client, "no-policy")
    now = ctx.clock()
    old, recent = now - 40 * DAY_US, now - 1 * DAY_US
    rows = (
        _trace(ws, project, "old-plain", old)
        + _trace(ws, project, "old-feedback", old)
        + _trace(ws, project, "old-dataset", old)
        + _trace(ws, project, "recent", recent)
        + _trace(ws, project, "old-no-start", None, created_at=old, updated_at=old)
        + _trace(ws, other, "other-old", old)
    )
    # a trace whose old root has feedback on the trace (not on a run)
    rows += _trace(ws, project, "old-trace-feedback", old)
    insert(ctx.db, rows)
    await _feedback(client, "old-feedback-llm")
    trace_fb = await client.post(
        f"{API}/feedback", json={"trace_id": "old-trace-feedback", "key": "ok", "score": 0}
    )
    assert trace_fb.status_code == 201
    await _feedback(client, "old-plain-llm", key="doomed")  # kept: any feedback keeps a trace
    ds = (await client.post(f"{API}/datasets", json={"name": "golden"})).json()
    added = await client.post(f"{API}/datasets/golden/runs", json={"run_ids": ["old-dataset-root"]})
    assert added.status_code == 201, added.text

    put = await client.put(
        f"{API}/projects/support/retention",
        json={"keep_days": 30, "keep_with_feedback": True, "keep_in_datasets": True},
    )
    assert put.status_code == 200, put.text
    assert put.json()["keep_days"] == 30

    small = dataclasses.replace(
        ctx, settings=dataclasses.replace(ctx.settings, retention_batch_runs=batch)
    )
    worker = RetentionWorker(small)
    while worker.tick():
        pass

    left = _run_ids(app)
    # old-plain has feedback too (key "doomed"): it is kept like any trace with feedback
    assert left == {
        f"{t}-{r}"
        for t in (
            "old-feedback",
            "old-dataset",
            "recent",
            "other-old",
            "old-plain",
            "old-trace-feedback",
        )
        for r in ("root", "llm")
    }
    got = (await client.get(f"{API}/projects/support/retention")).json()
    assert got["runs_deleted"] == 2  # old-no-start, aged by when it was stored
    assert got["last_pass_at"] is not None
    assert ds["name"] == "golden"

    # without the keep options every expired run goes, and the feedback on it
    await client.put(f"{API}/projects/support/retention", json={"keep_days": 30})
    worker = RetentionWorker(small)
    while worker.tick():
        pass
    assert _run_ids(app) == {"recent-root", "recent-llm", "other-old-root", "other-old-llm"}
    assert _feedback_run_ids(app) == set()
    traces = app.state.ctx.db.read(
        lambda c: (
            c.execute(sa.select(feedback.c.trace_id).where(feedback.c.run_id.is_(None)))
            .scalars()
            .all()
        )
    )
    assert traces == []  # trace-level feedback went with the trace's last run
    # the dataset example made from a deleted run stays (retention never edits datasets)
    examples = (await client.get(f"{API}/datasets/golden/examples")).json()["items"]
    assert len(examples) == 1

    audit = (await client.get(f"{API}/audit", params={"action": "retention.set"})).json()
    assert [e["details"]["keep_days"] for e in audit] == [30, 30]
    assert audit[0]["details"]["keep_with_feedback"] is False


async def test_retention_runs_in_the_worker_loop_and_a_second_pass_waits(
    app: FastAPI, client: httpx.AsyncClient, workers: Workers
) -> None:
    ctx = app.state.ctx
    ws = _workspace_id(app)
    project = await _project(client, "p")
    old = ctx.clock() - 10 * DAY_US
    insert(ctx.db, _trace(ws, project, "a", old))
    assert (
        await client.put(f"{API}/projects/{project}/retention", json={"keep_days": 7})
    ).status_code == 200
    workers.flush()
    assert _run_ids(app) == set()
    insert(ctx.db, _trace(ws, project, "b", old))
    workers.flush()  # the next pass is retention_interval_s away
    assert _run_ids(app) == {"b-root", "b-llm"}


async def test_retention_policy_input_errors_and_removal(client: httpx.AsyncClient) -> None:
    await _project(client, "p")
    for body in ({"keep_days": 0}, {"keep_days": 100_000}, {"keep_days": "x"}, {}):
        r = await client.put(f"{API}/projects/p/retention", json=body)
        assert r.status_code in (400, 422), r.text
    assert (await client.get(f"{API}/projects/p/retention")).status_code == 404
    assert (
        await client.put(f"{API}/projects/nope/retention", json={"keep_days": 3})
    ).status_code == 404
    assert (
        await client.put(f"{API}/projects/p/retention", json={"keep_days": 3})
    ).status_code == 200
    assert (await client.delete(f"{API}/projects/p/retention")).status_code == 204
    assert (await client.delete(f"{API}/projects/p/retention")).status_code == 404
    actions = [e["action"] for e in (await client.get(f"{API}/audit")).json()]
    assert actions[:2] == ["retention.removed", "retention.set"]


# --- deleting traces -------------------------------------------------------------------------


async def test_trace_deletion_preview_count_equals_what_is_deleted(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ctx = app.state.ctx
    ws = _workspace_id(app)
    project = await _project(client, "p")
    rows: list[dict[str, Any]] = []
    for i in range(30):
        status = "error" if i % 3 == 0 else "success"
        for r in _trace(ws, project, f"t{i}", 1_764_150_000_000_000 + i):
            r["status"] = status if r["is_root"] else "success"
            rows.append(r)
    insert(ctx.db, rows)
    for i in (0, 1, 3):
        await _feedback(client, f"t{i}-llm")
    body = {"filter": 'root and status = "error"', "project": "p"}
    preview = await client.post(f"{API}/traces/delete", json={**body, "dry_run": True})
    assert preview.status_code == 200, preview.text
    assert preview.json() == {
        "dry_run": True,
        "traces": 10,
        "runs": 20,
        "feedback": 2,
        "examples": 0,
        "example_rows": 0,
    }
    assert len(_run_ids(app)) == 60  # a preview deletes nothing
    done = await client.post(f"{API}/traces/delete", json=body)
    assert done.json() == {**preview.json(), "dry_run": False}
    left = _run_ids(app)
    assert len(left) == 40
    assert not any(r.startswith(("t0-", "t3-", "t27-")) for r in left)
    assert _feedback_run_ids(app) == {"t1-llm"}
    again = (await client.post(f"{API}/traces/delete", json=body)).json()
    assert again["traces"] == again["runs"] == 0

    by_id = {"trace_ids": ["t1", "t2", "no-such-trace"], "dry_run": True}
    assert (await client.post(f"{API}/traces/delete", json=by_id)).json()["runs"] == 4
    gone = (await client.post(f"{API}/traces/delete", json={**by_id, "dry_run": False})).json()
    assert (gone["traces"], gone["runs"], gone["feedback"]) == (2, 4, 1)
    entries = (await client.get(f"{API}/audit", params={"action": "traces.deleted"})).json()
    assert [e["details"]["runs"] for e in entries] == [4, 0, 20]
    assert all("status" not in orjson.dumps(e).decode() for e in entries)  # no filter text


async def test_bad_filters_and_selectors_are_400_naming_the_problem(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(f"{API}/traces/delete", json={"filter": 'status = "error" and'})
    assert r.status_code == 400
    assert r.json()["error"]["details"]["position"] == len('status = "error" and')
    r = await client.post(f"{API}/erasure", json={"filter": "latency > banana"})
    assert r.status_code == 400
    assert r.json()["error"]["details"]["field"] == "filter"
    assert "position" in r.json()["error"]["details"]
    assert (await client.post(f"{API}/traces/delete", json={})).status_code == 400
    both = {"trace_ids": ["a"], "filter": "root"}
    assert (await client.post(f"{API}/traces/delete", json=both)).status_code == 400
    assert (await client.post(f"{API}/erasure", json={})).status_code == 400
    two = {"user_id": "a", "filter": "root"}
    assert (await client.post(f"{API}/erasure", json=two)).status_code == 400
    pair = {"metadata": {"a": "1", "b": "2"}}
    assert (await client.post(f"{API}/erasure", json=pair)).status_code == 400
    r = await client.post(f"{API}/traces/delete", json={"filter": "root", "project": "nope"})
    assert r.status_code == 404


# --- erasure across dataset versions ---------------------------------------------------------


async def test_erasure_removes_a_persons_runs_feedback_and_examples_in_every_version(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ctx = app.state.ctx
    ws = _workspace_id(app)
    project = await _project(client, "support")
    alice = _trace(ws, project, "ta", 1_764_150_000_000_000, user_id=None)
    alice[0]["user_id"] = "alice@example.com"
    alice[0]["inputs"] = {"question": "alice's secret question"}
    bob = _trace(ws, project, "tb", 1_764_150_000_000_000, user_id="bob")
    bob[0]["inputs"] = {"question": "bob asks"}
    tagged = _trace(ws, project, "tm", 1_764_150_000_000_000, metadata={"customer": "c-42"})
    tagged[0]["inputs"] = {"question": "customer 42 asks"}
    insert(ctx.db, alice + bob + tagged)
    await _feedback(client, "ta-llm")
    await _feedback(client, "tb-llm")
    await client.post(f"{API}/datasets", json={"name": "golden"})
    v1 = (
        await client.post(f"{API}/datasets/golden/runs", json={"run_ids": ["ta-root", "tb-root"]})
    ).json()
    alice_example = next(a["example_id"] for a in v1["added"] if a["run_id"] == "ta-root")
    # version 2 changes alice's example, version 3 adds the tagged run
    patched = await client.patch(
        f"{API}/datasets/golden/examples/{alice_example}", json={"outputs": {"answer": "v2"}}
    )
    assert patched.status_code == 200, patched.text
    await client.post(f"{API}/datasets/golden/runs", json={"run_ids": ["tm-root"]})
    # an experiment run made from alice's example carries her question too
    insert(
        ctx.db,
        [
            run_row(
                ws,
                project,
                "exp-1",
                trace_id="exp",
                reference_example_id=alice_example,
                inputs={"question": "alice's secret question"},
            )
        ],
    )

    async def at(version: int) -> set[str]:
        page = await client.get(f"{API}/datasets/golden/examples", params={"as_of": str(version)})
        assert page.status_code == 200, page.text
        return {e["inputs"]["question"] for e in page.json()["items"]}

    assert await at(v1["version"]) == {"alice's secret question", "bob asks"}

    body = {"user_id": "alice@example.com"}
    preview = (await client.post(f"{API}/erasure", json={**body, "dry_run": True})).json()
    assert preview == {
        "dry_run": True,
        "traces": 2,
        "runs": 3,
        "feedback": 1,
        "examples": 1,
        "example_rows": 2,
    }
    done = await client.post(f"{API}/erasure", json=body)
    assert done.status_code == 200, done.text
    assert done.json() == {**preview, "dry_run": False}

    for version in (v1["version"], v1["version"] + 1, v1["version"] + 2):
        assert "alice's secret question" not in await at(version)
        assert "bob asks" in await at(version)
    old = await client.get(
        f"{API}/datasets/golden/examples/{alice_example}", params={"as_of": str(v1["version"])}
    )
    assert old.status_code == 404
    assert _run_ids(app) == {"tb-root", "tb-llm", "tm-root", "tm-llm"}
    assert _feedback_run_ids(app) == {"tb-llm"}
    stored = ctx.db.read(lambda c: c.execute(sa.select(dataset_examples.c.inputs)).scalars().all())
    assert all("alice" not in orjson.dumps(i).decode() for i in stored)

    # by a metadata key and value
    meta = {"metadata": {"customer": "c-42"}}
    preview = (await client.post(f"{API}/erasure", json={**meta, "dry_run": True})).json()
    assert (preview["traces"], preview["examples"]) == (1, 1)
    assert (await client.post(f"{API}/erasure", json=meta)).json()["runs"] == 2
    assert await at(v1["version"] + 2) == {"bob asks"}

    entries = (await client.get(f"{API}/audit", params={"action": "erasure"})).json()
    assert [e["details"]["by"] for e in entries] == ["metadata", "user_id"]
    assert entries[1]["details"]["runs"] == 3
    assert entries[1]["details"]["examples"] == 1
    text = orjson.dumps(entries).decode()
    assert "alice" not in text
    assert "c-42" not in text
    assert entries[0]["actor"].startswith("bootstrap admin")


# --- workspaces and roles --------------------------------------------------------------------


async def test_another_workspace_cannot_delete_erase_or_read_the_audit(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    ctx = app.state.ctx
    ws = _workspace_id(app)
    project = await _project(client, "mine")
    rows = _trace(ws, project, "t1", 1_764_150_000_000_000, user_id="alice")
    insert(ctx.db, rows)
    await client.put(f"{API}/projects/mine/retention", json={"keep_days": 5})
    theirs = await _other_admin(app)

    r = await anon.post(f"{API}/traces/delete", json={"trace_ids": ["t1"]}, headers=theirs)
    assert r.json()["runs"] == 0
    r = await anon.post(f"{API}/traces/delete", json={"filter": "root"}, headers=theirs)
    assert r.json()["runs"] == 0
    r = await anon.post(f"{API}/erasure", json={"user_id": "alice"}, headers=theirs)
    assert r.json()["runs"] == 0
    assert (
        await anon.get(f"{API}/projects/{project}/retention", headers=theirs)
    ).status_code == 404
    put = await anon.put(
        f"{API}/projects/{project}/retention", json={"keep_days": 1}, headers=theirs
    )
    assert put.status_code == 404
    assert _run_ids(app) == {"t1-root", "t1-llm"}

    their_log = (await anon.get(f"{API}/audit", headers=theirs)).json()
    assert [e["action"] for e in their_log] == [
        "erasure",
        "traces.deleted",
        "traces.deleted",
        "api_key.created",
    ]
    assert all(e["details"]["runs"] == 0 for e in their_log[:3])
    mine = (await client.get(f"{API}/audit")).json()
    assert [e["action"] for e in mine] == ["retention.set", "api_key.created"]
    assert mine[1]["details"]["name"] == "bootstrap admin"


async def test_members_cannot_delete_erase_change_retention_or_read_the_audit(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await _project(client, "p")
    member = await _member(app)
    calls = [
        anon.post(f"{API}/traces/delete", json={"trace_ids": ["x"]}, headers=member),
        anon.post(f"{API}/erasure", json={"user_id": "x"}, headers=member),
        anon.put(f"{API}/projects/p/retention", json={"keep_days": 3}, headers=member),
        anon.delete(f"{API}/projects/p/retention", headers=member),
        anon.get(f"{API}/audit", headers=member),
    ]
    for call in calls:
        r = await call
        assert r.status_code == 403, r.text
    # reading the policy is allowed
    await client.put(f"{API}/projects/p/retention", json={"keep_days": 3})
    assert (await anon.get(f"{API}/projects/p/retention", headers=member)).status_code == 200
    assert (await anon.get(f"{API}/audit")).status_code == 401


# --- deleting a project ----------------------------------------------------------------------


async def test_deleting_a_project_removes_its_feedback_keeps_dataset_examples_and_is_audited(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ctx = app.state.ctx
    ws = _workspace_id(app)
    gone = await _project(client, "gone")
    keep = await _project(client, "keep")
    insert(ctx.db, _trace(ws, gone, "g", 1) + _trace(ws, keep, "k", 1))
    await _feedback(client, "g-llm")
    await _feedback(client, "k-llm")
    await client.post(f"{API}/datasets", json={"name": "golden"})
    await client.post(f"{API}/datasets/golden/runs", json={"run_ids": ["g-root"]})
    r = await client.delete(f"{API}/projects/{gone}")
    assert r.json()["runs_deleted"] == 2
    assert _run_ids(app) == {"k-root", "k-llm"}
    assert _feedback_run_ids(app) == {"k-llm"}
    assert len((await client.get(f"{API}/datasets/golden/examples")).json()["items"]) == 1
    entry = (await client.get(f"{API}/audit", params={"action": "project.deleted"})).json()[0]
    assert entry["target_id"] == gone
    assert entry["details"] == {"name": "gone", "runs": 2, "feedback": 1}

    assert (await client.delete(f"{API}/datasets/golden")).status_code == 200
    entry = (await client.get(f"{API}/audit", params={"action": "dataset.deleted"})).json()[0]
    assert entry["details"] == {"name": "golden", "versions": 1}


# --- the audit log of administrative actions -------------------------------------------------


async def test_keys_rules_channels_and_alert_rules_are_audited_with_who_and_what(
    app: FastAPI, client: httpx.AsyncClient, hook: Any
) -> None:
    ctx = app.state.ctx
    pid = await _project(client, "p")
    channel = (
        await client.post(
            f"{API}/channels", json={"name": "ops", "kind": "webhook", "url": hook.url}
        )
    ).json()
    alert = await client.post(
        f"{API}/alert-rules",
        json={
            "project_id": pid,
            "name": "errors up",
            "metric": {"kind": "error_rate"},
            "condition": {"type": "threshold", "op": ">", "value": 0.5},
            "window_s": 600,
            "every_s": 60,
            "cooldown_s": 0,
            "channel_ids": [channel["id"]],
        },
    )
    assert alert.status_code == 201, alert.text
    aid = alert.json()["id"]
    assert (
        await client.patch(f"{API}/alert-rules/{aid}", json={"enabled": False})
    ).status_code == 200
    assert (await client.delete(f"{API}/alert-rules/{aid}")).status_code == 204
    rule = await client.post(
        f"{API}/rules",
        json={"project_id": pid, "name": "all", "actions": [{"type": "webhook", "url": hook.url}]},
    )
    rid = rule.json()["id"]
    assert (await client.patch(f"{API}/rules/{rid}", json={"sample_rate": 0.5})).status_code == 200
    assert (await client.delete(f"{API}/rules/{rid}")).status_code == 204
    assert (await client.delete(f"{API}/channels/{channel['id']}")).status_code == 204
    ws = auth.workspace_by_name(ctx, "default")
    key = auth.create_key(ctx, ws.id, "ci", role="member")
    auth.revoke_key(ctx, key.record.id)

    entries = (await client.get(f"{API}/audit")).json()
    assert [e["action"] for e in entries] == [
        "api_key.revoked",
        "api_key.created",
        "channel.deleted",
        "rule.deleted",
        "rule.updated",
        "rule.created",
        "alert_rule.deleted",
        "alert_rule.updated",
        "alert_rule.created",
        "channel.created",
        "api_key.created",  # the bootstrap admin key
    ]
    by_action: dict[str, Any] = {}
    for e in entries:  # the newest of each action
        by_action.setdefault(e["action"], e)
    assert by_action["api_key.created"]["details"] == {
        "name": "ci",
        "role": "member",
        "prefix": key.record.prefix,
    }
    assert by_action["api_key.created"]["actor"] == "command line"
    assert by_action["rule.updated"]["details"]["changed"] == ["sample_rate"]
    assert by_action["rule.created"]["actor"].startswith("bootstrap admin (gl_")
    assert by_action["rule.created"]["actor_key_id"] is not None
    assert by_action["channel.created"]["details"] == {"name": "ops", "kind": "webhook"}
    assert key.secret not in orjson.dumps(entries).decode()
    assert hook.url not in orjson.dumps(entries).decode()  # no URLs (they may hold tokens)
    # pages: newest first, `before` continues
    first = (await client.get(f"{API}/audit", params={"limit": 4})).json()
    rest = (await client.get(f"{API}/audit", params={"before": first[-1]["id"]})).json()
    assert [e["id"] for e in first + rest] == [e["id"] for e in entries]


def test_migration_0019_downgrades_and_upgrades(app: FastAPI) -> None:
    """0019 adds retention_policies and audit_log; down (past it) and up again, both backends."""
    from alembic import command

    from goldloop.store import migrate

    engine = app.state.ctx.db.engine
    cfg = migrate._config()

    def tables() -> set[str]:
        return set(sa.inspect(engine).get_table_names())

    assert {"retention_policies", "audit_log"} <= tables()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0018_server_health")
    assert not {"retention_policies", "audit_log"} & tables()
    migrate.upgrade(engine)
    assert {"retention_policies", "audit_log"} <= tables()
    assert migrate.current_revision(engine) == migrate.head_revision()
