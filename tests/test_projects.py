from __future__ import annotations

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from goldloop._version import __version__
from goldloop.store.schema import runs


async def test_create_get_rename_list_delete(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/projects", json={"name": "agent-support", "description": "d"})
    assert r.status_code == 201
    project = r.json()
    assert project["name"] == "agent-support"
    assert project["created_at"].endswith("+00:00")

    got = (await client.get(f"/api/v1/projects/{project['id']}")).json()
    assert got == project

    renamed = await client.patch(f"/api/v1/projects/{project['id']}", json={"name": "support"})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "support"
    assert renamed.json()["description"] == "d"

    by_name = (await client.get("/api/v1/projects", params={"name": "support"})).json()
    assert [p["id"] for p in by_name["items"]] == [project["id"]]

    deleted = await client.delete(f"/api/v1/projects/{project['id']}")
    assert deleted.json() == {"id": project["id"], "deleted": True, "runs_deleted": 0}
    assert (await client.get(f"/api/v1/projects/{project['id']}")).status_code == 404


async def test_duplicate_name_is_409(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/projects", json={"name": "a"})
    b = (await client.post("/api/v1/projects", json={"name": "b"})).json()
    dup = await client.post("/api/v1/projects", json={"name": "a"})
    assert dup.status_code == 409
    assert "already exists" in dup.json()["error"]["message"]
    clash = await client.patch(f"/api/v1/projects/{b['id']}", json={"name": "a"})
    assert clash.status_code == 409


async def test_keyset_pagination_visits_every_project_once(client: httpx.AsyncClient) -> None:
    names = [f"p{i:02d}" for i in range(25)]
    for n in reversed(names):
        assert (await client.post("/api/v1/projects", json={"name": n})).status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/projects", params=params)).json()
        seen += [p["name"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names


async def test_delete_removes_the_projects_runs(app: FastAPI, client: httpx.AsyncClient) -> None:
    keep = (await client.post("/api/v1/projects", json={"name": "keep"})).json()
    gone = (await client.post("/api/v1/projects", json={"name": "gone"})).json()
    db = app.state.ctx.db
    ws = db.read(lambda c: c.exec_driver_sql("SELECT workspace_id FROM projects").scalar())

    def add_runs(conn: sa.Connection) -> None:
        for i, project_id in enumerate([keep["id"], gone["id"], gone["id"]]):
            conn.execute(
                sa.insert(runs).values(
                    workspace_id=ws,
                    project_id=project_id,
                    id=f"r{i}",
                    trace_id=f"r{i}",
                    seq=i,
                    is_root=True,
                    name="n",
                    kind="chain",
                    status="success",
                    created_at=1,
                    updated_at=1,
                )
            )

    db.write(add_runs)
    r = await client.delete(f"/api/v1/projects/{gone['id']}")
    assert r.json()["runs_deleted"] == 2
    left = db.read(lambda c: c.execute(sa.select(runs.c.id)).scalars().all())
    assert left == ["r0"]


async def test_bad_input_gets_a_clear_4xx(client: httpx.AsyncClient) -> None:
    malformed = await client.post(
        "/api/v1/projects", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "invalid_json"

    missing = await client.post("/api/v1/projects", json={"description": "no name"})
    assert missing.status_code == 400
    assert missing.json()["error"]["details"][0]["field"] == "name"

    blank = await client.post("/api/v1/projects", json={"name": "   "})
    assert blank.status_code == 400
    assert "must not be empty" in blank.json()["error"]["message"]

    unknown = await client.get("/api/v1/projects/does-not-exist")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == {
        "code": "not_found",
        "message": "no project with id 'does-not-exist'",
        "details": None,
    }

    bad_limit = await client.get("/api/v1/projects", params={"limit": 0})
    assert bad_limit.status_code == 400
    assert bad_limit.json()["error"]["details"][0]["field"] == "limit"

    no_route = await client.get("/api/v1/nothing-here")
    assert no_route.status_code == 404
    assert "error" in no_route.json()

    wrong_method = await client.put("/api/v1/projects")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


async def test_oversized_body_is_413(client: httpx.AsyncClient, app: FastAPI) -> None:
    limit = app.state.ctx.settings.max_request_bytes
    big = b'{"name": "' + b"x" * limit + b'"}'
    r = await client.post(
        "/api/v1/projects", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert "GOLDLOOP_MAX_REQUEST_BYTES" in r.json()["error"]["message"]

    async def chunks():  # no Content-Length: the limit still holds while streaming
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    streamed = await client.post("/api/v1/projects", content=chunks())
    assert streamed.status_code == 413


async def test_health_and_openapi(anon: httpx.AsyncClient) -> None:
    assert (await anon.get("/healthz")).json() == {"status": "ok", "version": __version__}
    ready = (await anon.get("/readyz")).json()
    assert ready["status"] == "ready"
    schema = (await anon.get("/api/v1/openapi.json")).json()
    assert "/api/v1/projects" in schema["paths"]
