"""PII redaction on every ingest path, on SQLite and PostgreSQL: an email address and a card
number sent through each path are not in what is stored (read back from the tables), and
/metrics counts them. Then the settings API: admin only, per workspace, per project, checked,
audited."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from fastapi import FastAPI

from goldloop.http.app import create_app
from goldloop.services import auth
from goldloop.services.context import ServiceContext
from goldloop.settings import load_settings
from goldloop.store import redaction as redaction_store
from goldloop.store.schema import audit_log, dataset_examples, feedback, runs
from otlp_builders import request, span, to_json

API = "/api/v1"
EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
SECRET = f"mail {EMAIL}, card {CARD}"
PB = {"content-type": "application/x-protobuf"}
JS = {"content-type": "application/json"}


def _ctx(app: FastAPI) -> ServiceContext:
    ctx: ServiceContext = app.state.ctx
    return ctx


def _stored(app: FastAPI, table: sa.Table, where: Any = None) -> str:
    """Every stored row of the table (or those matching ``where``), as one text."""
    query = sa.select(table) if where is None else sa.select(table).where(where)
    rows = _ctx(app).db.read(lambda c: [dict(r._mapping) for r in c.execute(query)])
    return orjson.dumps(rows, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _no_pii(text: str) -> None:
    assert EMAIL not in text
    assert "4111" not in text


def _otlp(trace: str, span_id: str) -> Any:
    return request(
        [
            span(
                trace,
                span_id,
                None,
                "llm",
                {
                    "openinference.span.kind": "LLM",
                    "input.value": f"user says: {SECRET}",
                    "output.value": f"noted {EMAIL}",
                    "llm.input_messages.0.message.role": "user",
                    "llm.input_messages.0.message.content": SECRET,
                    "user.note": CARD,
                },
                events=[("exception", {"exception.message": f"bad card {CARD}"})],
                error=f"failed for {EMAIL}",
            )
        ]
    )


def _multipart(run_id: str) -> tuple[bytes, str]:
    boundary = "redact0b"
    post = {
        "id": run_id,
        "trace_id": run_id,
        "dotted_order": f"20261205T100000000000Z{run_id}",
        "session_name": "ls-multipart",
        "name": "chain",
        "run_type": "chain",
        "start_time": "2026-12-05T10:00:00+00:00",
    }
    parts = [
        (f"post.{run_id}", orjson.dumps(post)),
        (f"post.{run_id}.inputs", orjson.dumps({"q": SECRET})),
        (f"post.{run_id}.outputs", orjson.dumps({"a": EMAIL})),
        (
            f"feedback.{uuid.uuid4()}",
            orjson.dumps({"run_id": run_id, "key": "k", "comment": SECRET}),
        ),
    ]
    body = b""
    for name, data in parts:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
                f"Content-Type: application/json\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _ls_run(run_id: str, project: str) -> dict[str, Any]:
    return {
        "id": run_id,
        "trace_id": run_id,
        "dotted_order": f"20261205T100000000000Z{run_id}",
        "session_name": project,
        "name": "chain",
        "run_type": "llm",
        "start_time": "2026-12-05T10:00:00+00:00",
        "inputs": {"messages": [{"role": "user", "content": SECRET}]},
        "outputs": {"text": EMAIL},
        "extra": {"metadata": {"customer": EMAIL}},
    }


async def test_every_ingest_path_stores_redacted_values(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    r = await client.put(f"{API}/redaction", json={"builtins": "all"})
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "workspace"

    # native runs
    native = {
        "id": "native-1",
        "trace_id": "native-1",
        "name": "agent",
        "start_time": 1_790_000_000_000_000,
        "inputs": {"q": SECRET},
        "outputs": {"a": f"I emailed {EMAIL}"},
        "error": f"card {CARD} declined",
        "metadata": {"contact": EMAIL},
        "tags": [EMAIL],
    }
    r = await client.post(f"{API}/runs/batch", json={"project": "native", "runs": [native]})
    assert r.status_code == 202, r.text
    # OTLP, protobuf and JSON
    pb = _otlp("a" * 32, "b" * 16).SerializeToString()
    assert (await client.post("/v1/traces", content=pb, headers=PB)).status_code == 200
    js = to_json(_otlp("c" * 32, "d" * 16))
    assert (await client.post("/v1/traces", content=js, headers=JS)).status_code == 200
    # LangSmith: /runs, /runs/batch, /runs/multipart (with a feedback part)
    single, batched, multi = (str(uuid.uuid4()) for _ in range(3))
    assert (await client.post("/langsmith/runs", json=_ls_run(single, "ls"))).status_code < 300
    r = await client.post("/langsmith/runs/batch", json={"post": [_ls_run(batched, "ls")]})
    assert r.status_code < 300, r.text
    body, content_type = _multipart(multi)
    r = await client.post(
        "/langsmith/runs/multipart", content=body, headers={"content-type": content_type}
    )
    assert r.status_code < 300, r.text

    stored_runs = _stored(app, runs)
    _no_pii(stored_runs)
    for run_id in ("native-1", "a" * 16, single, batched, multi):
        assert run_id in stored_runs  # ids are kept
    assert stored_runs.count("<EMAIL>") >= 12
    assert stored_runs.count("<CARD>") >= 6

    # feedback: native create and update, LangSmith
    fb = {"run_id": "native-1", "key": "note", "comment": SECRET, "correction": {"a": EMAIL}}
    r = await client.post(f"{API}/feedback", json=fb)
    assert r.status_code == 201, r.text
    assert r.json()["comment"] == "mail <EMAIL>, card <CARD>"
    patched = await client.patch(
        f"{API}/feedback/{r.json()['id']}", json={"correction": {"b": CARD}}
    )
    assert patched.status_code == 200, patched.text
    r = await client.post(
        "/langsmith/feedback",
        json={"run_id": single, "key": "ls", "comment": SECRET, "correction": {"x": EMAIL}},
    )
    assert r.status_code < 300, r.text
    stored_feedback = _stored(app, feedback)
    _no_pii(stored_feedback)
    assert stored_feedback.count("<EMAIL>") >= 4  # native, LangSmith, multipart part

    # dataset examples: native, file import, LangSmith, LangSmith CSV upload
    assert (await client.post(f"{API}/datasets", json={"name": "golden"})).status_code == 201
    example = {"inputs": {"q": SECRET}, "outputs": {"a": EMAIL}, "metadata": {"m": CARD}}
    r = await client.post(f"{API}/datasets/golden/examples", json={"examples": [example]})
    assert r.status_code == 201, r.text
    example_id = r.json()["added"][0]
    r = await client.patch(
        f"{API}/datasets/golden/examples/{example_id}", json={"outputs": {"b": CARD}}
    )
    assert r.status_code == 200, r.text
    line = orjson.dumps({"inputs": {"q": SECRET}, "outputs": {"a": EMAIL}})
    r = await client.post(
        f"{API}/datasets/golden/import?format=jsonl",
        content=line + b"\n",
        headers={"content-type": "application/x-ndjson"},
    )
    assert r.status_code == 201, r.text
    ls = (await client.post("/langsmith/datasets", json={"name": "ls-data"})).json()["id"]
    r = await client.post(
        "/langsmith/examples",
        json={"dataset_id": ls, "inputs": {"q": SECRET}, "outputs": {"a": EMAIL}},
    )
    assert r.status_code < 300, r.text
    csv = f'question,answer\n"{SECRET}",{EMAIL}\n'.encode()
    r = await client.post(
        "/langsmith/datasets/upload",
        data={"input_keys": ["question"], "output_keys": ["answer"], "name": "from-csv"},
        files={"file": ("f.csv", csv, "text/csv")},
    )
    assert r.status_code < 300, r.text
    stored_examples = _stored(app, dataset_examples)
    _no_pii(stored_examples)
    assert stored_examples.count("<EMAIL>") >= 5

    metrics = (await client.get("/metrics")).text
    counted = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r'goldloop_redactions_total\{detector="(\w+)"\} (\d+)', metrics)
    }
    assert counted["email"] >= 20
    assert counted["card"] >= 10


async def test_settings_api_is_admin_only_checked_scoped_and_audited(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    ctx = _ctx(app)
    home = auth.workspace_by_name(ctx, "default")
    member = {"x-api-key": auth.create_key(ctx, home.id, "reader", role="member").secret}
    other_ws = auth.create_workspace(ctx, "other-team")
    other = {"x-api-key": auth.create_key(ctx, other_ws.id, "theirs", role="admin").secret}

    r = await client.get(f"{API}/redaction")
    assert r.json() == {
        "project": None,
        "source": "none",
        "active": False,
        "builtins": [],
        "rules": [],
        "mode": "placeholder",
    }
    assert (await anon.get(f"{API}/redaction")).status_code == 401
    for method, url in (("GET", "/redaction"), ("PUT", "/redaction"), ("DELETE", "/redaction")):
        r = await anon.request(method, f"{API}{url}", headers=member, json={"builtins": []})
        assert r.status_code == 403, (method, r.text)

    bad = await client.put(
        f"{API}/redaction", json={"rules": [{"name": "x", "pattern": "(unclosed"}]}
    )
    assert bad.status_code == 400
    assert "missing ), unterminated subpattern" in bad.text
    assert "rules[0].pattern" in bad.text
    slow = await client.put(
        f"{API}/redaction", json={"rules": [{"name": "x", "pattern": "(a+)+$"}]}
    )
    assert slow.status_code == 400
    assert "nested unbounded repetition" in slow.text
    for doc in ({"builtins": ["ssn"]}, {"mode": "hash", "builtins": "all"}, {"colour": 1}):
        r = await client.put(f"{API}/redaction", json=doc)
        assert r.status_code in (400, 422), (doc, r.text)
    assert (await client.get(f"{API}/redaction")).json()["source"] == "none"  # nothing saved

    rules = [{"name": "ticket", "pattern": r"TKT-\d+", "placeholder": "<TICKET>"}]
    r = await client.put(f"{API}/redaction", json={"builtins": ["email"], "rules": rules})
    assert r.status_code == 200, r.text
    assert r.json()["rules"] == rules
    # a project opts out (its own configuration replaces the workspace's)
    batch = {"project": "raw", "runs": [{"id": "raw-0", "trace_id": "raw-0", "name": "x"}]}
    assert (await client.post(f"{API}/runs/batch", json=batch)).status_code == 202
    r = await client.put(f"{API}/projects/raw/redaction", json={"builtins": []})
    assert r.json()["source"] == "project"
    assert (await client.get(f"{API}/projects/raw/redaction")).json()["active"] is False
    assert (await anon.get(f"{API}/projects/raw/redaction", headers=member)).status_code == 403
    # the other workspace neither sees nor changes ours, and its runs are not redacted
    assert (await anon.get(f"{API}/redaction", headers=other)).json()["source"] == "none"
    r = await anon.get(f"{API}/projects/raw/redaction", headers=other)
    assert r.status_code == 404
    r = await anon.put(f"{API}/projects/raw/redaction", headers=other, json={"builtins": []})
    assert r.status_code == 404

    def run(run_id: str, project: str) -> dict[str, Any]:
        return {
            "project": project,
            "runs": [
                {"id": run_id, "trace_id": run_id, "name": "x", "inputs": {"q": f"{EMAIL} TKT-42"}}
            ],
        }

    for headers, run_id, project in (
        ({}, "ours-1", "support"),
        ({}, "raw-1", "raw"),
        (other, "theirs-1", "support"),
    ):
        r = await (anon if headers else client).post(
            f"{API}/runs/batch", json=run(run_id, project), headers=headers or None
        )
        assert r.status_code == 202, r.text
    assert '"<EMAIL> <TICKET>"' in _stored(app, runs, runs.c.id == "ours-1")
    assert EMAIL in _stored(app, runs, runs.c.id == "raw-1")
    assert EMAIL in _stored(app, runs, runs.c.id == "theirs-1")

    preview = await client.post(
        f"{API}/redaction/preview", json={"value": {"a": [f"x {EMAIL}", "TKT-7"]}}
    )
    assert preview.json() == {
        "value": {"a": ["x <EMAIL>", "<TICKET>"]},
        "counts": {"email": 1, "ticket": 1},
    }
    assert (await client.delete(f"{API}/projects/raw/redaction")).status_code == 204
    assert (await client.get(f"{API}/projects/raw/redaction")).json()["source"] == "workspace"
    assert (await client.delete(f"{API}/projects/raw/redaction")).status_code == 404
    assert (await client.delete(f"{API}/redaction")).status_code == 204
    assert (await client.delete(f"{API}/redaction")).status_code == 204  # nothing left: no error

    audit = _stored(app, audit_log, audit_log.c.workspace_id == home.id)
    for action in ('"redaction.set"', '"redaction.removed"'):
        assert audit.count(action) == 2
    assert "TKT" not in audit  # rule names are recorded, not patterns
    assert "redaction" not in _stored(app, audit_log, audit_log.c.workspace_id == other_ws.id)

    # fail closed: a stored hash-mode configuration without the server's key stores nothing
    hashed = {"builtins": ["email"], "rules": [], "mode": "hash"}
    ctx.db.write(lambda c: redaction_store.put(c, home.id, "", hashed, 1))
    ctx.redactors.invalidate(home.id)
    r = await client.post(f"{API}/runs/batch", json=run("closed-1", "support"))
    assert r.status_code == 503
    assert "redaction_hash_key" in r.text
    assert "closed-1" not in _stored(app, runs)


async def test_with_ingest_worker_processes_a_redacting_workspace_is_still_redacted(
    tmp_path: Path,
) -> None:
    # SQLite only: the pool and the choice to bypass it do not depend on the backend
    overrides = {"data_dir": tmp_path / "data", "workers_in_process": False, "ingest_processes": 1}
    settings = load_settings(overrides, environ={})
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        pool = _ctx(application).ingest_pool
        assert pool is not None
        assert pool.wait_ready(60)
        key = settings.admin_key_path.read_text().strip()
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://goldloop.test", headers={"x-api-key": key}
        ) as c:
            plain = _otlp("e" * 32, "f" * 16).SerializeToString()
            assert (await c.post("/v1/traces", content=plain, headers=PB)).status_code == 200
            assert pool.jobs == 1  # no redaction: decoded by the worker, stored as sent
            assert EMAIL in _stored(application, runs, runs.c.trace_id == "e" * 32)

            assert (await c.put(f"{API}/redaction", json={"builtins": "all"})).status_code == 200
            body = _otlp("1" * 32, "2" * 16).SerializeToString()
            assert (await c.post("/v1/traces", content=body, headers=PB)).status_code == 200
            native = {"runs": [{"id": "n-pool", "trace_id": "n-pool", "inputs": {"q": SECRET}}]}
            assert (await c.post(f"{API}/runs/batch", json=native)).status_code == 202
            assert pool.jobs == 1  # redaction: decoded here, where the settings are
    stored = _stored(application, runs, runs.c.trace_id.in_(["1" * 32, "n-pool"]))
    assert "n-pool" in stored
    _no_pii(stored)
    assert stored.count("<EMAIL>") >= 3
