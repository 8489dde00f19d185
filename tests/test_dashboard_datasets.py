"""Dataset pages and "add to dataset" in-process over httpx, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from fastapi import FastAPI

from dashboard_helpers import csrf_of, other_workspace_browser
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
    # lineage: links to the run and to the correction on its trace page
    assert 'href="/runs/td-root"' in shown.text
    fb_link = re.search(r'href="(/traces/td\?run=td-root)#fb-([^"]+)"', shown.text)
    assert fb_link
    assert f'id="fb-{fb_link.group(2)}"' in (await browser.get(fb_link.group(1))).text
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


async def _new_dataset(browser: httpx.AsyncClient, name: str) -> tuple[str, str]:
    token = csrf_of((await browser.get("/datasets")).text)
    made = await browser.post("/datasets", data={"csrf": token, "name": name})
    assert made.status_code == 303
    return made.headers["location"], token


def _example_ids(html: str) -> list[str]:
    return re.findall(r'<article class="example[^"]*" id="ex-([^"]+)"', html)


async def test_add_edit_with_bad_json_then_good_and_delete_examples(
    browser: httpx.AsyncClient,
) -> None:
    base, token = await _new_dataset(browser, "curated")
    form = await browser.get(f"{base}/examples/new")
    assert form.status_code == 200
    assert (await browser.post(f"{base}/examples", data={"inputs": "{}"})).status_code == 403

    chat = {"messages": [{"role": "user", "content": EVIL}]}
    added = await browser.post(
        f"{base}/examples",
        data={
            "csrf": token,
            "inputs": json.dumps(chat),
            "outputs": json.dumps({"answer": EVIL}),
            "metadata": '{"source": "manual"}',
            "splits": "test, hard",
        },
    )
    assert added.status_code == 303
    page = await browser.get(added.headers["location"])
    assert "added, as version 1" in page.text
    assert 'class="msg role-user"' in page.text  # chat inputs shown as a conversation
    assert_escaped(page.text)
    (ex_id,) = _example_ids(page.text)

    edit_url = f"{base}/examples/{ex_id}/edit"
    edit_page = (await browser.get(edit_url)).text
    assert "&#34;manual&#34;" in edit_page
    assert_escaped(edit_page)
    bad = await browser.post(
        f"{base}/examples/{ex_id}",
        data={"csrf": token, "inputs": '{"question": "why?"', "outputs": "", "metadata": ""},
    )
    assert bad.status_code == 400
    assert "Inputs is not valid JSON" in bad.text
    assert "why?" in bad.text  # the text stays in the form
    not_object = await browser.post(
        f"{base}/examples/{ex_id}",
        data={"csrf": token, "inputs": '{"q": 1}', "metadata": "[1]"},
    )
    assert not_object.status_code == 400
    assert "Metadata must be a JSON object" in not_object.text
    saved = await browser.post(
        f"{base}/examples/{ex_id}",
        data={"csrf": token, "inputs": '{"question": "why?"}', "outputs": '"because"'},
    )
    assert saved.status_code == 303
    page = await browser.get(saved.headers["location"])
    assert "saved, as version 2" in page.text
    assert "because" in page.text
    diff = await browser.get(f"{base}/diff", params={"from": "1", "to": "2"})
    assert re.search(r"<ins>[^<]*because", diff.text)  # the changed words, marked
    assert re.search(r"<del>[^<]*answer", diff.text)
    assert_escaped(diff.text)
    old = await browser.get(base, params={"as_of": "1"})
    assert "go to the newest" in old.text
    assert "/edit" not in old.text

    confirm = await browser.get(f"{base}/examples/{ex_id}/delete")
    assert confirm.status_code == 200
    assert "Delete the example" in confirm.text
    assert (await browser.post(f"{base}/examples/{ex_id}/delete", data={})).status_code == 403
    gone = await browser.post(f"{base}/examples/{ex_id}/delete", data={"csrf": token})
    assert gone.status_code == 303
    page = await browser.get(gone.headers["location"])
    assert "deleted, as version 3" in page.text
    assert _example_ids(page.text) == []
    again = await browser.post(f"{base}/examples/{ex_id}/delete", data={"csrf": token})
    assert again.status_code == 404


def _multipart(token: str, data: bytes, **fields: str) -> dict[str, Any]:
    return {
        "data": {"csrf": token, **fields},
        "files": {"file": ("upload.bin", data, "application/octet-stream")},
    }


async def test_upload_jsonl_and_csv_and_other_workspace_cannot_touch(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    base, token = await _new_dataset(browser, "uploaded")
    jsonl = b"\n".join(
        json.dumps(r).encode()
        for r in (
            {"id": "q1", "inputs": {"q": "one"}, "outputs": {"a": "1"}},
            {
                "inputs": {"q": EVIL},
                "outputs": None,
                "lineage": {"run_id": EVIL[:60], "trace_id": EVIL, "feedback_ids": [EVIL]},
            },
        )
    )
    r = await browser.post(f"{base}/upload", **_multipart(token, jsonl))
    assert r.status_code == 303
    page = await browser.get(r.headers["location"])
    assert "2 added, 0 updated, 0 unchanged, as version 1" in page.text
    long_run_id = b'{"inputs": {"q": 1}, "lineage": {"run_id": "' + b"r" * 65 + b'"}}'
    refused = await browser.post(f"{base}/upload", **_multipart(token, long_run_id))
    assert refused.status_code == 400
    assert "lineage run_id must be a run id" in refused.text
    assert_escaped(page.text)
    again = await browser.post(f"{base}/upload", **_multipart(token, jsonl, format="jsonl"))
    # the example with an id is kept as it is; the one without is new each time
    shown = (await browser.get(again.headers["location"])).text
    assert "1 added, 0 updated, 1 unchanged, as version 2" in shown

    broken = await browser.post(f"{base}/upload", **_multipart(token, b'{"inputs": {}}\n{oops\n'))
    assert broken.status_code == 400
    assert "Nothing was imported" in broken.text
    assert "line 2" in broken.text
    csv = b"question,answer,extra\nhi,hello,x\n<b>bold</b>,fine,y\n"
    refused = await browser.post(f"{base}/upload", **_multipart(token, csv))
    assert refused.status_code == 400
    assert "inputs" in refused.text  # a CSV without JSON columns needs the columns named
    r = await browser.post(
        f"{base}/upload",
        **_multipart(token, csv, format="csv", input_keys="question", output_keys="answer"),
    )
    assert r.status_code == 303
    page = await browser.get(r.headers["location"])
    assert "2 added, 0 updated, 0 unchanged, as version 3" in page.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in page.text
    assert len(_example_ids(page.text)) == 5
    assert (await browser.post(f"{base}/upload", **_multipart("", csv))).status_code == 403
    no_file = await browser.post(f"{base}/upload", data={"csrf": token})
    assert no_file.status_code == 400

    async with other_workspace_browser(app) as other:
        other_token = csrf_of((await other.get("/datasets")).text)
        assert (await other.get(base)).status_code == 404
        assert (await other.get(f"{base}/examples/q1/edit")).status_code == 404
        hit = await other.post(
            f"{base}/examples/q1", data={"csrf": other_token, "inputs": '{"x": 1}'}
        )
        assert hit.status_code == 404
        gone = await other.post(f"{base}/examples/q1/delete", data={"csrf": other_token})
        assert gone.status_code == 404
        up = await other.post(f"{base}/upload", **_multipart(other_token, jsonl))
        assert up.status_code == 404
    assert "q1" in _example_ids((await browser.get(base)).text)
