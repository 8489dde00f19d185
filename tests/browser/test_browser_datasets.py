"""Curating a dataset in a real browser: add, edit and delete examples, upload JSONL, CSV and
Parquet files, follow lineage links to the run and its feedback, and read the word-level diff,
with hostile text in the examples shown as text."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
from dashboard_harness import Pages, Server

XSS = '<img src=x onerror="window.__xss=1;alert(1)"> "quoted" \'single\''
T0 = int(time.time() * 1_000_000) - 600_000_000


@pytest.fixture(scope="module")
def corrected_run(server: Server) -> str:
    """A run with hostile inputs and a correction: the source of an example with lineage."""
    run = {
        "id": "cur-root",
        "trace_id": "cur-trace",
        "name": "support-agent",
        "kind": "chain",
        "start_time": T0,
        "end_time": T0 + 1_000_000,
        "inputs": {"question": XSS},
        "outputs": {"answer": "wrong answer"},
    }
    with server.api() as api:
        r = api.post("/api/v1/runs/batch", json={"project": "curation", "runs": [run]})
        assert r.status_code == 202, r.text
        body = {
            "run_id": "cur-root",
            "key": "correctness",
            "score": 0,
            "correction": {"answer": "the right answer"},
        }
        deadline = time.monotonic() + 20
        while (fb := api.post("/api/v1/feedback", json=body)).status_code == 404:
            assert time.monotonic() < deadline, fb.text  # the run is written asynchronously
            time.sleep(0.2)
        assert fb.status_code in (200, 201), fb.text
        return str(fb.json()["id"])


def _examples(server: Server, name: str) -> list[dict[str, Any]]:
    with server.api() as api:
        r = api.get(f"/api/v1/datasets/{name}/examples")
        assert r.status_code == 200, r.text
        return list(r.json()["items"])


def _head_version(server: Server, name: str) -> int:
    with server.api() as api:
        return int(api.get(f"/api/v1/datasets/{name}").json()["version"])


def test_add_edit_delete_and_the_word_diff(tab: Pages, server: Server) -> None:
    tab.sign_in()
    tab.goto("/datasets")
    tab.page.fill("input[name=name]", "curated-by-hand")
    tab.page.click("form[action='/datasets'] button[type=submit]")
    tab.page.wait_for_selector("text=Add example")
    base = tab.page.url.split("?")[0]

    # add a chat example: shown as a conversation, its hostile text as text
    tab.page.click("text=Add example")
    chat = {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": XSS}]
    }
    tab.page.fill("#ex-inputs", json.dumps(chat))
    tab.page.fill("#ex-outputs", json.dumps({"answer": "the parcel ships on monday"}))
    tab.page.fill("#ex-metadata", '{"source": "manual"}')
    tab.page.fill("#ex-splits", "test, hard")
    tab.page.click("button.primary:has-text('Add')")
    tab.page.wait_for_selector("p.flash.ok")
    assert "added, as version 1" in tab.page.inner_text("p.flash.ok")
    example = tab.page.locator("article.example").first
    assert example.locator(".msg.role-user").count() == 1
    assert XSS in example.locator(".msg.role-user").inner_text()
    assert "test" in example.inner_text()
    assert "hard" in example.inner_text()
    tab.shot("dataset-curate-added")
    (stored,) = _examples(server, "curated-by-hand")
    assert stored["inputs"] == chat
    assert sorted(stored["splits"]) == ["hard", "test"]

    # edit: bad JSON keeps the text on the form with the reason, then a good save
    tab.page.click("article.example >> text=Edit")
    assert json.loads(tab.page.input_value("#ex-metadata")) == {"source": "manual"}
    tab.page.fill("#ex-outputs", '{"answer": "the parcel ships')
    tab.page.click("button.primary:has-text('Save')")
    assert "Reference outputs is not valid JSON" in tab.page.inner_text("p.flash.error")
    assert tab.page.input_value("#ex-outputs") == '{"answer": "the parcel ships'
    tab.shot("dataset-curate-bad-json")
    tab.page.fill("#ex-outputs", json.dumps({"answer": "the parcel ships on friday " + XSS}))
    tab.page.click("button.primary:has-text('Save')")
    tab.page.wait_for_selector("p.flash.ok")
    assert "saved, as version 2" in tab.page.inner_text("p.flash.ok")
    (stored,) = _examples(server, "curated-by-hand")
    assert stored["outputs"] == {"answer": "the parcel ships on friday " + XSS}

    # the diff marks only the changed words
    tab.goto(base.removeprefix(server.base) + "/diff?from=1&to=2")
    tab.page.wait_for_selector("pre.word-diff")
    inserted = " ".join(tab.page.locator("pre.word-diff ins").all_inner_texts())
    deleted = " ".join(tab.page.locator("pre.word-diff del").all_inner_texts())
    assert "friday" in inserted
    assert "monday" in deleted
    assert "parcel" not in inserted
    assert "parcel" not in deleted
    assert "onerror" in inserted  # the hostile text, as text
    tab.shot("dataset-curate-diff")

    # delete: a confirmation page, then the example is gone from the newest version only
    tab.goto(base.removeprefix(server.base))
    tab.page.click("article.example >> text=Delete…")
    tab.page.click("button.danger:has-text('Delete the example')")
    tab.page.wait_for_selector("p.flash.ok")
    assert "deleted, as version 3" in tab.page.inner_text("p.flash.ok")
    assert tab.page.locator("article.example").count() == 0
    assert _examples(server, "curated-by-hand") == []
    tab.page.fill("#as_of", "2")
    tab.page.click("form.filterbar button[type=submit]")
    assert tab.page.locator("article.example").count() == 1
    assert not tab.xss_fired()
    assert tab.dialogs == []


def _parquet() -> bytes:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "id": ["pq-1", "pq-2"],
            "inputs": [json.dumps({"q": "from parquet"}), json.dumps({"q": XSS})],
            "outputs": [json.dumps({"a": "yes"}), None],
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def test_upload_jsonl_csv_and_parquet_files(tab: Pages, server: Server) -> None:
    with server.api() as api:
        assert api.post("/api/v1/datasets", json={"name": "uploaded-files"}).status_code == 201
    tab.sign_in()
    tab.goto("/datasets/uploaded-files")

    def upload(name: str, data: bytes, fmt: str = "", inputs: str = "", outputs: str = "") -> str:
        tab.page.evaluate("document.querySelector('section.curate details').open = true")
        tab.page.set_input_files(
            "input[type=file][name=file]",
            {"name": name, "mimeType": "application/octet-stream", "buffer": data},
        )
        tab.page.select_option("select[name=format]", fmt)
        tab.page.fill("input[name=input_keys]", inputs)
        tab.page.fill("input[name=output_keys]", outputs)
        tab.page.click("form[enctype='multipart/form-data'] button[type=submit]")
        tab.page.wait_for_selector("p.flash")
        return str(tab.page.inner_text("p.flash"))

    jsonl = b"\n".join(
        json.dumps(r).encode()
        for r in (
            {"id": "j-1", "inputs": {"q": "one"}, "outputs": {"a": "1"}},
            {"id": "j-2", "inputs": {"q": XSS}, "splits": ["hard"]},
        )
    )
    assert "2 added, 0 updated, 0 unchanged, as version 1" in upload("a.jsonl", jsonl)
    broken = b'{"inputs": {"q": 1}}\n{not json\n'
    shown = upload("broken.jsonl", broken)
    assert "Nothing was imported" in shown
    assert "line 2" in shown
    assert _head_version(server, "uploaded-files") == 1  # the bad file changed nothing

    csv = b'question,answer\n"She said ""hi""",hello\n<b>bold</b>,fine\n'
    shown = upload("q.csv", csv, fmt="csv", inputs="question", outputs="answer")
    assert "2 added, 0 updated, 0 unchanged, as version 2" in shown
    shown = upload("t.parquet", _parquet())
    assert "2 added, 0 updated, 0 unchanged, as version 3" in shown
    tab.shot("dataset-uploads")

    page_text = tab.page.inner_text("main")
    assert "<b>bold</b>" in page_text  # the CSV cell as text
    assert XSS in page_text
    stored = _examples(server, "uploaded-files")
    assert len(stored) == 6
    by_id = {e["id"]: e for e in stored}
    assert by_id["j-2"]["inputs"] == {"q": XSS}
    assert by_id["j-2"]["splits"] == ["hard"]
    assert by_id["pq-1"]["outputs"] == {"a": "yes"}
    assert by_id["pq-2"]["inputs"] == {"q": XSS}
    assert by_id["pq-2"]["outputs"] is None
    (quoted,) = [e for e in stored if e["inputs"] == {"question": 'She said "hi"'}]
    assert quoted["outputs"] == {"answer": "hello"}
    assert not tab.xss_fired()
    assert tab.dialogs == []


