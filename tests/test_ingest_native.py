"""POST /api/v1/runs/batch on both backends: merge rules, validation, gzip, projects, limits."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import random
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from goldloop.http.app import create_app
from goldloop.services import auth
from goldloop.settings import Settings, load_settings
from goldloop.store import run_rows
from ingest_helpers import app_ctx, stable, trace_rows, workspace_of

T0 = 1_764_150_816_534_505
URL = "/api/v1/runs/batch"


def start_item(run_id: str, trace: str, parent: str | None = None, **kw: Any) -> dict[str, Any]:
    item = {
        "id": run_id,
        "trace_id": trace,
        "parent_id": parent,
        "name": f"step-{run_id}",
        "kind": "llm" if parent else "chain",
        "start_time": T0,
        "inputs": {"question": f"q-{run_id}"},
        "tags": ["prod"],
        "metadata": {"k": "v"},
        "session_id": "conv-1",
    }
    item.update(kw)
    return item


def end_item(run_id: str, trace: str, **kw: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": run_id,
        "trace_id": trace,
        "end_time": T0 + 1500,
        "outputs": {"answer": f"a-{run_id}"},
        "usage": {"input_tokens": 12, "output_tokens": 30, "cache_read_tokens": 4},
        "model": "gpt-4o-mini",
    }
    item.update(kw)
    return item


def trace_items(trace: str) -> list[dict[str, Any]]:
    root, child = f"{trace}-root", f"{trace}-child"
    return [
        start_item(root, trace),
        end_item(root, trace),
        start_item(child, trace, parent=root),
        end_item(child, trace),
    ]


async def post(client: httpx.AsyncClient, runs: list[dict[str, Any]], **kw: Any) -> httpx.Response:
    return await client.post(URL, json={"runs": runs, **kw})


async def test_start_and_end_merge_into_one_run(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    r = await post(client, trace_items("t1"), project="agent-support")
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 4}
    rows = {row["id"]: row for row in trace_rows(app, admin_key, "t1")}
    root, child = rows["t1-root"], rows["t1-child"]
    assert root["is_root"] is True
    assert child["is_root"] is False
    assert child["parent_id"] == "t1-root"
    assert child["kind"] == "llm"
    assert child["status"] == "success"
    assert child["latency_us"] == 1500
    assert child["inputs"] == {"question": "q-t1-child"}
    assert child["outputs"] == {"answer": "a-t1-child"}
    assert (child["input_tokens"], child["output_tokens"], child["total_tokens"]) == (12, 30, 42)
    assert child["extra"]["usage"] == {"cache_read_tokens": 4}
    # gpt-4o-mini: 8 plain input at 0.15, 4 cached at 0.075, 30 output at 0.60 per million
    assert child["cost"] == pytest.approx((8 * 0.15 + 4 * 0.075 + 30 * 0.6) / 1e6)
    assert child["extra"]["cost"]["source"] == "price_table"
    assert child["tags"] == ["prod"]
    assert child["session_id"] == "conv-1"
    # and the same through the query API
    view = (await client.get("/api/v1/runs/t1-child")).json()
    assert view["outputs"] == {"answer": "a-t1-child"}
    assert view["usage"] == {
        "input_tokens": 12,
        "output_tokens": 30,
        "total_tokens": 42,
        "cache_read_tokens": 4,
    }
    assert view["latency_ms"] == 1.5
    tree = (await client.get("/api/v1/traces/t1")).json()
    assert [r["id"] for r in tree["runs"]] == ["t1-root", "t1-child"]
    projects = (await client.get("/api/v1/projects", params={"name": "agent-support"})).json()
    assert [p["id"] for p in projects["items"]] == [root["project_id"]]


async def test_every_order_and_duplicates_converge(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    """All 24 orders of a 2-run trace's 4 items, each as separate requests, store the same."""
    expected: list[dict[str, Any]] | None = None
    for n, order in enumerate(itertools.permutations(range(4))):
        trace = f"perm{n}"
        items = trace_items(trace)
        for i in order:
            assert (await post(client, [items[i]])).status_code == 202
        # a retried whole batch, delivered again afterwards
        assert (await post(client, items)).status_code == 202
        got = stable(trace_rows(app, admin_key, trace))
        for row in got:
            for key in ("id", "trace_id", "parent_id", "name", "inputs", "outputs"):
                if isinstance(row[key], str):
                    row[key] = row[key].replace(trace, "T")
                elif isinstance(row[key], dict):
                    row[key] = {k: v.replace(trace, "T") for k, v in row[key].items()}
        if expected is None:
            expected = got
        assert got == expected, f"order {order} differs"
    assert expected is not None
    assert {r["status"] for r in expected} == {"success"}


