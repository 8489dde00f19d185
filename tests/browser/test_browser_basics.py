"""Sign-in, projects and the security basics in a real browser."""

from __future__ import annotations

import httpx
from dashboard_harness import Pages, Server

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1;alert(1)">'


def test_sign_in_browse_projects_and_sign_out(tab: Pages, server: Server) -> None:
    with server.api() as api:
        r = api.post("/api/v1/projects", json={"name": "agent-support", "description": "prod bot"})
        assert r.status_code in (201, 409)
    tab.goto("/projects")
    assert "/login" in tab.page.url  # not signed in: sent to the sign-in page
    tab.shot("login")
    tab.page.fill("#api_key", "gl_wrong")
    tab.page.click("button[type=submit]")
    assert "unknown or revoked" in tab.page.inner_text("main")
    tab.shot("login-refused")
    tab.console_errors.clear()  # the refused sign-in's 401 is logged by the browser

    tab.sign_in()
    tab.shot("projects")
    tab.page.click("text=agent-support")
    assert tab.page.inner_text("h1") == "agent-support"
    tab.shot("project-overview")

    tab.page.click("text=Sign out")
    tab.page.wait_for_url("**/login")
    tab.goto("/projects")
    assert "/login" in tab.page.url
    assert not tab.console_errors, tab.console_errors


def test_xss_in_project_names_never_runs(tab: Pages, server: Server) -> None:
    with server.api() as api:
        r = api.post("/api/v1/projects", json={"name": "xss " + XSS, "description": XSS})
        assert r.status_code in (201, 409)
    tab.sign_in()
    assert XSS in tab.page.inner_text("main")  # shown as text
    link = tab.page.get_by_role("link", name="xss " + XSS)
    link.click()
    assert XSS in tab.page.inner_text("h1")
    assert XSS in tab.page.title()
    tab.shot("project-xss")
    assert not tab.xss_fired()
    assert tab.dialogs == []


def test_a_cross_site_style_post_without_the_token_is_refused(tab: Pages, server: Server) -> None:
    tab.sign_in()
    # The browser sends the session cookie with this same-origin fetch, but no CSRF token.
    status = tab.page.evaluate(
        """async () => (await fetch('/logout', {method: 'POST',
              headers: {'content-type': 'application/x-www-form-urlencoded'},
              body: 'x=1'})).status"""
    )
    assert status == 403
    tab.goto("/projects")
    assert tab.page.url.endswith("/projects")  # still signed in


def test_every_page_carries_the_content_security_policy(server: Server) -> None:
    r = httpx.get(server.base + "/login")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp


def test_the_api_docs_render_from_this_server_only_under_the_csp(
    tab: Pages, server: Server
) -> None:
    """Issue 22 (8): Swagger UI runs under the dashboard's CSP (no violation logged) and every
    request the page makes goes to this server."""
    hosts: list[str] = []
    tab.page.on("request", lambda req: hosts.append(httpx.URL(req.url).host))
    tab.goto("/api/v1/docs")
    tab.page.wait_for_selector(".opblock", timeout=20_000)  # the operations are listed
    assert tab.page.locator(".opblock").count() > 20
    tab.shot("api-docs")
    assert set(hosts) == {"127.0.0.1"}, hosts
    assert not tab.console_errors, tab.console_errors
