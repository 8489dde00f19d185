"""Tables and numbers, and traces, in a real browser: the project overview's trace-level figures
(span-level on request) with the runs filter, custom time ranges on the overview and the runs list,
the projects list's figures with experiment projects apart, and inside a trace: search, per-row
tokens and cost, the run kind as text. Hostile names and inputs are shown as text."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from dashboard_harness import Pages, Server

XSS = '<img src=x onerror="window.__xss=1;alert(1)"> "q" \'s\''
MIN = 60_000_000
DAY = 86_400_000_000
NOW = int(time.time() * 1_000_000)
PROJECT = "numbers " + XSS[:40]


def _trace(
    tid: str, start: int, *, error: bool = False, customer: str = ""
) -> list[dict[str, Any]]:
    root: dict[str, Any] = {
        "id": f"{tid}-root",
        "trace_id": tid,
        "name": "answer " + XSS,
        "kind": "chain",
        "start_time": start,
        "end_time": start + 2_000_000,
        "inputs": {"question": "where is my parcel " + XSS},
        "outputs": {"answer": "it ships on monday"},
        "metadata": {"customer": customer} if customer else {},
    }
    llm = {
        "id": f"{tid}-llm",
        "trace_id": tid,
        "parent_id": root["id"],
        "name": "openai.chat",
        "kind": "llm",
        "start_time": start + 100_000,
        "end_time": start + 900_000,
        "inputs": {"prompt": "find the parcel"},
        "outputs": {"text": "calling the courier api"},
        "usage": {"input_tokens": 1200, "output_tokens": 34, "total_tokens": 1234},
        "cost": 0.0125,
    }
    tool = {
        "id": f"{tid}-tool",
        "trace_id": tid,
        "parent_id": root["id"],
        "name": "courier_lookup",
        "kind": "tool",
        "start_time": start + 1_000_000,
        "end_time": start + 1_500_000,
        "inputs": {"tracking": "ZX-" + tid},
        "outputs": {"status": "in the depot at Wolverhampton"},
        "error": "timeout" if error else None,
    }
    return [root, llm, tool]


@pytest.fixture(scope="module")
def project_id(server: Server) -> str:
    items = (
        _trace("ov-a", NOW - 10 * MIN, customer="acme")
        + _trace("ov-b", NOW - 20 * MIN, error=True)
        + _trace("ov-c", NOW - 30 * MIN)
        + _trace("ov-old", NOW - 5 * DAY)
    )
    with server.api() as api:
        r = api.post("/api/v1/runs/batch", json={"project": PROJECT, "runs": items})
        assert r.status_code == 202, r.text
        for run_id, score in (("ov-a-root", 1), ("ov-b-root", 0)):
            body = {"run_id": run_id, "key": "helpfulness", "score": score}
            deadline = time.monotonic() + 20
            while (fb := api.post("/api/v1/feedback", json=body)).status_code == 404:
                assert time.monotonic() < deadline, fb.text  # ingest is asynchronous
                time.sleep(0.2)
            assert fb.status_code in (200, 201), fb.text
        assert api.post("/api/v1/datasets", json={"name": "ov-golden"}).status_code == 201
        made = api.post("/api/v1/experiments", json={"name": "exp " + XSS, "dataset": "ov-golden"})
        assert made.status_code == 201, made.text
        projects = api.get("/api/v1/projects", params={"limit": 1000}).json()["items"]
    return str(next(p["id"] for p in projects if p["name"] == PROJECT))


def _tile(tab: Pages, name: str) -> str:
    return str(tab.page.inner_text(f"#tile-{name}")).strip()


def _local(us: int) -> str:
    """A time as the datetime-local inputs take it (UTC)."""
    return datetime.fromtimestamp(us / 1e6, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def test_overview_traces_by_default_spans_on_request_filter_and_range(
    tab: Pages, server: Server, project_id: str
) -> None:
    tab.sign_in()
    tab.page.click(f"table.projects a:has-text('{PROJECT[:20]}')")
    tab.page.wait_for_selector("#tile-count")
    assert _tile(tab, "count") == "3"  # three traces in the last 24 hours, not nine runs
    assert _tile(tab, "error-rate") == "33.3%"  # one trace had a failing step
    assert "Trace latency p50" in (tab.page.text_content("main") or "")
    tab.shot("overview-traces")

    tab.page.click("nav.modes a:has-text('runs (spans)')")
    tab.page.wait_for_url("**level=runs**")
    assert _tile(tab, "count") == "9"
    assert _tile(tab, "error-rate") == "11.1%"
    tab.page.click("nav.modes a:text-is('traces')")
    tab.page.wait_for_selector("nav.modes a.active:text-is('traces')")
    assert _tile(tab, "count") == "3"

    # the runs filter, typed into the overview
    tab.page.fill("#overview-filter", 'metadata.customer = "acme"')
    tab.page.press("#overview-filter", "Enter")
    tab.page.wait_for_url("**filter=**")
    assert _tile(tab, "count") == "1"
    assert _tile(tab, "error-rate") == "0.0%"
    tab.page.fill("#overview-filter", "latency >> 2")
    tab.page.press("#overview-filter", "Enter")
    assert "invalid filter at position" in tab.page.inner_text("main")
    assert _tile(tab, "count") == "3"  # every trace, with the reason shown

    # a custom range with the picker: only trace c started in it
    tab.goto(f"/projects/{project_id}")
    tab.page.fill(".range-form input[name=from]", _local(NOW - 35 * MIN))
    tab.page.fill(".range-form input[name=to]", _local(NOW - 25 * MIN))
    tab.page.click(".range-form button:has-text('Set range')")
    tab.page.wait_for_url("**from=**")
    assert _tile(tab, "count") == "1"
    tab.shot("overview-custom-range")
    # and as URL parameters: the week holds the old trace too
    tab.goto(f"/projects/{project_id}?range=7d")
    assert _tile(tab, "count") == "4"
    tab.goto(f"/projects/{project_id}?from={_local(NOW - 6 * DAY)}&to={_local(NOW - 4 * DAY)}")
    assert _tile(tab, "count") == "1"
    tab.goto(f"/projects/{project_id}?from={_local(NOW)}&to={_local(NOW - DAY)}")
    assert "the end of the range must be after its start" in tab.page.inner_text("main")
    assert not tab.xss_fired()
    assert tab.dialogs == []


def test_runs_list_takes_a_custom_range(tab: Pages, server: Server, project_id: str) -> None:
    tab.sign_in()
    tab.goto(f"/projects/{project_id}/runs")
    tab.page.wait_for_selector("table.runs")
    tab.page.fill(".range-form input[name=from]", _local(NOW - 25 * MIN))
    tab.page.fill(".range-form input[name=to]", _local(NOW - 15 * MIN))
    tab.page.click(".range-form button:has-text('Set range')")
    tab.page.wait_for_url("**from=**")
    rows = tab.page.locator("table.runs tbody tr")
    assert rows.count() == 1  # trace b's root (the list shows root runs by default)
    links = tab.page.locator("table.runs tbody a[href*='/traces/']")
    hrefs = [links.nth(i).get_attribute("href") or "" for i in range(links.count())]
    assert hrefs
    assert all("/traces/ov-b" in h for h in hrefs)
    assert XSS in tab.page.inner_text("table.runs")
    tab.shot("runs-custom-range")
    tab.goto(f"/projects/{project_id}/runs?from={_local(NOW - 6 * DAY)}&to={_local(NOW - 4 * DAY)}")
    assert tab.page.locator("table.runs tbody tr").count() == 1  # the old trace's root
    with server.api() as api:
        listed = api.get(
            "/api/v1/runs",
            params={"project": PROJECT, "filter": 'root and trace_id = "ov-old"', "limit": 10},
        ).json()["items"]
    shown = tab.page.inner_text("table.runs")
    assert len(listed) == 1
    assert all(r["name"] in shown for r in listed)
    assert not tab.xss_fired()


def test_projects_list_figures_and_experiments_apart(
    tab: Pages, server: Server, project_id: str
) -> None:
    tab.sign_in()
    tab.goto("/projects")
    production = tab.page.locator("table.projects").first
    row = production.locator("tr", has_text=PROJECT[:20])
    assert row.count() == 1
    cells = row.locator("td").all_inner_texts()
    # name, traces, errors, p50, p95, cost, feedback, last activity
    assert cells[1] == "3"
    assert cells[2] == "33.3%"
    assert cells[3] == "2.00 s"
    assert cells[4] == "2.00 s"
    assert cells[5] == "$0.0375"  # three LLM calls in the range
    assert "helpfulness" in cells[6]
    assert "n=2" in cells[6]
    # the latest run start of all time: trace a's tool run, a second after its root
    latest_start = (NOW - 10 * MIN + 1_000_000) // 1_000_000
    last = datetime.fromtimestamp(latest_start, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert cells[7] == last
    assert "exp " + XSS not in production.inner_text()
    experiments = tab.page.locator("#experiments + table.projects")
    assert ("exp " + XSS) in experiments.inner_text()
    tab.shot("projects-list")
    tab.page.click("nav.ranges a:has-text('7')")
    row = tab.page.locator("table.projects").first.locator("tr", has_text=PROJECT[:20])
    assert row.locator("td.traces").inner_text() == "4"
    assert not tab.xss_fired()
    assert tab.dialogs == []


def test_search_inside_a_trace_tokens_cost_and_kind_as_text(
    tab: Pages, server: Server, project_id: str
) -> None:
    tab.sign_in()
    tab.goto("/traces/ov-b")
    tab.page.wait_for_selector(".tree")
    row = tab.page.locator(".tree .row", has=tab.page.locator("a[data-run='ov-b-llm']"))
    assert row.locator(".kind-text").inner_text() == "llm"
    numbers = row.locator(".tok").all_inner_texts()
    assert numbers == ["1,234", "$0.0125"]
    tool_row = tab.page.locator(".tree .row", has=tab.page.locator("a[data-run='ov-b-tool']"))
    assert tool_row.locator(".kind-text").inner_text() == "tool"
    assert XSS in tab.page.inner_text(".tree")  # the root's hostile name, as text

    # search an output word: only the tool run says Wolverhampton
    tab.page.fill("#trace-search", "wolverhampton")
    tab.page.press("#trace-search", "Enter")
    tab.page.wait_for_selector(".search-hits")
    hits = tab.page.locator(".search-hits li")
    assert hits.count() == 1
    assert "courier_lookup" in hits.first.inner_text()
    assert "tool" in hits.first.inner_text()
    assert tab.page.locator(".tree .row.hit").count() == 1
    tab.shot("trace-search")
    hits.first.locator("a").click()
    tab.page.wait_for_selector("#selected")
    assert "Wolverhampton" in tab.page.inner_text("#selected")
    # an input word, and a name
    tab.page.fill("#trace-search", "ZX-ov-b")
    tab.page.press("#trace-search", "Enter")
    assert tab.page.locator(".search-hits li").count() == 1
    tab.page.fill("#trace-search", "openai.chat")
    tab.page.press("#trace-search", "Enter")
    assert "openai.chat" in tab.page.inner_text(".search-hits")
    # hostile text searched for is shown as text
    tab.page.fill("#trace-search", XSS[:30])
    tab.page.press("#trace-search", "Enter")
    tab.page.wait_for_selector(".search-hits")
    assert XSS[:30] in tab.page.inner_text(".search-hits")
    tab.page.fill("#trace-search", "no such words anywhere")
    tab.page.press("#trace-search", "Enter")
    assert "No run of this trace" in tab.page.inner_text(".search-hits")
    assert not tab.xss_fired()
    assert tab.dialogs == []


def test_trace_search_and_range_work_without_javascript(
    chromium: Any, server: Server, project_id: str
) -> None:
    context = chromium.new_context(java_script_enabled=False)
    try:
        tab = Pages(context.new_page(), server)
        tab.sign_in()
        tab.goto("/traces/ov-a")
        tab.page.fill("#trace-search", "wolverhampton")
        tab.page.click("form.trace-search button[type=submit]")
        assert tab.page.locator(".search-hits li").count() == 1
        tab.goto(f"/projects/{project_id}")
        tab.page.fill(".range-form input[name=from]", _local(NOW - 35 * MIN))
        tab.page.fill(".range-form input[name=to]", _local(NOW - 25 * MIN))
        tab.page.click(".range-form button:has-text('Set range')")
        assert _tile(tab, "count") == "1"
    finally:
        context.close()
