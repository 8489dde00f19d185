"""Issue #23's accessibility items in a real browser: a skip link first in the tab order, one tab
stop for the whole trace tree with the arrow keys to move, open and close, and a visible label
on every form field of the pages people use most."""

from __future__ import annotations

import time
from typing import Any

import pytest
from dashboard_harness import Pages, Server

T0 = int(time.time() * 1_000_000) - 900_000_000
TRACE = "a11y-trace"


def _runs() -> list[dict[str, Any]]:
    """A root with three children; the second child has two children of its own."""

    def run(run_id: str, parent: str | None, offset: int, kind: str) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": run_id,
            "trace_id": TRACE,
            "name": run_id,
            "kind": kind,
            "start_time": T0 + offset,
            "end_time": T0 + offset + 1_000,
            "inputs": {"q": run_id},
            "outputs": {"a": run_id},
        }
        if parent is not None:
            item["parent_id"] = parent
        return item

    return [
        run("root", None, 0, "agent"),
        run("plan", "root", 10, "llm"),
        run("search", "root", 20, "retriever"),
        run("fetch-a", "search", 30, "tool"),
        run("fetch-b", "search", 40, "tool"),
        run("answer", "root", 50, "llm"),
    ]


@pytest.fixture(scope="module")
def seeded(server: Server) -> None:
    with server.api() as api:
        r = api.post("/api/v1/runs/batch", json={"project": "a11y", "runs": _runs()})
        assert r.status_code == 202, r.text
        assert api.post("/api/v1/datasets", json={"name": "a11y-golden"}).status_code == 201
        examples = [{"inputs": {"q": "refund?"}, "outputs": {"a": "no"}}]
        r = api.post("/api/v1/datasets/a11y-golden/examples", json={"examples": examples})
        assert r.status_code == 201, r.text


def _focused(tab: Pages) -> str:
    return str(
        tab.page.evaluate(
            "() => { const a = document.activeElement;"
            " return a ? (a.dataset.run || a.className || a.tagName) : ''; }"
        )
    )


def test_the_skip_link_comes_first_and_moves_to_the_content(
    tab: Pages, server: Server, seeded: None
) -> None:
    tab.sign_in()
    tab.goto("/projects")
    tab.page.keyboard.press("Tab")
    assert _focused(tab) == "skip-link"
    assert tab.page.is_visible("a.skip-link")  # shown while it has the focus
    tab.page.keyboard.press("Enter")
    assert tab.page.evaluate("() => document.activeElement.id") == "main"
    tab.page.keyboard.press("Tab")  # the next stop is inside the content, not the top bar
    inside = tab.page.evaluate(
        "() => document.getElementById('main').contains(document.activeElement)"
    )
    assert inside


def test_the_trace_tree_is_one_tab_stop_driven_by_the_arrow_keys(
    tab: Pages, server: Server, seeded: None
) -> None:
    tab.sign_in()
    tab.goto(f"/traces/{TRACE}")
    tab.page.wait_for_selector(".tree a.rname")
    stops = tab.page.evaluate(
        "() => Array.from(document.querySelectorAll('.tree a, .tree summary'))"
        ".filter((el) => el.tabIndex >= 0).map((el) => el.dataset.run || el.tagName)"
    )
    assert stops == ["root"]  # one tab stop for the whole tree

    tab.page.focus(".tree a.rname[data-run=root]")
    tab.page.keyboard.press("ArrowDown")
    assert _focused(tab) == "plan"
    tab.page.keyboard.press("ArrowDown")
    assert _focused(tab) == "search"
    # the subtree of "search" is open at first (a small trace): Left closes it, Down skips it
    tab.page.keyboard.press("ArrowLeft")
    tab.page.keyboard.press("ArrowDown")
    assert _focused(tab) == "answer"
    tab.page.keyboard.press("ArrowUp")
    tab.page.keyboard.press("ArrowRight")  # opens "search" again
    tab.page.keyboard.press("ArrowRight")  # and goes to its first child
    assert _focused(tab) == "fetch-a"
    tab.page.keyboard.press("End")
    assert _focused(tab) == "answer"
    tab.page.keyboard.press("Home")
    assert _focused(tab) == "root"
    tab.page.keyboard.press("ArrowDown")
    tab.page.keyboard.press("ArrowDown")
    tab.page.keyboard.press("ArrowRight")
    tab.page.keyboard.press("ArrowRight")
    tab.page.keyboard.press("ArrowLeft")  # from a leaf: to its parent row
    assert _focused(tab) == "search"
    # still one tab stop, now on the row the keys reached; Enter selects it
    stops = tab.page.evaluate(
        "() => Array.from(document.querySelectorAll('.tree a, .tree summary'))"
        ".filter((el) => el.tabIndex >= 0).map((el) => el.dataset.run)"
    )
    assert stops == ["search"]
    tab.page.keyboard.press("Enter")
    tab.page.wait_for_function("() => location.search.includes('run=search')")
    tab.shot("a11y-trace-keyboard")
    assert not tab.console_errors


LABELLED = """() => Array.from(document.querySelectorAll(
    'main input:not([type=hidden]):not([type=submit]):not([type=button]),'
    + ' main select, main textarea'))
  .filter((el) => el.checkVisibility({visibilityProperty: true}))
  .filter((el) => {
    const shown = Array.from(el.labels || []).some((l) => l.innerText.trim() !== '');
    // a row's checkbox may be named for screen readers alone; text fields need a visible label
    const named = el.type === 'checkbox' && el.getAttribute('aria-label');
    return !(shown || named);
  })
  .map((el) => el.name || el.id || el.outerHTML.slice(0, 80))"""


def test_every_visible_field_has_a_visible_label(tab: Pages, server: Server, seeded: None) -> None:
    tab.sign_in()
    with server.api() as api:
        project = next(
            p for p in api.get("/api/v1/projects").json()["items"] if p["name"] == "a11y"
        )
    pages = [
        "/projects",
        f"/projects/{project['id']}",
        f"/projects/{project['id']}/runs",
        f"/traces/{TRACE}?run=plan",
        "/datasets",
        "/datasets/a11y-golden",
        "/datasets/a11y-golden/examples/new",
        "/experiments",
        "/rules",
        "/alerts",
    ]
    missing = {}
    for path in pages:
        tab.goto(path)
        unlabelled = tab.page.evaluate(LABELLED)
        if unlabelled:
            missing[path] = unlabelled
    assert missing == {}, missing
