"""Experiments in a real browser: two experiments made by `goldloop.evaluate` against the real
server, the lists, an experiment page, tagging the baseline and the comparison (regressions
first, interval and p-value shown), with hostile outputs, inputs and metadata."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from dashboard_harness import Pages, Server

import goldloop
from goldloop.evaluation import build_evaluator
from sdk_state import reset_sdk

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1;alert(1)">'
BROKEN = {"q2", "q5"}  # the questions the candidate gets wrong (q5's answer is hostile)


@pytest.fixture
def sdk(server: Server) -> Iterator[None]:
    goldloop.configure(
        tracing=True, endpoint=server.base, api_key=server.admin_key, project="bx-prod"
    )
    yield
    reset_sdk()


def baseline_agent(inputs: dict[str, Any]) -> dict[str, str]:
    return {"answer": f"answer {inputs['id']}"}


def candidate_agent(inputs: dict[str, Any]) -> dict[str, str]:
    if inputs["id"] in BROKEN:
        return {"answer": XSS if inputs["id"] == "q5" else "I don't know"}
    return {"answer": f"answer {inputs['id']}"}


@pytest.fixture(scope="module")
def golden(server: Server) -> str:
    examples = [
        {
            "id": f"bx-{i}",
            "inputs": {"id": f"q{i}", "question": XSS if i == 4 else f"question {i}"},
            "outputs": {"answer": f"answer q{i}"},
        }
        for i in range(8)
    ]
    with server.api() as api:
        r = api.post("/api/v1/datasets", json={"name": "bx-golden"})
        assert r.status_code == 201, r.text
        r = api.post("/api/v1/datasets/bx-golden/examples", json={"examples": examples})
        assert r.status_code == 201, r.text
    return "bx-golden"


def test_compare_two_real_experiments(tab: Pages, server: Server, golden: str, sdk: None) -> None:
    exact = build_evaluator("exact_match", {"key": "correct"})
    base = goldloop.evaluate(
        baseline_agent, golden, [exact], repetitions=2, experiment_prefix="agent-v1",
        metadata={"git_sha": "1111111", XSS: XSS}, progress=False,
    )  # fmt: skip
    cand = goldloop.evaluate(
        candidate_agent, golden, [exact], repetitions=2, experiment_prefix="agent-v2 " + XSS,
        metadata={"git_sha": "2222222"}, progress=False,
    )  # fmt: skip
    assert base.uploaded
    assert cand.uploaded
    with server.api() as api:
        listed = api.get("/api/v1/experiments", params={"dataset": golden}).json()["items"]
    ids = {e["name"]: e["id"] for e in listed}
    assert set(ids) == {base.experiment, cand.experiment}

    tab.sign_in()
    tab.page.click("nav.mainnav >> text=Experiments")
    tab.page.wait_for_selector("table.experiments")
    assert tab.page.locator("table.experiments tbody tr").count() == 2
    assert cand.experiment in tab.page.inner_text("table.experiments")  # hostile name as text
    tab.shot("experiments")

    # Pick A and B with the radio buttons and compare.
    tab.page.check(f"input[name=baseline][value='{ids[base.experiment]}']")
    tab.page.check(f"input[name=candidate][value='{ids[cand.experiment]}']")
    tab.page.click("text=Compare A → B")
    tab.page.wait_for_selector("table.stats")
    assert tab.page.get_attribute("tr.ex-row", "data-outcome") == "regressed"
    # the wide statistics table scrolls in its own box; the page itself never does sideways
    assert tab.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    tab.page.click("nav.mainnav >> text=Experiments")
    tab.page.wait_for_selector("table.experiments")

    # The baseline's page: metadata, results, and tag it `main`.
    tab.page.click(f"table.experiments a[href='/experiments/{ids[base.experiment]}']")
    tab.page.wait_for_selector("table.results")
    assert tab.page.locator("table.results tbody tr").count() == 16  # 8 examples x 2
    assert "1111111" in tab.page.inner_text(".exp-meta")
    tab.page.click("text=Tag this experiment")
    tab.page.wait_for_selector(".pagehead .tag.baseline")
    tab.shot("experiment")

    # The dataset's Experiments tab, then "compare with main" from the candidate's page.
    tab.goto(f"/datasets/{golden}/experiments")
    tab.page.wait_for_selector("text=vs main")
    tab.shot("dataset-experiments")
    tab.goto(f"/experiments/{ids[cand.experiment]}")
    tab.page.wait_for_selector("table.results")
    assert XSS in tab.page.inner_text("table.results")
    tab.shot("experiment-candidate")
    tab.page.click("text=Compare with the main baseline")
    tab.page.wait_for_selector("table.stats")

    stats = tab.page.inner_text("table.stats tr[data-key='correct']")
    assert re.search(r"\[[-+][0-9.]+, [-+][0-9.]+\]", stats)  # the 95% interval
    p_value = tab.page.inner_text("table.stats tr[data-key='correct'] td.pval")
    assert re.fullmatch(r"[0-9.]+|< 0\.0001", p_value)
    outcomes = tab.page.eval_on_selector_all(
        "tr.ex-row", "rows => rows.map(r => [r.dataset.example, r.dataset.outcome])"
    )
    assert [o for _, o in outcomes] == ["regressed", "regressed"] + ["unchanged"] * 6
    assert {ex for ex, o in outcomes if o == "regressed"} == {"bx-2", "bx-5"}
    assert XSS in tab.page.inner_text("table.sidebyside")  # the hostile answer, as text
    assert "repetition 1" in tab.page.inner_text("table.sidebyside")
    tab.shot("experiment-compare")

    tab.page.click("text=Swap A and B")
    tab.page.wait_for_selector("table.stats")
    first = tab.page.get_attribute("tr.ex-row", "data-outcome")
    assert first == "improved"
    tab.shot("experiment-compare-swapped")
    tab.page.click("nav.outcome-tabs >> text=Unchanged")
    assert tab.page.locator("tr.ex-row").count() == 6

    assert not tab.xss_fired()
    assert tab.dialogs == []
    assert not [e for e in tab.console_errors if "Content Security Policy" in e]


QUOTED = XSS + ' "quoted" & more'
WRONG = {  # candidate name -> the questions it gets wrong
    "cand-1": {"m1"},
    "cand-2": {"m2"},
    "cand-3": {"m1", "m4"},
    "cand-4": set(),
}


def many_agent(wrong: set[str]) -> Any:
    def agent(inputs: dict[str, Any]) -> dict[str, str]:
        if inputs["id"] not in wrong:
            return {"answer": f"answer {inputs['id']}"}
        return {"answer": QUOTED if inputs["id"] == "m2" else "I don't know"}

    return agent


def flaky(outputs: dict[str, Any]) -> bool:
    """A home-made evaluator that breaks on one kind of answer (an evaluator error)."""
    if outputs["answer"] == "I don't know":
        raise ValueError("<b>cannot judge</b>")
    return True


@pytest.fixture(scope="module")
def many(server: Server) -> str:
    examples = [
        {
            "id": f"bx-m-{i}",
            "inputs": {
                "id": f"m{i}",
                "question": QUOTED if i == 3 else f"How do I reset the password of account {i}?",
            },
            "outputs": {"answer": f"answer m{i}"},
        }
        for i in range(6)
    ]
    with server.api() as api:
        assert api.post("/api/v1/datasets", json={"name": "bx-many"}).status_code == 201
        r = api.post("/api/v1/datasets/bx-many/examples", json={"examples": examples})
        assert r.status_code == 201, r.text
    return "bx-many"


def test_results_and_five_way_comparison(
    tab: Pages, chromium: Any, server: Server, many: str, sdk: None
) -> None:
    exact = build_evaluator("exact_match", {"key": "correct"})
    names = {}
    for name, wrong in [("base", set()), *WRONG.items()]:
        done = goldloop.evaluate(
            many_agent(wrong), many, [exact, flaky], experiment_prefix=name, progress=False
        )
        assert done.uploaded
        names[name] = done.experiment
    with server.api() as api:
        listed = api.get("/api/v1/experiments", params={"dataset": many}).json()["items"]
    ids = {name: next(e["id"] for e in listed if e["name"] == names[name]) for name in names}

    # 1, 2, 6: cand-1's page: reference beside output, failures marked in words, labels.
    tab.sign_in()
    tab.goto(f"/experiments/{ids['cand-1']}")
    tab.page.wait_for_selector("table.results")
    heads = tab.page.locator("table.results thead th").all_text_contents()
    assert heads.index("Reference output") + 1 == heads.index("Output")
    wrong_row = tab.page.locator("tr.result-row[data-example='bx-m-1']")
    assert "answer m1" in wrong_row.locator("td.reference").inner_text()
    assert "I don't know" in wrong_row.locator("td.output").inner_text()
    marks = wrong_row.locator(".score-mark.fail")
    assert marks.count() == 2  # correct = false, and flaky's error
    texts = [t.lower() for t in marks.all_text_contents()]
    assert any("fail" in t for t in texts)  # the word, not only the colour
    assert any("eval error" in t for t in texts)
    fail_bg = marks.first.evaluate("e => getComputedStyle(e).backgroundColor")
    passing = tab.page.locator("tr.result-row[data-example='bx-m-0'] .score-mark.pass").first
    assert "pass" in (passing.text_content() or "").lower()
    assert fail_bg != passing.evaluate("e => getComputedStyle(e).backgroundColor")
    label = tab.page.locator("tr.result-row[data-example='bx-m-0'] .ex-label")
    assert label.inner_text() == "How do I reset the password of account…"
    assert label.get_attribute("title") == "example bx-m-0"
    hostile = tab.page.locator("tr.result-row[data-example='bx-m-3'] .ex-label").inner_text()
    assert hostile.startswith("<script>window.__xss=1</script>")
    assert tab.page.inner_text(".failing-count") == "1"
    tab.shot("experiment-failures-marked")

    # 3: failures only, by its link.
    tab.page.click("nav.failure-tabs >> text=Failures only")
    tab.page.wait_for_url("**failing=1**")
    assert tab.page.locator("tr.result-row").count() == 1
    assert tab.page.get_attribute("tr.result-row", "data-example") == "bx-m-1"
    tab.shot("experiment-failures-only")

    # 4, 5: the four candidates against the baseline, picked in the list.
    tab.goto(f"/datasets/{many}/experiments")
    tab.page.check(f"input[name=baseline][value='{ids['base']}']")
    for name in WRONG:
        tab.page.check(f"input[name=candidate][value='{ids[name]}']")
    tab.page.click("text=Compare A → B")
    tab.page.wait_for_selector("table.sidebyside")
    assert tab.page.locator("table.stats").count() == 4
    assert tab.page.locator("table.sidebyside th.side").count() == 5
    assert tab.page.locator("tr.ex-row").count() == 6
    outcomes = tab.page.eval_on_selector_all(
        "tr.ex-row", "rows => rows.map(r => [r.dataset.example, r.dataset.outcome])"
    )
    assert {ex for ex, o in outcomes if o == "regressed"} == {"bx-m-1", "bx-m-2", "bx-m-4"}
    assert [o for _, o in outcomes][:3] == ["regressed"] * 3
    row = tab.page.locator("tr.ex-row[data-example='bx-m-2']")
    assert "answer m2" in row.locator("td.reference").inner_text()
    columns = tab.page.locator("table.sidebyside th.side").all_text_contents()[1:]
    side = row.locator("td.side-cand").nth(
        next(i for i, text in enumerate(columns) if names["cand-2"] in text)
    )
    added = "".join(side.locator("pre.out-diff ins").all_inner_texts())
    assert "<script>window.__xss=1</script>" in added
    assert '"quoted" & more' in added
    assert "answer" in "".join(side.locator("pre.out-diff del").all_inner_texts())
    assert row.locator("td.side-cand .diff-same").count() == 3  # the others answered as A did
    tab.shot("experiment-compare-five")

    # More than five: a 400 page that says why.
    six = "&".join(f"candidate={ids[n]}" for n in WRONG) + "&candidate=x"
    answer = tab.goto(f"/experiments/compare?baseline={ids['base']}&{six}")
    assert answer.status == 400
    assert "compare at most 5 experiments at once" in tab.page.inner_text("main")

    assert not tab.xss_fired()
    assert tab.dialogs == []
    assert not [e for e in tab.console_errors if "Content Security Policy" in e]

    # Without JavaScript: the failures form and the five-way pick work the same.
    context = chromium.new_context(
        java_script_enabled=False, viewport={"width": 1360, "height": 860}
    )
    try:
        plain = Pages(context.new_page(), server)
        plain.sign_in()
        plain.goto(f"/experiments/{ids['cand-3']}")
        plain.page.check("#failing")
        plain.page.select_option("#failing-key", "correct")
        plain.page.click("form.failing-form button[type=submit]")
        plain.page.wait_for_url("**key=correct**")
        rows = plain.page.locator("tr.result-row")
        shown = [rows.nth(i).get_attribute("data-example") for i in range(rows.count())]
        assert sorted(shown) == ["bx-m-1", "bx-m-4"]
        plain.goto(f"/datasets/{many}/experiments")
        plain.page.check(f"input[name=baseline][value='{ids['base']}']")
        for name in WRONG:
            plain.page.check(f"input[name=candidate][value='{ids[name]}']")
        plain.page.click("text=Compare A → B")
        plain.page.wait_for_selector("table.sidebyside")
        assert plain.page.locator("table.sidebyside th.side").count() == 5
    finally:
        context.close()
