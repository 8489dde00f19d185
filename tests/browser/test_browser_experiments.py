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
