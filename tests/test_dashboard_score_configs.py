"""The trace page's feedback form built from score configs, edit and delete with history, and
the feedback marks on the runs table and the trace tree; in-process over httpx, both backends."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from dashboard_helpers import csrf_of, other_workspace_browser
from test_dashboard_runs import EVIL, assert_escaped, ingest, project_id, trace_items

API = "/api/v1"
TONE = {
    "kind": "categorical",
    "categories": [{"label": "rude", "score": 0}, {"label": "warm", "score": 1}],
    "rubric": f"warm: friendly. {EVIL}",
    "correction_expected": True,
}


async def declare(client: httpx.AsyncClient) -> None:
    for key, body in (
        ("tone", TONE),
        ("resolved", {"kind": "boolean", "description": "Did the guest get an answer?"}),
        ("quality", {"kind": "continuous", "min": 0, "max": 5}),
        ("note", {"kind": "freeform"}),
    ):
        assert (await client.put(f"{API}/feedback-keys/{key}", json=body)).status_code == 201


async def test_the_form_offers_buttons_a_slider_and_the_rubric(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await ingest(client, trace_items("sc"))
    await declare(client)
    page = await browser.get("/traces/sc", params={"run": "sc-root"})
    assert page.status_code == 200
    text = page.text
    assert_escaped(text)
    assert "warm: friendly." in text  # the rubric, escaped
    assert re.search(r'<button type="submit" name="value" value="warm">warm', text)
    assert re.search(r'<button type="submit" name="value" value="rude">rude', text)
    assert '<button type="submit" name="score" value="true">true</button>' in text
    assert re.search(r'<input type="range" name="score" min="0.0" max="5.0"', text)
    assert 'name="score_number"' in text
    assert "Did the guest get an answer?" in text
    assert text.count('class="fb-config"') == 4
    # the correction field comes only with the key that expects one
    tone_form = text[text.index('data-key="tone"') :].split("</form>")[0]
    assert 'name="correction"' in tone_form
    resolved_form = text[text.index('data-key="resolved"') :].split("</form>")[0]
    assert 'name="correction"' not in resolved_form


async def test_buttons_save_checked_feedback_and_refusals_name_the_key(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await ingest(client, trace_items("sb"))
    await declare(client)
    token = csrf_of((await browser.get("/traces/sb", params={"run": "sb-root"})).text)
    warm = await browser.post(
        "/runs/sb-root/feedback", data={"csrf": token, "key": "tone", "value": "warm"}
    )
    assert warm.status_code == 303
    yes = await browser.post(
        "/runs/sb-root/feedback", data={"csrf": token, "key": "resolved", "score": "true"}
    )
    assert yes.status_code == 303
    # the exact number wins over the slider
    slid = await browser.post(
        "/runs/sb-root/feedback",
        data={"csrf": token, "key": "quality", "score": "2.5", "score_number": "4"},
    )
    assert slid.status_code == 303
    stored = (await client.get(f"{API}/feedback", params={"run_id": "sb-root"})).json()["items"]
    assert sorted((f["key"], f["score"], f["value"]) for f in stored) == [
        ("quality", 4.0, None),
        ("resolved", True, None),
        ("tone", 1.0, "warm"),
    ]
    too_high = await browser.post(
        "/runs/sb-root/feedback", data={"csrf": token, "key": "quality", "score_number": "9"}
    )
    assert too_high.status_code == 400
    assert (
        "feedback key &#39;quality&#39; is declared continuous: score 9 is outside its range [0, 5]"
        in (too_high.text)
    )
    bad_value = await browser.post(
        "/runs/sb-root/feedback", data={"csrf": token, "key": "tone", "value": EVIL}
    )
    assert bad_value.status_code == 400
    assert "is not one of its categories" in bad_value.text
    assert_escaped(bad_value.text)


async def test_edit_and_delete_keep_history_and_runs_are_marked(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await ingest(client, trace_items("se"))
    await declare(client)
    fb = (
        await client.post(
            f"{API}/feedback", json={"run_id": "se-llm", "key": "tone", "value": "warm"}
        )
    ).json()
    other = (
        await client.post(f"{API}/feedback", json={"run_id": "se-llm", "key": "note", "value": "x"})
    ).json()
    page = await browser.get("/traces/se", params={"run": "se-llm"})
    token = csrf_of(page.text)
    assert f'action="/feedback/{fb["id"]}/edit"' in page.text
    # the trace tree marks the run with feedback, and only it
    assert re.search(r'data-run="se-llm"[^\n]*?class="fb-mark"[^>]*>✎ 2<', page.text)
    assert not re.search(r'data-run="se-tool"[^\n]*?class="fb-mark"', page.text)
    runs = await browser.get(f"/projects/{await project_id(client)}/runs", params={"filter": ""})
    assert re.search(r'\?run=se-llm">openai\.chat</a> <span class="fb-mark"[^>]*>✎ 2<', runs.text)
    assert not re.search(r'\?run=se-root">answer</a> <span class="fb-mark"', runs.text)

    # an edit of the category only: its score follows, the old value is in the history
    edited = await browser.post(
        f"/feedback/{fb['id']}/edit",
        data={"csrf": token, "run": "se-llm", "score": "1", "value": "rude", "comment": "curt"},
    )
    assert edited.status_code == 303
    now = (await client.get(f"{API}/feedback/{fb['id']}")).json()
    assert (now["value"], now["score"], now["comment"]) == ("rude", 0.0, "curt")
    refused = await browser.post(
        f"/feedback/{fb['id']}/edit",
        data={"csrf": token, "run": "se-llm", "score": "0", "value": "shouty"},
    )
    assert refused.status_code == 400
    assert "&#39;shouty&#39; is not one of its categories" in refused.text

    deleted = await browser.post(
        f"/feedback/{other['id']}/delete", data={"csrf": token, "run": "se-llm"}
    )
    assert deleted.status_code == 303
    shown = await browser.get(deleted.headers["location"])
    assert "Feedback deleted" in shown.text
    assert "history (1 change)" in shown.text
    assert "by bootstrap admin: was" in shown.text
    assert "deleted feedback (1)" in shown.text
    assert (await client.get(f"{API}/feedback/{other['id']}")).status_code == 404
    history = (await client.get(f"{API}/feedback/{fb['id']}/history")).json()["items"]
    assert [(h["action"], h["old"]["value"]) for h in history] == [("edited", "warm")]
    no_csrf = await browser.post(f"/feedback/{fb['id']}/delete", data={"run": "se-llm"})
    assert no_csrf.status_code == 403


async def test_another_workspace_cannot_edit_or_delete(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await ingest(client, trace_items("sw"))
    fb = (
        await client.post(f"{API}/feedback", json={"run_id": "sw-root", "key": "k", "score": 1})
    ).json()
    async with other_workspace_browser(app) as other:
        token = csrf_of((await other.get("/projects")).text)
        for action in ("edit", "delete"):
            r = await other.post(
                f"/feedback/{fb['id']}/{action}",
                data={"csrf": token, "run": "sw-root", "score": "0"},
            )
            assert r.status_code == 404, action
    assert (await client.get(f"{API}/feedback/{fb['id']}")).json()["score"] == 1
    assert (await client.get(f"{API}/feedback/{fb['id']}/history")).json()["items"] == []