async def test_end_first_keeps_outputs_and_end_time(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    await post(client, [end_item("r", "te", status="success")])
    first = trace_rows(app, admin_key, "te")[0]
    assert first["status"] == "success"
    assert first["latency_us"] is None
    await post(client, [start_item("r", "te", outputs=None, end_time=None)])
    row = trace_rows(app, admin_key, "te")[0]
    assert row["outputs"] == {"answer": "a-r"}
    assert row["end_time"] == T0 + 1500
    assert row["latency_us"] == 1500
    assert row["name"] == "step-r"
    assert row["status"] == "success"
    assert row["seq"] > first["seq"]


async def test_concurrent_deliveries_converge(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    """Many requests at once, shuffled and duplicated, touching the same runs."""
    rng = random.Random(7)
    items = [it for t in range(10) for it in trace_items(f"c{t}")]
    requests: list[list[dict[str, Any]]] = []
    for _ in range(24):
        chunk = rng.sample(items, 12)
        requests.append(chunk)
    requests.append(items)  # everything at least once
    rng.shuffle(requests)
    answers = await asyncio.gather(*(post(client, chunk) for chunk in requests))
    assert {a.status_code for a in answers} == {202}
    for t in range(10):
        rows = {r["id"]: r for r in trace_rows(app, admin_key, f"c{t}")}
        assert set(rows) == {f"c{t}-root", f"c{t}-child"}
        for row in rows.values():
            assert row["status"] == "success"
            assert row["outputs"] is not None
            assert row["inputs"] is not None
            assert row["latency_us"] == 1500
    seqs = [r["seq"] for t in range(10) for r in trace_rows(app, admin_key, f"c{t}")]
    assert len(set(seqs)) == len(seqs)


async def test_wrong_types_name_the_run_and_field(client: httpx.AsyncClient) -> None:
    runs = [start_item("ok", "tv"), {"id": "bad", "trace_id": "tv", "start_time": "yesterday"}]
    r = await post(client, runs)
    assert r.status_code == 400
    err = r.json()["error"]
    assert "runs[1]" in err["message"]
    assert "'bad'" in err["message"]
    assert "start_time" in err["message"]
    assert err["details"][0] == {
        "index": 1,
        "id": "bad",
        "field": "start_time",
        "problem": "is not an ISO-8601 time: 'yesterday'",
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({"trace_id": "t"}, "id"),
        ({"id": "x"}, "trace_id"),
        ({"id": "x", "trace_id": "t", "kind": "robot"}, "kind"),
        ({"id": "x", "trace_id": "t", "usage": {"input_tokens": "many"}}, "usage.input_tokens"),
        ({"id": "x", "trace_id": "t", "tags": "prod"}, "tags"),
        ({"id": "x", "trace_id": "t", "metadata": [1]}, "metadata"),
        ({"id": "x" * 65, "trace_id": "t"}, "id"),
        ({"id": "x", "trace_id": "t", "status": "done"}, "status"),
    ]
    for item, field in cases:
        r = await post(client, [item])
        assert r.status_code == 400, item
        assert r.json()["error"]["details"][0]["field"] == field
    assert (await client.post(URL, json={"runs": {}})).status_code == 400
    assert (await client.post(URL, content=b"{nope")).json()["error"]["code"] == "invalid_input"
    # nothing of a rejected batch was written
    assert (await client.get("/api/v1/projects")).json()["items"] == []


async def test_unknown_fields_ignored_iso_times_and_string_error(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    item = {
        "id": "u",
        "trace_id": "tu",
        "start_time": "2025-11-26T10:00:00+00:00",
        "end_time": "2025-11-26T10:00:02.5+00:00",
        "error": "boom",
        "surprise": {"x": 1},
    }
    assert (await post(client, [item])).status_code == 202
    row = trace_rows(app, admin_key, "tu")[0]
    assert row["latency_us"] == 2_500_000
    assert row["status"] == "error"
    assert row["error"] == {"message": "boom"}
    assert "surprise" not in (row["extra"] or {})


async def test_gzip_and_project_selection(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    body = gzip.compress(
        b'{"runs": [{"id": "g1", "trace_id": "tg"}, '
        b'{"id": "g2", "trace_id": "tg", "project": "own"}]}'
    )
    r = await client.post(
        URL,
        content=body,
        headers={
            "content-encoding": "gzip",
            "content-type": "application/json",
            "x-goldloop-project": "from-header",
        },
    )
    assert r.status_code == 202, r.text
    names = {p["id"]: p["name"] for p in (await client.get("/api/v1/projects")).json()["items"]}
    rows = {row["id"]: row for row in trace_rows(app, admin_key, "tg")}
    assert names[rows["g1"]["project_id"]] == "from-header"
    assert names[rows["g2"]["project_id"]] == "own"
    await post(client, [{"id": "d", "trace_id": "td"}])
    assert names.keys() != {p["id"] for p in (await client.get("/api/v1/projects")).json()["items"]}
    default = (await client.get("/api/v1/projects", params={"name": "default"})).json()["items"]
    assert trace_rows(app, admin_key, "td")[0]["project_id"] == default[0]["id"]
    bad = await client.post(URL, content=b"not gzip", headers={"content-encoding": "gzip"})
    assert bad.status_code == 400
    br = await client.post(URL, content=b"{}", headers={"content-encoding": "br"})
    assert br.status_code == 415


async def test_workspaces_do_not_see_or_clobber_each_other(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    ctx = app_ctx(app)
    other_ws = auth.create_workspace(ctx, "other")
    other_key = auth.create_key(ctx, other_ws.id, "k").secret
    await post(client, [start_item("same", "tw")])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://goldloop.test", headers={"x-api-key": other_key}
    ) as other:
        r = await other.post(URL, json={"runs": [{"id": "same", "trace_id": "tw", "name": "x"}]})
        assert r.status_code == 202
    mine = trace_rows(app, admin_key, "tw")
    theirs = trace_rows(app, other_key, "tw")
    assert [r["name"] for r in mine] == ["step-same"]
    assert [r["name"] for r in theirs] == ["x"]
    assert workspace_of(app, admin_key) != workspace_of(app, other_key)


@pytest.fixture
def small_settings(settings: Settings) -> Settings:
    return load_settings(
        {
            "data_dir": settings.data_dir,
            "database_url": settings.database_url,
            "max_run_payload_bytes": 200,
            "max_request_bytes": 5000,
        },
        environ={},
    )


async def test_oversized_payload_is_truncated_with_a_marker(
    small_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    application = create_app(small_settings)
    async with application.router.lifespan_context(application):
        capsys.readouterr()
        key = small_settings.admin_key_path.read_text().strip()
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"x-api-key": key}
        ) as c:
            big = {"text": "é" * 1000}
            r = await post(c, [{"id": "big", "trace_id": "tb", "inputs": big, "outputs": "ok"}])
            assert r.status_code == 202
            row = trace_rows(application, key, "tb")[0]
            marker = row["inputs"]["_goldloop_truncated"]
            assert marker["original_bytes"] > 2000
            assert marker["kept_bytes"] <= 200
            assert row["inputs"]["preview"].startswith('{"text":"éé')
            assert row["outputs"] == "ok"
            assert row["extra"]["truncated"] == {"inputs": marker["original_bytes"]}
            bomb = gzip.compress(b'{"runs": [' + b" " * 100_000 + b"]}")
            r = await c.post(URL, content=bomb, headers={"content-encoding": "gzip"})
            assert r.status_code == 413


async def test_full_write_queue_answers_503_with_retry_after(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    if settings.database_url:
        pytest.skip("the bounded queue in front of the single writer is SQLite's")
    # No background workers: their writes (heartbeats, rule tailing) would take the one slot.
    tight = load_settings(
        {
            "data_dir": settings.data_dir,
            "write_queue_max": 1,
            "write_batch_max": 1,
            "workers_in_process": False,
        },
        environ={},
    )
    application = create_app(tight)
    async with application.router.lifespan_context(application):
        capsys.readouterr()
        key = tight.admin_key_path.read_text().strip()
        db = app_ctx(application).db
        gate, entered = threading.Event(), threading.Event()

        def blocker(_: object) -> None:
            entered.set()
            gate.wait(10)

        held = db._writer.submit(blocker)  # type: ignore[union-attr]
        assert entered.wait(5)
        filler = db._writer.submit(lambda _: None)  # type: ignore[union-attr]
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"x-api-key": key}
        ) as c:
            r = await post(c, [{"id": "o", "trace_id": "to"}])
            assert r.status_code == 503
            assert int(r.headers["retry-after"]) >= 1
            gate.set()
            held.result(5)
            filler.result(5)
            assert (await post(c, [{"id": "o", "trace_id": "to"}])).status_code == 202


def test_store_batch_is_a_handful_of_statements(app: FastAPI, admin_key: str) -> None:
    """1,000 runs in one request do not become 1,000 round trips."""
    import sqlalchemy as sa

    from goldloop.services import ingest
    from goldloop.services.context import Principal

    ctx = app_ctx(app)
    who = Principal(workspace_of(app, admin_key), "k", "admin")
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2])[:30])

    sa.event.listen(ctx.db.engine, "before_cursor_execute", count)
    try:
        doc = {"runs": [start_item(f"r{i}", f"t{i // 5}") for i in range(1000)]}
        assert ingest.ingest_native(ctx, who, doc) == 1000
        doc = {"runs": [end_item(f"r{i}", f"t{i // 5}") for i in range(1000)]}
        assert ingest.ingest_native(ctx, who, doc) == 1000
    finally:
        sa.event.remove(ctx.db.engine, "before_cursor_execute", count)
    assert len(statements) < 40, statements
    assert ctx.db.read(lambda c: run_rows.count_runs(c, who.workspace_id)) == 1000


def test_model_prices_file_overrides_the_table(tmp_path: Path) -> None:
    from goldloop.domain.prices import PriceTable

    user = tmp_path / "prices.json"
    user.write_text(
        '{"models": {"gpt-4o-mini": {"input": 1, "output": 2}, "mine": {"input": 3, "output": 4}}}'
    )
    table = PriceTable.load(user)
    assert table.cost("gpt-4o-mini-2024-07-18", 1_000_000, 0) is not None
    assert table.cost("openai/gpt-4o-mini", 1_000_000, 1_000_000).total == 3.0  # type: ignore[union-attr]
    assert table.cost("mine", 0, 1_000_000).total == 4.0  # type: ignore[union-attr]
    assert table.lookup("gpt-4o-2024-08-06")[0] == "gpt-4o"  # type: ignore[index]
    assert table.cost("no-such-model", 10, 10) is None
