"""The runs table in a real browser: the column picker (remembered), previews of hostile
content, selecting rows (one by one and all at once) and adding them to a dataset."""

from __future__ import annotations

import time
from typing import Any

from dashboard_harness import Pages, Server

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1;alert(1)">'
T0 = int(time.time() * 1_000_000) - 3_600_000_000
PROJECT = "bulk-table"


def _trace(n: int) -> list[dict[str, Any]]:
    tid = f"bulk-{n}"
    start = T0 + n * 1_000_000
    question = XSS if n == 0 else f"where is order {n}?"
    return [
        {
            "id": f"{tid}-root",
            "trace_id": tid,
            "name": f"support-agent-{n}",
            "kind": "agent",
            "start_time": start,
            "end_time": start + 900_000,
            "inputs": {"question": question},
            "outputs": {"answer": f"answer {n}: your rate is flexible, you can cancel for free"},
        },
        {
            "id": f"{tid}-llm",
            "trace_id": tid,
            "parent_id": f"{tid}-root",
            "name": "openai.chat",
            "kind": "llm",
            "model": "gpt-4o-mini",
            "start_time": start + 100_000,
            "end_time": start + 800_000,
            "usage": {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120},
            "cost": 0.002,
        },
    ]


def _headers(tab: Pages) -> list[str]:
    cells = tab.page.locator("table.runs thead th")
    return [cells.nth(i).inner_text().strip() for i in range(cells.count())]


def test_pick_columns_select_rows_and_add_them_to_a_dataset(tab: Pages, server: Server) -> None:
    items = [run for n in range(3) for run in _trace(n)]
    with server.api() as api:
        r = api.post("/api/v1/runs/batch", json={"project": PROJECT, "runs": items})
        assert r.status_code == 202, r.text
        for key in ("correctness", "refund_policy_ok", "tone_and_empathy"):  # score columns
            r = api.post("/api/v1/feedback", json={"run_id": "bulk-1-root", "key": key, "score": 1})
            assert r.status_code == 201, r.text

    tab.sign_in()
    tab.page.click(f"text={PROJECT}")
    tab.page.click("nav.tabs >> text=Runs")
    tab.page.wait_for_selector("table.runs")
    assert "3 runs match" in tab.page.inner_text("#matching")
    assert tab.page.locator("td.preview", has_text=XSS).count() == 1  # shown as text
    totals = tab.page.locator("tr", has_text="agent-1").locator(".trace-total")
    assert [totals.nth(i).inner_text() for i in range(2)] == ["120", "$0.0020"]  # the trace's

    tab.page.click("details.picker summary")
    tab.page.uncheck('.picker-form input[value="kind"]')
    tab.page.check('.picker-form input[value="model"]')
    tab.page.click(".picker-form button[type=submit]")
    tab.page.wait_for_selector("table.runs")
    headers = _headers(tab)
    assert "MODEL" in [h.upper() for h in headers]
    assert "KIND" not in [h.upper() for h in headers]
    tab.page.click("nav.tabs >> text=Runs")  # a plain visit: the cookie remembers the choice
    tab.page.wait_for_selector("table.runs")
    assert "KIND" not in [h.upper() for h in _headers(tab)]
    # with every preview column on, a short name still reads on one line (a name column that
    # breaks anywhere was squeezed to a letter or three per line)
    name = tab.page.locator("table.runs td.name a").first
    height = name.evaluate("a => a.getBoundingClientRect().height")
    line = name.evaluate("a => parseFloat(getComputedStyle(a).lineHeight)")
    assert height < 1.5 * line, (height, line)
    # a table wider than the window scrolls in its own box; the page never scrolls sideways
    assert tab.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    tab.page.check("input.select-all")  # the script's select-all box
    boxes = tab.page.locator('table.runs input[name="run_id"]')
    assert [boxes.nth(i).is_checked() for i in range(boxes.count())] == [True, True, True]
    tab.page.uncheck('table.runs input[value="bulk-1-root"]')
    assert tab.page.evaluate("document.querySelector('input.select-all').indeterminate")
    tab.page.fill('.bulkbar input[name="dataset"]', "bulk-golden")
    tab.shot("runs-table-selection")
    tab.page.click('.bulkbar button[value="dataset"]')
    tab.page.wait_for_selector(".flash.ok")
    assert "Added 2 selected runs to dataset bulk-golden" in tab.page.inner_text(".flash.ok")
    assert not tab.xss_fired()
    assert tab.dialogs == []
    with server.api() as api:
        examples = api.get("/api/v1/datasets/bulk-golden/examples").json()["items"]
    assert sorted(e["lineage"]["run_id"] for e in examples) == ["bulk-0-root", "bulk-2-root"]

    tab.page.click("nav.tabs >> text=Overview")  # counted by trace, then by run
    tab.page.wait_for_selector("#tile-count")
    assert tab.page.inner_text("#tile-count") == "3"
    tab.shot("project-overview-traces")
    tab.page.click("nav.modes >> text=runs (spans)")
    tab.page.wait_for_selector("#tile-count")
    assert tab.page.inner_text("#tile-count") == "6"
    tab.goto("/projects")
    row = tab.page.locator(f'tr[data-project="{PROJECT}"]')
    assert row.locator("td.traces").inner_text() == "3"
    tab.shot("projects-list")
