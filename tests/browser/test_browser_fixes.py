"""Issue #23's "broken today" list, checked in a real browser by geometry and navigation:
OTLP chats read as conversations, axis labels are not clipped, the JSON viewer's triangle does
not cover the key, a bad version keeps the user on the dataset page, placeholders fit."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from dashboard_harness import Pages, Server

T0 = int(time.time() * 1_000_000) - 1_800_000_000
TRACE = "9a1efff798038103d269b633813fc60c"


def _otlp_chat() -> dict[str, Any]:
    """An OTLP/JSON request (hex ids) with one GenAI chat span whose answer is a tool call."""
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": "Is NR-7 refundable?"}]}]
        ),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "parts": [
                        {
                            "type": "tool_call",
                            "id": "c1",
                            "name": "lookup_rate",
                            "arguments": {"rate": "NR-7", "fields": ["refundable", "fees"]},
                        }
                    ],
                }
            ]
        ),
    }
    span = {
        "traceId": TRACE,
        "spanId": "aaa19b7ec3c1b175",
        "name": "chat gpt-4o",
        "kind": 3,
        "startTimeUnixNano": str(T0 * 1000),
        "endTimeUnixNano": str((T0 + 900_000) * 1000),
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()],
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "fix-chat"}}]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [span]}]}]}


@pytest.fixture(scope="module")
def seeded(server: Server) -> None:
    runs = [
        {
            "id": f"fx-{i}",
            "trace_id": f"fx-{i}",
            "name": "summarise",
            "kind": "llm",
            "start_time": T0 + i * 60_000_000,
            "end_time": T0 + i * 60_000_000 + 800_000,
            "inputs": {"document": {"title": "policy", "sections": [{"id": 1, "rules": ["a"]}]}},
            "outputs": {"summary": "ok"},
            "usage": {"input_tokens": 2_400_000, "output_tokens": 100_000},
        }
        for i in range(3)
    ]
    with server.api() as api:
        r = api.post("/api/v1/runs/batch", json={"project": "fixes", "runs": runs})
        assert r.status_code == 202, r.text
        r = api.post("/v1/traces", json=_otlp_chat())
        assert r.status_code == 200, r.text
        r = api.post("/api/v1/datasets", json={"name": "fix-golden"})
        assert r.status_code == 201, r.text
        examples = [{"inputs": {"q": "a"}, "outputs": {"answer": "b"}}]
        r = api.post("/api/v1/datasets/fix-golden/examples", json={"examples": examples})
        assert r.status_code == 201, r.text


def _project_id(server: Server, name: str) -> str:
    with server.api() as api:
        projects = api.get("/api/v1/projects").json()["items"]
    return next(p["id"] for p in projects if p["name"] == name)


def test_an_otlp_llm_span_reads_as_a_conversation(tab: Pages, server: Server, seeded: None) -> None:
    tab.sign_in()
    tab.goto(f"/traces/{TRACE}")
    tab.page.locator("a.rname", has_text="chat gpt-4o").first.click()
    tab.page.wait_for_selector(".msg.role-assistant")
    call = tab.page.locator(".msg-tool-call")
    assert call.locator("code.tool-name").inner_text() == "lookup_rate"
    args = json.loads(call.locator("pre.tool-args").inner_text())
    assert args == {"rate": "NR-7", "fields": ["refundable", "fees"]}
    assert tab.page.locator(".msg.role-user .msg-text").inner_text() == "Is NR-7 refundable?"
    assert tab.page.locator(".chat details.j").count() == 0  # no JSON to click through
    tab.shot("fix-otlp-chat")


def test_chart_axis_labels_are_not_clipped(tab: Pages, server: Server, seeded: None) -> None:
    tab.sign_in()
    tab.goto(f"/projects/{_project_id(server, 'fixes')}?range=24h")
    tokens = tab.page.locator("figure.chart", has_text="Tokens")
    tokens.wait_for()
    svg_left = tokens.locator("svg").bounding_box()["x"]
    labels = tokens.locator("text.ylab")
    assert labels.count() == 3
    for i in range(3):
        box = labels.nth(i).bounding_box()
        assert box["x"] >= svg_left, labels.nth(i).text_content()
    assert "M" in labels.nth(2).text_content()  # 2.5M, not ",500,000"
    tab.shot("fix-token-axis")


def test_json_disclosure_triangle_sits_after_the_key(
    tab: Pages, server: Server, seeded: None
) -> None:
    tab.sign_in()
    tab.goto("/traces/fx-0?run=fx-0")
    tab.page.wait_for_selector("#selected .json .j-row > details.j")
    # The triangle must take room of its own after "key": (a marker painted outside the
    # summary's box covers the colon and the key): the summary starts after the key, and its
    # label starts a marker's width after the summary.
    gaps = tab.page.evaluate(
        """() => [...document.querySelectorAll('#selected .json .j-row > details.j > summary')]
           .filter(s => s.checkVisibility()).map(s => {
             const key = s.parentElement.previousElementSibling.getBoundingClientRect();
             const box = s.getBoundingClientRect();
             const label = s.querySelector('.j-sum').getBoundingClientRect();
             return [box.left - key.right, label.left - box.left];
           })"""
    )
    tab.shot("fix-json-viewer")
    assert gaps, "no nested value rendered"
    for after_key, marker_room in gaps:
        assert after_key >= 0, gaps
        assert marker_room >= 6, gaps


def test_a_bad_version_keeps_the_user_on_the_dataset_page(
    tab: Pages, server: Server, seeded: None
) -> None:
    tab.sign_in()
    tab.goto("/datasets/fix-golden")
    tab.page.fill("#as_of", "v999")
    tab.page.click("form.filterbar button[type=submit]")
    alert = tab.page.locator("p.flash.error[role=alert]")
    assert "as_of='v999'" in alert.inner_text()
    assert tab.page.locator("#as_of").is_visible()  # still the dataset page, its form at hand
    assert "Back to projects" not in tab.page.inner_text("main")
    assert tab.page.locator(".example, .card").count() >= 1  # the newest version is shown
    tab.shot("fix-bad-as-of")
    tab.goto("/datasets/fix-golden/diff?from=1&to=77")
    assert "Cannot compare version" in tab.page.locator("p.flash.error").inner_text()
    assert tab.page.locator("input[name=tag]").is_visible()  # the versions page
    tab.shot("fix-bad-diff")


PLACEHOLDER_FITS = """() => {
  const canvas = document.createElement('canvas').getContext('2d');
  return [...document.querySelectorAll('input[placeholder]')]
    .filter(i => i.offsetParent !== null)
    .map(i => {
      const s = getComputedStyle(i);
      canvas.font = `${s.fontStyle} ${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
      const room = i.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
      return [i.placeholder, canvas.measureText(i.placeholder).width <= room + 0.5];
    });
}"""


def test_placeholders_are_not_cut_off(tab: Pages, server: Server, seeded: None) -> None:
    tab.sign_in()
    seen: dict[str, bool] = {}
    for path in ("/datasets", "/datasets/fix-golden", "/datasets/fix-golden/versions"):
        tab.goto(path)
        seen.update(dict(tab.page.evaluate(PLACEHOLDER_FITS)))
    tab.goto("/traces/fx-1?run=fx-1")
    tab.page.locator("details.fb-form > summary").first.click()
    seen.update(dict(tab.page.evaluate(PLACEHOLDER_FITS)))
    assert "new or existing" in seen  # the trace panel's dataset field (labelled "Dataset")
    assert "e.g. support-golden" in seen
    cut = [text for text, fits in seen.items() if not fits]
    assert not cut, cut
