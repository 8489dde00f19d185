from __future__ import annotations

import re
import stat

import httpx
import pytest
from fastapi import FastAPI

from goldloop.services import auth
from goldloop.settings import Settings


async def test_bootstrap_writes_admin_key_0600(app: FastAPI, settings: Settings) -> None:
    path = settings.admin_key_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith(auth.KEY_PREFIX)


async def test_missing_key_is_401_with_a_hint(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/api/v1/projects")
    assert r.status_code == 401
    body = r.json()["error"]
    assert body["code"] == "unauthenticated"
    assert "x-api-key" in body["message"]
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_wrong_key_is_401(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/api/v1/projects", headers={"x-api-key": "gl_not-a-real-key"})
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "unknown or revoked API key"


async def test_bearer_token_works(anon: httpx.AsyncClient, admin_key: str) -> None:
    r = await anon.get("/api/v1/projects", headers={"Authorization": f"Bearer {admin_key}"})
    assert r.status_code == 200


async def test_revoked_key_stops_working(app: FastAPI, anon: httpx.AsyncClient) -> None:
    ctx = app.state.ctx
    ws = auth.workspace_by_name(ctx, auth.DEFAULT_WORKSPACE)
    key = auth.create_key(ctx, ws.id, "temp")
    assert (
        await anon.get("/api/v1/projects", headers={"x-api-key": key.secret})
    ).status_code == 200
    auth.revoke_key(ctx, key.record.id)
    assert (
        await anon.get("/api/v1/projects", headers={"x-api-key": key.secret})
    ).status_code == 401


async def test_keys_are_stored_hashed(app: FastAPI, admin_key: str) -> None:
    rows = auth.list_keys(app.state.ctx)
    assert rows
    assert all(admin_key not in repr(r) for r in rows)


async def test_workspaces_are_isolated(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    ctx = app.state.ctx
    other_ws = auth.create_workspace(ctx, "other-team")
    other = {"x-api-key": auth.create_key(ctx, other_ws.id, "theirs", role="admin").secret}
    mine = (await client.post("/api/v1/projects", json={"name": "agent-support"})).json()

    r = await anon.get(f"/api/v1/projects/{mine['id']}", headers=other)
    assert r.status_code == 404
    assert (await anon.delete(f"/api/v1/projects/{mine['id']}", headers=other)).status_code == 404
    patch = await anon.patch(f"/api/v1/projects/{mine['id']}", json={"name": "x"}, headers=other)
    assert patch.status_code == 404
    listed = (await anon.get("/api/v1/projects", headers=other)).json()
    assert listed["items"] == []
    # The same name is free in the other workspace.
    theirs = await anon.post("/api/v1/projects", json={"name": "agent-support"}, headers=other)
    assert theirs.status_code == 201
    assert (await client.get(f"/api/v1/projects/{mine['id']}")).status_code == 200


def test_role_is_validated(ctx: object) -> None:
    with pytest.raises(auth.InvalidInput, match="role must be one of"):
        auth.create_key(ctx, "ws", "x", role="root")  # type: ignore[arg-type]


# Every route that needs an admin key. A new route that asks for one must be added here, so the
# decision is made on purpose (and a route that silently lost the check fails below).
ADMIN_ROUTES = {
    ("GET", "/metrics"),
    ("POST", "/api/v1/channels"),
    ("DELETE", "/api/v1/channels/{channel_id}"),
    ("POST", "/api/v1/alert-rules"),
    ("PATCH", "/api/v1/alert-rules/{rule_id}"),
    ("DELETE", "/api/v1/alert-rules/{rule_id}"),
    ("POST", "/api/v1/rules"),
    ("PATCH", "/api/v1/rules/{rule_id}"),
    ("DELETE", "/api/v1/rules/{rule_id}"),
    ("POST", "/api/v1/rules/{rule_id}/backfill"),
    ("DELETE", "/api/v1/projects/{project_id}"),
    ("DELETE", "/api/v1/datasets/{dataset}"),
    ("PUT", "/api/v1/projects/{project}/retention"),
    ("DELETE", "/api/v1/projects/{project}/retention"),
    ("POST", "/api/v1/traces/delete"),
    ("POST", "/api/v1/erasure"),
    ("GET", "/api/v1/audit"),
    ("PUT", "/api/v1/feedback-keys/{key}"),
    ("DELETE", "/api/v1/feedback-keys/{key}"),
    ("POST", "/api/v1/annotation-queues"),
    ("PATCH", "/api/v1/annotation-queues/{queue_id}"),
    ("DELETE", "/api/v1/annotation-queues/{queue_id}"),
    ("DELETE", "/api/v1/annotation-queues/{queue_id}/items/{item_id}"),
    ("GET", "/api/v1/redaction"),
    ("PUT", "/api/v1/redaction"),
    ("DELETE", "/api/v1/redaction"),
    ("POST", "/api/v1/redaction/preview"),
    ("GET", "/api/v1/projects/{project}/redaction"),
    ("PUT", "/api/v1/projects/{project}/redaction"),
    ("DELETE", "/api/v1/projects/{project}/redaction"),
    ("GET", "/api/v1/export"),
    ("POST", "/api/v1/rules/{rule_id}/canaries"),
    ("POST", "/api/v1/canary-sets/{set_id}/run"),
    ("POST", "/api/v1/canary-sets/{set_id}/accept"),
    ("DELETE", "/api/v1/canary-sets/{set_id}"),
    ("POST", "/api/v1/annotation-queues/pairwise"),
}


async def test_admin_routes_are_exactly_the_declared_ones(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    """Call every route of the API schema with a member key: exactly the declared admin routes
    answer 403 (the role is checked before the path's object or the body is looked at)."""
    ctx = app.state.ctx
    ws = auth.workspace_by_name(ctx, auth.DEFAULT_WORKSPACE)
    member = {"x-api-key": auth.create_key(ctx, ws.id, "member").secret}
    schema = (await client.get("/api/v1/openapi.json")).json()
    forbidden = set()
    for template, methods in schema["paths"].items():
        path = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", template)
        for method in methods:
            if method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                continue
            body = {} if method.upper() in {"POST", "PUT", "PATCH"} else None
            r = await anon.request(method.upper(), path, json=body, headers=member)
            if r.status_code == 403:
                assert r.json()["error"]["code"] == "forbidden"
                forbidden.add((method.upper(), template))
    assert forbidden == ADMIN_ROUTES


async def test_a_member_key_is_refused_admin_routes_and_allowed_the_rest(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    ctx = app.state.ctx
    ws = auth.workspace_by_name(ctx, auth.DEFAULT_WORKSPACE)
    member = {"x-api-key": auth.create_key(ctx, ws.id, "member").secret}
    project = (await client.post("/api/v1/projects", json={"name": "agent-support"})).json()
    await client.post("/api/v1/datasets", json={"name": "golden"})

    refused = [
        ("POST", "/api/v1/rules", {"name": "r", "project": "agent-support", "actions": []}),
        (
            "POST",
            "/api/v1/channels",
            {"name": "c", "type": "webhook", "url": "http://127.0.0.1:9/"},
        ),
        ("DELETE", f"/api/v1/projects/{project['id']}", None),
        ("DELETE", "/api/v1/datasets/golden", None),
    ]
    for method, path, body in refused:
        r = await anon.request(method, path, json=body, headers=member)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["code"] == "forbidden"
        assert "admin" in r.json()["error"]["message"]
    # Nothing was deleted.
    assert (await client.get(f"/api/v1/projects/{project['id']}")).status_code == 200
    assert (await client.get("/api/v1/datasets/golden")).status_code == 200

    # A member key does the daily work: send traces, read them, score them, curate datasets.
    assert (
        await anon.post("/api/v1/projects", json={"name": "p2"}, headers=member)
    ).status_code == 201
    ex = await anon.post(
        "/api/v1/datasets/golden/examples",
        json={"examples": [{"inputs": {"q": "x"}}]},
        headers=member,
    )
    assert ex.status_code == 201, ex.text
    assert (await anon.get("/api/v1/rules", headers=member)).status_code == 200
