"""Runs table, trace page and feedback in a real browser, with hostile trace content."""

from __future__ import annotations

import time
from typing import Any

import pytest
from dashboard_harness import Pages, Server

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1;alert(1)">'
T0 = int(time.time() * 1_000_000) - 3_600_000_000


def _trace(n: int, *, hostile: bool = False, failing: bool = False) -> list[dict[str, Any]]:
    tid = f"bt-{n}"
    start = T0 + n * 60_000_000
    question = XSS if hostile else f"Where is order {1000 + n}?"
    root = {
        "id": f"{tid}-root",
        "trace_id": tid,
        "name": ("agent " + XSS) if hostile else "support-agent",
        "kind": "agent",
        "start_time": start,
        "end_time": start + 2_400_000 + n * 50_000,
        "inputs": {"question": question},
        "outputs": {"answer": XSS if hostile else "Your order ships tomorrow."},
        "metadata": {XSS: XSS, "customer": "acme"} if hostile else {"customer": "acme"},
        "tags": ["prod", XSS] if hostile else ["prod"],
        "session_id": f"conv-{n}",
    }
    retrieve = {
        "id": f"{tid}-ret",
        "trace_id": tid,
        "parent_id": root["id"],
        "name": "search_orders",
        "kind": "retriever",
        "start_time": start + 50_000,
        "end_time": start + 400_000,
        "inputs": {"query": question},
        "outputs": {"documents": [{"id": 1000 + n, "status": "packed", "note": XSS}]},
    }
    llm = {
        "id": f"{tid}-llm",
        "trace_id": tid,
        "parent_id": root["id"],
        "name": "chat " + XSS if hostile else "openai.chat",
        "kind": "llm",
        "start_time": start + 450_000,
        "end_time": start + 2_200_000,
        "model": "gpt-4o-mini",
        "provider": "openai",
        "inputs": {
            "messages": [
                {"role": "system", "content": "You are a concise support agent."},
                {"role": "user", "content": question},
            ]
        },
        "outputs": {
            "choices": [
                {
                    "message": {
                        "role": "assistant",
                        "content": XSS if hostile else "It ships tomorrow.",
                    }
                }
            ]
        },
        "usage": {"input_tokens": 412, "output_tokens": 38, "total_tokens": 450},
    }
    tool = {
        "id": f"{tid}-tool",
        "trace_id": tid,
        "parent_id": llm["id"],
        "name": "lookup_order",
        "kind": "tool",
        "start_time": start + 900_000,
        "end_time": start + 1_300_000,
        "inputs": {"order_id": 1000 + n},
        "outputs": {"status": "packed"},
    }
    if failing:
        tool["error"] = {
            "type": "TimeoutError",
            "message": "order service did not answer in 400 ms " + XSS,
            "stacktrace": 'Traceback (most recent call last):\n  File "agent.py", line 12, in '
            "lookup_order\n    raise TimeoutError(...)\nTimeoutError: " + XSS,
        }
    return [root, retrieve, llm, tool]


@pytest.fixture(scope="module")
def seeded(server: Server) -> str:
    items: list[dict[str, Any]] = []
    for n in range(12):
        items += _trace(n, hostile=n == 3, failing=n in (3, 7))
    with server.api() as api:
        r = api.post("/api/v1/runs/batch", json={"project": "support-bot", "runs": items})
        assert r.status_code == 202, r.text
        projects = api.get("/api/v1/projects").json()["items"]
    return str(next(p["id"] for p in projects if p["name"] == "support-bot"))


