"""Runs, trace and feedback pages in-process over httpx, on SQLite and PostgreSQL."""

from __future__ import annotations

import html as htmllib
import re
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from dashboard_helpers import csrf_of, other_workspace_browser

T0 = 1_764_150_816_000_000
EVIL = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'


def trace_items(trace: str, *, evil: bool = False, error: bool = False) -> list[dict[str, Any]]:
    name = EVIL if evil else "answer"
    root = {
        "id": f"{trace}-root",
        "trace_id": trace,
        "name": name,
        "kind": "chain",
        "start_time": T0,
        "end_time": T0 + 2_000_000,
        "inputs": {"question": EVIL if evil else "where is my order?"},
        "outputs": {"answer": EVIL if evil else "It ships tomorrow."},
        "metadata": {EVIL: EVIL} if evil else {"customer": "acme"},
        "tags": ["prod"],
    }
    llm = {
        "id": f"{trace}-llm",
        "trace_id": trace,
        "parent_id": f"{trace}-root",
        "name": "openai.chat",
        "kind": "llm",
        "start_time": T0 + 100_000,
        "end_time": T0 + 1_500_000,
        "model": "gpt-4o-mini",
        "inputs": {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": EVIL},
            ]
        },
        "outputs": {"choices": [{"message": {"role": "assistant", "content": EVIL}}]},
        "usage": {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150},
    }
    tool = {
        "id": f"{trace}-tool",
        "trace_id": trace,
        "parent_id": f"{trace}-root",
        "name": "lookup_order",
        "kind": "tool",
        "start_time": T0 + 1_600_000,
        "end_time": T0 + 1_900_000,
        "inputs": {"order": 42},
        "outputs": {"status": "shipped"},
    }
    if error:
        tool["error"] = {
            "type": "KeyError",
            "message": EVIL,
            "stacktrace": "Traceback (most recent call last):\n  " + EVIL,
        }
    return [root, llm, tool]


async def ingest(client: httpx.AsyncClient, items: list[dict[str, Any]]) -> None:
    r = await client.post("/api/v1/runs/batch", json={"project": "support", "runs": items})
    assert r.status_code == 202, r.text


async def project_id(client: httpx.AsyncClient) -> str:
    page = (await client.get("/api/v1/projects")).json()
    return str(next(p["id"] for p in page["items"] if p["name"] == "support"))


def assert_escaped(text: str) -> None:
    assert "<script>window.__xss" not in text
    assert "<img src=x" not in text


