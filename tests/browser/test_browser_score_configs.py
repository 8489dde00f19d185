"""The feedback form built from score configs, in a real browser and with the keyboard only:
category buttons, a boolean, a slider; edit and delete with history; the feedback marks on the
trace tree and the runs table."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from dashboard_harness import Pages, Server

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1;alert(1)">'
T0 = int(time.time() * 1_000_000) - 7_200_000_000
KEYS = {
    "tone": {
        "kind": "categorical",
        "categories": [{"label": "rude", "score": 0}, {"label": "warm", "score": 1}],
        "rubric": "warm: friendly and specific. " + XSS,
        "correction_expected": True,
    },
    "resolved": {"kind": "boolean", "description": "Did the guest get an answer?"},
    "quality": {"kind": "continuous", "min": 0, "max": 5},
}


def _trace() -> list[dict[str, Any]]:
    root = {
        "id": "sc-root",
        "trace_id": "sc-trace",
        "name": "review-agent",
        "kind": "agent",
        "start_time": T0,
        "end_time": T0 + 1_000_000,
        "inputs": {"question": "Can I cancel my booking?"},
        "outputs": {"answer": "No."},
    }
    llm = {
        "id": "sc-llm",
        "trace_id": "sc-trace",
        "parent_id": "sc-root",
        "name": "openai.chat",
        "kind": "llm",
        "start_time": T0 + 100_000,
        "end_time": T0 + 900_000,
        "outputs": {"answer": "No."},
    }
    return [root, llm]


@pytest.fixture(scope="module")
def declared(server: Server) -> Iterator[None]:
    with server.api() as api:
        r = api.post("/api/v1/runs/batch", json={"project": "review-bot", "runs": _trace()})
        assert r.status_code == 202, r.text
        for _ in range(600):  # ingest is asynchronous: wait (bounded) for the trace
            if api.get("/api/v1/runs/sc-llm").status_code == 200:
                break
            time.sleep(0.1)
        for key, body in KEYS.items():
            assert api.put(f"/api/v1/feedback-keys/{key}", json=body).status_code == 201
    yield
    with server.api() as api:  # the server is shared: leave no declared keys behind
        for key in KEYS:
            api.delete(f"/api/v1/feedback-keys/{key}")


def _feedback(server: Server) -> dict[str, dict[str, Any]]:
    with server.api() as api:
        items = api.get("/api/v1/feedback", params={"run_id": "sc-root"}).json()["items"]
    return {f["key"]: f for f in items}


def test_score_with_the_keyboard_edit_delete_and_see_the_marks(
    tab: Pages, server: Server, declared: None
) -> None:
    page = tab.page
    tab.sign_in()
    tab.goto("/traces/sc-trace?run=sc-root")
    page.wait_for_selector("form.fb-config[data-key=tone]")
    assert "warm: friendly and specific. " + XSS in page.inner_text("form[data-key=tone]")
    assert "Did the guest get an answer?" in page.inner_text("form[data-key=resolved]")
    tab.shot("score-configs-form")

    # a category: focus its button and press Enter
    page.fill("form[data-key=tone] textarea[name=comment]", "polite but wrong")
    page.focus("form[data-key=tone] button[value=warm]")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Feedback saved.")
    # the slider: End moves it to the maximum, Tab twice reaches Save, Enter saves
    page.focus("form[data-key=quality] input[type=range]")
    page.keyboard.press("End")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Feedback saved.")
    # a boolean: Space on "false"
    page.focus("form[data-key=resolved] button[value=false]")
    page.keyboard.press("Space")
    page.wait_for_selector("text=Feedback saved.")

    stored = _feedback(server)
    assert (stored["tone"]["value"], stored["tone"]["score"]) == ("warm", 1.0)
    assert stored["tone"]["comment"] == "polite but wrong"
    assert stored["quality"]["score"] == 5.0
    assert stored["resolved"]["score"] is False
    assert stored["tone"]["correction"] is None  # the output left as it was is no correction

    # the trace tree marks the scored run
    assert page.inner_text(".tree a.rname[data-run='sc-root'] ~ .fb-mark") == "✎ 3"
    assert page.locator(".tree a.rname[data-run='sc-llm'] ~ .fb-mark").count() == 0

    # edit the category: its score follows, and the old one is kept in the history
    item = page.locator(f"#fb-{stored['tone']['id']}")
    item.locator("summary", has_text="Edit").click()
    item.locator("input[name=value]").fill("rude")
    item.locator("button", has_text="Save changes").click()
    page.wait_for_selector("text=Feedback saved.")
    item = page.locator(f"#fb-{stored['tone']['id']}")
    item.locator("summary", has_text="history (1 change)").click()
    assert "by bootstrap admin: was score 1.0 value warm" in " ".join(
        item.locator(".fb-hist").inner_text().split()
    )
    after = _feedback(server)["tone"]
    assert (after["value"], after["score"]) == ("rude", 0.0)

    # delete one: it leaves the list and shows among the deleted
    page.locator(f"#fb-{stored['resolved']['id']} button.danger").press("Enter")
    page.wait_for_selector("text=Feedback deleted")
    page.locator("summary", has_text="deleted feedback (1)").click()
    assert "resolved" in page.inner_text(".fb-deleted")
    assert set(_feedback(server)) == {"tone", "quality"}
    tab.shot("score-configs-history")

    # the runs table marks the run too
    with server.api() as api:
        projects = api.get("/api/v1/projects").json()["items"]
    pid = next(p["id"] for p in projects if p["name"] == "review-bot")
    tab.goto(f"/projects/{pid}/runs?filter=")
    page.wait_for_selector("table.runs")
    row = page.locator("table.runs tbody tr", has_text="review-agent")
    assert row.locator(".fb-mark").inner_text().strip() == "✎ 2"
    other = page.locator("table.runs tbody tr", has_text="openai.chat")
    assert other.locator(".fb-mark").count() == 0
    tab.shot("score-configs-runs")
    assert not tab.xss_fired()
    assert tab.dialogs == []
