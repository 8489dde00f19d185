"""The C decoder of OTLP protobuf trace requests (goldloop._otlp_wire) against the generated
protobuf classes, the reference: same records, same problems, same verdict on corrupt bodies."""

from __future__ import annotations

import os
import random
import struct
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from goldloop.domain.errors import InvalidInput
from goldloop.domain.otel import decode as otel_decode
from goldloop.domain.otel.decode import OtelSpan, pb_traces_generated
from otlp_builders import T0_NS, kvs, request, span

TRACE = "0af7651916cd43dd8448eb211c80319c"
ROOT = "b7ad6b7169203331"
CHILD = "00f067aa0ba902b7"

c_decode = otel_decode.c_decode_trace_request
IN_CI = os.environ.get("CI", "").lower() == "true"


def test_the_c_decoder_is_built_where_ci_runs() -> None:
    if c_decode is None:
        message = "goldloop._otlp_wire was not built (no C compiler at install?)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


needs_c = pytest.mark.skipif(c_decode is None, reason="goldloop._otlp_wire was not built")


def reference(body: bytes) -> tuple[list[OtelSpan], list[str]] | str:
    try:
        return pb_traces_generated(body)
    except InvalidInput:
        return "invalid"


def decoded(body: bytes) -> tuple[list[OtelSpan], list[str]] | str:
    assert c_decode is not None
    try:
        return c_decode(body, OtelSpan)
    except ValueError:
        return "invalid"


def _rich_request() -> ExportTraceServiceRequest:
    """Every field the decoder reads, and values of every AnyValue kind."""
    attrs: dict[str, Any] = {
        "text": "refund policy, non-refundable ✓ 退款",
        "empty": "",
        "yes": True,
        "no": False,
        "count": 3,
        "negative": -42,
        "big": 2**63 - 1,
        "smallest": -(2**63),
        "ratio": 0.25,
        "minus_zero": -0.0,
        "list": ["a", 1, 2.5, True, ["nested", {"deep": [1, 2]}]],
        "map": {"k": "v", "n": {"m": [None, "x"]}},
        "empty_list": [],
        "empty_map": {},
    }
    root = span(TRACE, ROOT, None, "agent", attrs, kind=2, error="boom")
    root.trace_state = "vendor=1"
    root.flags = 0x301
    root.dropped_attributes_count = 4
    root.dropped_events_count = 2**32 - 1
    root.dropped_links_count = 1
    root.attributes.add(key="bytes", value=AnyValue(bytes_value=bytes(range(256))))
    root.attributes.add(key="unset")  # an AnyValue with nothing set
    for n in range(4):  # base64 padding of 0-3 trailing bytes
        root.attributes.add(key=f"b{n}", value=AnyValue(bytes_value=b"\xff\x00\x10"[:n]))
    ev = root.events.add(name="exception", time_unix_nano=T0_NS + 5)
    ev.attributes.extend(kvs({"exception.type": "ValueError", "exception.message": "bad"}))
    ev.dropped_attributes_count = 3
    root.events.add(name="bare")
    link = root.links.add(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(CHILD))
    link.trace_state = "x=y"
    link.attributes.extend(kvs({"link.kind": "follows"}))
    root.links.add(trace_id=b"\x01\x02", span_id=b"")  # a link's ids are kept as given
    child = span(TRACE, CHILD, ROOT, "llm ✓", {"gen_ai.request.model": "m"}, kind=7)
    child.status.CopyFrom(Status(code=1))
    req = request([root, child])
    # a second resource with two scopes, one with attributes and one without a scope at all
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(kvs({"service.name": "billing", "k8s.pod": "p-1"}))
    rs.schema_url = "https://opentelemetry.io/schemas/1.30.0"
    ss = rs.scope_spans.add()
    ss.scope.name = "scope.two"
    ss.scope.attributes.extend(kvs({"scope.attr": 1}))
    ss.spans.append(span("1" * 32, "2" * 16, None, "other", {}))
    rs.scope_spans.add().spans.append(span("3" * 32, "4" * 16, None, "", {}, start=0, end=0))
    return req