def test_runs_trace_and_feedback_with_hostile_content(
    tab: Pages, server: Server, seeded: str
) -> None:
    tab.sign_in()
    tab.page.click("text=support-bot")
    tab.page.wait_for_selector("figure.chart")
    tab.shot("project-overview-charts")

    tab.page.click("nav.tabs >> text=Runs")
    tab.page.wait_for_selector("table.runs")
    assert tab.page.locator("table.runs tbody tr").count() == 12
    assert XSS in tab.page.inner_text("table.runs")  # shown as text
    tab.shot("runs")

    tab.page.fill("input[name=filter]", "latency >> 2")
    tab.page.click("text=Apply")
    assert "invalid filter at position" in tab.page.inner_text("main")
    tab.shot("runs-invalid-filter")

    tab.page.fill("input[name=filter]", 'status = "error"')
    tab.page.click("text=Apply")
    assert tab.page.locator("table.runs tbody tr").count() == 2
    assert "filter=status" in tab.page.url  # the filter is saved in the URL
    tab.page.click("text=+ Traces")
    assert "root" in tab.page.input_value("input[name=filter]")
    tab.shot("runs-filtered")

    tab.goto("/traces/bt-3")
    tab.page.wait_for_selector(".tree")
    assert XSS in tab.page.inner_text(".tree")
    tab.shot("trace-hostile")
    tab.page.click("a.rname[data-run='bt-3-tool']")
    tab.page.wait_for_selector("#selected .error-box")
    assert "TimeoutError" in tab.page.inner_text("#selected")
    assert tab.page.url.endswith("run=bt-3-tool#selected")
    tab.shot("trace-error")
    tab.page.click("a.rname[data-run='bt-3-llm']")
    tab.page.wait_for_selector("#selected .msg.role-system")
    assert XSS in tab.page.inner_text("#selected .chat")
    tab.shot("trace-chat")
    assert not tab.xss_fired()
    assert tab.dialogs == []

    tab.goto("/traces/bt-5")
    tab.page.click("text=Add feedback")
    editor = tab.page.locator("#fb-correction")
    assert "Your order ships tomorrow." in editor.input_value()
    tab.page.fill("#fb-score", "0")
    tab.page.fill("#fb-comment", "Wrong: it shipped yesterday. " + XSS)
    editor.fill('{"answer": "Your order shipped yesterday."}')
    tab.shot("feedback-form")
    tab.page.click("text=Save feedback")
    tab.page.wait_for_selector("text=Feedback saved.")
    assert "correctness" in tab.page.inner_text("#feedback")
    assert XSS in tab.page.inner_text("#feedback")
    tab.shot("feedback-saved")
    with server.api() as api:
        stored = api.get("/api/v1/feedback", params={"run_id": "bt-5-root"}).json()["items"]
    assert stored[0]["correction"] == {"answer": "Your order shipped yesterday."}

    # The corrected run becomes a dataset example (reference output = the correction).
    tab.page.fill("#dataset input[name=dataset]", "support-golden")
    tab.page.click("#dataset >> text=Add run")
    tab.page.wait_for_selector("text=Run added as example")
    assert "Your order shipped yesterday." in tab.page.inner_text("article.example.highlight")
    assert "version 1" in tab.page.inner_text(".pagehead")
    tab.shot("dataset-examples")
    tab.goto("/traces/bt-3")
    tab.page.fill("#dataset input[name=dataset]", "support-golden")
    tab.page.click("#dataset >> text=Add run")
    tab.page.wait_for_selector("text=Run added as example")
    assert "version 2" in tab.page.inner_text(".pagehead")
    tab.page.click("nav.tabs >> text=Versions")
    tab.page.fill("input[name=tag]", "prod")
    tab.page.fill("input[name=version]", "1")
    tab.page.click("text=Set tag")
    assert "prod" in tab.page.inner_text("table.grid")
    tab.shot("dataset-versions")
    tab.page.click("nav.tabs >> text=Diff")
    assert "1 added, 0 removed, 0 changed" in tab.page.inner_text("main")
    tab.shot("dataset-diff")
    tab.page.click("nav.mainnav >> text=Datasets")
    assert "support-golden" in tab.page.inner_text("table.grid")
    tab.shot("datasets")
    assert not tab.xss_fired()
    assert tab.dialogs == []
    assert not [e for e in tab.console_errors if "Content Security Policy" in e]


