"""OTLP logs carrying GenAI content events -> patches of the spans they belong to.

GenAI instrumentations send message content as log records correlated with a span by
``trace_id``/``span_id``: ``gen_ai.client.inference.operation.details`` (current: the messages as
attributes), the deprecated ``gen_ai.{system,user,assistant,tool}.message`` / ``gen_ai.choice``
events (content in the body), and ``gen_ai.client.operation.exception``. Each record becomes part
of a patch of its span (inputs/outputs/error), and is kept whole under ``extra.otel_logs`` keyed
by time, name and position, so repeated deliveries do not duplicate it. Records without a span
context cannot be attached and are reported back as rejected.
"""

from __future__ import annotations

from typing import Any

from goldloop.domain.errors import InvalidInput
from goldloop.domain.otel import messages as msgs
from goldloop.domain.otel.decode import (
    PROTOBUF,
    BadSpan,
    OtelLog,
    json_attrs,
    json_doc,
    json_get,
    json_id,
    json_int,
    json_scope,
    json_value,
    pb_attrs,
    pb_scope,
    pb_value,
)
from goldloop.domain.otel.mapping import resource_project
from goldloop.domain.otel.messages import parse_json
from goldloop.domain.run_items import RunPatch


def _pb_logs(body: bytes) -> tuple[list[OtelLog], list[str]]:
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    try:
        request = ExportLogsServiceRequest.FromString(body)
    except DecodeError as exc:
        raise InvalidInput(f"body is not an OTLP ExportLogsServiceRequest: {exc}") from None
    out: list[OtelLog] = []
    for rl in request.resource_logs:
        resource = pb_attrs(rl.resource.attributes)
        for sl in rl.scope_logs:
            scope = pb_scope(sl.scope)
            for r in sl.log_records:
                out.append(
                    OtelLog(
                        trace_id=r.trace_id.hex() if len(r.trace_id) == 16 else None,
                        span_id=r.span_id.hex() if len(r.span_id) == 8 else None,
                        time_ns=int(r.time_unix_nano or r.observed_time_unix_nano),
                        event_name=r.event_name,
                        severity_number=int(r.severity_number),
                        severity_text=r.severity_text,
                        body=pb_value(r.body),
                        attributes=pb_attrs(r.attributes),
                        resource=resource,
                        scope=scope,
                    )
                )
    return out, []


def _json_logs(body: bytes) -> tuple[list[OtelLog], list[str]]:
    doc = json_doc(body)
    out: list[OtelLog] = []
    problems: list[str] = []
    for rl in json_get(doc, "resourceLogs", "resource_logs", []):
        resource = json_attrs((rl.get("resource") or {}).get("attributes"))
        for sl in json_get(rl, "scopeLogs", "scope_logs", []):
            scope = json_scope(sl.get("scope"))
            for r in json_get(sl, "logRecords", "log_records", []):
                try:
                    trace = json_get(r, "traceId", "trace_id", "")
                    span = json_get(r, "spanId", "span_id", "")
                    out.append(
                        OtelLog(
                            trace_id=json_id(trace, 16, "traceId") if trace else None,
                            span_id=json_id(span, 8, "spanId") if span else None,
                            time_ns=json_int(
                                json_get(r, "timeUnixNano", "time_unix_nano", 0)
                                or json_get(r, "observedTimeUnixNano", "observed_time_unix_nano", 0)
                            ),
                            event_name=str(json_get(r, "eventName", "event_name", "")),
                            severity_number=json_int(
                                json_get(r, "severityNumber", "severity_number", 0)
                            ),
                            severity_text=str(json_get(r, "severityText", "severity_text", "")),
                            body=json_value(r.get("body")),
                            attributes=json_attrs(r.get("attributes")),
                            resource=resource,
                            scope=scope,
                        )
                    )
                except (BadSpan, TypeError, AttributeError) as bad:
                    problems.append(f"log record: {bad}")
    return out, problems


def decode_logs(body: bytes, encoding: str) -> tuple[list[OtelLog], list[str]]:
    if encoding == PROTOBUF:
        return _pb_logs(body)
    try:
        return _json_logs(body)
    except (TypeError, AttributeError) as exc:
        raise InvalidInput(f"body is not an OTLP/JSON ExportLogsServiceRequest: {exc}") from None


def _name(log: OtelLog) -> str:
    return log.event_name or str(log.attributes.get("event.name") or "")


def _record(log: OtelLog) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "time_unix_nano": log.time_ns,
        "event_name": _name(log),
        "attributes": log.attributes,
        "body": log.body,
    }
    if log.severity_number or log.severity_text:
        rec["severity"] = {"number": log.severity_number, "text": log.severity_text}
    return rec


def logs_to_patches(logs: list[OtelLog]) -> tuple[list[RunPatch], int, list[str]]:
    """Patches (one per span), the number of rejected records, and why they were rejected."""
    by_span: dict[tuple[str, str], list[OtelLog]] = {}
    rejected = 0
    for log in logs:
        if not log.trace_id or not log.span_id:
            rejected += 1
            continue
        by_span.setdefault((log.trace_id, log.span_id), []).append(log)
    problems = [f"{rejected} log records have no trace/span id to attach to"] if rejected else []
    patches = []
    for (trace_id, span_id), records in by_span.items():
        records.sort(key=lambda r: r.time_ns)
        patch = RunPatch(id=span_id, trace_id=trace_id, project=None)
        service = resource_project(records[0].resource)
        patch.project = str(service)[:200] if service else None
        events: list[tuple[str, Any]] = []
        for log in records:
            name = _name(log)
            attrs = log.attributes
            if name == "gen_ai.client.inference.operation.details":
                m_in = parse_json(attrs.get("gen_ai.input.messages"))
                system = parse_json(attrs.get("gen_ai.system_instructions"))
                m_out = parse_json(attrs.get("gen_ai.output.messages"))
                if m_in is not None or system is not None:
                    patch.fields["inputs"] = {
                        k: v for k, v in (("messages", m_in), ("system", system)) if v is not None
                    }
                if m_out is not None:
                    patch.fields["outputs"] = {"messages": m_out}
            elif name == "gen_ai.client.operation.exception":
                patch.fields["status"] = "error"
                patch.fields["error"] = {
                    k: str(v)
                    for k, v in (
                        ("type", attrs.get("exception.type")),
                        ("message", attrs.get("exception.message")),
                        ("stacktrace", attrs.get("exception.stacktrace")),
                    )
                    if v is not None
                }
            elif name.startswith("gen_ai."):
                body = log.body if isinstance(log.body, dict) else {"content": log.body}
                events.append((name, {**attrs, **body}))
        ev_in, ev_out = msgs.from_events(events)
        if ev_in is not None and "inputs" not in patch.fields:
            patch.fields["inputs"] = {"messages": ev_in}
        if ev_out is not None and "outputs" not in patch.fields:
            patch.fields["outputs"] = {"messages": ev_out}
        patch.extra["otel_logs"] = {
            f"{log.time_ns}:{_name(log)}:{i}": _record(log) for i, log in enumerate(records)
        }
        patches.append(patch)
    return patches, rejected, problems
