"""The ingest fast paths give the same answers as the plain ways of computing them.

- ``group_by_prefix`` (one pass over a span's keys) equals scanning the keys once per prefix;
- ``spaced`` (orjson's text with Python's separators) equals ``json.dumps`` on ASCII content,
  including strings full of quotes, backslashes, commas and colons;
- content moved out of the attributes is restored to exactly the text that was sent, whatever its
  spelling, and a parsed value is recognised by identity the same as by equality.
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from goldloop.domain.otel_attrs import PREFIXES, SpanAttributes, group_by_prefix
from goldloop.domain.otel_dedupe import move_content, restore_content, spaced

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


@pytest.mark.parametrize("seed", range(5))
def test_spaced_text_equals_json_dumps_on_ascii_content(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(400):
        value = _random_value(rng)
        assert spaced(orjson.dumps(value).decode()) == json.dumps(value)


def test_spaced_text_of_each_tricky_string() -> None:
    for text in TRICKY_STRINGS:
        for value in (text, [text, text], {text: text, "k": [text, {text: 1}]}):
            assert spaced(orjson.dumps(value).decode()) == json.dumps(value)


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
