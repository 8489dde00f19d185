"""``list_examples(filter=...)``: LangSmith's example filter, applied in SQL on both backends,
through the real SDK (sync and async) against a live server; and the parser on its own."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import httpx
import langsmith
import pytest

from goldloop.domain.errors import InvalidInput
from goldloop.domain.langsmith.example_filter import AllOf, Exists, Has, Not, parse_filter
from goldloop.settings import Settings
from langsmith_live import HTTP_TIMEOUT, Live, live_server, sdk_client

META: list[dict[str, Any] | None] = [
    {"foo": "bar", "baz": "qux"},
    {"foo": "bar"},
    {"foo": "other", "tenant_id": "t1"},
    {"n": 3, "flag": True, "gone": None},
    {"n": 3.5, "flag": False},
    {"n": "3"},
    None,
]


def _matches(meta: dict[str, Any] | None, tree: Any) -> bool:
    """The reference semantics, in Python, to check the SQL against."""
    if isinstance(tree, Exists):
        return meta is not None and tree.key in meta
    if isinstance(tree, Has):
        return meta is not None and all(
            k in meta and type(meta[k]) is type(v) and meta[k] == v
            if isinstance(v, bool | str) or v is None
            else k in meta
            and isinstance(meta[k], int | float)
            and not isinstance(meta[k], bool)
            and meta[k] == v
            for k, v in tree.pairs
        )
    if isinstance(tree, AllOf):
        return all(_matches(meta, p) for p in tree.parts)
    if isinstance(tree, Not):
        return not _matches(meta, tree.part)
    return any(_matches(meta, p) for p in tree.parts)


FILTERS = [
    'exists(metadata, "baz")',
    'exists(metadata, "bazzz")',
    'has("metadata", \'{"foo": "bar"}\')',
    'has(metadata, \'{"foo": "bar", "baz": "qux"}\')',
    'and(not(has(metadata, \'{"foo": "bar"}\')), exists(metadata, "tenant_id"))',
    "or(has(metadata, '{\"n\": 3}'), has(metadata, '{\"flag\": false}'))",
    'has(metadata, \'{"n": "3"}\')',
    "has(metadata, '{\"flag\": true}')",
    "has(metadata, '{\"gone\": null}')",
    'exists(metadata, "gone")',
    'not(exists(metadata, "foo"))',
    'and(eq(metadata_key, "foo"), eq(metadata_value, "other"))',
]


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    with live_server(settings) as server:
        yield server


@pytest.mark.slow
def test_filters_select_what_the_reference_semantics_select(live: Live) -> None:
    with sdk_client(live) as client:
        ds = client.create_dataset("filtered")
        made = client.create_examples(
            dataset_id=ds.id,
            examples=[{"inputs": {"i": i}, "metadata": m} for i, m in enumerate(META)],
        )
        ids = [str(i) for i in made["example_ids"]]
        other = client.create_dataset("elsewhere")
        client.create_example(inputs={"i": 99}, metadata={"foo": "bar"}, dataset_id=other.id)
        for text in FILTERS:
            tree = parse_filter(text)
            want = {ids[i] for i, m in enumerate(META) if _matches(m, tree)}
            got = {str(e.id) for e in client.list_examples(dataset_id=ds.id, filter=text)}
            assert got == want, text
        # the SDK test-suite's own calls
        assert (
            len(list(client.list_examples(dataset_id=ds.id, filter='exists(metadata, "baz")'))) == 1
        )
        assert (
            list(client.list_examples(dataset_id=ds.id, filter='exists(metadata, "bazzz")')) == []
        )
        # with example ids instead of a dataset, and with a split
        by_id = client.list_examples(example_ids=ids[:3], filter='exists(metadata, "baz")')
        assert [str(e.id) for e in by_id] == [ids[0]]
        client.update_example(ids[1], split="train")
        in_split = client.list_examples(
            dataset_id=ds.id, splits=["train"], filter='has(metadata, \'{"foo": "bar"}\')'
        )
        assert [str(e.id) for e in in_split] == [ids[1]]


@pytest.mark.slow
def test_filters_follow_as_of_and_the_async_client(live: Live) -> None:
    with sdk_client(live) as client:
        ds = client.create_dataset("versioned-filter")
        one = client.create_example(inputs={"q": 1}, metadata={"k": "old"}, dataset_id=ds.id)
        before = next(iter(client.list_dataset_versions(dataset_id=ds.id))).as_of
        client.update_example(one.id, metadata={"k": "new"})

    async def scenario() -> tuple[list[str], list[str]]:
        async with langsmith.AsyncClient(api_url=live.endpoint, api_key=live.key) as aclient:
            now = [
                str(e.id)
                async for e in aclient.list_examples(
                    dataset_id=ds.id, filter='has(metadata, \'{"k": "new"}\')'
                )
            ]
            then = [
                str(e.id)
                async for e in aclient.list_examples(
                    dataset_id=ds.id,
                    filter='has(metadata, \'{"k": "old"}\')',
                    as_of=before.isoformat(),
                )
            ]
            return now, then

    now, then = asyncio.run(scenario())
    assert now == [str(one.id)]
    assert then == [str(one.id)]


@pytest.mark.slow
def test_invalid_filters_are_400s_naming_where(live: Live) -> None:
    headers = {"x-api-key": live.key}
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=live.endpoint, headers=headers) as raw:
        ds = raw.post("/datasets", json={"name": "bad-filters"}).json()
        cases = {
            'exists(metadata, "k"': "position 20",
            'exists(metadata "k")': "position 16",
            "has(metadata, '{\"k\": 1}') extra": "position 26",
            '$exists(metadata, "k")': "position 0",
            'eq(name, "x")': "'eq'",
            'exists(inputs, "k")': "metadata only",
            "has(metadata, 'not json')": "not valid JSON",
            "has(metadata, '{\"k\": [1]}')": "'k'",
            'exists(metadata, "a\\"b")': "not valid",
        }
        for text, needle in cases.items():
            r = raw.get("/examples", params={"dataset": ds["id"], "filter": text})
            assert r.status_code == 400, (text, r.text)
            assert needle in r.json()["error"]["message"], (text, r.text)


def test_parser_shapes() -> None:
    assert parse_filter("") is None
    assert parse_filter('exists(metadata, "k")') == Exists("k")
    assert parse_filter('has(metadata, \'{"a": 1, "b": null}\')') == Has((("a", 1), ("b", None)))
    tree = parse_filter('and(not(exists(metadata, "a")), exists("metadata", "b"))')
    assert tree == AllOf((Not(Exists("a")), Exists("b")))
    rng = random.Random(21)
    errors: list[InvalidInput] = []
    for _ in range(200):  # fuzzed garbage is a 400 with a message, never another exception
        text = "".join(rng.choice("ehasxit(),\"' {}:metadata01") for _ in range(rng.randint(1, 40)))
        try:
            parse_filter(text)
        except InvalidInput as exc:
            errors.append(exc)
    assert errors
    assert all(e.message.startswith("filter:") for e in errors)
    assert all(e.details == {"field": "filter"} for e in errors)
