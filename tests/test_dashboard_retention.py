"""The dashboard's project settings (retention policy, deleting traces after a preview) and
audit log pages, in-process on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from dashboard_helpers import csrf_of, other_workspace_browser, sign_in
from goldloop.services import auth
from goldloop.store.schema import runs
from run_rows import insert, run_row


async def _project_with_runs(app: FastAPI, client: httpx.AsyncClient) -> str:
    project = (await client.post("/api/v1/projects", json={"name": "support"})).json()["id"]
    ws = app.state.ctx.db.read(lambda c: c.exec_driver_sql("SELECT id FROM workspaces").scalar())
    rows = [
        run_row(ws, project, f"r{i}", status="error" if i < 3 else "success", name=f"step {i}")
        for i in range(5)
    ]
    insert(app.state.ctx.db, rows)
    return str(project)


def _count(app: FastAPI) -> int:
    query = sa.select(sa.func.count()).select_from(runs)
    return int(app.state.ctx.db.read(lambda c: c.execute(query).scalar_one()))


async def test_retention_form_saves_removes_and_refuses_bad_input(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    project = await _project_with_runs(app, client)
    page = await browser.get(f"/projects/{project}/settings")
    assert page.status_code == 200
    assert "keeps every run" in page.text
    url = f"/projects/{project}/settings/retention"
    form = {"csrf": csrf_of(page.text), "keep_days": "14", "keep_with_feedback": "on"}
    saved = await browser.post(url, data=form)
    assert saved.status_code == 200
    assert "Retention policy saved" in saved.text
    assert "<strong>14 days</strong>; traces with feedback are kept" in saved.text
    policy = (await client.get(f"/api/v1/projects/{project}/retention")).json()
    assert (policy["keep_days"], policy["keep_with_feedback"]) == (14, True)
    assert policy["keep_in_datasets"] is False

    bad = await browser.post(url, data={**form, "keep_days": "0"})
    assert bad.status_code == 400
    assert "keep_days must be between 1" in bad.text
    assert (await browser.post(url, data={**form, "keep_days": "-3"})).status_code == 400
    no_csrf = await browser.post(url, data={"keep_days": "3"})
    assert no_csrf.status_code == 403
    removed = await browser.post(url, data={"csrf": form["csrf"], "action": "remove"})
    assert "Retention policy removed" in removed.text
    assert (await client.get(f"/api/v1/projects/{project}/retention")).status_code == 404


async def test_deleting_traces_shows_the_count_and_asks_to_confirm_it(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    project = await _project_with_runs(app, client)
    page = await browser.get(f"/projects/{project}/settings")
    csrf = csrf_of(page.text)
    url = f"/projects/{project}/settings/delete"
    preview = await browser.post(url, data={"csrf": csrf, "filter": 'status = "error"'})
    assert preview.status_code == 200
    assert "Delete 3 traces" in preview.text
    assert _count(app) == 5  # the preview deleted nothing

    stale = await browser.post(
        url, data={"csrf": csrf, "filter": 'status = "error"', "confirm_traces": "2"}
    )
    assert "changed since the preview" in stale.text
    assert _count(app) == 5
    done = await browser.post(
        url, data={"csrf": csrf, "filter": 'status = "error"', "confirm_traces": "3"}
    )
    assert "Deleted 3 traces (3 runs, 0 feedback)" in done.text
    assert _count(app) == 2
    none_left = await browser.post(url, data={"csrf": csrf, "filter": 'status = "error"'})
    assert "nothing to delete" in none_left.text

    bad = await browser.post(url, data={"csrf": csrf, "filter": 'name = "<script>x</script>" and'})
    assert bad.status_code == 400
    assert "position" in bad.text
    assert "<script>x</script>" not in bad.text  # shown escaped
    assert "&lt;script&gt;" in bad.text
    entry = (await client.get("/api/v1/audit", params={"action": "traces.deleted"})).json()
    assert entry[0]["details"]["runs"] == 3


async def test_audit_page_for_admins_only_and_per_workspace(
    app: FastAPI, client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    project = await _project_with_runs(app, client)
    await client.put(f"/api/v1/projects/{project}/retention", json={"keep_days": 9})
    page = await browser.get("/audit")
    assert page.status_code == 200
    assert "retention.set" in page.text
    assert "keep_days 9" in page.text
    assert 'href="/audit"' in page.text  # the admin's navigation links it

    ctx = app.state.ctx
    ws = auth.workspace_by_name(ctx, "default")
    member_key = auth.create_key(ctx, ws.id, "reader", role="member").secret
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://goldloop.test") as member:
        assert (await sign_in(member, member_key)).status_code == 303
        assert (await member.get("/audit")).status_code == 403
        settings = await member.get(f"/projects/{project}/settings")
        assert settings.status_code == 200
        assert "needs an admin key" in settings.text
        assert 'href="/audit"' not in settings.text
        post = await member.post(
            f"/projects/{project}/settings/delete",
            data={"csrf": csrf_of(settings.text), "filter": "root", "confirm_traces": "5"},
        )
        assert post.status_code == 403
    assert _count(app) == 5

    async with other_workspace_browser(app) as other:
        assert (await other.get(f"/projects/{project}/settings")).status_code == 404
