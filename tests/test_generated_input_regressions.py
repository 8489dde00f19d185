"""Inputs the schemathesis run (tests/test_api_schemathesis.py) found answered with a 500: each
is a clear 400 now, and stays one."""

from __future__ import annotations

import httpx
import pytest

from goldloop.domain import datasets, filters
from goldloop.domain.errors import InvalidInput


@pytest.mark.parametrize("text", ["ù = 1", "name = 'a' and Ø", "çé"])
def test_a_filter_with_a_letter_outside_ascii_is_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput, match="invalid filter at position"):
        filters.parse(text)


@pytest.mark.parametrize("text", ["³", "٣", "99999999999999999999999"])
def test_an_as_of_that_is_not_an_ascii_version_is_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput, match="as_of"):
        datasets.parse_as_of(text)


async def test_the_api_answers_them_with_400(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/runs", params={"filter": "ù = 1"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"]["position"] == 0
    created = await client.post("/api/v1/datasets", json={"name": "d"})
    assert created.status_code == 201, created.text
    r = await client.get("/api/v1/datasets/d/diff", params={"from": "³"})
    assert r.status_code == 400, r.text


async def test_an_experiment_with_nul_in_its_metadata_is_stored_alike(
    client: httpx.AsyncClient,
) -> None:
    body = {"name": "e", "metadata": {"k\u0000": "v\u0000"}, "evaluators": ["a\u0000"]}
    r = await client.post("/api/v1/experiments", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["metadata"] == {"k\ufffd": "v\ufffd"}


async def test_numbers_no_column_can_hold_are_a_400(client: httpx.AsyncClient) -> None:
    """Found by schemathesis: an integer wider than 64 bits inside a dataset's JSON schema, and
    an alert rule checked every 4e25 seconds, were 500s (the JSON encoder and the database
    refused them after the request was accepted)."""
    r = await client.post(
        "/api/v1/datasets",
        json={"name": "wide", "inputs_schema": {"x": [-24071236421706022912]}},
    )
    assert r.status_code == 400, r.text
    assert "outside the range" in r.json()["error"]["message"]
    project = (await client.post("/api/v1/projects", json={"name": "p-wide"})).json()
    r = await client.post(
        "/api/v1/alert-rules",
        json={
            "project_id": project["id"],
            "name": "a",
            "metric": {"kind": "cost"},
            "condition": {"type": "change", "min_effect": 8.9e254},
            "every_s": 39856365897395631128838144,
        },
    )
    assert r.status_code == 400, r.text


async def test_a_nul_in_any_json_column_is_stored_alike(client: httpx.AsyncClient) -> None:
    """Found by schemathesis on PostgreSQL: a NUL in a dataset's JSON schema or an example's
    lineage was a 500 ("unsupported Unicode escape sequence"); every JSON column now follows
    the NUL rule where it is encoded."""
    r = await client.post(
        "/api/v1/datasets",
        json={"name": "nul-schema", "inputs_schema": {"type": "object", "title": "a\u0000b"}},
    )
    assert r.status_code == 201, r.text
    stored = (await client.get("/api/v1/datasets/nul-schema")).json()
    assert stored["inputs_schema"]["title"] == "a\ufffdb"
    r = await client.post(
        "/api/v1/datasets/nul-schema/examples",
        json={"examples": [{"inputs": {}, "lineage": {"k\u0000": ["v\u0000"]}}]},
    )
    assert r.status_code == 201, r.text
    r = await client.get("/api/v1/datasets/nul-schema/examples")
    assert r.json()["items"][0]["lineage"] == {"k\ufffd": ["v\ufffd"]}
