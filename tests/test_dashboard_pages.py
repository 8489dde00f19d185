"""The dashboard's page handlers in-process over httpx, on SQLite and PostgreSQL: sign-in,
sessions, CSRF, redirects, security headers and escaping."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from dashboard_helpers import csrf_of, sign_in
from goldloop.http.dashboard.web import CONTENT_SECURITY_POLICY, SESSION_COOKIE
from goldloop.services import auth
from goldloop.services.context import ServiceContext


@pytest.fixture
def ctx_app(app: FastAPI) -> ServiceContext:
    """The running app's own service context (same database, same writer)."""
    ctx: ServiceContext = app.state.ctx
    return ctx


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client with no API key header: what a browser is."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://goldloop.test") as c:
        yield c


@pytest.fixture
async def signed_in(browser: httpx.AsyncClient, admin_key: str) -> httpx.AsyncClient:
    r = await sign_in(browser, admin_key)
    assert r.status_code == 303, r.text
    return browser


async def test_pages_redirect_to_login_and_back(browser: httpx.AsyncClient, admin_key: str) -> None:
    r = await browser.get("/projects?after=x")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fprojects%3Fafter%3Dx"
    login = await browser.get(r.headers["location"])
    assert login.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert 'value="/projects?after=x"' in login.text
    done = await browser.post(
        "/login", data={"csrf": csrf_of(login.text), "api_key": admin_key, "next": "/projects"}
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/projects"
    cookie = done.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http here; https sets Secure
    page = await browser.get("/projects")
    assert page.status_code == 200
    assert "default" in page.text  # the workspace name in the header


async def test_wrong_key_is_refused_and_no_session_is_made(browser: httpx.AsyncClient) -> None:
    r = await sign_in(browser, "gl_not-a-key")
    assert r.status_code == 401
    assert "unknown or revoked" in r.text
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    assert (await browser.get("/projects")).status_code == 303


async def test_login_without_its_csrf_token_is_refused(
    browser: httpx.AsyncClient, admin_key: str
) -> None:
    await browser.get("/login")
    r = await browser.post("/login", data={"api_key": admin_key})
    assert r.status_code == 403
    r = await browser.post("/login", data={"api_key": admin_key, "csrf": "forged"})
    assert r.status_code == 403


async def test_open_redirect_is_not_followed(browser: httpx.AsyncClient, admin_key: str) -> None:
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"):
        browser.cookies.clear()
        r = await sign_in(browser, admin_key, next_path=evil)
        assert r.status_code == 303
        assert r.headers["location"] == "/projects"


async def test_logout_needs_csrf_and_ends_the_session(signed_in: httpx.AsyncClient) -> None:
    page = await signed_in.get("/projects")
    token = csrf_of(page.text)
    refused = await signed_in.post("/logout", data={})
    assert refused.status_code == 403
    assert (await signed_in.get("/projects")).status_code == 200
    r = await signed_in.post("/logout", data={"csrf": token})
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    # Even a replayed cookie is dead: the server-side row is gone.
    assert (await signed_in.get("/projects")).status_code == 303


async def test_session_ends_when_its_key_is_revoked(
    browser: httpx.AsyncClient, ctx_app: ServiceContext
) -> None:
    ws = auth.workspace_by_name(ctx_app, "default")
    key = auth.create_key(ctx_app, ws.id, "temp")
    assert (await sign_in(browser, key.secret)).status_code == 303
    assert (await browser.get("/projects")).status_code == 200
    auth.revoke_key(ctx_app, key.record.id)
    assert (await browser.get("/projects")).status_code == 303


async def test_projects_are_escaped_and_isolated_by_workspace(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, ctx_app: ServiceContext
) -> None:
    evil = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'
    mine = (await client.post("/api/v1/projects", json={"name": evil, "description": evil})).json()
    other_ws = auth.create_workspace(ctx_app, "other")
    other_key = auth.create_key(ctx_app, other_ws.id, "other admin", role="admin")
    assert (await sign_in(browser, other_key.secret)).status_code == 303
    page = await browser.get("/projects")
    assert "No projects yet" in page.text
    assert (await browser.get(f"/projects/{mine['id']}")).status_code == 404

    browser.cookies.clear()
    admin_key = ctx_app.settings.admin_key_path.read_text().strip()
    assert (await sign_in(browser, admin_key)).status_code == 303
    for path in ("/projects", f"/projects/{mine['id']}"):
        html = (await browser.get(path)).text
        assert "<script>window.__xss" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html


async def test_unknown_project_is_an_html_404(signed_in: httpx.AsyncClient) -> None:
    r = await signed_in.get("/projects/nope")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


async def test_static_assets_are_served_locally(browser: httpx.AsyncClient) -> None:
    for path in ("/static/goldloop.css", "/static/goldloop.js", "/static/favicon.svg"):
        r = await browser.get(path)
        assert r.status_code == 200, path
        assert r.headers["x-content-type-options"] == "nosniff"
    html = (await browser.get("/login")).text
    assert "http://" not in html
    assert "https://" not in html


async def test_cookie_is_secure_over_https(app: FastAPI, admin_key: str) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://goldloop.test") as b:
        r = await sign_in(b, admin_key)
        assert r.status_code == 303
        assert "Secure" in r.headers["set-cookie"]