@needs_c
def test_same_records_as_the_generated_classes_for_every_field() -> None:
    body = _rich_request().SerializeToString()
    ours, ref = decoded(body), reference(body)
    assert ours == ref
    assert isinstance(ours, tuple)
    spans, problems = ours
    assert problems == []
    assert [s.name for s in spans] == ["agent", "llm ✓", "other", ""]
    root = spans[0]
    # spot checks that the comparison is about real values
    assert root.attributes["smallest"] == -(2**63)
    assert root.attributes["bytes"].startswith("AAECAwQF")
    assert [root.attributes[f"b{n}"] for n in range(4)] == ["", "/w==", "/wA=", "/wAQ"]
    assert root.attributes["unset"] is None
    assert root.dropped == {"attributes": 4, "events": 2**32 - 1, "links": 1}
    assert root.links[1] == {"trace_id": "0102", "span_id": "", "trace_state": "", "attributes": {}}
    assert (root.status_code, root.status_message, root.flags) == (2, "boom", 0x301)
    assert spans[2].resource == {"service.name": "billing", "k8s.pod": "p-1"}
    assert spans[2].scope == {"name": "scope.two", "version": "", "attributes": {"scope.attr": 1}}
    assert spans[3].scope == {"name": "", "version": ""}


@needs_c
def test_unusable_ids_are_problems_named_after_the_span_as_before() -> None:
    spans = [
        span(TRACE, ROOT, None, "fine", {}),
        span("ab" * 8, ROOT, None, "short trace", {}),
        span(TRACE, "00" * 8, None, "zero span", {}),
        span(TRACE, CHILD, "cd" * 4, "short parent", {}),
    ]
    missing = Span(name="no ids")
    body = request([*spans, missing]).SerializeToString()
    ours = decoded(body)
    assert ours == reference(body)
    assert isinstance(ours, tuple)
    assert [s.name for s in ours[0]] == ["fine"]
    assert ours[1] == [
        "span 'short trace': trace_id has 8 bytes, expected 16",
        "span 'zero span': span_id is all zeros",
        "span 'short parent': parent_span_id has 4 bytes, expected 8",
        "span 'no ids': trace_id has 0 bytes, expected 16",
    ]


# ---- the wire format by hand: field order, repeats and unknown fields -------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def ld(field: int, payload: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def vi(field: int, n: int) -> bytes:
    return varint(field << 3) + varint(n)


def kv(key: str, value: bytes) -> bytes:
    return ld(1, key.encode()) + ld(2, value)


def string_value(text: str) -> bytes:
    return ld(1, text.encode())


UNKNOWN = (
    vi(90, 7)  # varint
    + varint(91 << 3 | 1)
    + struct.pack("<d", 1.5)  # fixed64
    + ld(92, b"\xff\xfe")  # bytes, not UTF-8: fine, nobody reads it as a string
    + varint(93 << 3 | 5)
    + b"\x01\x02\x03\x04"  # fixed32
    + varint(94 << 3 | 3)
    + vi(1, 5)
    + varint(94 << 3 | 4)  # a group
)


def _hand_span() -> bytes:
    status_one = vi(3, 2)
    status_two = ld(2, b"second message")
    return (
        UNKNOWN
        + ld(9, kv("late", string_value("first")))
        + ld(15, status_one)  # status in two parts: merged
        + varint(8 << 3 | 1)
        + struct.pack("<Q", T0_NS + 9)  # end before start
        + varint(7 << 3 | 1)
        + struct.pack("<Q", T0_NS)
        + ld(5, b"first name")
        + ld(5, b"hand made")  # a scalar given twice: the last wins
        + ld(9, kv("late", string_value("second")))  # a key given twice: the last wins
        # one KeyValue whose value comes twice, each an array: merged, as protobuf merges
        + ld(9, ld(1, b"arr") + ld(2, ld(5, ld(1, vi(3, 1)))) + ld(2, ld(5, ld(1, vi(3, 2)))))
        + ld(9, ld(2, string_value("v")) + ld(1, b"value first"))
        + vi(6, 2**64 - 1)  # kind -1, ten-byte varint
        + ld(15, status_two)
        + ld(2, bytes.fromhex(CHILD))
        + ld(1, bytes.fromhex(TRACE))
        + ld(4, bytes.fromhex(ROOT))
        + varint(16 << 3 | 5)
        + struct.pack("<I", 0x1FF)
        + vi(12, 2**40 + 3)  # a uint32 given more: its low 32 bits
        + ld(2, bytes.fromhex(CHILD))
    )


