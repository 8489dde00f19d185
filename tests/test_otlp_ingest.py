"""OTLP/HTTP /v1/traces and /v1/logs on both backends; requests built with opentelemetry-proto."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from goldloop.domain.otel.dedupe import restore_content
from goldloop.http.app import create_app
from goldloop.settings import Settings, SettingsError, load_settings
from ingest_helpers import stable, trace_rows
from otlp_builders import T0_NS, kvs, logs_request, request, span, to_json

PB = {"content-type": "application/x-protobuf"}
JS = {"content-type": "application/json"}
TRACE = "5b8efff798038103d269b633813fc60c"
ROOT, LLM, TOOL = "eee19b7ec3c1b174", "aaa19b7ec3c1b175", "bbb19b7ec3c1b176"

IN_MSGS = [
    {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
    {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
]
OUT_MSGS = [
    {
        "role": "assistant",
        "parts": [
            {"type": "tool_call", "id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}
        ],
        "finish_reason": "tool_call",
    }
]


def genai_trace(trace: str = TRACE, ids: tuple[str, str, str] = (ROOT, LLM, TOOL)) -> list[Any]:
    ROOT, LLM, TOOL = ids
    root = span(
        trace,
        ROOT,
        None,
        "invoke_workflow support",
        {
            "gen_ai.operation.name": "invoke_workflow",
            "input.value": '{"question": "Weather in Paris?"}',
            "input.mime_type": "application/json",
            "output.value": "rainy",
            "session.id": "conv-1",
            "user.id": "u-9",
            "tag.tags": ["prod", "v2"],
            "metadata": '{"release": "r1"}',
            "langsmith.metadata.team": "support",
        },
        end=T0_NS + 9_000_000,
    )
    llm = span(
        trace,
        LLM,
        ROOT,
        "chat gpt-4o",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.request.temperature": 0.2,
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 20,
            "gen_ai.usage.cache_read.input_tokens": 40,
            "gen_ai.input.messages": json.dumps(IN_MSGS),
            "gen_ai.output.messages": json.dumps(OUT_MSGS),
        },
        kind=3,
    )
    tool = span(
        trace,
        TOOL,
        LLM,
        "execute_tool get_weather",
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "get_weather",
            "gen_ai.tool.call.id": "c1",
            "gen_ai.tool.call.arguments": '{"city": "Paris"}',
            "error.type": "TimeoutError",
        },
        error="weather API timed out",
        events=[
            (
                "exception",
                {
                    "exception.type": "TimeoutError",
                    "exception.message": "timed out",
                    "exception.stacktrace": "Traceback ...",
                },
            )
        ],
    )
    return [root, llm, tool]


async def test_genai_spans_over_protobuf_map_onto_runs(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    r = await client.post(
        "/v1/traces", content=request(genai_trace()).SerializeToString(), headers=PB
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(r.content) == ExportTraceServiceResponse()
    rows = {row["id"]: row for row in trace_rows(app, admin_key, TRACE)}
    root, llm, tool = rows[ROOT], rows[LLM], rows[TOOL]

    assert root["is_root"]
    assert root["kind"] == "chain"
    assert root["inputs"] == {"question": "Weather in Paris?"}
    assert root["outputs"] == "rainy"
    assert (root["session_id"], root["user_id"]) == ("conv-1", "u-9")
    assert root["tags"] == ["prod", "v2"]
    assert root["metadata"] == {"release": "r1", "team": "support"}
    assert root["latency_us"] == 9_000
    assert root["status"] == "success"

    assert llm["parent_id"] == ROOT
    assert llm["kind"] == "llm"
    assert llm["model"] == "gpt-4o-2024-08-06"
    assert llm["provider"] == "openai"
    assert (llm["input_tokens"], llm["output_tokens"], llm["total_tokens"]) == (100, 20, 120)
    assert llm["extra"]["usage"] == {"cache_read_tokens": 40}
    assert llm["inputs"] == {"messages": IN_MSGS}
    assert llm["outputs"] == {"messages": OUT_MSGS}
    assert llm["extra"]["params"] == {"temperature": 0.2}
    assert llm["extra"]["otel"]["attributes"]["gen_ai.request.model"] == "gpt-4o"
    assert llm["cost"] == pytest.approx((60 * 2.5 + 40 * 1.25 + 20 * 10.0) / 1e6)
    assert llm["start_time"] == T0_NS // 1000

    assert tool["kind"] == "tool"
    assert tool["status"] == "error"
    assert tool["inputs"] == {"city": "Paris"}
    assert tool["error"] == {
        "type": "TimeoutError",
        "message": "weather API timed out",
        "stacktrace": "Traceback ...",
    }
    assert tool["extra"]["tool"] == {"name": "get_weather", "call_id": "c1"}

    otel = llm["extra"]["otel"]
    assert otel["attributes"]["gen_ai.request.temperature"] == 0.2
    assert otel["attributes"]["gen_ai.usage.input_tokens"] == 100
    assert otel["resource"] == {"service.name": "agent-svc", "deployment.environment": "t"}
    assert otel["scope"] == {"name": "test.instrumentation", "version": "1.0"}
    assert otel["span_kind"] == 3
    # the content attributes are stored once, in inputs/outputs, and can be restored exactly
    assert "gen_ai.input.messages" not in otel["attributes"]
    assert otel["moved"]["gen_ai.input.messages"] == "spaced"  # json.dumps spelling (ASCII)
    restored = restore_content(otel["attributes"], otel["moved"], llm)
    # (byte for byte on SQLite; PostgreSQL's JSONB does not keep object key order)
    assert json.loads(restored["gen_ai.output.messages"]) == OUT_MSGS
    assert tool["extra"]["otel"]["events"][0]["name"] == "exception"
    project = (await client.get("/api/v1/projects", params={"name": "agent-svc"})).json()
    assert project["items"][0]["id"] == root["project_id"]


async def test_json_encoding_lands_the_same_runs_as_protobuf(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    other = "0123456789abcdef0123456789abcdef"
    other_ids = ("1" * 16, "2" * 16, "3" * 16)
    pb = request(genai_trace(TRACE)).SerializeToString()
    js = to_json(request(genai_trace(other, other_ids)))
    assert b'"traceId":"0123456789abcdef0123456789abcdef"' in js  # hex, not base64
    assert (await client.post("/v1/traces", content=pb, headers=PB)).status_code == 200
    r = await client.post(
        "/v1/traces", content=js, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {}
    from_pb = stable(trace_rows(app, admin_key, TRACE))
    from_js = stable(trace_rows(app, admin_key, other))
    back = dict(zip(other_ids, (ROOT, LLM, TOOL), strict=True))
    for row in from_js:
        row["trace_id"] = TRACE
        row["id"] = back[row["id"]]
        row["parent_id"] = back.get(row["parent_id"])
    assert sorted(from_js, key=lambda r: r["id"]) == from_pb
    # the query API answers the same trace for both encodings
    tree_pb = (await client.get(f"/api/v1/traces/{TRACE}")).json()
    tree_js = (await client.get(f"/api/v1/traces/{other}")).json()
    assert [r["name"] for r in tree_pb["runs"]] == [r["name"] for r in tree_js["runs"]]
    assert [r["inputs"] for r in tree_pb["runs"]] == [r["inputs"] for r in tree_js["runs"]]
    assert [r["usage"] for r in tree_pb["runs"]] == [r["usage"] for r in tree_js["runs"]]


async def test_old_senders_base64_ids_are_converted_not_misread(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    doc = json_format.MessageToDict(request(genai_trace()[:1]), use_integers_for_enums=True)
    assert (
        doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
        == base64.b64encode(bytes.fromhex(TRACE)).decode()
    )
    r = await client.post("/v1/traces", content=orjson.dumps(doc), headers=JS)
    assert r.status_code == 200
    assert [row["id"] for row in trace_rows(app, admin_key, TRACE)] == [ROOT]


async def test_invalid_spans_are_rejected_one_by_one(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    good = genai_trace()[0]
    zero = span("0" * 32, "1" * 16, None, "zero trace id", {})
    short = span(TRACE, "1" * 16, None, "short id", {})
    short.span_id = b"\x01\x02"
    req = request([good, zero, short])
    r = await client.post("/v1/traces", content=req.SerializeToString(), headers=PB)
    assert r.status_code == 200
    resp = ExportTraceServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_spans == 2
    assert "all zeros" in resp.partial_success.error_message
    assert "2 bytes" in resp.partial_success.error_message
    assert [row["id"] for row in trace_rows(app, admin_key, TRACE)] == [ROOT]
    rj = await client.post("/v1/traces", content=to_json(req), headers=JS)
    assert rj.json()["partialSuccess"]["rejectedSpans"] == "2"


async def test_content_types_encodings_limits_and_auth(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, admin_key: str
) -> None:
    body = request(genai_trace()).SerializeToString()
    r = await client.post("/v1/traces", content=body, headers={"content-type": "text/plain"})
    assert r.status_code == 415
    gz = await client.post(
        "/v1/traces", content=gzip.compress(body), headers={**PB, "content-encoding": "gzip"}
    )
    assert gz.status_code == 200
    df = await client.post(
        "/v1/traces", content=zlib.compress(body), headers={**PB, "content-encoding": "deflate"}
    )
    assert df.status_code == 200
    garbage = await client.post("/v1/traces", content=b"\xff\xff\xff", headers=PB)
    assert garbage.status_code == 400
    bad_json = await client.post("/v1/traces", content=b"{", headers=JS)
    assert bad_json.status_code == 400
    assert "message" in bad_json.json()
    assert (await anon.post("/v1/traces", content=body, headers=PB)).status_code == 401
    bearer = await anon.post(
        "/v1/traces", content=body, headers={**PB, "authorization": f"Bearer {admin_key}"}
    )
    assert bearer.status_code == 200
    empty = await client.post("/v1/traces", content=b"", headers=PB)
    assert empty.status_code == 200


async def test_project_header_beats_service_name(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    body = request(genai_trace()[:1], service="svc").SerializeToString()
    await client.post("/v1/traces", content=body, headers={**PB, "x-goldloop-project": "chosen"})
    chosen = (await client.get("/api/v1/projects", params={"name": "chosen"})).json()["items"]
    assert trace_rows(app, admin_key, TRACE)[0]["project_id"] == chosen[0]["id"]
    names = [p["name"] for p in (await client.get("/api/v1/projects")).json()["items"]]
    assert "svc" not in names


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
async def test_openinference_project_name_beats_service_name(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, encoding: str
) -> None:
    """OpenInference exporters (and Phoenix) name the project on the resource; the header still
    wins, and service.name remains the fallback."""
    req = request(genai_trace()[:1], service="svc")
    req.resource_spans[0].resource.attributes.extend(
        kvs({"openinference.project.name": "refund-agent"})
    )
    body, headers = (req.SerializeToString(), PB) if encoding == "protobuf" else (to_json(req), JS)
    assert (await client.post("/v1/traces", content=body, headers=headers)).status_code == 200
    named = (await client.get("/api/v1/projects", params={"name": "refund-agent"})).json()
    assert trace_rows(app, admin_key, TRACE)[0]["project_id"] == named["items"][0]["id"]
    names = [p["name"] for p in (await client.get("/api/v1/projects")).json()["items"]]
    assert "svc" not in names


async def test_openinference_langfuse_and_legacy_attributes(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    oi = span(
        TRACE,
        "1" * 16,
        None,
        "ChatOpenAI",
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.system": "openai",
            "llm.provider": "azure",
            "llm.token_count.prompt": 10,
            "llm.token_count.completion": 5,
            "llm.token_count.total": 15,
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": "hi",
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "be kind",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.id": "t1",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"q": 1}',
            "llm.cost.total": 0.5,
            "llm.invocation_parameters": '{"temperature": 0}',
        },
    )
    legacy = span(
        TRACE,
        "2" * 16,
        "1" * 16,
        "openai.chat",
        {
            "gen_ai.system": "mistralai",
            "llm.request.type": "chat",
            "gen_ai.request.model": "mistral-small-latest",
            "gen_ai.usage.prompt_tokens": 7,
            "gen_ai.usage.completion_tokens": 3.0,
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "hello",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "bonjour",
            "gen_ai.completion.0.finish_reason": "length",
            "traceloop.association.properties.tenant": "acme",
        },
    )
    lf = span(
        TRACE,
        "3" * 16,
        "1" * 16,
        "my-generation",
        {
            "langfuse.observation.type": "generation",
            "langfuse.observation.input": '{"prompt": "x"}',
            "langfuse.observation.output": '"y"',
            "langfuse.observation.level": "ERROR",
            "langfuse.observation.status_message": "refused",
            "langfuse.session.id": "s-lf",
            "langfuse.trace.tags": ["a", "b"],
            "langfuse.observation.model.name": "claude-3-5-haiku-20241022",
        },
    )
    ls = span(
        TRACE,
        "4" * 16,
        "1" * 16,
        "ignored-name",
        {
            "langsmith.span.kind": "RETRIEVER",
            "langsmith.trace.name": "search docs",
            "langsmith.span.tags": "x, y",
            "langsmith.metadata.thread_id": "th-1",
            "retrieval.documents.0.document.content": "doc zero",
            "retrieval.documents.0.document.metadata": '{"src": "kb"}',
            "retrieval.documents.1.document.content": "doc one",
            "input.value": "paris weather",
        },
    )
    body = request([oi, legacy, lf, ls]).SerializeToString()
    assert (await client.post("/v1/traces", content=body, headers=PB)).status_code == 200
    rows = {r["id"]: r for r in trace_rows(app, admin_key, TRACE)}
    a, b, c, d = rows["1" * 16], rows["2" * 16], rows["3" * 16], rows["4" * 16]
    assert a["kind"] == "llm"
    assert a["provider"] == "azure.ai.openai"
    assert a["inputs"]["messages"] == [
        {"role": "system", "parts": [{"type": "text", "content": "be kind"}]},
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]},
    ]
    assert a["outputs"]["messages"][0]["parts"] == [
        {"type": "tool_call", "id": "t1", "name": "lookup", "arguments": {"q": 1}}
    ]
    assert a["cost"] == 0.5
    assert a["extra"]["cost"]["source"] == "sender"
    assert a["extra"]["params"] == {"temperature": 0}
    assert b["kind"] == "llm"
    assert b["provider"] == "mistral_ai"
    assert (b["input_tokens"], b["output_tokens"], b["total_tokens"]) == (7, 3, 10)
    assert b["inputs"]["messages"] == [
        {"role": "user", "parts": [{"type": "text", "content": "hello"}]}
    ]
    assert b["outputs"]["messages"][0]["finish_reason"] == "length"
    assert b["metadata"] == {"tenant": "acme"}
    assert c["kind"] == "llm"
    assert c["status"] == "error"
    assert c["error"] == {"message": "refused"}
    assert c["inputs"] == {"prompt": "x"}
    assert c["outputs"] == "y"
    assert c["session_id"] == "s-lf"
    assert c["tags"] == ["a", "b"]
    assert c["model"] == "claude-3-5-haiku-20241022"
    assert c["cost"] is None
    assert d["kind"] == "retriever"
    assert d["name"] == "search docs"
    assert d["tags"] == ["x", "y"]
    assert d["session_id"] == "th-1"
    assert d["inputs"] == "paris weather"
    assert d["outputs"] == {
        "documents": [{"content": "doc zero", "metadata": {"src": "kb"}}, {"content": "doc one"}]
    }


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
async def test_genai_log_events_attach_to_their_span(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, encoding: str
) -> None:
    llm_only = span(TRACE, LLM, None, "chat gpt-4o", {"gen_ai.operation.name": "chat"})
    await client.post("/v1/traces", content=request([llm_only]).SerializeToString(), headers=PB)
    logs = logs_request(
        TRACE,
        LLM,
        [
            (
                "gen_ai.client.inference.operation.details",
                {
                    "gen_ai.input.messages": json.dumps(IN_MSGS),
                    "gen_ai.output.messages": json.dumps(OUT_MSGS),
                },
                None,
            )
        ],
    )
    orphan = logs.resource_logs[0].scope_logs[0].log_records.add()
    orphan.event_name = "gen_ai.user.message"
    if encoding == "protobuf":
        r = await client.post("/v1/logs", content=logs.SerializeToString(), headers=PB)
        resp = ExportLogsServiceResponse.FromString(r.content)
        assert resp.partial_success.rejected_log_records == 1
    else:
        r = await client.post("/v1/logs", content=to_json(logs), headers=JS)
        assert r.json()["partialSuccess"]["rejectedLogRecords"] == "1"
    assert r.status_code == 200
    row = trace_rows(app, admin_key, TRACE)[0]
    assert row["kind"] == "llm"
    assert row["inputs"] == {"messages": IN_MSGS}
    assert row["outputs"] == {"messages": OUT_MSGS}
    assert len(row["extra"]["otel_logs"]) == 1


async def test_deprecated_message_events_as_logs(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    logs = logs_request(
        TRACE,
        LLM,
        [
            ("gen_ai.system.message", {"gen_ai.system": "openai"}, {"content": "be brief"}),
            ("gen_ai.user.message", {}, {"content": "hi"}),
            (
                "gen_ai.choice",
                {},
                {"index": 0, "finish_reason": "stop", "message": {"content": "yo"}},
            ),
        ],
    )
    assert (
        await client.post("/v1/logs", content=logs.SerializeToString(), headers=PB)
    ).status_code == 200
    row = trace_rows(app, admin_key, TRACE)[0]
    assert [m["role"] for m in row["inputs"]["messages"]] == ["system", "user"]
    assert row["outputs"]["messages"] == [
        {"role": "assistant", "parts": [{"type": "text", "content": "yo"}], "finish_reason": "stop"}
    ]


async def test_prefixed_path_and_payload_limit(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    custom = load_settings(
        {
            "data_dir": settings.data_dir,
            "database_url": settings.database_url,
            "otlp_path_prefix": "/otel",
            "max_run_payload_bytes": 300,
        },
        environ={},
    )
    application = create_app(custom)
    async with application.router.lifespan_context(application):
        capsys.readouterr()
        key = custom.admin_key_path.read_text().strip()
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"x-api-key": key}
        ) as c:
            # flattened OpenInference messages: small attributes, a large mapped `inputs`
            attrs: dict[str, Any] = {"openinference.span.kind": "LLM"}
            for i in range(20):
                attrs[f"llm.input_messages.{i}.message.role"] = "user"
                attrs[f"llm.input_messages.{i}.message.content"] = f"message {i}"
            body = request([span(TRACE, LLM, None, "chat", attrs)]).SerializeToString()
            r = await c.post("/otel/v1/traces", content=body, headers=PB)
            assert r.status_code == 200, r.text
            row = trace_rows(application, key, TRACE)[0]
            assert row["inputs"]["_goldloop_truncated"]["original_bytes"] > 300
            assert row["extra"]["truncated"] == {
                "inputs": row["inputs"]["_goldloop_truncated"]["original_bytes"]
            }
    with pytest.raises(SettingsError):
        load_settings({"otlp_path_prefix": "otel/"}, environ={})
