"""OTLP/HTTP request bodies (protobuf or JSON) -> plain ``OtelSpan``/``OtelLog`` records.

Both encodings decode to the same neutral records, so the mapping onto runs is written once.
Protobuf goes through the generated ``opentelemetry-proto`` classes; OTLP/JSON is walked as
plain JSON rather than through protobuf's JSON parser, because OTLP/JSON is *not* proto3 JSON:
``traceId``/``spanId``/``parentSpanId`` are hex strings (a proto3 parser would base64-decode a
32-char hex id into 24 wrong bytes without complaint), enums are integers and 64-bit integers
may be strings. Old senders that put base64 ids are recognised by length and converted.

Attribute values become Python values: string, bool, int, float, bytes -> base64 string,
array -> list, kvlist -> dict, empty -> None.

Protobuf trace requests are decoded by ``goldloop._otlp_wire`` (C, built at install) when it is
there: reading fields through the generated classes builds a wrapper object per field and was
most of a span's decode cost. Without a C compiler at install time the generated classes do it;
the two give the same records (tests/test_otlp_wire.py).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from goldloop.domain.errors import InvalidInput, UnsupportedMediaType

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


@dataclass(slots=True)
class OtelSpan:
    trace_id: str  # 32 lower-case hex chars
    span_id: str  # 16 lower-case hex chars
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    links: list[dict[str, Any]]
    status_code: int
    status_message: str
    resource: dict[str, Any]
    scope: dict[str, Any]
    trace_state: str = ""
    flags: int = 0
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class OtelLog:
    trace_id: str | None
    span_id: str | None
    time_ns: int
    event_name: str
    severity_number: int
    severity_text: str
    body: Any
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: dict[str, Any]


def _c_decoder() -> Callable[[bytes, type[OtelSpan]], tuple[list[OtelSpan], list[str]]] | None:
    try:
        from goldloop._otlp_wire import decode_trace_request
    except ImportError:  # installed without a C compiler
        return None
    return decode_trace_request


# goldloop._otlp_wire.decode_trace_request, if it was built
c_decode_trace_request = _c_decoder()


class BadSpan(ValueError):
    """One span (or log record) cannot be used; the rest of the request still can."""


def media_type(content_type: str | None) -> str:
    """The OTLP encoding named by a Content-Type header; raises ``UnsupportedMediaType``."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    if base in (PROTOBUF, JSON):
        return base
    raise UnsupportedMediaType(
        f"Content-Type {content_type!r} is not OTLP; send {PROTOBUF} or {JSON}",
        details={"field": "Content-Type"},
    )


# ---- ids ------------------------------------------------------------------------------------


def _hex_id(raw: bytes, size: int, what: str) -> str:
    if len(raw) != size:
        raise BadSpan(f"{what} has {len(raw)} bytes, expected {size}")
    if raw.count(0) == size:
        raise BadSpan(f"{what} is all zeros")
    return raw.hex()


def json_id(value: Any, size: int, what: str) -> str:
    """An id from OTLP/JSON: hex (the standard) or, from some old senders, base64."""
    if not isinstance(value, str):
        raise BadSpan(f"{what} must be a hex string")
    if len(value) == size * 2:
        try:
            return _hex_id(bytes.fromhex(value), size, what)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadSpan(f"{what} {value[:40]!r} is neither {size * 2} hex chars nor base64") from None
    return _hex_id(raw, size, what)


# ---- protobuf -------------------------------------------------------------------------------