def _hand_request() -> bytes:
    scope = ld(1, b"hand.scope") + ld(3, kv("s", string_value("v"))) + UNKNOWN
    scope_spans = ld(2, _hand_span()) + ld(3, b"schema") + ld(1, scope)  # spans before scope
    resource = ld(1, kv("service.name", string_value("hand-svc"))) + UNKNOWN
    resource_spans = (
        ld(2, scope_spans)
        + ld(1, resource)  # after its spans
        + ld(1, ld(1, kv("second.resource.part", vi(2, 1))))  # merged into the first
    )
    return UNKNOWN + ld(1, resource_spans)


@needs_c
def test_field_order_repeats_and_unknown_fields_follow_protobuf() -> None:
    body = _hand_request()
    ours = decoded(body)
    assert ours == reference(body)
    assert isinstance(ours, tuple)
    [s] = ours[0]
    assert (s.name, s.kind, s.status_code, s.status_message) == (
        "hand made",
        -1,
        2,
        "second message",
    )
    assert (s.start_ns, s.end_ns, s.flags) == (T0_NS, T0_NS + 9, 0x1FF)
    assert s.attributes["late"] == "second"
    assert s.attributes["arr"] == [1, 2]
    assert s.attributes["value first"] == "v"
    assert s.resource == {"service.name": "hand-svc", "second.resource.part": True}
    assert s.scope == {"name": "hand.scope", "version": "", "attributes": {"s": "v"}}
    assert s.dropped == {"events": 3}


@needs_c
@pytest.mark.parametrize(
    ("body", "why"),
    [
        (ld(1, ld(2, ld(2, ld(5, b"\xff")))), "span name not UTF-8"),
        (ld(1, ld(2, ld(3, b"\xc3"))), "schema_url not UTF-8"),
        (ld(1, ld(1, ld(3, ld(2, b"\xe2\x82")))), "entity reference not UTF-8"),
        (ld(1, b"\x0a\x05abc"), "length past the end of its message"),
        (b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "varint longer than 10 bytes"),
        (vi(0, 1), "field number 0"),
        (varint(5 << 3 | 6) + b"\x00", "wire type 6"),
        (varint(5 << 3 | 4), "an end-group tag with no group"),
        (varint(5 << 3 | 3) + vi(1, 1), "a group with no end"),
        (ld(1, ld(2, ld(2, varint(7 << 3 | 1) + b"\x00\x00"))), "fixed64 cut short"),
    ],
)
def test_bodies_the_generated_classes_reject_are_rejected(body: bytes, why: str) -> None:
    assert reference(body) == "invalid", why
    with pytest.raises(InvalidInput, match="not an OTLP ExportTraceServiceRequest"):
        otel_decode.decode_traces(body, otel_decode.PROTOBUF)


def _nested_arrays(depth: int) -> bytes:
    value = string_value("bottom")
    for _ in range(depth):
        value = ld(5, ld(1, value))
    return value


@needs_c
def test_nesting_is_bounded_not_a_crash() -> None:
    def body(depth: int) -> bytes:
        one = ld(1, bytes.fromhex(TRACE)) + ld(2, bytes.fromhex(ROOT))
        return ld(1, ld(2, ld(2, one + ld(9, kv("deep", _nested_arrays(depth))))))

    shallow = decoded(body(20))
    assert isinstance(shallow, tuple)
    value = shallow[0][0].attributes["deep"]
    for _ in range(20):
        value = value[0]
    assert value == "bottom"
    assert decoded(body(10_000)) == "invalid"  # deeper than any stack would allow in Python