def test_a_5000_run_trace_renders(tab: Pages, server: Server) -> None:
    items: list[dict[str, Any]] = [
        {
            "id": "big-root",
            "trace_id": "big",
            "name": "batch-agent",
            "kind": "agent",
            "start_time": T0,
            "end_time": T0 + 5_000_000_000,
        }
    ]
    for i in range(4_999):
        parent = "big-root" if i % 50 == 0 else f"big-{i - i % 50}"
        items.append(
            {
                "id": f"big-{i}",
                "trace_id": "big",
                "parent_id": parent,
                "name": f"step {i}",
                "kind": "llm" if i % 3 else "tool",
                "start_time": T0 + i * 1_000_000,
                "end_time": T0 + i * 1_000_000 + 900_000,
                "inputs": {"i": i},
                "outputs": {"ok": True},
            }
        )
    with server.api() as api:
        for chunk in range(0, len(items), 1000):
            r = api.post(
                "/api/v1/runs/batch", json={"project": "big", "runs": items[chunk : chunk + 1000]}
            )
            assert r.status_code == 202, r.text
    tab.sign_in()
    tab.goto("/traces/big")
    tab.page.wait_for_selector(".tree")
    # Only the root and its 100 collapsed groups are sent; a group's runs load when opened.
    assert tab.page.locator(".tree .row:not(.head)").count() == 101
    assert "+49" in tab.page.inner_text(".tree")
    tab.shot("trace-5000", full_page=False)
    group = tab.page.locator("details.lazy").nth(3)
    group.locator("summary .caret-icon").click()
    tab.page.wait_for_selector("details.lazy[open] .kids .row >> nth=48")
    assert group.locator(".kids .row").count() == 49
    assert group.locator(":scope > summary .more").is_hidden()  # "+49" goes once they show
    assert tab.page.locator("details.lazy:not([open]) > summary .more").first.is_visible()
    tab.shot("trace-5000-expanded", full_page=False)
    group.locator(".kids a.rname").first.click()
    tab.page.wait_for_selector("#selected h2:has-text('step 151')")
    assert not tab.console_errors, tab.console_errors


def test_alert_pages(tab: Pages, server: Server, seeded: str) -> None:
    with server.api() as api:
        made = api.post(
            "/api/v1/alert-rules",
            json={
                "project_id": seeded,
                "name": "error rate " + XSS,
                "metric": {"kind": "error_rate"},
                "condition": {"type": "threshold", "op": ">", "value": 0.2},
            },
        )
        assert made.status_code == 201, made.text
    tab.sign_in()
    tab.page.click("nav.mainnav >> text=Alerts")
    assert XSS in tab.page.inner_text("table.grid")
    tab.shot("alerts")
    tab.page.click("table.grid a[href^='/alerts/']")
    tab.page.wait_for_selector("figure.chart")
    tab.shot("alert")
    assert not tab.xss_fired()
    assert tab.dialogs == []


def test_rule_pages(tab: Pages, server: Server, seeded: str) -> None:
    with server.api() as api:
        assert api.post("/api/v1/datasets", json={"name": "errors-to-review"}).status_code in (
            201,
            409,
        )
        made = api.post(
            "/api/v1/rules",
            json={
                "project_id": seeded,
                "name": "failed runs to review " + XSS,
                "filter": 'status = "error"',
                "root_only": False,
                "actions": [{"type": "add_to_dataset", "dataset": "errors-to-review"}],
            },
        )
        assert made.status_code == 201, made.text
    tab.sign_in()
    tab.page.click("nav.mainnav >> text=Rules")
    assert XSS in tab.page.inner_text("table.grid")
    tab.shot("rules")
    tab.page.click("table.grid a[href^='/rules/']")
    tab.page.wait_for_selector("h1")
    tab.shot("rule")
    assert not tab.xss_fired()
    assert tab.dialogs == []
