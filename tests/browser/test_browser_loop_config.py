"""The loop configured from a real browser: rules (filter preview, sample rate, actions, edit,
enable/disable, delete), an online evaluator whose history shows each score as a number, paged,
and alert rules and channels, with the API's own validation messages on the forms."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from dashboard_harness import Pages, Server

XSS = '<img src=x onerror="window.__xss=1;alert(1)"> "q" \'s\''
PROJECT = "loop-config"


def _runs(prefix: str, n: int, *, start: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}-{i}",
            "trace_id": f"{prefix}-{i}",
            "name": "answer" if i % 3 else "answer " + XSS,
            "kind": "chain",
            "start_time": start + i * 1_000,
            "end_time": start + i * 1_000 + 500_000,
            "inputs": {"question": XSS},
            "outputs": {"answer": "refund approved" if i % 2 else "no " + XSS},
            "error": "boom" if i % 5 == 0 else None,
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def project_id(server: Server) -> str:
    now = int(time.time() * 1_000_000)
    with server.api() as api:
        r = api.post(
            "/api/v1/runs/batch",
            json={"project": PROJECT, "runs": _runs("seed", 12, start=now - 3_600_000_000)},
        )
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 20
        while True:
            found = [p for p in api.get("/api/v1/projects").json()["items"] if p["name"] == PROJECT]
            listed = api.get("/api/v1/runs", params={"project": PROJECT, "limit": 100})
            if found and listed.status_code == 200 and len(listed.json()["items"]) == 12:
                return str(found[0]["id"])
            assert time.monotonic() < deadline, "the seed runs were not written"
            time.sleep(0.2)


def _rule_named(server: Server, name: str) -> dict[str, Any]:
    with server.api() as api:
        (rule,) = [r for r in api.get("/api/v1/rules").json() if r["name"] == name]
        return dict(rule)


def test_create_preview_edit_switch_and_delete_a_rule(
    tab: Pages, server: Server, project_id: str
) -> None:
    bad_filter = 'name = "answer'
    with server.api() as api:
        api_said = api.post(
            "/api/v1/rules",
            json={
                "project_id": project_id,
                "name": "x",
                "filter": bad_filter,
                "actions": [{"type": "add_to_queue", "queue": "q"}],
            },
        )
    assert api_said.status_code == 400
    api_message = api_said.json()["error"]["message"]

    tab.sign_in()
    tab.goto("/rules")
    tab.page.fill("#r-name", "triage " + XSS)
    tab.page.select_option("#r-project", project_id)
    tab.page.fill("#r-filter", bad_filter)
    tab.page.click("button:has-text('Preview the filter')")
    assert api_message in tab.page.inner_text("#preview")
    assert tab.page.input_value("#r-name") == "triage " + XSS  # the form keeps what was typed

    # the same bad filter on Create: the API's message on the form, not a server error
    response = tab.page.expect_response(lambda r: r.request.method == "POST")
    with response as info:
        tab.page.click("button.primary:has-text('Create')")
    assert info.value.status == 400
    assert api_message in tab.page.inner_text("p.flash.error")
    tab.shot("rule-bad-filter")

    # a good filter: the preview counts the matching runs of the last 24 hours and lists them
    tab.page.fill("#r-filter", 'status = "error"')
    tab.page.uncheck("input[name=root_only]")
    tab.page.click("button:has-text('Preview the filter')")
    count = tab.page.inner_text("#preview .preview-count")
    assert count == "3"  # seed-0, seed-5 and seed-10 failed
    shown = tab.page.locator("#preview tbody tr").all_inner_texts()
    assert len(shown) == 3
    assert any(XSS in row for row in shown)  # a hostile run name, as text
    tab.shot("rule-preview")

    # bad actions JSON: the reason on the form, nothing stored
    tab.page.fill("#r-rate", "0.25")
    tab.page.fill("#r-actions", '[{"type": "add_to_queue", "queue": "triage"')
    tab.page.click("button.primary:has-text('Create')")
    assert "actions is not valid JSON" in tab.page.inner_text("p.flash.error")
    with server.api() as api:
        assert [r for r in api.get("/api/v1/rules").json() if r["name"].startswith("triage")] == []
    tab.page.fill("#r-actions", json.dumps([{"type": "add_to_queue", "queue": "triage"}]))
    tab.page.click("button.primary:has-text('Create')")
    tab.page.wait_for_selector("h1")
    assert tab.page.inner_text("h1") == "triage " + XSS
    rule = _rule_named(server, "triage " + XSS)
    assert rule["filter"] == 'status = "error"'
    assert rule["sample_rate"] == 0.25
    assert rule["root_only"] is False
    assert rule["actions"][0]["queue"] == "triage"
    assert "25" in tab.page.inner_text("table.kv")  # sample rate as a percentage
    tab.shot("rule-created")

    # edit: a bad sample rate is refused with the API's reason; then a good edit is saved
    tab.page.click("summary:has-text('Edit this rule')")
    # past the browser's own min/max check, as any client could send it
    tab.page.evaluate("document.querySelector('#edit #r-rate').removeAttribute('max')")
    tab.page.fill("#r-rate", "1.5")
    tab.page.click("#edit button.primary:has-text('Save')")
    assert "sample_rate" in tab.page.inner_text("#edit p.flash.error")
    assert _rule_named(server, "triage " + XSS)["sample_rate"] == 0.25
    tab.page.fill("#r-rate", "0.5")
    tab.page.fill("#r-filter", 'status = "error" and name = "answer"')
    tab.page.click("#edit button.primary:has-text('Save')")
    tab.page.wait_for_selector("p.flash.ok")
    rule = _rule_named(server, "triage " + XSS)
    assert rule["sample_rate"] == 0.5
    assert rule["filter"] == 'status = "error" and name = "answer"'

    # disable, enable, then delete after the confirmation
    tab.page.click(".rule-buttons button:has-text('Disable')")
    tab.page.wait_for_selector(".badge:has-text('disabled')")
    assert _rule_named(server, "triage " + XSS)["enabled"] is False
    tab.page.click(".rule-buttons button:has-text('Enable')")
    tab.page.wait_for_selector(".rule-buttons button:has-text('Disable')")
    assert _rule_named(server, "triage " + XSS)["enabled"] is True
    tab.page.click(".rule-buttons button:has-text('Delete…')")
    tab.page.click("button.danger:has-text('Delete the rule')")
    tab.page.wait_for_url("**/rules")
    with server.api() as api:
        assert [r for r in api.get("/api/v1/rules").json() if r["name"].startswith("triage")] == []
    assert not tab.xss_fired()
    assert tab.dialogs == []


def test_an_online_evaluator_and_its_paged_score_history(
    tab: Pages, server: Server, project_id: str
) -> None:
    tab.sign_in()
    tab.goto("/rules")
    tab.page.fill("#r-name", "refund judge")
    tab.page.select_option("#r-project", project_id)
    tab.page.fill("#r-filter", 'name = "answer"')
    evaluator = {
        "type": "evaluate",
        "evaluators": [{"name": "regex", "config": {"key": "refund_ok", "pattern": "refund"}}],
    }
    tab.page.fill("#r-actions", json.dumps([evaluator]))
    tab.page.click("button.primary:has-text('Create')")
    tab.page.wait_for_selector("h1:has-text('refund judge')")
    rule_id = _rule_named(server, "refund judge")["id"]

    # a new rule acts on runs that arrive after it: 78 more, 52 of them named "answer" (the
    # rest carry hostile names); the 12 seed runs from before it are history
    now = int(time.time() * 1_000_000)
    with server.api() as api:
        r = api.post(
            "/api/v1/runs/batch", json={"project": PROJECT, "runs": _runs("judged", 78, start=now)}
        )
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 60
        while (done := api.get(f"/api/v1/rules/{rule_id}").json()["outcomes"].get("done", 0)) < 52:
            assert time.monotonic() < deadline, f"only {done} of 52 actions done"
            time.sleep(0.5)

    tab.goto(f"/rules/{rule_id}")
    first = [float(s) for s in tab.page.locator("span.tag.score strong.num").all_inner_texts()]
    assert len(first) == 50  # one page
    tab.shot("rule-history-scores")
    tab.page.click("a[rel=next]:has-text('Older actions')")
    tab.page.wait_for_url(re.compile(r"before=\d+"))
    second = [float(s) for s in tab.page.locator("span.tag.score strong.num").all_inner_texts()]
    assert len(second) == 2
    # runs named "answer" are those with i % 3 != 0; odd ones answered "refund approved"
    expected = [1.0 if i % 2 else 0.0 for i in range(78) if i % 3]
    assert sorted(first + second) == sorted(expected)
    assert tab.page.locator("a[rel=next]").count() == 0
    with server.api() as api:
        feedback = api.get(
            "/api/v1/feedback", params={"run_id": "judged-1", "key": "refund_ok"}
        ).json()
        seed = api.get("/api/v1/feedback", params={"run_id": "seed-1", "key": "refund_ok"}).json()
    assert seed["items"] == []  # from before the rule: not scored
    assert [f["score"] for f in feedback["items"]] == [1.0]  # the score the API holds
    assert not tab.xss_fired()


def test_alert_rules_and_channels_from_the_browser(
    tab: Pages, server: Server, project_id: str
) -> None:
    tab.sign_in()
    tab.goto("/alerts")
    # a channel: a bad URL is refused on the form, then one is created and listed
    tab.page.fill("#c-name", "ops " + XSS)
    tab.page.select_option("#c-kind", "webhook")
    tab.page.fill("#c-url", "http://127.0.0.1:9/hooks/secret-path")
    tab.page.fill("#c-secret", "s3cr3t-value")
    tab.page.click("button:has-text('Create channel')")
    tab.page.wait_for_selector("#channels p.flash.ok")
    assert "signing secret" in tab.page.inner_text("#channels")
    assert "secret-path" not in tab.page.content()
    assert "s3cr3t-value" not in tab.page.content()
    assert ("ops " + XSS) in tab.page.inner_text("#channels table")
    with server.api() as api:
        (channel,) = [c for c in api.get("/api/v1/channels").json() if c["name"] == "ops " + XSS]
    assert channel["has_secret"] is True

    # an alert rule: a bad condition gets the API's validation message, nothing is stored
    tab.goto("/alerts")
    tab.page.fill("#a-name", "errors " + XSS)
    tab.page.select_option("#a-project", project_id)
    tab.page.fill("#a-metric", '{"kind": "error_rate"}')
    tab.page.fill("#a-cond", '{"type": "threshold", "op": "~", "value": 0.1}')
    tab.page.fill("#a-window", "600")
    tab.page.check(f"input[name=channel_ids][value='{channel['id']}']")
    tab.page.click("button:has-text('Create alert rule')")
    problem = tab.page.inner_text("#new p.flash.error")
    assert "condition" in problem
    assert tab.page.input_value("#a-name") == "errors " + XSS
    with server.api() as api:
        stored = _items(api.get("/api/v1/alert-rules").json())
    assert all(r["name"] != "errors " + XSS for r in stored)
    tab.shot("alert-bad-condition")
    tab.page.fill("#a-metric", "{not json")
    tab.page.click("button:has-text('Create alert rule')")
    assert "metric is not valid JSON" in tab.page.inner_text("#new p.flash.error")
    tab.page.fill("#a-metric", '{"kind": "error_rate"}')
    tab.page.fill("#a-cond", '{"type": "threshold", "op": ">", "value": 0.1, "min_samples": 5}')
    tab.page.click("button:has-text('Create alert rule')")
    tab.page.wait_for_url(re.compile(r"/alerts/[^/]+$"))
    with server.api() as api:
        (rule,) = [
            r for r in _items(api.get("/api/v1/alert-rules").json()) if r["name"] == "errors " + XSS
        ]
    assert rule["window_s"] == 600
    assert rule["channel_ids"] == [channel["id"]]
    assert rule["condition"]["op"] == ">"
    tab.shot("alert-created")

    # edit it, switch it off and on, delete it, then the channel
    tab.page.click("summary:has-text('Edit')")
    tab.page.fill("#edit #a-window", "900")
    tab.page.click("#edit button.primary")
    tab.page.wait_for_load_state()
    with server.api() as api:
        assert api.get(f"/api/v1/alert-rules/{rule['id']}").json()["window_s"] == 900
    tab.page.click("button:has-text('Disable')")
    tab.page.wait_for_selector("button:has-text('Enable')")
    with server.api() as api:
        assert api.get(f"/api/v1/alert-rules/{rule['id']}").json()["enabled"] is False
    tab.page.click("button:has-text('Enable')")
    tab.page.wait_for_selector("button:has-text('Disable')")
    tab.page.click("button.danger:has-text('Delete…')")
    tab.page.click("button.danger:has-text('Delete the')")
    tab.page.wait_for_url("**/alerts")
    with server.api() as api:
        assert api.get(f"/api/v1/alert-rules/{rule['id']}").status_code == 404
    tab.page.click("#channels button.danger:has-text('Delete…')")
    tab.page.click("button.danger:has-text('Delete the channel')")
    tab.page.wait_for_url(re.compile(r"/alerts(#channels)?$"))
    with server.api() as api:
        assert all(c["id"] != channel["id"] for c in api.get("/api/v1/channels").json())
    assert not tab.xss_fired()
    assert tab.dialogs == []


def _items(body: Any) -> list[dict[str, Any]]:
    return list(body["items"] if isinstance(body, dict) else body)


def test_a_rule_is_created_without_javascript(
    chromium: Any, server: Server, project_id: str
) -> None:
    context = chromium.new_context(java_script_enabled=False)
    try:
        tab = Pages(context.new_page(), server)
        tab.sign_in()
        tab.goto("/rules")
        tab.page.fill("#r-name", "no-js rule")
        tab.page.select_option("#r-project", project_id)
        tab.page.fill("#r-filter", 'name = "answer')
        tab.page.click("button.primary:has-text('Create')")
        assert "position" in tab.page.inner_text("p.flash.error")
        tab.page.fill("#r-filter", 'name = "answer"')
        tab.page.click("button:has-text('Preview the filter')")
        assert int(tab.page.inner_text("#preview .preview-count")) > 0
        tab.page.fill("#r-actions", json.dumps({"type": "add_to_queue", "queue": XSS[:40]}))
        tab.page.click("button.primary:has-text('Create')")
        tab.page.wait_for_selector("h1:has-text('no-js rule')")
    finally:
        context.close()
    assert _rule_named(server, "no-js rule")["filter"] == 'name = "answer"'
