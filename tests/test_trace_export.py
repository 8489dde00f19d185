"""Export as OTLP/JSON Lines and import back: a round trip gives the same runs (both backends)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from goldloop.domain import filters
from goldloop.services import auth
from goldloop.store import run_rows
from goldloop.store.run_filters import compile_filter
from ingest_helpers import app_ctx, stable, trace_rows
from otlp_builders import request, span
from sqlite_plans import query_plans
from test_otlp_ingest import PB, TRACE, genai_trace

NATIVE_TRACE = "3f2c1a9e-8a5b-4c61-9d0e-1b2c3d4e5f60"


def native_runs() -> list[dict[str, Any]]:
    root = "6e1b0c4e-1111-4a7e-9a51-0c2d2f4c9a01"
    return [
        {
            "id": root,
            "trace_id": NATIVE_TRACE,
            "name": "answer",
            "kind": "chain",
            "start_time": 1_764_150_816_000_000,
            "end_time": 1_764_150_817_000_000,
            "inputs": {"question": "refund?", "n": 3},
            "outputs": "Yes, within 30 days.",
            "tags": ["prod", "v2"],
            "metadata": {"release": "r1", "nested": {"a": [1, 2]}},
            "session_id": "conv-1",
            "user_id": "u-9",
            "events": [{"name": "retry", "time": 1}],
        },
        {
            "id": "llm-call-1",
            "trace_id": NATIVE_TRACE,
            "parent_id": root,
            "name": "ChatModel",
            "kind": "llm",
            "start_time": 1_764_150_816_100_000,
            "end_time": 1_764_150_816_900_000,
            "inputs": {
                "messages": [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
            },
            "outputs": {"messages": [{"role": "assistant", "parts": [], "finish_reason": "stop"}]},
            "model": "gpt-4o-mini",
            "provider": "OpenAI",
            "usage": {"input_tokens": 10, "output_tokens": 4, "cache_read_tokens": 2},
        },
        {
            "id": "tool-1",
            "trace_id": NATIVE_TRACE,
            "parent_id": root,
            "name": "lookup",
            "kind": "tool",
            "start_time": 1_764_150_816_910_000,
            "end_time": 1_764_150_816_950_000,
            "inputs": {"order": 42},
            "error": {"type": "KeyError", "message": "no order 42", "stacktrace": "Traceback"},
            "cost": 0.25,
        },
        {
            "id": "pending-1",
            "trace_id": NATIVE_TRACE,
            "parent_id": root,
            "name": "still running",
            "kind": "parser",
            "start_time": 1_764_150_816_960_000,
            "reference_example_id": "ex-1",
        },
    ]


@pytest.fixture
async def other(app: FastAPI) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client of a second workspace: the same ids can be imported there without merging."""
    ctx = app_ctx(app)
    ws = auth.create_workspace(ctx, "elsewhere")
    key = auth.create_key(ctx, ws.id, "k").secret
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"x-api-key": key}
    ) as c:
        yield c, key


async def _export(client: httpx.AsyncClient, project: str) -> list[bytes]:
    found = (await client.get("/api/v1/projects", params={"name": project})).json()["items"]
    r = await client.get(f"/api/v1/projects/{found[0]['id']}/export")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    return [line for line in r.content.split(b"\n") if line]


async def _import(client: httpx.AsyncClient, lines: list[bytes], project: str) -> None:
    for line in lines:
        r = await client.post(
            "/v1/traces",
            content=line,
            headers={"content-type": "application/json", "x-goldloop-project": project},
        )
        assert r.status_code == 200, r.text
        assert r.json() == {}


async def test_native_runs_round_trip(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_key: str,
    other: tuple[httpx.AsyncClient, str],
) -> None:
    r = await client.post("/api/v1/runs/batch", json={"project": "src", "runs": native_runs()})
    assert r.status_code == 202
    lines = await _export(client, "src")
    doc = orjson.loads(lines[0])
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    llm = next(s for s in spans if s["name"] == "ChatModel")
    attrs = {a["key"]: a["value"] for a in llm["attributes"]}
    assert attrs["gen_ai.operation.name"] == {"stringValue": "chat"}
    assert attrs["gen_ai.usage.input_tokens"] == {"intValue": "10"}
    assert "gen_ai.input.messages" in attrs
    assert len(llm["traceId"]) == 32
    assert len(llm["spanId"]) == 16
    tool = next(s for s in spans if s["name"] == "lookup")
    assert tool["status"] == {"code": 2, "message": "no order 42"}

    other_client, other_key = other
    await _import(other_client, lines, "copy")
    before = stable(trace_rows(app, admin_key, NATIVE_TRACE))
    after = stable(trace_rows(app, other_key, NATIVE_TRACE))
    assert len(before) == 4
    assert after == before


