"""The rule form's filter preview follows the typing (Issue #23): no click, the count and the
newest runs update a moment after the last key; a filter the parser refuses shows the parser's
message in place; hostile run content in the preview stays text; the page keeps its
Content-Security-Policy (the script is a static file, no inline script). The button path
without scripts is held by test_browser_loop_config."""

from __future__ import annotations

import time
from typing import Any

import pytest
from dashboard_harness import Pages, Server

XSS = '<img src=x onerror="window.__xss=1;alert(1)"> "q" \'s\''
PROJECT = "live-preview"


def _runs(n: int, *, start: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"lp-{i}",
            "trace_id": f"lp-{i}",
            "name": ("hostile " + XSS) if i % 2 else "answer",
            "kind": "chain",
            "start_time": start + i * 1_000,
            "end_time": start + i * 1_000 + 500_000,
            "inputs": {"question": XSS},
            "outputs": {"answer": "ok"},
            "error": "boom" if i % 4 == 1 else None,
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def project_id(server: Server) -> str:
    now = int(time.time() * 1_000_000)
    with server.api() as api:
        r = api.post(
            "/api/v1/runs/batch",
            json={"project": PROJECT, "runs": _runs(10, start=now - 3_600_000_000)},
        )
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 20
        while True:
            found = [p for p in api.get("/api/v1/projects").json()["items"] if p["name"] == PROJECT]
            listed = api.get("/api/v1/runs", params={"project": PROJECT, "limit": 100})
            if found and listed.status_code == 200 and len(listed.json()["items"]) == 10:
                return str(found[0]["id"])
            assert time.monotonic() < deadline, "the seed runs were not written"
            time.sleep(0.2)


def _count(tab: Pages, expected: str) -> None:
    tab.page.wait_for_function(
        "(want) => { const c = document.querySelector('#preview .preview-count');"
        " return c !== null && c.textContent === want; }",
        arg=expected,
        timeout=10_000,
    )


def test_the_preview_follows_the_typed_filter(tab: Pages, server: Server, project_id: str) -> None:
    bad = 'status = "error" and name = "x'
    with server.api() as api:
        said = api.get("/api/v1/runs", params={"project": PROJECT, "filter": bad})
    assert said.status_code == 400
    parser_message = said.json()["error"]["message"]

    tab.sign_in()
    response = tab.goto("/rules")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1]
    requests: list[str] = []
    tab.page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
    tab.page.select_option("#r-project", project_id)
    tab.page.uncheck("input[name=root_only]")
    tab.page.locator("#r-filter").press_sequentially('status = "error"', delay=15)
    _count(tab, "3")  # lp-1, lp-5, lp-9: no click
    assert tab.page.url.endswith("/rules")
    assert not any(r.startswith("POST") for r in requests)  # fetched, not submitted
    previews = [r for r in requests if "/rules/preview?" in r]
    assert 1 <= len(previews) < len('status = "error"')  # debounced: not one per key
    rows = tab.page.locator("#preview tbody tr").all_inner_texts()
    assert len(rows) == 3
    assert all(XSS in row for row in rows)  # the hostile names, as text
    assert tab.page.locator("#preview img").count() == 0
    tab.shot("rule-live-preview")

    tab.page.locator("#r-filter").press_sequentially(' and name = "x', delay=15)
    error = tab.page.locator("#preview p.flash.error")
    error.wait_for(timeout=10_000)
    assert parser_message in error.inner_text()
    assert tab.page.locator("#preview .preview-count").count() == 0

    tab.page.fill("#r-filter", "")
    tab.page.locator("#r-filter").press_sequentially(f"name ~ {XSS[:12]!r}".replace("'", '"'))
    tab.page.locator("#preview").wait_for(timeout=10_000)
    tab.page.wait_for_timeout(600)
    assert tab.page.locator("#preview img").count() == 0
    assert not tab.xss_fired()
    assert tab.dialogs == []
    assert tab.console_errors == []


def test_the_rule_pages_edit_form_previews_its_rules_project(
    tab: Pages, server: Server, project_id: str
) -> None:
    with server.api() as api:
        made = api.post(
            "/api/v1/rules",
            json={
                "project_id": project_id,
                "name": "live preview rule",
                "filter": "error",
                "actions": [{"type": "add_to_queue", "queue": "q"}],
            },
        )
        assert made.status_code == 201, made.text
    tab.sign_in()
    tab.goto(f"/rules/{made.json()['id']}")
    tab.page.click("summary:has-text('Edit this rule')")
    tab.page.locator("#edit #r-filter").fill("")
    tab.page.locator("#edit #r-filter").press_sequentially('name = "answer"', delay=15)
    _count(tab, "5")  # lp-0, 2, 4, 6, 8 (roots only, as the rule says)
    assert not tab.xss_fired()
