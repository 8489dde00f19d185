"""A text search on the runs list reads a bounded number of runs per page (Issue #23: a rare
``text ~`` needle read the whole project newest-first, 2.6 s at 1,000,000 runs). When a page is
not full, it says how far back it searched and links on with a cursor; following the links
finds every match, and no page claims "no matches" before the search is done. The API's search
stays exact in one request. SQLite and PostgreSQL."""

from __future__ import annotations

import html as htmllib
import re
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from fixture_runs import project_id, workspace_id
from goldloop.http.dashboard import run_list_pages
from goldloop.services import run_queries
from goldloop.services.context import Principal, ServiceContext
from run_rows import insert, run_row

T0 = 1_764_150_000_000_000
ROOTS = 60
SCAN = 8
# the needle: in the oldest root, in one in the middle, and in a child run (not a root)
NEEDLE_ROOTS = {0, 31}
NEEDLE = "needle-4242"
EVIL = "<script>window.__xss=1</script>"


def _fill(app: FastAPI) -> tuple[Principal, str]:
    ws = workspace_id(app)
    pid = project_id(app, ws, "agent-support")
    rows = []
    for i in range(ROOTS):
        text = f"question {NEEDLE} {EVIL}" if i in NEEDLE_ROOTS else f"question {i}"
        rows.append(
            run_row(ws, pid, f"r{i:03d}", start_time=T0 + i * 1_000_000, inputs={"q": text})
        )
        rows.append(
            run_row(
                ws,
                pid,
                f"c{i:03d}",
                trace_id=f"r{i:03d}",
                parent_id=f"r{i:03d}",
                start_time=T0 + i * 1_000_000 + 1,
                inputs={"q": NEEDLE if i == 45 else "child"},
            )
        )
    insert(app.state.ctx.db, rows)
    return Principal(workspace_id=ws, key_id="test", role="admin"), pid


def _follow(
    ctx: ServiceContext, who: Principal, pid: str, filter: str, **kw: Any
) -> tuple[list[str], list[dict[str, Any]]]:
    """Every page of a bounded search, following next_cursor: the ids and each page."""
    ids: list[str] = []
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = run_queries.list_runs(
            ctx, who, project=pid, filter=filter, limit=5, cursor=cursor, scan=SCAN, **kw
        )
        pages.append(page)
        ids += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids, pages


@pytest.mark.parametrize("order", ["desc", "asc"])
async def test_following_the_continuations_finds_every_match(app: FastAPI, order: str) -> None:
    ctx: ServiceContext = app.state.ctx
    who, pid = _fill(app)
    search = f'root and text ~ "{NEEDLE}"'
    exact = run_queries.list_runs(ctx, who, project=pid, filter=search, order=order, limit=50)
    assert "searched_to" not in exact  # without scan: the API's exact search
    expected = [r["id"] for r in exact["items"]]
    assert sorted(expected) == ["r000", "r031"]
    ids, pages = _follow(ctx, who, pid, search, order=order)
    assert ids == expected
    # each page read at most SCAN roots: 60 roots take 8 requests, the last one exact
    assert len(pages) == -(-ROOTS // SCAN)
    assert all(p["searched_to"] is not None for p in pages[:-1])
    assert pages[-1]["searched_to"] is None
    assert any(not p["items"] for p in pages)  # pages with no match still continue


async def test_a_common_search_fills_its_page_and_other_filters_are_not_bounded(
    app: FastAPI,
) -> None:
    ctx: ServiceContext = app.state.ctx
    who, pid = _fill(app)
    common = run_queries.list_runs(
        ctx, who, project=pid, filter='root and text ~ "question"', limit=5, scan=SCAN
    )
    assert len(common["items"]) == 5
    assert common["searched_to"] is None
    plain = run_queries.list_runs(ctx, who, project=pid, filter="root", limit=5, scan=SCAN)
    assert "searched_to" not in plain
    # any substring search is bounded, not only of the documents
    named = run_queries.list_runs(
        ctx, who, project=pid, filter='root and name ~ "nothing"', limit=5, scan=SCAN
    )
    assert named["items"] == []
    assert named["searched_to"] is not None
    # a search under an "or" bounds every run (no conjunct narrows the candidates)
    either = f'text ~ "{NEEDLE}" or name = "nothing"'
    ids, _ = _follow(ctx, who, pid, either, sort="latency")
    assert sorted(ids) == ["c045", "r000", "r031"]


async def test_the_page_says_how_far_it_searched_and_links_on(
    app: FastAPI, browser: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_list_pages, "SEARCH_SCAN", SCAN)
    _, pid = _fill(app)
    url: str | None = f'/projects/{pid}/runs?filter=root+and+text+~+"{NEEDLE}"'
    found: list[str] = []
    notices = 0
    while url is not None:
        r = await browser.get(url)
        assert r.status_code == 200, r.text
        assert "<script>window.__xss" not in r.text
        found += re.findall(r"\?run=(r\d{3})\"", r.text)
        further = re.search(r'<a href="([^"]+)" rel="nofollow">Search further', r.text)
        if further:
            notices += 1
            assert "No runs match this filter" not in r.text
            assert re.search(r"No (more )?matches in the runs that started at or after 20", r.text)
            url = htmllib.unescape(further.group(1))
        else:
            url = None
    assert notices == -(-ROOTS // SCAN) - 1
    assert sorted(set(found)) == ["r000", "r031"]


async def test_the_api_search_is_exact_in_one_request(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _, pid = _fill(app)
    r = await client.get(
        "/api/v1/runs", params={"project": pid, "filter": f'root and text ~ "{NEEDLE}"'}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["id"] for x in body["items"]] == ["r031", "r000"]
    assert "searched_to" not in body
    assert body["next_cursor"] is None


async def test_postgres_reads_a_windows_candidates_one_by_one(app: FastAPI, backend: str) -> None:
    """On PostgreSQL each page query of a bounded search joins the window's candidates (in
    list order, without the search) back to the runs, so the read stops at the page's last
    match; searched in one plain query, PostgreSQL read and searched the window's whole range,
    then sorted."""
    if backend != "postgres":
        pytest.skip("SQLite walks the sort index and stops at the page's last match anyway")
    ctx: ServiceContext = app.state.ctx
    who, pid = _fill(app)
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    sa.event.listen(ctx.db.engine, "before_cursor_execute", capture)
    try:
        _follow(ctx, who, pid, f'root and text ~ "{NEEDLE}"')
    finally:
        sa.event.remove(ctx.db.engine, "before_cursor_execute", capture)
    pages = [(st, p) for st, p in statements if "JOIN runs ON runs.pk = c.pk" in st]
    assert pages, [st[:80] for st, _ in statements]
    with ctx.db.engine.connect() as conn:
        for statement, params in pages[:4]:
            plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, params))
            assert "Nested Loop" in plan, plan