async def test_otlp_runs_round_trip(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_key: str,
    other: tuple[httpx.AsyncClient, str],
) -> None:
    body = request(genai_trace()).SerializeToString()
    assert (await client.post("/v1/traces", content=body, headers=PB)).status_code == 200
    lines = await _export(client, "agent-svc")
    spans = orjson.loads(lines[0])["resourceSpans"][0]["scopeSpans"][0]["spans"]
    llm = next(s for s in spans if s["name"] == "chat gpt-4o")
    keys = {a["key"] for a in llm["attributes"]}
    assert "gen_ai.input.messages" in keys  # restored from the run
    other_client, other_key = other
    await _import(other_client, lines, "copy")
    assert stable(trace_rows(app, other_key, TRACE)) == stable(trace_rows(app, admin_key, TRACE))


OI_TRACE = "5b8efff798038103d269b633813fc60c"
SYSTEM = (
    "You are the booking assistant of Hotel Aurora. Never promise a refund on a "
    "non-refundable rate."
)
QUESTION = (
    "My rate says non-refundable, but my flight was cancelled. Can I get my money back, please?"
)
ANSWER = (
    "I am sorry about your flight. A non-refundable rate cannot be refunded, but I can move "
    "the dates."
)


def _oi_llm_attributes() -> dict[str, Any]:
    """An OpenInference LLM span as its instrumentations write it: the messages flattened, and
    the request and the answer again in input.value and output.value."""
    invocation = {"model": "gpt-4o", "messages": [{"role": "user", "content": QUESTION}]}
    return {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o",
        "llm.token_count.prompt": 41,
        "llm.token_count.completion": 23,
        "input.value": orjson.dumps(invocation).decode(),
        "input.mime_type": "application/json",
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": SYSTEM,
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": QUESTION,
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": ANSWER,
        "output.value": ANSWER,
        "output.mime_type": "text/plain",
        "short.text": "too short to point at",
    }


