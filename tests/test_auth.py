from __future__ import annotations

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
    other = {"x-api-key": auth.create_key(ctx, other_ws.id, "theirs").secret}
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
