"""The runs table's columns (previews, scores, trace totals), its count, the column picker, the
time range and the actions on selected rows, in-process over httpx on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import html as htmllib
import io
import re
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from fastapi import FastAPI

from dashboard_helpers import csrf_of, other_workspace_browser

T0 = 1_764_150_816_000_000
HOUR = 3_600_000_000
EVIL = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'


def trace(
    tid: str, *, start: int = T0, question: str = "where is my order?"
) -> list[dict[str, Any]]:
    root = {
        "id": f"{tid}-root",
        "trace_id": tid,
        "name": "answer",
        "kind": "chain",
        "start_time": start,
        "end_time": start + 2_000_000,
        "inputs": {"question": question},
        "outputs": {"answer": "It ships\ntomorrow."},
    }
    llm = {
        "id": f"{tid}-llm",
        "trace_id": tid,
        "parent_id": f"{tid}-root",
        "name": "openai.chat",
        "kind": "llm",
        "start_time": start + 100_000,
        "end_time": start + 1_500_000,
        "inputs": {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": question},
            ]
        },
        "outputs": {"choices": [{"message": {"role": "assistant", "content": "Tomorrow."}}]},
        "usage": {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150},
        "cost": 0.004,
    }
    tool = {
        "id": f"{tid}-tool",
        "trace_id": tid,
        "parent_id": f"{tid}-root",
        "name": "lookup_order",
        "kind": "tool",
        "start_time": start + 1_600_000,
        "end_time": start + 1_900_000,
        "inputs": {"order": 42},
        "outputs": {"status": "shipped"},
        "usage": {"total_tokens": 50},
        "cost": 0.001,
    }
    return [root, llm, tool]


async def ingest(client: httpx.AsyncClient, items: list[dict[str, Any]]) -> str:
    r = await client.post("/api/v1/runs/batch", json={"project": "support", "runs": items})
    assert r.status_code == 202, r.text
    page = (await client.get("/api/v1/projects")).json()
    return str(next(p["id"] for p in page["items"] if p["name"] == "support"))


async def post_form(
    browser: httpx.AsyncClient, url: str, pairs: list[tuple[str, str]]
) -> httpx.Response:
    """A urlencoded form with repeated fields, as a browser sends checked boxes."""
    return await browser.post(
        url,
        content=urlencode(pairs),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


def rows(page: str) -> dict[str, str]:
    """{run id: the row's HTML}."""
    found = re.findall(
        r'<tr>\s*<td class="sel"><input type="checkbox" name="run_id" value="([^"]+)".*?</tr>',
        page,
        flags=re.S,
    )
    bodies = re.split(r'<tr>\s*<td class="sel">', page)[1:]
    return {rid: body.split("</tr>")[0] for rid, body in zip(found, bodies, strict=True)}


def previews(row: str) -> list[str]:
    return [htmllib.unescape(p) for p in re.findall(r'<td class="preview">(.*?)</td>', row)]


async def test_previews_totals_scores_and_count(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    pid = await ingest(
        client, trace("ta") + trace("tb", start=T0 + 10, question=EVIL + "\nline two")
    )
    for body in (
        {"run_id": "ta-root", "key": "correctness", "score": 0},
        {"run_id": "ta-root", "key": "correctness", "score": 1},  # the latest one shows
        {"trace_id": "tb", "key": "correctness", "score": 0.25},  # a trace's: its root row
        {"run_id": "ta-root", "key": "helpful", "score": 0.5, "source": "online-evaluator"},
    ):
        assert (await client.post("/api/v1/feedback", json=body)).status_code in (200, 201)

    page = await browser.get(f"/projects/{pid}/runs")
    assert page.status_code == 200
    assert "<script>window.__xss" not in page.text
    assert "<img src=x" not in page.text
    table = rows(page.text)
    assert set(table) == {"ta-root", "tb-root"}
    assert previews(table["ta-root"]) == ["where is my order?", "It ships tomorrow."]
    evil_in, _ = previews(table["tb-root"])
    assert evil_in == " ".join((EVIL + "\nline two").split())  # one line, escaped in the HTML
    assert "&lt;script&gt;" in table["tb-root"]
    # trace totals on root rows: the trace's runs summed (the root itself has none)
    assert "200</span>" in table["ta-root"]
    assert "$0.0050</span>" in table["ta-root"]
    assert 'title="summed over the trace\'s 3 runs"' in table["ta-root"]
    # score columns: one per key, people's feedback apart from evaluators'
    assert "✎ correctness</th>" in page.text
    assert "⚙ helpful</th>" in page.text
    cells = re.findall(r'<span class="score-cell"[^>]*>([^<]*)</span>', table["ta-root"])
    assert cells == ["1", "0.5"]
    assert re.findall(r'<span class="score-cell"[^>]*>([^<]*)</span>', table["tb-root"]) == ["0.25"]
    assert "2 runs match" in page.text

    llm_only = await browser.get(f"/projects/{pid}/runs", params={"filter": 'kind = "llm"'})
    assert "runs match" not in llm_only.text  # not counted unless asked: it may scan
    link = re.search(r'<a href="([^"]+)" rel="nofollow">Count matching runs', llm_only.text)
    assert link
    counted = await browser.get(htmllib.unescape(link.group(1)))
    assert "2 runs match" in counted.text

    every = await browser.get(f"/projects/{pid}/runs", params={"filter": ""})
    assert "6 runs match" in every.text
    llm = rows(every.text)["ta-llm"]
    assert previews(llm) == ["where is my order?", "Tomorrow."]  # the chat's user / assistant
    assert "150" in llm
    assert "$0.0040" in llm


async def test_column_picker_and_time_range(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    late = trace("late", start=T0 + 5 * HOUR)
    pid = await ingest(client, trace("early") + late + trace("tc", start=T0 + 10 * HOUR))
    picked = await browser.get(
        f"/projects/{pid}/runs", params=[("columns", "1"), ("col", "output"), ("col", "model")]
    )
    assert picked.status_code == 200
    head = picked.text.split("<tbody>")[0].split('<table class="grid runs">')[1]
    assert re.findall(r"<th[^>]*>(?:<a[^>]*>)?([A-Za-z ]+)", head) == ["Name", "Output", "Model"]
    assert "goldloop_run_columns=output.model" in picked.headers["set-cookie"]
    assert "columns=1&amp;col=output&amp;col=model" in picked.text  # links keep the choice
    again = await browser.get(f"/projects/{pid}/runs")  # the cookie remembers it
    head = again.text.split("<tbody>")[0].split('<table class="grid runs">')[1]
    assert "Latency" not in head
    assert "Output" in head
    none = await browser.get(f"/projects/{pid}/runs", params={"columns": "1", "col": "bogus"})
    assert none.status_code == 200
    assert 'class="preview"' not in none.text

    # the time range
    window = {"from": "2025-11-26T09:00:00", "to": "2025-11-26T12:00"}  # T0 is 09:53:36 UTC
    page = await browser.get(f"/projects/{pid}/runs", params=window)
    assert set(rows(page.text)) == {"early-root"}
    assert "1 run matches" in page.text
    assert 'value="2025-11-26T09:00:00"' in page.text  # the picker shows the range
    bad = await browser.get(f"/projects/{pid}/runs", params={"from": "yesterday-ish"})
    assert bad.status_code == 200
    assert "Time range: from must be an ISO-8601 time" in bad.text
    assert set(rows(bad.text)) == {"early-root", "late-root", "tc-root"}  # all time
    backwards = await browser.get(
        f"/projects/{pid}/runs", params={"from": "2025-11-27", "to": "2025-11-26"}
    )
    assert "the end of the range must be after its start" in backwards.text
    recent = await browser.get(f"/projects/{pid}/runs", params={"range": "1h"})
    assert rows(recent.text) == {}
    assert "No runs match" in recent.text


async def test_selected_rows_to_a_dataset_and_exported(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, app: FastAPI
) -> None:
    items = trace("td") + trace("te", start=T0 + 10)
    items[0]["inputs"] = {"question": '=HYPERLINK("http://evil")'}
    items[0]["name"] = "=SUM(A1)"
    pid = await ingest(client, items)
    page = await browser.get(f"/projects/{pid}/runs", params={"filter": ""})
    token = csrf_of(page.text)
    back = htmllib.unescape(re.search(r'name="back" value="([^"]+)"', page.text).group(1))
    form = [("csrf", token), ("back", back), ("dataset", "golden"), ("prefer_correction", "on")]
    chosen = [("run_id", "td-root"), ("run_id", "te-root")]

    refused = await post_form(
        browser, f"/projects/{pid}/runs/selected", [*form[1:], ("action", "dataset")]
    )
    assert refused.status_code == 403  # no CSRF token
    added = await post_form(
        browser, f"/projects/{pid}/runs/selected", [*form, *chosen, ("action", "dataset")]
    )
    assert added.status_code == 303
    target = added.headers["location"]
    assert target.startswith(f"/projects/{pid}/runs?filter=&")
    assert "bulk=added&n=2" in target
    notice = await browser.get(target)
    assert "Added 2 selected runs to dataset" in notice.text
    examples = (await client.get("/api/v1/datasets/golden/examples")).json()["items"]
    assert sorted(e["lineage"]["run_id"] for e in examples) == ["td-root", "te-root"]
    again = await post_form(
        browser, f"/projects/{pid}/runs/selected", [*form, *chosen, ("action", "dataset")]
    )
    assert "n=0&skipped=2" in again.headers["location"]

    jsonl = await post_form(
        browser, f"/projects/{pid}/runs/selected", [*form, *chosen, ("action", "jsonl")]
    )
    assert jsonl.status_code == 200
    assert jsonl.headers["content-disposition"].endswith('selected-runs.jsonl"')
    lines = [orjson.loads(line) for line in jsonl.content.splitlines()]
    assert [r["id"] for r in lines] == ["td-root", "te-root"]
    assert lines[1]["outputs"] == {"answer": "It ships\ntomorrow."}

    as_csv = await post_form(
        browser, f"/projects/{pid}/runs/selected", [*form, ("run_id", "td-root"), ("action", "csv")]
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["id"] for r in table] == ["td-root"]
    assert table[0]["inputs"] == '{"question":"=HYPERLINK(\\"http://evil\\")"}'
    assert table[0]["name"] == "'=SUM(A1)"  # a spreadsheet would run it as a formula

    nothing = await post_form(
        browser, f"/projects/{pid}/runs/selected", [*form, ("action", "jsonl")]
    )
    assert nothing.status_code == 303  # back to the table, which says what is missing
    assert "Select at least one run first." in (await browser.get(nothing.headers["location"])).text
    no_name = await post_form(
        browser,
        f"/projects/{pid}/runs/selected",
        [*form[:2], *chosen, ("dataset", " "), ("action", "dataset")],
    )
    shown = await browser.get(no_name.headers["location"])
    assert "Choose or name a dataset" in shown.text
    spoofed = await browser.get(f"/projects/{pid}/runs", params={"bulk": "failed", "why": EVIL})
    assert spoofed.status_code == 200
    assert 'class="flash error"' not in spoofed.text  # only the server's own texts
    odd = await post_form(
        browser, f"/projects/{pid}/runs/selected", [*form, *chosen, ("action", "x")]
    )
    assert odd.status_code == 400
    async with other_workspace_browser(app) as other:
        theirs = csrf_of((await other.get("/projects")).text)
        stolen = await post_form(
            other,
            f"/projects/{pid}/runs/selected",
            [("csrf", theirs), *chosen, ("action", "jsonl")],
        )
        assert stolen.status_code == 404  # not their project, nor their runs


async def test_selected_rows_to_a_review_queue(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    """The table's queue button posts the selection to the queues' form, which comes back."""
    pid = await ingest(client, trace("tq") + trace("tr", start=T0 + 10))
    queue = (await client.post("/api/v1/annotation-queues", json={"name": "triage <i>"})).json()
    page = await browser.get(f"/projects/{pid}/runs")
    assert 'formaction="/queues/add-runs"' in page.text
    assert "triage &lt;i&gt;</option>" in page.text
    back = htmllib.unescape(re.search(r'name="back" value="([^"]+)"', page.text).group(1))
    sent = await post_form(
        browser,
        "/queues/add-runs",
        [
            ("csrf", csrf_of(page.text)),
            ("back", back),
            ("queue", queue["id"]),
            ("run_id", "tq-root"),
            ("run_id", "tr-root"),
            ("action", "queue"),
        ],
    )
    assert sent.status_code == 303
    shown = await browser.get(sent.headers["location"])
    assert "Added 2 selected runs to review queue" in shown.text
    items = (await client.get(f"/api/v1/annotation-queues/{queue['id']}/items")).json()
    assert sorted(i["run_id"] for i in items["items"]) == ["tq-root", "tr-root"]
