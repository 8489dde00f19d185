"""Threads and users pages in-process over httpx, on SQLite and PostgreSQL."""

from __future__ import annotations

import html as htmllib
import random
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI

from dashboard_helpers import other_workspace_browser

T0 = 1_764_150_816_000_000
EVIL = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'


def turn(
    thread: str,
    n: int,
    *,
    at: int,
    question: str,
    answer: str | None,
    user: str | None = None,
    error: bool = False,
) -> list[dict[str, Any]]:
    """One turn of a conversation: a root (chain) with the thread id and a child LLM call."""
    tid = f"{thread}-t{n}"
    root: dict[str, Any] = {
        "id": f"{tid}-root",
        "trace_id": tid,
        "name": "support-agent",
        "kind": "chain",
        "start_time": at,
        "end_time": at + 1_500_000,
        "inputs": {"question": question},
        "outputs": None if answer is None else {"answer": answer},
        "session_id": thread,
    }
    if user is not None:
        root["user_id"] = user
    if error:
        root["error"] = {"type": "TimeoutError", "message": "model timed out " + EVIL}
    llm = {
        "id": f"{tid}-llm",
        "trace_id": tid,
        "parent_id": root["id"],
        "name": "openai.chat",
        "kind": "llm",
        "start_time": at + 100_000,
        "end_time": at + 1_200_000,
        "inputs": {"messages": [{"role": "user", "content": question}]},
        "outputs": {"choices": [{"message": {"role": "assistant", "content": answer or ""}}]},
    }
    return [root, llm]


async def ingest(client: httpx.AsyncClient, items: list[dict[str, Any]]) -> None:
    r = await client.post("/api/v1/runs/batch", json={"project": "support", "runs": items})
    assert r.status_code == 202, r.text


async def project_id(client: httpx.AsyncClient) -> str:
    page = (await client.get("/api/v1/projects")).json()
    return str(next(p["id"] for p in page["items"] if p["name"] == "support"))


def assert_escaped(text: str) -> None:
    assert "<script>window.__xss" not in text
    assert "<img src=x" not in text


async def seed_conversations(client: httpx.AsyncClient) -> None:
    items: list[dict[str, Any]] = []
    # An older conversation of three turns (the second one fails), then a hostile one.
    for n, (q, a) in enumerate(
        [
            ("Where is my order?", "It ships tomorrow."),
            ("And the invoice?", None),
            ("Thanks", "Bye"),
        ]
    ):
        items += turn(
            "conv-a", n, at=T0 + n * 60_000_000, question=q, answer=a, user="alice", error=n == 1
        )
    items += turn("conv-evil", 0, at=T0 + 600_000_000, question=EVIL, answer=EVIL, user=EVIL)
    await ingest(client, items)