def _attributes(span_json: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span_json["attributes"]:
        ((kind, value),) = kv["value"].items()
        out[kv["key"]] = int(value) if kind == "intValue" else value
    return out


async def test_openinference_message_text_is_stored_once_and_exported_as_sent(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    sent = _oi_llm_attributes()
    oi = span(OI_TRACE, "00f067aa0ba902b7", None, "ChatCompletion", sent, kind=3)
    r = await client.post(
        "/v1/traces", content=request([oi], "oi-svc").SerializeToString(), headers=PB
    )
    assert r.status_code == 200
    (row,) = trace_rows(app, admin_key, OI_TRACE)
    otel = row["extra"]["otel"]
    # every long message text is stored once, in the run's messages; the attributes point at it
    for name in (
        "llm.input_messages.0.message.content",
        "llm.input_messages.1.message.content",
        "llm.output_messages.0.message.content",
        "output.value",
    ):
        assert name not in otel["attributes"], name
    assert otel["refs"]["llm.input_messages.1.message.content"] == [
        "inputs",
        "messages",
        1,
        "parts",
        0,
        "content",
    ]
    assert otel["attributes"]["short.text"] == "too short to point at"
    stored = orjson.dumps([row["inputs"], row["outputs"], row["extra"]]).decode()
    for text in (SYSTEM, QUESTION, ANSWER):  # QUESTION also sits inside input.value's JSON
        assert stored.count(text) == (2 if text is QUESTION else 1), text

    lines = await _export(client, "oi-svc")
    (exported,) = orjson.loads(lines[0])["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert _attributes(exported) == sent


async def test_export_of_unknown_project_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/projects/nope/export")).status_code == 404


async def test_another_workspace_cannot_export_a_project(
    client: httpx.AsyncClient, other: tuple[httpx.AsyncClient, str]
) -> None:
    await client.post("/api/v1/runs/batch", json={"project": "src", "runs": native_runs()})
    pid = (await client.get("/api/v1/projects", params={"name": "src"})).json()["items"][0]["id"]
    other_client, _ = other
    r = await other_client.get(f"/api/v1/projects/{pid}/export")
    assert r.status_code == 404
    assert b"answer" not in r.content


def _other_trace(n: int = 3) -> list[dict[str, Any]]:
    """A second trace in the same project, all of it successful."""
    return [
        {
            "id": f"ok-{i}",
            "trace_id": "ok-trace",
            "parent_id": None if i == 0 else "ok-0",
            "name": f"step {i}",
            "kind": "chain" if i == 0 else "llm",
            "start_time": 1_764_150_900_000_000 + i,
            "end_time": 1_764_150_901_000_000,
        }
        for i in range(n)
    ]


def _span_names(lines: list[bytes]) -> list[str]:
    return sorted(
        span["name"]
        for line in lines
        for rs in orjson.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    )


async def test_export_a_filtered_set_and_whole_traces(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_key: str,
    other: tuple[httpx.AsyncClient, str],
) -> None:
    runs = native_runs() + _other_trace()
    assert (
        await client.post("/api/v1/runs/batch", json={"project": "src", "runs": runs})
    ).is_success
    url = "/api/v1/projects/src/export"  # by name as well as by id

    def lines_of(r: httpx.Response) -> list[bytes]:
        assert r.status_code == 200, r.text
        return [line for line in r.content.split(b"\n") if line]

    errors = lines_of(await client.get(url, params={"filter": 'status = "error"'}))
    assert _span_names(errors) == ["lookup"]
    whole = lines_of(
        await client.get(url, params={"filter": 'status = "error"', "whole_traces": "true"})
    )
    assert _span_names(whole) == ["ChatModel", "answer", "lookup", "still running"]
    llm = lines_of(await client.get(url, params={"filter": 'kind = "llm"', "whole_traces": "true"}))
    assert len(_span_names(llm)) == 4 + 3  # both traces have an llm run
    everything = lines_of(await client.get(url, params={"whole_traces": "true"}))
    assert len(_span_names(everything)) == 7  # no filter: the whole project

    other_client, other_key = other
    await _import(other_client, whole, "copy")
    assert stable(trace_rows(app, other_key, NATIVE_TRACE)) == stable(
        trace_rows(app, admin_key, NATIVE_TRACE)
    )
    assert trace_rows(app, other_key, "ok-trace") == []


async def test_export_with_an_invalid_filter_is_400_naming_the_position(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/api/v1/runs/batch", json={"project": "src", "runs": native_runs()})
    r = await client.get("/api/v1/projects/src/export", params={"filter": "latency > 2"})
    assert r.status_code == 400
    assert r.json()["error"]["details"]["position"] == 10


async def test_export_pages_through_traces_and_their_runs(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of one run and of one trace: every run of every matching trace exactly once."""
    from goldloop.services import trace_export

    runs = native_runs() + _other_trace(5)
    await client.post("/api/v1/runs/batch", json={"project": "src", "runs": runs})
    monkeypatch.setattr(trace_export, "TRACE_PAGE", 1)
    ctx = app_ctx(app)
    who = auth.authenticate(ctx, admin_key)
    lines = list(
        trace_export.export_project(ctx, who, "src", filter="root", whole_traces=True, page=1)
    )
    assert len(lines) == 9  # one run per line
    assert _span_names(lines) == sorted(r["name"] for r in runs)
    filtered = list(trace_export.export_project(ctx, who, "src", filter='kind = "llm"', page=2))
    assert _span_names(filtered) == sorted(r["name"] for r in runs if r.get("kind") == "llm")


def test_sqlite_reads_a_batch_of_traces_as_one_bounded_range(tmp_path: Path) -> None:
    """The runs of a batch of traces come from one range of the trace index, bounded at both
    ends: without the upper bound SQLite read on to the end of the index on each batch's last
    page (an export of a big project went quadratic)."""
    (plan,) = query_plans(
        tmp_path,
        lambda c: run_rows.page_trace_rows(c, "w", "p", ["t1", "t2"], after=("t1", 7), limit=500),
    )
    assert any("ix_runs_trace (workspace_id=? AND trace_id>? AND trace_id<?)" in p for p in plan), (
        plan
    )


@pytest.mark.parametrize("text", ["", "root", 'status = "error"', 'kind = "llm" and tag = "prod"'])
def test_sqlite_pages_an_export_along_the_project_seq_index(tmp_path: Path, text: str) -> None:
    """Each page of an export is one range of ``ix_runs_project_seq``, in its order: paged by
    ``pk``, SQLite walked the whole project and sorted it for every page (a 1,000,000-run
    export took 530 s instead of 60)."""
    condition = compile_filter(filters.parse(text), dialect="sqlite", workspace_id="w", now=1)
    (plan,) = query_plans(
        tmp_path,
        lambda c: run_rows.page_project_rows(
            c, "w", "p", after_seq=7, limit=500, condition=condition
        ),
    )
    assert "SEARCH runs USING INDEX ix_runs_project_seq (project_id=? AND seq>?)" in plan, plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
