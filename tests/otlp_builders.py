"""Build OTLP requests with the real opentelemetry-proto classes (protobuf and OTLP/JSON)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

T0_NS = 1_764_150_816_534_505_000
_ID_KEYS = {"traceId", "spanId", "parentSpanId"}


def any_value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    if isinstance(v, list):
        out = AnyValue()
        out.array_value.values.extend(any_value(x) for x in v)
        return out
    if isinstance(v, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(KeyValue(key=k, value=any_value(x)) for k, x in v.items())
        return out
    return AnyValue(string_value=str(v))


def kvs(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def span(
    trace: str,
    span_id: str,
    parent: str | None,
    name: str,
    attrs: dict[str, Any],
    *,
    start: int = T0_NS,
    end: int = T0_NS + 2_000_000,
    kind: int = 1,
    error: str | None = None,
    events: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
) -> Span:
    s = Span(
        trace_id=bytes.fromhex(trace),
        span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent) if parent else b"",
        name=name,
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=start,
        end_time_unix_nano=end,
    )
    s.attributes.extend(kvs(attrs))
    for i, (ev_name, ev_attrs) in enumerate(events):
        ev = s.events.add()
        ev.name = ev_name
        ev.time_unix_nano = start + i
        ev.attributes.extend(kvs(ev_attrs))
    if error is not None:
        s.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=error))
    return s


def request(spans: list[Span], service: str = "agent-svc") -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(kvs({"service.name": service, "deployment.environment": "t"}))
    ss = rs.scope_spans.add()
    ss.scope.name = "test.instrumentation"
    ss.scope.version = "1.0"
    ss.spans.extend(spans)
    return req


def _hex_ids(node: Any) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in _ID_KEYS and isinstance(v, str):
                node[k] = base64.b64decode(v).hex()
            else:
                _hex_ids(v)
    elif isinstance(node, list):
        for x in node:
            _hex_ids(x)


def to_json(req: ExportTraceServiceRequest | ExportLogsServiceRequest) -> bytes:
    """Proper OTLP/JSON: integer enums, lowerCamelCase, and hex (not base64) ids."""
    doc = json_format.MessageToDict(req, use_integers_for_enums=True)
    _hex_ids(doc)
    return orjson.dumps(doc)


def logs_request(
    trace: str, span_id: str, records: list[tuple[str, dict[str, Any], Any]]
) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(kvs({"service.name": "agent-svc"}))
    sl = rl.scope_logs.add()
    for i, (event_name, attrs, body) in enumerate(records):
        rec = sl.log_records.add()
        rec.time_unix_nano = T0_NS + i
        rec.event_name = event_name
        rec.trace_id = bytes.fromhex(trace)
        rec.span_id = bytes.fromhex(span_id)
        rec.attributes.extend(kvs(attrs))
        if body is not None:
            rec.body.CopyFrom(any_value(body))
    return req