# ---- where a differential fuzz found the two apart (issue 22, item 7) ------------------------
# Each case pins what the generated classes (upb) do, then holds the C decoder to it.

ONE_SPAN_IDS = ld(1, bytes.fromhex(TRACE)) + ld(2, bytes.fromhex(ROOT))
GROUP, GROUP_END = varint(94 << 3 | 3), varint(94 << 3 | 4)


def _in_span(fields: bytes) -> bytes:
    """A request with one span made of its ids and `fields`."""
    return ld(1, ld(2, ld(2, ONE_SPAN_IDS + fields)))


def _attribute(value: bytes) -> bytes:
    """A request with one span whose attribute "a" is the AnyValue `value`."""
    return _in_span(ld(9, kv("a", value)))


def padded(n: int, size: int) -> bytes:
    """The varint of n written in `size` bytes (trailing 0x80 continuation bytes, then 0)."""
    out = bytearray(varint(n))
    while len(out) < size:
        out[-1] |= 0x80
        out.append(0)
    return bytes(out)


def _same_as_reference(body: bytes) -> tuple[list[OtelSpan], list[str]] | str:
    ours, ref = decoded(body), reference(body)
    assert ours == ref
    return ref


@needs_c
@pytest.mark.parametrize("size", range(1, 11))
@pytest.mark.parametrize(
    "where",
    [
        "known field",
        "unknown field",
        "inside a group",
        "the request",
    ],
)
def test_a_tag_in_more_than_five_bytes_is_invalid(where: str, size: int) -> None:
    body = {
        "known field": _in_span(padded(5 << 3 | 2, size) + varint(1) + b"x"),
        "unknown field": _in_span(padded(90 << 3, size) + varint(1)),
        "inside a group": _in_span(GROUP + padded(90 << 3, size) + varint(1) + GROUP_END),
        "the request": padded(1 << 3 | 2, size) + varint(0),
    }[where]
    assert (_same_as_reference(body) == "invalid") == (size > 5)


@needs_c
@pytest.mark.parametrize("size", range(1, 11))
@pytest.mark.parametrize("where", ["known field", "unknown field", "inside a group"])
def test_a_length_in_more_than_five_bytes_is_invalid(where: str, size: int) -> None:
    body = {
        "known field": _in_span(varint(5 << 3 | 2) + padded(1, size) + b"x"),
        "unknown field": _in_span(varint(92 << 3 | 2) + padded(1, size) + b"x"),
        "inside a group": _in_span(
            GROUP + varint(92 << 3 | 2) + padded(1, size) + b"x" + GROUP_END
        ),
    }[where]
    assert (_same_as_reference(body) == "invalid") == (size > 5)


ARRAY_OF_ONE = ld(5, ld(1, vi(3, 1)))
ARRAY_OF_TWO = ld(5, ld(1, vi(3, 2)))


@needs_c
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (string_value("s") + vi(8, 3), None),  # string_value_strindex replaces the string
        (string_value("s") + vi(8, 2**64 - 1), None),
        (vi(8, 3), None),
        (vi(8, 3) + string_value("s"), "s"),
        (ARRAY_OF_ONE + vi(8, 3) + ARRAY_OF_TWO, [2]),  # ... and ends the array before it
        (ld(6, ld(1, kv("k", vi(3, 1)))) + vi(8, 0) + ld(6, ld(1, kv("j", vi(3, 2)))), {"j": 2}),
        (string_value("s") + ld(8, b"\x03"), "s"),  # the wrong wire type: an unknown field
    ],
)
def test_string_value_strindex_is_a_member_of_the_value_oneof(value: bytes, expected: Any) -> None:
    ref = _same_as_reference(_attribute(value))
    assert isinstance(ref, tuple)
    assert ref[0][0].attributes["a"] == expected


