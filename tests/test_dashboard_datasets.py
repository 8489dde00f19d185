"""Dataset pages and "add to dataset" in-process over httpx, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import httpx

from dashboard_helpers import csrf_of
from test_dashboard_runs import EVIL, assert_escaped, ingest, trace_items


async def test_add_a_corrected_run_to_a_new_dataset_and_see_the_version(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await ingest(client, trace_items("td", evil=True))
    page = await browser.get("/traces/td", params={"run": "td-root"})
    token = csrf_of(page.text)
    r = await browser.post(
        "/runs/td-root/feedback",
        data={
            "csrf": token,
            "key": "correctness",
            "score": "0",
            "correction": '{"answer": "fixed answer"}',
        },
    )
    assert r.status_code == 303
    refused = await browser.post("/runs/td-root/dataset", data={"dataset": "golden"})
    assert refused.status_code == 403
    added = await browser.post(
        "/runs/td-root/dataset",
        data={"csrf": token, "dataset": "golden", "prefer_correction": "on"},
    )
    assert added.status_code == 303
    shown = await browser.get(added.headers["location"])
    assert shown.status_code == 200
    assert "fixed answer" in shown.text  # reference output from the correction
    assert "output from a correction" in shown.text
    assert "version 1" in shown.text
    assert_escaped(shown.text)
    again = await browser.post(
        "/runs/td-root/dataset",
        data={"csrf": token, "dataset": "golden", "prefer_correction": "on"},
    )
    assert again.status_code == 400
    assert "already in the dataset" in again.text

    listing = await browser.get("/datasets")
    assert "golden" in listing.text
    ds_url = re.search(r'href="(/datasets/[^"]+)">golden<', listing.text)
    assert ds_url
    base = ds_url.group(1)

    await ingest(client, trace_items("td2"))
    r = await browser.post("/runs/td2-root/dataset", data={"csrf": token, "dataset": "golden"})
    assert r.status_code == 303
    versions = await browser.get(f"{base}/versions")
    assert ">v2</a>" in versions.text
    assert ">v1</a>" in versions.text
    tagged = await browser.post(f"{base}/tags", data={"csrf": token, "tag": "prod", "version": "1"})
    assert tagged.status_code == 303
    assert "prod" in (await browser.get(f"{base}/versions")).text
    old = await browser.get(base, params={"as_of": "prod"})
    assert "showing version 1" in old.text
    assert old.text.count('<article class="example') == 1
    diff = await browser.get(f"{base}/diff", params={"from": "1", "to": "2"})
    assert diff.status_code == 200
    assert "1 added, 0 removed, 0 changed" in diff.text
    assert_escaped(diff.text)


async def test_create_dataset_form_and_errors(
    browser: httpx.AsyncClient,
) -> None:
    page = await browser.get("/datasets")
    token = csrf_of(page.text)
    assert (await browser.post("/datasets", data={"name": "x"})).status_code == 403
    made = await browser.post("/datasets", data={"csrf": token, "name": EVIL[:60]})
    assert made.status_code in (303, 400)
    ok = await browser.post("/datasets", data={"csrf": token, "name": "support-golden"})
    assert ok.status_code == 303
    dup = await browser.post("/datasets", data={"csrf": token, "name": "support-golden"})
    assert dup.status_code == 400
    assert "already exists" in dup.text
    listing = await browser.get("/datasets")
    assert_escaped(listing.text)
    assert (await browser.get("/datasets/nope")).status_code == 404