async def test_threads_tab_lists_threads_newest_first_with_preview(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await seed_conversations(client)
    pid = await project_id(client)
    overview = await browser.get(f"/projects/{pid}")
    assert f'href="/projects/{pid}/threads"' in overview.text  # the tab

    page = await browser.get(f"/projects/{pid}/threads")
    assert page.status_code == 200
    assert_escaped(page.text)
    rows = re.findall(r'<td class="name mono"><a href="[^"]+/threads/([^"]+)">', page.text)
    assert rows == ["conv-evil", "conv-a"]  # newest activity first
    conv_a = page.text.split('/threads/conv-a"')[1].split("</tr>")[0]
    assert "Where is my order?" in conv_a  # the first user input, not a later one
    assert "Thanks" not in conv_a
    nums = re.findall(r'<td class="num">(?:<span class="err-count">)?(\d+)', conv_a)
    assert nums == ["3", "3", "1"]  # turns, runs carrying the thread id, errors
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page.text  # shown as text


async def test_thread_pages_visit_every_thread_once(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    rng = random.Random(23)
    items: list[dict[str, Any]] = []
    starts = rng.sample(range(1, 10_000), 60)
    for i, start in enumerate(starts):
        items += turn(f"th-{i}", 0, at=T0 + start * 1000, question=f"q{i}", answer="a")
    # Two threads active at the same instant: the keyset must not drop either.
    items += turn("tie-1", 0, at=T0 + 20_000_000, question="tie", answer="a")
    items += turn("tie-2", 0, at=T0 + 20_000_000, question="tie", answer="a")
    await ingest(client, items)
    pid = await project_id(client)
    seen: list[str] = []
    url: str | None = f"/projects/{pid}/threads"
    while url:
        page = await browser.get(url)
        assert page.status_code == 200
        seen += re.findall(r'<td class="name mono"><a href="[^"]+/threads/([^"]+)">', page.text)
        nxt = re.search(r'<a href="([^"]+)">Next page', page.text)
        url = htmllib.unescape(nxt.group(1)) if nxt else None
    assert len(seen) == 62
    assert set(seen) == {f"th-{i}" for i in range(60)} | {"tie-1", "tie-2"}
    order = sorted(range(60), key=lambda i: -starts[i])
    assert [s for s in seen if s.startswith("th-")] == [f"th-{i}" for i in order]

    bad = await browser.get(f"/projects/{pid}/threads", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400
    assert "cursor" in bad.text


async def test_thread_page_reads_as_a_conversation(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await seed_conversations(client)
    pid = await project_id(client)
    page = await browser.get(f"/projects/{pid}/threads/conv-a")
    assert page.status_code == 200
    text = page.text
    # Turns in order, each a user message and the agent's answer, with its trace link.
    assert text.index("Where is my order?") < text.index("And the invoice?") < text.index("Thanks")
    assert text.count('class="msg role-user"') == 3
    assert text.count('class="msg role-assistant"') == 2  # the failed turn has no answer
    assert "It ships tomorrow." in text
    for n in range(3):
        assert f'href="/traces/conv-a-t{n}"' in text
    assert "TimeoutError" in text
    assert text.count('class="badge error"') == 1
    assert "3 turns" in text

    evil = await browser.get(f"/projects/{pid}/threads/conv-evil")
    assert evil.status_code == 200
    assert_escaped(evil.text)
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in evil.text

    assert (await browser.get(f"/projects/{pid}/threads/no-such-thread")).status_code == 404
    for offset in ("abc", "-1", "99999999999999999999999"):
        r = await browser.get(f"/projects/{pid}/threads/conv-a", params={"offset": offset})
        assert r.status_code == 400, (offset, r.status_code)
        assert "offset" in r.text
    assert (await browser.get("/projects/no-such-project/threads")).status_code == 404


async def test_chat_inputs_show_only_the_new_user_message(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]
    await ingest(
        client,
        [
            {
                "id": "chat-root",
                "trace_id": "chat-t",
                "name": "chat",
                "kind": "llm",
                "start_time": T0,
                "end_time": T0 + 1000,
                "inputs": {"messages": history},
                "outputs": {"choices": [{"message": {"role": "assistant", "content": "2nd"}}]},
                "session_id": "chat-conv",
            }
        ],
    )
    pid = await project_id(client)
    page = await browser.get(f"/projects/{pid}/threads/chat-conv")
    body = page.text.split('<ol class="turns"')[1]
    chats = body.split("Raw JSON")[0]
    assert "second question" in chats
    assert "first answer" not in chats  # earlier turns are not repeated as messages
    listing = await browser.get(f"/projects/{pid}/threads")
    assert "second question" in listing.text


async def test_users_list_links_to_their_runs(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await seed_conversations(client)
    await ingest(
        client, turn("conv-b", 0, at=T0 + 1_000, question="hi", answer="hello", user="bob")
    )
    pid = await project_id(client)
    page = await browser.get(f"/projects/{pid}/users")
    assert page.status_code == 200
    assert_escaped(page.text)
    names = re.findall(r'<td class="name mono"><a href="[^"]+">([^<]+)</a>', page.text)
    assert [htmllib.unescape(n) for n in names] == [EVIL, "alice", "bob"]  # by last activity
    alice = page.text.split(">alice</a>")[1].split("</tr>")[0]
    assert re.findall(r">(\d+)<", alice)[:2] == ["3", "3"]  # traces, runs (user on roots)

    link = re.search(r'<td class="name mono"><a href="([^"]+)">alice</a>', page.text)
    assert link is not None
    url = htmllib.unescape(link.group(1))
    assert parse_qs(urlsplit(url).query)["filter"] == ['user_id = "alice"']
    runs = await browser.get(url)
    assert runs.status_code == 200
    assert runs.text.count('class="name"') == 3

    evil_link = re.search(r'<td class="name mono"><a href="([^"]+)">&lt;script', page.text)
    assert evil_link is not None
    evil_runs = await browser.get(htmllib.unescape(evil_link.group(1)))
    assert evil_runs.status_code == 200
    assert evil_runs.text.count('class="name"') == 1  # the hostile id is a quoted literal
    assert_escaped(evil_runs.text)


async def test_another_workspace_sees_no_threads_or_users(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await seed_conversations(client)
    pid = await project_id(client)
    async with other_workspace_browser(app) as other:
        for path in (
            f"/projects/{pid}/threads",
            f"/projects/{pid}/threads/conv-a",
            f"/projects/{pid}/users",
        ):
            assert (await other.get(path)).status_code == 404, path


async def test_long_thread_pages_its_turns_and_a_hostile_thread_id_is_a_link(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    items: list[dict[str, Any]] = []
    for n in range(105):
        items += turn("long", n, at=T0 + n * 1_000_000, question=f"question {n}", answer=f"a{n}")
    hostile = turn("hostile", 0, at=T0 + 900_000_000, question="hi", answer="hello")
    for run in hostile:
        run["session_id"] = EVIL
    items += hostile
    await ingest(client, items)
    pid = await project_id(client)

    seen: list[int] = []
    url: str | None = f"/projects/{pid}/threads/long"
    while url:
        page = await browser.get(url)
        assert page.status_code == 200
        seen += [int(n) for n in re.findall(r"question (\d+)<", page.text)]
        nxt = re.search(r'<a href="([^"]+)">Later turns', page.text)
        url = htmllib.unescape(nxt.group(1)) if nxt else None
    assert seen == list(range(105))  # every turn once, in order, over two pages

    listing = await browser.get(f"/projects/{pid}/threads")
    assert_escaped(listing.text)
    link = re.search(r'<td class="name mono"><a href="([^"]+)">&lt;script', listing.text)
    assert link is not None
    assert "%3Cscript%3E" in link.group(1)  # the id is one encoded path segment
    thread = await browser.get(htmllib.unescape(link.group(1)))
    assert thread.status_code == 200
    assert_escaped(thread.text)
    assert 'href="/traces/' in thread.text
