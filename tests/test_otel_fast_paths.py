"""The ingest fast paths give the same answers as the plain ways of computing them.

- ``group_by_prefix`` (one pass over a span's keys) equals scanning the keys once per prefix;
- ``spaced`` (orjson's text with Python's separators) equals ``json.dumps`` on ASCII content,
  including strings full of quotes, backslashes, commas and colons, in C and in Python;
- content moved out of the attributes is restored to exactly the text that was sent, whatever its
  spelling, and a parsed value is recognised by identity the same as by equality;
- the protobuf decoder and the (independent) OTLP/JSON one give the same spans for varied
  attribute trees (arrays, kvlists, bytes, empty values), events, links, dropped counts and ids
  that are also valid base64 (the JSON hex-id trap).
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from goldloop.domain.otel import dedupe as otel_dedupe
from goldloop.domain.otel.attrs import PREFIXES, SpanAttributes, group_by_prefix
from goldloop.domain.otel.decode import JSON, PROTOBUF, decode_traces
from goldloop.domain.otel.dedupe import move_content, restore_content, spaced, spaced_py
from otlp_builders import any_value, request, to_json
from otlp_builders import span as build_span

TRICKY_STRINGS = [
    "",
    "plain",
    'say "hi"',
    "ends with a backslash \\",
    "two backslashes \\\\",
    'backslash then quote \\"',
    '\\\\"',
    "a, b: c",
    '{"not": "json", "x": [1, 2]}',
    "line\nbreak\ttab\r\x01\x1f",
    "/slashes/ and \\u0041",
    ",:,:",
    '":"',
    '","',
]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["str", "int", "bool", "null"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return rng.choice(TRICKY_STRINGS) + rng.choice(["", "x", ", ", ": "])
    if kind == "int":
        return rng.randint(-(10**12), 10**12)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {
        rng.choice(TRICKY_STRINGS) + str(i): _random_value(rng, depth + 1)
        for i in range(rng.randint(0, 4))
    }


def test_grouping_in_one_pass_equals_one_scan_per_prefix() -> None:
    rng = random.Random(7)
    suffixes = ["", "model", "0.message.role", "1.content", "x.y.z", ".", "name"]
    keys = [p + s for p in PREFIXES for s in suffixes]
    keys += ["gen_ai.requestx", "gen_ai.request", "llm", "llm.model_name", "", ".", "gen_ai"]
    keys += [p[:-1] for p in PREFIXES]  # the prefix without its dot is not in the group
    for _ in range(300):
        attrs = {k: rng.random() for k in rng.sample(keys, rng.randint(0, len(keys)))}
        groups = group_by_prefix(attrs)
        view = SpanAttributes(attrs)
        for prefix in PREFIXES:
            expected = {k[len(prefix) :]: v for k, v in attrs.items() if k.startswith(prefix)}
            assert groups.get(prefix, {}) == expected
            assert list(view.group(prefix)) == list(expected)  # same order as the attributes
        assert set(groups) <= set(PREFIXES)


SPACED = [
    pytest.param(spaced, id="spaced"),  # C for ASCII text when the extension is built
    pytest.param(spaced_py, id="python"),
]


def test_spaced_uses_the_c_version_when_it_is_built() -> None:
    from goldloop.domain.otel import decode as otel_decode

    # built together: where one is there (always in CI, see test_otlp_wire) so is the other
    assert (otel_dedupe._c_spaced is None) == (otel_decode.c_decode_trace_request is None)


@pytest.mark.parametrize("spaced_fn", SPACED)
@pytest.mark.parametrize("seed", range(5))
def test_spaced_text_equals_json_dumps_on_ascii_content(seed: int, spaced_fn: Any) -> None:
    rng = random.Random(seed)
    for _ in range(400):
        value = _random_value(rng)
        assert spaced_fn(orjson.dumps(value).decode()) == json.dumps(value)


@pytest.mark.parametrize("spaced_fn", SPACED)
def test_spaced_text_of_each_tricky_string(spaced_fn: Any) -> None:
    for text in TRICKY_STRINGS:
        for value in (text, [text, text], {text: text, "k": [text, {text: 1}]}):
            assert spaced_fn(orjson.dumps(value).decode()) == json.dumps(value)


def test_spaced_text_that_is_not_ascii_is_spaced_in_python() -> None:
    value = {"prix": "5 €, non remboursable", "x": [1, "é:"]}
    compact = orjson.dumps(value).decode()
    assert spaced(compact) == spaced_py(compact) == json.dumps(value, ensure_ascii=False)


@pytest.mark.parametrize(
    "dump",
    [
        lambda v: orjson.dumps(v).decode(),
        json.dumps,
        lambda v: json.dumps(v, ensure_ascii=False),
        lambda v: json.dumps(v, indent=1),  # not a known spelling: must stay an attribute
    ],
    ids=["compact", "python", "python-utf8", "indented"],
)
def test_moved_content_is_restored_to_the_exact_text(dump: Any) -> None:
    rng = random.Random(3)
    for _ in range(200):
        value = [{"role": "user", "parts": [{"type": "text", "content": _random_value(rng)}]}]
        value.append({"role": "assistant", "content": 'héllo ✓, "ok": 1'})
        raw = dump(value)
        attrs = {"gen_ai.input.messages": raw, "other": 1}
        parsed = orjson.loads(raw)
        fields = {"inputs": {"messages": parsed}}
        by_identity = move_content(attrs, fields, {"gen_ai.input.messages": parsed})
        by_equality = move_content(attrs, {"inputs": {"messages": orjson.loads(raw)}})
        assert by_identity == by_equality
        kept, moved = by_identity
        assert restore_content(kept, moved, fields) == attrs
        assert ("gen_ai.input.messages" in moved) == ("\n" not in raw)


def _random_attr(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(
        ["str", "int", "float", "bool", "bytes", "empty", "list", "kvlist"][: 8 - 2 * (depth > 2)]
    )
    if kind == "str":
        return rng.choice(TRICKY_STRINGS)
    if kind == "int":
        return rng.choice([0, -1, 2**62, rng.randint(-1000, 1000)])
    if kind == "float":
        return rng.choice([0.5, -2.25, 1e300, 3.0])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "bytes":
        return AnyValue(bytes_value=rng.randbytes(rng.randint(0, 12)))
    if kind == "empty":
        return AnyValue()
    if kind == "list":
        return [_random_attr(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {f"k{i}": _random_attr(rng, depth + 1) for i in range(rng.randint(0, 3))}


def _value(v: Any) -> AnyValue:
    if isinstance(v, AnyValue):
        return v
    if isinstance(v, list):
        out = AnyValue()
        out.array_value.values.extend(_value(x) for x in v)
        return out
    if isinstance(v, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(KeyValue(key=k, value=_value(x)) for k, x in v.items())
        return out
    return any_value(v)


def _random_span(rng: random.Random) -> Span:
    # ids of decimal digits only are also valid base64: the JSON hex-id trap
    digits = rng.random() < 0.3
    hexid = (lambda n: "".join(rng.choice("123456789") for _ in range(n))) if digits else None
    trace = hexid(32) if hexid else rng.randbytes(16).hex()
    span_id = hexid(16) if hexid else rng.randbytes(8).hex()
    s = build_span(trace, span_id, rng.choice([None, rng.randbytes(8).hex()]), "s", {})
    s.attributes.extend(
        KeyValue(key=f"a.{i}", value=_value(_random_attr(rng))) for i in range(rng.randint(0, 8))
    )
    for _ in range(rng.randint(0, 2)):
        ev = s.events.add(name=rng.choice(["exception", "gen_ai.choice"]), time_unix_nano=7)
        ev.attributes.extend([KeyValue(key="x", value=_value(_random_attr(rng)))])
    if rng.random() < 0.3:
        link = s.links.add(trace_id=rng.randbytes(16), span_id=rng.randbytes(8), trace_state="a=1")
        link.attributes.extend([KeyValue(key="l", value=_value(_random_attr(rng)))])
    s.dropped_attributes_count = rng.choice([0, 0, 3])
    s.dropped_events_count = rng.choice([0, 0, 1])
    s.flags = rng.choice([0, 1, 0x301])
    s.trace_state = rng.choice(["", "k=v"])
    s.status.code = rng.choice([0, 1, 2])
    s.status.message = rng.choice(["", "boom"])
    return s


@pytest.mark.parametrize("seed", range(3))
def test_protobuf_and_json_decode_to_the_same_spans(seed: int) -> None:
    rng = random.Random(seed)
    req = request([_random_span(rng) for _ in range(200)])
    from_pb, problems_pb = decode_traces(req.SerializeToString(), PROTOBUF)
    from_json, problems_json = decode_traces(to_json(req), JSON)
    assert problems_pb == problems_json == []
    assert len(from_pb) == 200
    assert from_pb == from_json
    for span, sent in zip(from_pb, req.resource_spans[0].scope_spans[0].spans, strict=True):
        assert span.trace_id == sent.trace_id.hex()  # not base64-decoded digits
        assert span.span_id == sent.span_id.hex()
        assert list(span.attributes) == [kv.key for kv in sent.attributes]