def _arrays(depth: int, bottom: bytes) -> bytes:
    value = bottom
    for _ in range(depth):
        value = ld(5, ld(1, value))
    return value


def _kvlists(depth: int, bottom: bytes) -> bytes:
    value = bottom
    for _ in range(depth):
        value = ld(6, ld(1, kv("k", value)))
    return value


def _groups(depth: int) -> bytes:
    return GROUP * depth + GROUP_END * depth


# The request is at depth 0, and each message inside another, unknown groups included, one
# deeper; a message deeper than 100 makes the body invalid. A span attribute's AnyValue is at
# depth 5, so 47 nested arrays reach 99 and 48 reach 101.
@needs_c
@pytest.mark.parametrize(
    ("make", "deepest_valid"),
    [
        (lambda n: _attribute(_arrays(n, string_value("bottom"))), 47),
        (lambda n: _attribute(_arrays(n, b"")), 47),
        (lambda n: _attribute(_arrays(n, ld(5, b""))), 47),  # an empty array at the bottom
        (lambda n: _attribute(_kvlists(n, string_value("bottom"))), 31),
        (lambda n: _attribute(_kvlists(n, ld(6, b""))), 31),
        (lambda n: _attribute(_arrays(1, _groups(n))), 93),  # in an AnyValue in an array
        (lambda n: _groups(n), 100),  # in the request
        (lambda n: ld(1, _groups(n)), 99),  # in a ResourceSpans
        (lambda n: ld(1, ld(1, ld(3, _groups(n)))), 97),  # in an EntityRef
        (lambda n: ld(1, ld(2, ld(1, ld(3, _groups(n))))), 96),  # in a scope's KeyValue
        (lambda n: _in_span(_groups(n)), 97),
        (lambda n: _in_span(ld(15, _groups(n))), 96),  # in the status
        (lambda n: _in_span(ld(11, ld(3, _groups(n)))), 95),  # in an event's KeyValue
        (lambda n: _in_span(ld(13, ld(4, ld(2, _groups(n))))), 94),  # in a link's AnyValue
        (lambda n: _attribute(_groups(n)), 95),
        (lambda n: _attribute(ld(5, _groups(n))), 94),  # in an ArrayValue
        (lambda n: _attribute(ld(6, _groups(n))), 94),  # in a KeyValueList
    ],
)
def test_nesting_is_limited_at_the_depth_the_generated_classes_allow(
    make: Any, deepest_valid: int
) -> None:
    assert _same_as_reference(make(deepest_valid)) != "invalid"
    assert _same_as_reference(make(deepest_valid + 1)) == "invalid"


@needs_c
@pytest.mark.parametrize(
    ("inside", "valid"),
    [
        (vi(0, 1), True),
        (varint(0 << 3 | 1) + bytes(8), True),
        (ld(0, b"x"), True),
        (varint(0 << 3 | 5) + bytes(4), True),
        (varint(0 << 3 | 3) + vi(5, 1) + varint(0 << 3 | 4), True),  # a group numbered 0
        (GROUP + vi(0, 1) + GROUP_END, True),  # in a group in a group
        (varint(0 << 3 | 4), False),  # ends no group: the group open is number 94
    ],
)
def test_field_number_zero_is_skipped_inside_an_unknown_group(inside: bytes, valid: bool) -> None:
    for body in (
        _in_span(GROUP + inside + GROUP_END),
        _attribute(string_value("s") + GROUP + inside + GROUP_END),
        GROUP + inside + GROUP_END,
    ):
        assert (_same_as_reference(body) != "invalid") == valid


@needs_c
@pytest.mark.parametrize("wire_type", [0, 1, 2, 3, 5])
def test_field_number_zero_is_invalid_outside_a_group(wire_type: int) -> None:
    value = {0: b"\x01", 1: bytes(8), 2: b"\x01x", 3: varint(0 << 3 | 4), 5: bytes(4)}[wire_type]
    assert _same_as_reference(_in_span(varint(wire_type) + value)) == "invalid"