def pb_value(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return v.int_value
    if which == "bool_value":
        return v.bool_value
    if which == "double_value":
        return v.double_value
    if which == "array_value":
        return [pb_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: pb_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return None


def pb_attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: pb_value(kv.value) for kv in kvs}


def pb_scope(scope: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": scope.name, "version": scope.version}
    if len(scope.attributes):
        out["attributes"] = pb_attrs(scope.attributes)
    return out


def _pb_span(s: Any, resource: dict[str, Any], scope: dict[str, Any]) -> OtelSpan:
    # Events, links and dropped counts are rare: each is checked once before any work.
    events = (
        [
            {
                "time_unix_nano": e.time_unix_nano,
                "name": e.name,
                "attributes": pb_attrs(e.attributes),
            }
            for e in s.events
        ]
        if len(s.events)
        else []
    )
    links = (
        [
            {
                "trace_id": link.trace_id.hex(),
                "span_id": link.span_id.hex(),
                "trace_state": link.trace_state,
                "attributes": pb_attrs(link.attributes),
            }
            for link in s.links
        ]
        if len(s.links)
        else []
    )
    dropped: dict[str, int] = {}
    if s.dropped_attributes_count or s.dropped_events_count or s.dropped_links_count:
        dropped = {
            k: n
            for k, n in (
                ("attributes", s.dropped_attributes_count),
                ("events", s.dropped_events_count),
                ("links", s.dropped_links_count),
            )
            if n
        }
    parent = s.parent_span_id
    status = s.status
    return OtelSpan(
        trace_id=_hex_id(s.trace_id, 16, "trace_id"),
        span_id=_hex_id(s.span_id, 8, "span_id"),
        parent_span_id=_hex_id(parent, 8, "parent_span_id") if parent else None,
        name=s.name,
        kind=s.kind,
        start_ns=s.start_time_unix_nano,
        end_ns=s.end_time_unix_nano,
        attributes=pb_attrs(s.attributes),
        events=events,
        links=links,
        status_code=status.code,
        status_message=status.message,
        resource=resource,
        scope=scope,
        trace_state=s.trace_state,
        flags=s.flags,
        dropped=dropped,
    )


def _pb_traces(body: bytes) -> tuple[list[OtelSpan], list[str]]:
    if c_decode_trace_request is None:
        return pb_traces_generated(body)
    try:
        return c_decode_trace_request(body, OtelSpan)
    except ValueError as exc:
        raise InvalidInput(f"body is not an OTLP ExportTraceServiceRequest: {exc}") from None


def pb_traces_generated(body: bytes) -> tuple[list[OtelSpan], list[str]]:
    """``_pb_traces`` through the generated protobuf classes (without the C decoder)."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    try:
        request = ExportTraceServiceRequest.FromString(body)
    except DecodeError as exc:
        raise InvalidInput(f"body is not an OTLP ExportTraceServiceRequest: {exc}") from None
    spans: list[OtelSpan] = []
    problems: list[str] = []
    for rs in request.resource_spans:
        resource = pb_attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope = pb_scope(ss.scope)
            for s in ss.spans:
                try:
                    spans.append(_pb_span(s, resource, scope))
                except BadSpan as bad:
                    problems.append(f"span {s.name!r}: {bad}")
    return spans, problems


# ---- JSON -----------------------------------------------------------------------------------


def json_get(d: dict[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    value = d.get(camel)
    if value is None:
        value = d.get(snake, default)
    return default if value is None else value


def json_int(value: Any) -> int:
    if isinstance(value, bool):
        raise BadSpan("expected an integer")
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and len(value) <= 40 and value.strip().lstrip("+-").isdigit()
    ):
        number = int(value)
    if number is None:
        raise BadSpan(f"expected an integer, got {value!r:.40}")
    if not -(2**63) <= number < 2**64:  # no OTLP integer is wider than 64 bits
        raise BadSpan("an integer is out of the 64-bit range")
    return number


def json_value(v: Any) -> Any:
    if not isinstance(v, dict):
        return None
    for key, snake in (("stringValue", "string_value"), ("boolValue", "bool_value")):
        if key in v or snake in v:
            return json_get(v, key, snake)
    if "intValue" in v or "int_value" in v:
        number = json_int(json_get(v, "intValue", "int_value"))
        if not -(2**63) <= number < 2**63:
            raise BadSpan("an intValue is out of the int64 range")
        return number
    if "doubleValue" in v or "double_value" in v:
        raw = json_get(v, "doubleValue", "double_value")
        return float(raw) if not isinstance(raw, bool) else None
    if "arrayValue" in v or "array_value" in v:
        return [
            json_value(x) for x in json_get(v, "arrayValue", "array_value", {}).get("values", [])
        ]
    if "kvlistValue" in v or "kvlist_value" in v:
        return json_attrs(json_get(v, "kvlistValue", "kvlist_value", {}).get("values", []))
    if "bytesValue" in v or "bytes_value" in v:
        return json_get(v, "bytesValue", "bytes_value")
    return None


def json_attrs(kvs: Any) -> dict[str, Any]:
    if not isinstance(kvs, list):
        return {}
    return {kv["key"]: json_value(kv.get("value")) for kv in kvs if isinstance(kv, dict)}


def json_scope(scope: Any) -> dict[str, Any]:
    scope = scope if isinstance(scope, dict) else {}
    out: dict[str, Any] = {"name": scope.get("name", ""), "version": scope.get("version", "")}
    if scope.get("attributes"):
        out["attributes"] = json_attrs(scope["attributes"])
    return out


def _json_span(s: dict[str, Any], resource: dict[str, Any], scope: dict[str, Any]) -> OtelSpan:
    parent = json_get(s, "parentSpanId", "parent_span_id", "")
    status = s.get("status") or {}
    events = [
        {
            "time_unix_nano": json_int(json_get(e, "timeUnixNano", "time_unix_nano", 0)),
            "name": e.get("name", ""),
            "attributes": json_attrs(e.get("attributes")),
        }
        for e in s.get("events") or []
    ]
    links = [
        {
            "trace_id": json_id(json_get(link, "traceId", "trace_id"), 16, "link traceId"),
            "span_id": json_id(json_get(link, "spanId", "span_id"), 8, "link spanId"),
            "trace_state": json_get(link, "traceState", "trace_state", ""),
            "attributes": json_attrs(link.get("attributes")),
        }
        for link in s.get("links") or []
    ]
    dropped = {
        name: json_int(json_get(s, camel, snake, 0))
        for name, camel, snake in (
            ("attributes", "droppedAttributesCount", "dropped_attributes_count"),
            ("events", "droppedEventsCount", "dropped_events_count"),
            ("links", "droppedLinksCount", "dropped_links_count"),
        )
        if json_get(s, camel, snake, 0)
    }
    return OtelSpan(
        trace_id=json_id(json_get(s, "traceId", "trace_id"), 16, "traceId"),
        span_id=json_id(json_get(s, "spanId", "span_id"), 8, "spanId"),
        parent_span_id=json_id(parent, 8, "parentSpanId") if parent else None,
        name=str(s.get("name", "")),
        kind=json_int(s.get("kind", 0)),
        start_ns=json_int(json_get(s, "startTimeUnixNano", "start_time_unix_nano", 0)),
        end_ns=json_int(json_get(s, "endTimeUnixNano", "end_time_unix_nano", 0)),
        attributes=json_attrs(s.get("attributes")),
        events=events,
        links=links,
        status_code=json_int(status.get("code", 0)),
        status_message=str(status.get("message", "")),
        resource=resource,
        scope=scope,
        trace_state=json_get(s, "traceState", "trace_state", ""),
        flags=json_int(s.get("flags", 0)),
        dropped=dropped,
    )


def json_doc(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInput("an OTLP/JSON body must be a JSON object")
    return doc


def _json_traces(body: bytes) -> tuple[list[OtelSpan], list[str]]:
    doc = json_doc(body)
    spans: list[OtelSpan] = []
    problems: list[str] = []
    for rs in json_get(doc, "resourceSpans", "resource_spans", []):
        resource = json_attrs((rs.get("resource") or {}).get("attributes"))
        for ss in json_get(rs, "scopeSpans", "scope_spans", []):
            scope = json_scope(ss.get("scope"))
            for s in ss.get("spans") or []:
                try:
                    if not isinstance(s, dict):
                        raise BadSpan("a span must be an object")
                    spans.append(_json_span(s, resource, scope))
                except (BadSpan, TypeError, AttributeError) as bad:
                    name = s.get("name") if isinstance(s, dict) else None
                    problems.append(f"span {name!r}: {bad}")
    return spans, problems


def decode_traces(
    body: bytes, encoding: str, *, c_decoder: bool = True
) -> tuple[list[OtelSpan], list[str]]:
    """Spans of an ExportTraceServiceRequest, and a message per span that could not be read.
    ``c_decoder=False`` decodes protobuf through the generated classes even if the C decoder
    was built."""
    if encoding == PROTOBUF:
        return _pb_traces(body) if c_decoder else pb_traces_generated(body)
    try:
        return _json_traces(body)
    except (TypeError, AttributeError, BadSpan) as exc:
        raise InvalidInput(f"body is not an OTLP/JSON ExportTraceServiceRequest: {exc}") from None
