"""Pairwise review in a real browser: the comparison page makes a pairwise queue from its two
experiments, a reviewer picks the better of two outputs with the keyboard (shown as Output 1
and Output 2, never the experiments' names), and the human preference shows on the queue page
and the comparison page."""

from __future__ import annotations

import time
import uuid

from dashboard_harness import Pages, Server

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1;alert(1)">'
T0 = int(time.time() * 1_000_000) - 3_600_000_000
GOOD = "Yes: refunds within 30 days, here is the form."
POOR = "No."


def _experiments(server: Server, tag: str) -> tuple[str, str]:
    ids = []
    with server.api() as api:
        assert api.post("/api/v1/datasets", json={"name": f"pw-{tag}"}).status_code == 201
        for name, answer in ((f"pw-base-{tag}", POOR), (f"pw-cand-{tag}", GOOD)):
            made = api.post("/api/v1/experiments", json={"name": name, "dataset": f"pw-{tag}"})
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])
            runs = [
                {
                    "id": f"{name}-{i}", "trace_id": f"{name}-t{i}", "name": "agent",
                    "kind": "chain", "start_time": T0 + i, "end_time": T0 + i + 1000,
                    "inputs": {"messages": [{"role": "user", "content": f"Refund {i}? {XSS}"}]},
                    "outputs": {"messages": [{"role": "assistant", "content": f"{answer} ({i})"}]},
                    "metadata": {"experiment": name, "example_id": f"ex{i}", "repetition": 0},
                }
                for i in range(2)
            ]  # fmt: skip
            sent = api.post("/api/v1/runs/batch", json={"project": name, "runs": runs})
            assert sent.status_code == 202, sent.text
        last = f"pw-cand-{tag}-1"
        for _ in range(600):  # ingest is asynchronous: wait (bounded) for the last run
            if api.get(f"/api/v1/runs/{last}").status_code == 200:
                break
            time.sleep(0.1)
    return ids[0], ids[1]


def test_pairwise_review_with_the_keyboard(tab: Pages, server: Server) -> None:
    tag = uuid.uuid4().hex[:8]
    base, cand = _experiments(server, tag)
    page = tab.page
    tab.sign_in()
    tab.goto(f"/experiments/compare?baseline={base}&candidate={cand}")
    page.click("form.pairwise-create button[type=submit]")
    page.wait_for_selector(".pairwise-results")
    page.click("text=Start reviewing")
    page.wait_for_selector("#review-form")
    shown = page.inner_text("body")  # the queue's default name names no experiment either
    assert f"pw-base-{tag}" not in shown
    assert f"pw-cand-{tag}" not in shown
    assert "Refund 0? " + XSS in page.inner_text(".pw-input")
    tab.shot("pairwise-review-item")

    # pair 1: the key of whichever side shows the good answer, then Enter
    first = page.inner_text('.pw-output[data-output="1"]')
    page.keyboard.press("1" if GOOD in first else "2")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Review saved.")
    assert "Refund 1?" in page.inner_text(".pw-input")
    # pair 2: "3" is a tie
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Nothing left for you in this queue")

    page.click("text=Back to the queue")
    results = " ".join(page.inner_text(".pairwise-results").split())
    assert "wins 75%" in results  # (1 win + 1 tie / 2) / 2
    assert "of 2 judged pairs" in results
    tab.goto(f"/experiments/compare?baseline={base}&candidate={cand}")
    preference = " ".join(page.inner_text(".human-preference").split())
    assert "B wins 75%" in preference
    assert "of 2 judged pairs" in preference
    assert not tab.xss_fired()
    assert tab.dialogs == []