def test_lineage_links_lead_to_the_run_and_the_feedback(
    tab: Pages, server: Server, corrected_run: str
) -> None:
    feedback_id = corrected_run
    tab.sign_in()
    tab.goto("/traces/cur-trace?run=cur-root")
    tab.page.fill("#dataset input[name=dataset]", "from-runs")
    tab.page.click("#dataset >> text=Add run")
    tab.page.wait_for_selector("article.example")
    example = tab.page.locator("article.example").first
    assert "the right answer" in example.inner_text()  # the correction is the reference
    assert XSS in example.inner_text()
    example.locator("summary:has-text('Metadata and lineage')").click()
    tab.shot("dataset-lineage")
    fb_link = example.locator(f"ul.lineage a:has-text('{feedback_id}')")
    assert fb_link.count() == 2  # as the correction and as feedback on the run
    fb_link.first.click()
    tab.page.wait_for_selector(f"[id='fb-{feedback_id}']")
    assert "/traces/cur-trace" in tab.page.url
    assert f"#fb-{feedback_id}" in tab.page.url
    assert "correctness" in tab.page.inner_text(f"[id='fb-{feedback_id}']")
    tab.page.go_back()
    tab.page.locator("article.example summary:has-text('Metadata and lineage')").first.click()
    tab.page.locator("ul.lineage a:has-text('cur-root')").click()
    tab.page.wait_for_load_state()
    assert "cur-root" in tab.page.url or "cur-trace" in tab.page.url
    assert XSS in tab.page.inner_text("main")
    (stored,) = _examples(server, "from-runs")
    assert stored["lineage"]["run_id"] == "cur-root"
    assert stored["outputs"] == {"answer": "the right answer"}
    assert not tab.xss_fired()
    assert tab.dialogs == []


def test_adding_an_example_works_without_javascript(chromium: Any, server: Server) -> None:
    with server.api() as api:
        assert api.post("/api/v1/datasets", json={"name": "no-js"}).status_code == 201
    context = chromium.new_context(java_script_enabled=False)
    try:
        tab = Pages(context.new_page(), server)
        tab.sign_in()
        tab.goto("/datasets/no-js/examples/new")
        tab.page.fill("#ex-inputs", json.dumps({"question": XSS}))
        tab.page.fill("#ex-outputs", '"plain"')
        tab.page.click("button.primary:has-text('Add')")
        tab.page.wait_for_selector("p.flash.ok")
        assert XSS in tab.page.inner_text("article.example")
    finally:
        context.close()
    (stored,) = _examples(server, "no-js")
    assert stored["inputs"] == {"question": XSS}
    assert stored["outputs"] == "plain"
