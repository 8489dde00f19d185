"""JSON documents that are bare numbers survive a round trip on both backends (SQLite stores a
column declared JSON with NUMERIC affinity, turning the text "5" into the integer 5)."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("doc", [5, 2.5, -1, 0, 1.0, "5", "text", True, None, [1, 2], {"a": 1}])
async def test_corrections_of_every_json_shape_round_trip(
    client: httpx.AsyncClient, doc: object
) -> None:
    created = await client.post(
        "/api/v1/feedback",
        json={"run_id": "r-1", "key": "k", "score": 0, "correction": doc, "source": "human"},
    )
    assert created.status_code == 201, created.text
    got = (await client.get(f"/api/v1/feedback/{created.json()['id']}")).json()
    # Equal as JSON: on SQLite an integral float document (1.0) comes back as the integer 1.
    assert got["correction"] == doc
    assert isinstance(got["correction"], bool) == isinstance(doc, bool)
    assert isinstance(got["correction"], str) == isinstance(doc, str)
