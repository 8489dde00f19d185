"""Threads tab, a thread read as a conversation, and users, in a real browser."""

from __future__ import annotations

import time
from typing import Any

from dashboard_harness import Pages, Server

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1;alert(1)">'
T0 = int(time.time() * 1_000_000) - 7_200_000_000
PROJECT = "threads-bot"


def _turn(thread: str, n: int, question: str, answer: str, user: str) -> list[dict[str, Any]]:
    tid = f"{thread}-turn-{n}"
    start = T0 + n * 90_000_000 + (600_000_000 if thread == "chat-hostile" else 0)
    root = {
        "id": f"{tid}-root",
        "trace_id": tid,
        "name": "support-agent",
        "kind": "agent",
        "start_time": start,
        "end_time": start + 1_800_000,
        "inputs": {"question": question},
        "outputs": {"answer": answer},
        "session_id": thread,
        "user_id": user,
    }
    llm = {
        "id": f"{tid}-llm",
        "trace_id": tid,
        "parent_id": root["id"],
        "name": "openai.chat",
        "kind": "llm",
        "start_time": start + 100_000,
        "end_time": start + 1_600_000,
        "inputs": {"messages": [{"role": "user", "content": question}]},
        "outputs": {"choices": [{"message": {"role": "assistant", "content": answer}}]},
    }
    return [root, llm]


def test_threads_tab_thread_and_trace_link(tab: Pages, server: Server) -> None:
    items: list[dict[str, Any]] = []
    conversation = [
        ("Where is order 1042?", "It is packed and ships tomorrow."),
        ("Can I change the address?", "Yes, until it ships: send the new address."),
        ("12 Rue de la Paix, Paris", "Done: order 1042 goes to Paris."),
    ]
    for n, (q, a) in enumerate(conversation):
        items += _turn("chat-1042", n, q, a, "alice")
    items += _turn("chat-hostile", 0, XSS, XSS, XSS)
    with server.api() as api:
        r = api.post("/api/v1/runs/batch", json={"project": PROJECT, "runs": items})
        assert r.status_code == 202, r.text

    tab.sign_in()
    tab.page.click(f"text={PROJECT}")
    tab.page.click("nav.tabs >> text=Threads")
    tab.page.wait_for_selector("table.threads")
    rows = tab.page.locator("table.threads tbody tr")
    assert rows.count() == 2
    assert "chat-hostile" in rows.nth(0).inner_text()  # newest activity first
    assert XSS in rows.nth(0).inner_text()  # the hostile preview is shown as text
    assert "Where is order 1042?" in rows.nth(1).inner_text()
    tab.shot("threads")

    tab.page.click("table.threads >> text=chat-1042")
    tab.page.wait_for_selector("ol.turns")
    turns = tab.page.locator("li.turn")
    assert turns.count() == 3
    for n, (q, a) in enumerate(conversation):
        body = turns.nth(n).inner_text()
        assert q in body
        assert a in body
    assert turns.nth(0).locator(".msg.role-user").count() == 1
    assert turns.nth(0).locator(".msg.role-assistant").count() == 1
    tab.shot("thread")

    turns.nth(1).locator("a.turn-trace").click()
    tab.page.wait_for_selector(".tree")
    assert tab.page.url.endswith("/traces/chat-1042-turn-1")
    assert "openai.chat" in tab.page.inner_text(".tree")

    tab.page.go_back()
    tab.page.click("nav.tabs >> text=Users")
    tab.page.wait_for_selector("table.users")
    assert XSS in tab.page.inner_text("table.users")
    tab.page.click("table.users >> text=alice")
    tab.page.wait_for_selector("table.runs")
    assert 'user_id = "alice"' in tab.page.input_value("input[name=filter]")
    assert tab.page.locator("table.runs tbody tr").count() == 3
    tab.shot("user-runs")

    missing = tab.goto(
        f"/projects/{tab.page.url.split('/projects/')[1].split('/')[0]}/threads/nope"
    )
    assert missing.status == 404
    assert "Not found" in tab.page.inner_text("main")
    assert not tab.xss_fired()
    assert tab.dialogs == []
    assert not [e for e in tab.console_errors if "Content Security Policy" in e]