async def test_runs_table_filters_sorts_and_pages(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    for i in range(3):
        await ingest(client, trace_items(f"t{i}", evil=i == 0, error=i == 1))
    pid = await project_id(client)
    page = await browser.get(f"/projects/{pid}/runs")
    assert page.status_code == 200
    assert_escaped(page.text)
    assert page.text.count('class="name"') == 3  # default filter: root runs
    assert 'value="root"' in page.text

    errors = await browser.get(f"/projects/{pid}/runs", params={"filter": 'status = "error"'})
    assert errors.text.count('class="name"') == 1
    assert "lookup_order" in errors.text
    assert_escaped(errors.text)

    everything = await browser.get(f"/projects/{pid}/runs", params={"filter": ""})
    assert everything.text.count('class="name"') == 9

    by_latency = await browser.get(
        f"/projects/{pid}/runs", params={"filter": "", "sort": "latency", "order": "asc"}
    )
    names = re.findall(r'class="name"><a href="[^"]+">([^<]+)</a>', by_latency.text)
    assert names[0] == "lookup_order"  # 0.3 s, the shortest

    bad = await browser.get(f"/projects/{pid}/runs", params={"filter": "latency >> 2"})
    assert bad.status_code == 200
    assert "invalid filter at position" in bad.text
    assert "^</pre>" in bad.text


async def test_keyset_pages_visit_every_run_once(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    items = []
    for i in range(60):
        items.append(
            {
                "id": f"r{i}",
                "trace_id": f"tr{i}",
                "name": f"run-{i}",
                "start_time": T0 + i,
                "end_time": T0 + i + 10,
            }
        )
    await ingest(client, items)
    pid = await project_id(client)
    seen: list[str] = []
    url: str | None = f"/projects/{pid}/runs"
    while url:
        page = await browser.get(url)
        seen += re.findall(r">(run-\d+)</a>", page.text)
        nxt = re.search(r'<a href="([^"]+)">Next page', page.text)
        url = htmllib.unescape(nxt.group(1)) if nxt else None
    assert sorted(seen) == sorted(f"run-{i}" for i in range(60))
    assert len(seen) == 60


async def test_trace_page_shows_tree_messages_error_and_escapes(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await ingest(client, trace_items("tx", evil=True, error=True))
    page = await browser.get("/traces/tx")
    assert page.status_code == 200
    assert_escaped(page.text)
    assert "openai.chat" in page.text
    assert "lookup_order" in page.text
    assert page.text.count('<details class="node"') == 1  # the root has children
    llm = await browser.get("/traces/tx", params={"run": "tx-llm"})
    assert 'class="msg role-system"' in llm.text  # chat messages, not raw JSON
    assert "Be brief." in llm.text
    assert "gpt-4o-mini" in llm.text
    assert "150 total" in llm.text
    assert_escaped(llm.text)
    tool = await browser.get("/traces/tx", params={"run": "tx-tool"})
    assert "KeyError" in tool.text
    assert "Traceback (most recent call last)" in tool.text
    assert_escaped(tool.text)
    panel = await browser.get("/traces/tx/panel", params={"run": "tx-tool"})
    assert panel.status_code == 200
    assert "<html" not in panel.text
    assert "KeyError" in panel.text
    assert (await browser.get("/traces/tx/panel", params={"run": "nope"})).status_code == 404
    by_run = await browser.get("/runs/tx-llm")
    assert by_run.status_code == 303
    assert by_run.headers["location"].startswith("/traces/tx?run=tx-llm")
    assert (await browser.get("/traces/nope")).status_code == 404


def _hits(page: str) -> list[str]:
    """The run ids listed as matches of a trace search, in order."""
    section = page.split('class="search-hits"', 1)[1].split("</section>", 1)[0]
    return re.findall(r'href="\?run=([^&"]+)&amp;q=', section)


async def test_search_inside_a_trace_finds_names_inputs_and_outputs(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await ingest(client, trace_items("ts"))
    await ingest(client, trace_items("other"))  # the same texts in another trace: not listed
    for q, expected in [
        ("LOOKUP", ["ts-tool"]),  # a name, case-insensitive
        ("where is my", ["ts-root"]),  # the root's inputs
        ("shipped", ["ts-tool"]),  # the tool's outputs
        ("Be brief", ["ts-llm"]),  # a message inside the LLM call's inputs
        ("ships", ["ts-root"]),
    ]:
        page = await browser.get("/traces/ts", params={"q": q})
        assert page.status_code == 200, page.text
        assert _hits(page.text) == expected, q
        for run_id in expected:  # marked in the tree too
            assert re.search(rf'class="row[^"]* hit"[^>]*>.*?data-run="{run_id}"', page.text)
    none = await browser.get("/traces/ts", params={"q": "refund"})
    assert "No run of this trace has" in none.text
    assert 'class="row hit' not in none.text
    # hostile text is a search like any other, shown escaped (the LLM call's messages hold it)
    page = await browser.get("/traces/ts", params={"q": EVIL})
    assert _hits(page.text) == ["ts-llm"]
    assert_escaped(page.text)
    # odd text is never a filter error, a wildcard or a 5xx
    for q in ('" or name ~ "', "\\", "%_", "x" * 5000):
        page = await browser.get("/traces/ts", params={"q": q})
        assert page.status_code == 200, (q, page.text[:300])
        assert_escaped(page.text)
        assert "No run of this trace has" in page.text, q
    # the search keeps the selected run, and a hit's link keeps the search
    page = await browser.get("/traces/ts", params={"q": "lookup", "run": "ts-llm"})
    assert 'name="run" value="ts-llm"' in page.text
    assert 'href="?run=ts-tool&amp;q=lookup#selected"' in page.text


async def test_feedback_with_a_correction_from_the_trace_page(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await ingest(client, trace_items("tf"))
    page = await browser.get("/traces/tf", params={"run": "tf-root"})
    token = csrf_of(page.text)
    assert "It ships tomorrow." in page.text  # correction editor pre-filled with the output
    refused = await browser.post(
        "/runs/tf-root/feedback", data={"key": "correctness", "score": "0"}
    )
    assert refused.status_code == 403
    bad = await browser.post(
        "/runs/tf-root/feedback",
        data={"csrf": token, "key": "correctness", "score": "zero", "comment": EVIL},
    )
    assert bad.status_code == 400
    assert "score must be a number" in bad.text
    assert_escaped(bad.text)
    saved = await browser.post(
        "/runs/tf-root/feedback",
        data={
            "csrf": token,
            "key": "correctness",
            "score": "0",
            "comment": EVIL,
            "correction": '{"answer": "It shipped yesterday."}',
        },
    )
    assert saved.status_code == 303
    shown = await browser.get(saved.headers["location"])
    assert "Feedback saved." in shown.text
    assert_escaped(shown.text)
    listed = (await client.get("/api/v1/feedback", params={"run_id": "tf-root"})).json()
    [fb] = listed["items"]
    assert fb["score"] == 0
    assert fb["correction"] == {"answer": "It shipped yesterday."}
    assert fb["source"] == "human"
    # Unchanged editor text is no correction.
    again = await browser.post(
        "/runs/tf-root/feedback",
        data={
            "csrf": token,
            "key": "helpful",
            "score": "1",
            "correction": '{\n  "answer": "It ships tomorrow."\n}',
        },
    )
    assert again.status_code == 303
    listed = (await client.get("/api/v1/feedback", params={"run_id": "tf-root"})).json()
    helpful = next(f for f in listed["items"] if f["key"] == "helpful")
    assert helpful["correction"] is None


async def test_project_overview_has_stats_and_charts(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await ingest(client, trace_items("to", error=True))
    pid = await project_id(client)
    for rng in ("1h", "24h", "7d", "30d", "bogus"):
        page = await browser.get(f"/projects/{pid}", params={"range": rng})
        assert page.status_code == 200, rng
        assert page.text.count("<svg") == 6


async def test_another_workspace_sees_no_runs_or_traces(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await ingest(client, trace_items("ti"))
    pid = await project_id(client)
    async with other_workspace_browser(app) as other:
        for path in (
            f"/projects/{pid}/runs",
            "/traces/ti",
            "/runs/ti-root",
            "/traces/ti/panel?run=ti-root",
        ):
            assert (await other.get(path)).status_code == 404, path
        token = csrf_of((await other.get("/projects")).text)
        r = await other.post(
            "/runs/ti-root/feedback", data={"csrf": token, "key": "k", "score": "1"}
        )
        assert r.status_code == 404


async def test_runs_page_exports_what_it_shows(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, app: FastAPI
) -> None:
    """The table's export links download its runs (or their whole traces) as OTLP/JSON Lines:
    the same lines as the API's export, behind the sign-in, in the workspace only."""
    for i in range(3):
        await ingest(client, trace_items(f"t{i}", error=i == 1))
    pid = await project_id(client)
    page = await browser.get(f"/projects/{pid}/runs", params={"filter": 'status = "error"'})
    links = re.findall(r'href="([^"]*/runs/export[^"]*)" download', page.text)
    assert len(links) == 2
    runs_only, whole = (htmllib.unescape(link) for link in links)

    def span_ids(body: bytes) -> list[str]:
        spans = [
            s
            for line in body.splitlines()
            for rs in orjson.loads(line)["resourceSpans"]
            for ss in rs["scopeSpans"]
            for s in ss["spans"]
        ]
        return [s["name"] for s in spans]

    one = await browser.get(runs_only)
    assert one.status_code == 200
    assert one.headers["content-disposition"] == 'attachment; filename="support-runs.otlp.jsonl"'
    assert span_ids(one.content) == ["lookup_order"]
    api = await client.get(f"/api/v1/projects/{pid}/export", params={"filter": 'status = "error"'})
    assert one.content == api.content  # the same lines as the API's export
    traces = await browser.get(whole)
    assert sorted(span_ids(traces.content)) == ["answer", "lookup_order", "openai.chat"]

    bad = await browser.get(f"/projects/{pid}/runs/export", params={"filter": "latency >> 2"})
    assert bad.status_code == 400
    assert "invalid filter at position" in bad.text
    async with other_workspace_browser(app) as other:
        assert (await other.get(runs_only)).status_code == 404
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://goldloop.test") as anon:
        assert (await anon.get(runs_only)).status_code == 303  # to the sign-in page


async def test_trace_tree_rows_name_their_kind_and_show_tokens_and_cost(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    items = trace_items("tk")
    items[1]["cost"] = 0.0042
    await ingest(client, items)
    page = await browser.get("/traces/tk")
    assert page.status_code == 200
    rows = re.findall(r'<a class="rname"[^>]*data-run="tk-llm".*?</svg>', page.text, flags=re.S)
    assert len(rows) == 1
    llm = rows[0]
    assert '<span class="kind-text">llm</span>' in llm  # the kind as text, not only a dot
    assert '<span class="num muted tok">150</span>' in llm
    assert '<span class="num muted tok">$0.0042</span>' in llm
    tool = re.findall(r'data-run="tk-tool".*?</svg>', page.text, flags=re.S)[0]
    assert '<span class="kind-text">tool</span>' in tool
    assert '<span class="num muted tok"></span>' in tool  # no tokens: an empty cell, not "0"
    assert '<span class="num">Tokens</span><span class="num">Cost</span>' in page.text
