"""Runs -> OTLP/JSON spans with GenAI attribute names (otel-genai.md 5.4), built to round-trip.

The export file is OTLP/JSON Lines: each line is one ``ExportTraceServiceRequest`` (the shape the
OpenTelemetry Collector's file exporter writes), so a line can be posted to any OTLP/HTTP
receiver as it is, including Goldloop's ``/v1/traces`` (that is how import works).

- A run that arrived over OTLP is exported as the span it came from: original attributes (moved
  content restored), resource, scope, span kind, status, events and links.
- A run that arrived natively gets GenAI (and OpenInference-compatible) attributes, plus one
  ``goldloop.run`` attribute (JSON) with what those cannot carry exactly: the original ids (OTLP
  ids are fixed-size hex), kind, status, provider spelling and the ``extra`` document.

Either way, importing the file gives the same runs (same ids, fields and extra).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from goldloop.domain.otel.dedupe import restore_content, restore_references

GOLDLOOP_RUN = "goldloop.run"
SCOPE = {"name": "goldloop.export", "version": "1"}
_CLIENT_KINDS = ("llm", "embedding", "retriever")
_HEX = frozenset("0123456789abcdef")
_OPERATIONS = {
    "llm": "chat",
    "embedding": "embeddings",
    "retriever": "retrieval",
    "tool": "execute_tool",
    "agent": "invoke_agent",
}


def any_value(value: Any) -> dict[str, Any]:
    """A Python value as an OTLP/JSON AnyValue."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": key_values(value)}}
    return {"stringValue": str(value)}