@needs_c
def test_accepts_any_bytes_like_body() -> None:
    body = _rich_request().SerializeToString()
    expected = decoded(body)
    assert c_decode is not None
    assert c_decode(bytearray(body), OtelSpan) == expected
    assert c_decode(memoryview(body), OtelSpan) == expected


# ---- generated and corrupted bodies ---------------------------------------------------------

_scalars = (
    st.text(max_size=20)
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@needs_c
@settings(max_examples=150, deadline=None)
@given(
    attrs=st.dictionaries(st.text(max_size=30), _values, max_size=8),
    name=st.text(max_size=40),
    kind=st.integers(min_value=-(2**31), max_value=2**31 - 1),
    times=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
)
def test_generated_spans_decode_identically(
    attrs: dict[str, Any], name: str, kind: int, times: tuple[int, int]
) -> None:
    s = Span(
        trace_id=bytes.fromhex(TRACE),
        span_id=bytes.fromhex(ROOT),
        name=name,
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=times[0],
        end_time_unix_nano=times[1],
    )
    s.attributes.extend(kvs(attrs))
    s.attributes.append(KeyValue(key="after", value=AnyValue()))
    body = request([s]).SerializeToString()
    ours = decoded(body)
    assert ours == reference(body)
    assert isinstance(ours, tuple)
    assert len(ours[0]) == 1


@needs_c
def test_corrupted_bodies_get_the_same_verdict() -> None:
    """Random byte edits of valid bodies: where the reference rejects, so must we; where it
    accepts, we give the same records."""
    rng = random.Random(20261126)
    bodies = [_rich_request().SerializeToString(), _hand_request()]
    accepted = rejected = 0
    for n in range(4000):
        body = bytearray(bodies[n % 2])
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(body))
            edit = rng.random()
            if edit < 0.6:
                body[at] = rng.randrange(256)
            elif edit < 0.8:
                del body[at : at + rng.randint(1, 6)]
            else:
                body[at:at] = rng.randbytes(rng.randint(1, 4))
        ours, ref = decoded(bytes(body)), reference(bytes(body))
        assert ours == ref, f"edit {n} of body {n % 2}: {bytes(body)!r}"
        if ref == "invalid":
            rejected += 1
        else:
            accepted += 1
    assert accepted > 200
    assert rejected > 200


@needs_c
def test_no_memory_is_kept_after_valid_or_invalid_bodies() -> None:
    """Reference leaks on the error paths would show up as memory that grows with calls."""
    good = _rich_request().SerializeToString()
    bad = [good[:n] for n in range(0, len(good), 7)] + [_hand_request()[:-3]]

    def round_of_calls() -> None:
        for body in [good, *bad]:
            decoded(body)

    round_of_calls()  # warm caches (interned strings, free lists)
    tracemalloc.start()
    try:
        round_of_calls()
        first, _ = tracemalloc.get_traced_memory()
        for _ in range(30):
            round_of_calls()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # one round allocates ~1 MB of records; a leak of one object per call would keep >100 KB
    assert after - first < 20_000


# ---- json_spaced: otel_dedupe.spaced in C ---------------------------------------------------


@needs_c
@settings(max_examples=600, deadline=None)
@given(st.text(alphabet='"\\,: ab{}[]1', max_size=60))
def test_json_spaced_equals_the_python_version_on_any_ascii_text(text: str) -> None:
    # any text, not only JSON: unterminated strings, runs of backslashes, stray quotes
    from goldloop._otlp_wire import json_spaced
    from goldloop.domain.otel.dedupe import spaced_py

    assert json_spaced(text) == spaced_py(text)


@needs_c
@pytest.mark.parametrize("bad", ["café", "€", b"bytes", None])
def test_json_spaced_takes_only_ascii_text(bad: Any) -> None:
    from goldloop._otlp_wire import json_spaced

    with pytest.raises(TypeError):
        json_spaced(bad)