def key_values(attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": any_value(v)} for k, v in attrs.items()]


def _is_hex(text: str | None, size: int) -> bool:
    return text is not None and len(text) == size * 2 and set(text) <= _HEX and set(text) != {"0"}


def otlp_id(run_id: str, size: int) -> str:
    """A run/trace id as an OTLP hex id: as is when it already is one, else from its bytes."""
    if _is_hex(run_id, size):
        return run_id
    compact = run_id.replace("-", "").lower()
    if len(compact) == 32 and set(compact) <= _HEX:  # a UUID: its bytes, as LangSmith does
        return compact[: size * 2]
    return hashlib.sha256(run_id.encode()).hexdigest()[: size * 2]


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _content_attrs(run: Mapping[str, Any]) -> dict[str, Any]:
    """inputs/outputs as the attributes the ingest mapping reads back to the same values."""
    kind = run["kind"]
    out: dict[str, Any] = {}
    inputs, outputs = run.get("inputs"), run.get("outputs")
    if inputs is not None:
        messages_form = (
            kind in ("llm", "embedding", "agent")
            and isinstance(inputs, dict)
            and inputs
            and set(inputs) <= {"messages", "system"}
            and isinstance(inputs.get("messages", []), list)
        )
        if messages_form:
            if "messages" in inputs:
                out["gen_ai.input.messages"] = _json(inputs["messages"])
            if "system" in inputs:
                out["gen_ai.system_instructions"] = _json(inputs["system"])
        elif kind == "retriever" and isinstance(inputs, str):
            out["gen_ai.retrieval.query.text"] = inputs
        elif isinstance(inputs, str):
            out["input.value"], out["input.mime_type"] = inputs, "text/plain"
        else:
            out["input.value"], out["input.mime_type"] = _json(inputs), "application/json"
    if outputs is not None:
        one_key = isinstance(outputs, dict) and len(outputs) == 1
        if (
            kind in ("llm", "embedding", "agent")
            and one_key
            and isinstance(outputs.get("messages"), list)
        ):
            out["gen_ai.output.messages"] = _json(outputs["messages"])
        elif kind == "retriever" and one_key and isinstance(outputs.get("documents"), list):
            out["gen_ai.retrieval.documents"] = _json(outputs["documents"])
        elif isinstance(outputs, str):
            out["output.value"], out["output.mime_type"] = outputs, "text/plain"
        else:
            out["output.value"], out["output.mime_type"] = _json(outputs), "application/json"
    return out


def _native_attrs(run: Mapping[str, Any]) -> dict[str, Any]:
    kind = run["kind"]
    a: dict[str, Any] = {}
    op = _OPERATIONS.get(kind) or (
        "invoke_workflow" if kind == "chain" and run["is_root"] else None
    )
    if op:
        a["gen_ai.operation.name"] = op
    a["openinference.span.kind"] = kind.upper()
    if run.get("provider"):
        a["gen_ai.provider.name"] = run["provider"]
    if run.get("model"):
        a["gen_ai.request.model"] = run["model"]
        a["gen_ai.response.model"] = run["model"]
    for col, key in (
        ("input_tokens", "gen_ai.usage.input_tokens"),
        ("output_tokens", "gen_ai.usage.output_tokens"),
        ("total_tokens", "llm.token_count.total"),
    ):
        if run.get(col) is not None:
            a[key] = run[col]
    extra = run.get("extra") or {}
    usage = extra.get("usage") or {}
    for col, key in (
        ("cache_read_tokens", "gen_ai.usage.cache_read.input_tokens"),
        ("cache_write_tokens", "gen_ai.usage.cache_creation.input_tokens"),
        ("reasoning_tokens", "gen_ai.usage.reasoning.output_tokens"),
    ):
        if isinstance(usage.get(col), int):
            a[key] = usage[col]
    if run.get("cost") is not None:
        a["llm.cost.total"] = run["cost"]
    if run.get("session_id"):
        a["gen_ai.conversation.id"] = run["session_id"]
        a["session.id"] = run["session_id"]
    if run.get("user_id"):
        a["user.id"] = run["user_id"]
    if run.get("tags"):
        a["tag.tags"] = list(run["tags"])
    if run.get("metadata"):
        a["metadata"] = _json(run["metadata"])
    tool = extra.get("tool") or {}
    if isinstance(tool, dict) and tool.get("name"):
        a["gen_ai.tool.name"] = tool["name"]
    a.update(_content_attrs(run))
    if run.get("error") and run["error"].get("type"):
        a["error.type"] = run["error"]["type"]
    exact = {
        k: run[k]
        for k in ("id", "trace_id", "parent_id", "kind", "status", "provider", "extra")
        if run.get(k) is not None
    }
    if run.get("reference_example_id"):
        exact["reference_example_id"] = run["reference_example_id"]
    a[GOLDLOOP_RUN] = _json(exact)
    return a


def _ns(us: int | None) -> str:
    return str(us * 1000) if us is not None else "0"


def run_to_span(
    run: Mapping[str, Any], service_name: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(resource attributes, scope, OTLP/JSON span) for one stored run; a native run's resource
    is ``service.name`` = the project name (where import puts it back)."""
    otel = (run.get("extra") or {}).get("otel")
    trace_hex = otlp_id(run["trace_id"], 16)
    span: dict[str, Any] = {
        "traceId": trace_hex,
        "spanId": otlp_id(run["id"], 8),
        "name": run["name"],
        "startTimeUnixNano": _ns(run.get("start_time")),
        "endTimeUnixNano": _ns(run.get("end_time")),
    }
    if run.get("parent_id"):
        span["parentSpanId"] = otlp_id(run["parent_id"], 8)
    if isinstance(otel, dict):
        attrs = restore_content(otel.get("attributes") or {}, otel.get("moved") or {}, run)
        attrs = restore_references(attrs, otel.get("refs") or {}, run)
        span["kind"] = int(otel.get("span_kind", 1))
        status = otel.get("status")
        if status:
            span["status"] = {
                "code": int(status.get("code", 0)),
                "message": status.get("message", ""),
            }
        events = otel.get("events") or []
        for key in ("trace_state", "flags"):
            if otel.get(key):
                span["traceState" if key == "trace_state" else "flags"] = otel[key]
        span["links"] = [
            {
                "traceId": link["trace_id"],
                "spanId": link["span_id"],
                "traceState": link.get("trace_state", ""),
                "attributes": key_values(link.get("attributes") or {}),
            }
            for link in otel.get("links") or []
        ]
        resource = dict(otel.get("resource") or {})
        scope = dict(otel.get("scope") or SCOPE)
    else:
        attrs = _native_attrs(run)
        span["kind"] = 3 if run["kind"] in _CLIENT_KINDS else 1
        error = run.get("error")
        events = []
        if run["status"] == "error":
            span["status"] = {"code": 2, "message": (error or {}).get("message", "")}
            if error:
                keys = ("type", "message", "stacktrace")
                exc = {f"exception.{k}": error[k] for k in keys if k in error}
                when = (run.get("end_time") or 0) * 1000
                events = [{"time_unix_nano": when, "name": "exception", "attributes": exc}]
        resource = {"service.name": service_name}
        scope = dict(SCOPE)
    span["attributes"] = key_values(attrs)
    span["events"] = [
        {
            "timeUnixNano": str(e.get("time_unix_nano", 0)),
            "name": e.get("name", ""),
            "attributes": key_values(e.get("attributes") or {}),
        }
        for e in events
    ]
    return resource, scope, span


def export_lines(runs: Iterable[Mapping[str, Any]], service_name: str) -> bytes:
    """One OTLP/JSON line (ExportTraceServiceRequest) holding these runs, grouped by resource."""
    groups: dict[str, dict[str, Any]] = {}
    for run in runs:
        resource, scope, span = run_to_span(run, service_name)
        key = _json([resource, scope])
        group = groups.setdefault(key, {"resource": resource, "scope": scope, "spans": []})
        group["spans"].append(span)
    resource_spans = []
    for g in groups.values():
        scope = {**g["scope"], "attributes": key_values(g["scope"].get("attributes") or {})}
        resource_spans.append(
            {
                "resource": {"attributes": key_values(g["resource"])},
                "scopeSpans": [{"scope": scope, "spans": g["spans"]}],
            }
        )
    doc = {"resourceSpans": resource_spans}
    return orjson.dumps(doc) + b"\n"
