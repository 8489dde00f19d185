from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from goldloop.http.app import create_app
from goldloop.settings import load_settings

API = "/api/v1"
KEEP = ("id", "inputs", "outputs", "metadata", "splits", "lineage")


@pytest.fixture
async def empty_instance(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A second, empty Goldloop (SQLite in its own data directory)."""
    settings = load_settings({"data_dir": tmp_path / "other-instance"}, environ={})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        key = settings.admin_key_path.read_text().strip()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://other.test", headers={"x-api-key": key}
        ) as c:
            yield c


async def seed(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await client.post(
        f"{API}/runs/batch",
        json={
            "runs": [
                {
                    "id": "r1",
                    "trace_id": "t1",
                    "name": "n",
                    "inputs": {"q": "from run"},
                    "outputs": {"a": "wrong"},
                }
            ]
        },
    )
    assert r.status_code == 202
    await client.post(
        f"{API}/feedback", json={"run_id": "r1", "key": "ok", "score": 0, "correction": {"a": "ok"}}
    )
    await client.post(f"{API}/datasets", json={"name": "golden"})
    await client.post(
        f"{API}/datasets/golden/examples",
        json={
            "examples": [
                {"inputs": {"q": "plain"}, "outputs": {"a": 1}},
                {
                    "id": "custom",
                    "inputs": {"q": 'ünïcode, "quotes"\nnewline'},
                    "outputs": "text",
                    "metadata": {"topic": "refunds", "n": 2.5, "flag": True},
                    "splits": ["test", "a"],
                },
                {
                    "inputs": ["a", "list"],
                    "outputs": None,
                    "metadata": {"nested": {"k": [1, None]}},
                },
            ]
        },
    )
    await client.post(
        f"{API}/datasets/golden/runs", json={"run_ids": ["r1"], "prefer_correction": True}
    )
    items = (await client.get(f"{API}/datasets/golden/examples")).json()["items"]
    assert len(items) == 4
    return [{k: e[k] for k in KEEP} for e in items]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
async def test_export_then_import_into_an_empty_instance_gives_the_same_examples(
    client: httpx.AsyncClient, empty_instance: httpx.AsyncClient, fmt: str
) -> None:
    original = await seed(client)
    exported = await client.get(f"{API}/datasets/golden/export", params={"format": fmt})
    assert exported.status_code == 200, exported.text
    assert exported.headers["x-goldloop-dataset-version"] == "2"
    assert exported.headers["x-goldloop-example-count"] == "4"
    assert f"golden-v2.{fmt}" in exported.headers["content-disposition"]

    await empty_instance.post(f"{API}/datasets", json={"name": "golden"})
    imported = await empty_instance.post(
        f"{API}/datasets/golden/import", params={"format": fmt}, content=exported.content
    )
    assert imported.status_code == 201, imported.text
    assert (imported.json()["version"], len(imported.json()["added"])) == (1, 4)
    copy = (await empty_instance.get(f"{API}/datasets/golden/examples")).json()["items"]
    assert [{k: e[k] for k in KEEP} for e in copy] == original

    again = await empty_instance.post(
        f"{API}/datasets/golden/import", params={"format": fmt}, content=exported.content
    )
    assert (again.json()["changed"], len(again.json()["unchanged"])) == (False, 4)


async def test_export_as_of_and_parquet_schema(client: httpx.AsyncClient) -> None:
    await seed(client)
    v1 = await client.get(f"{API}/datasets/golden/export", params={"format": "parquet", "as_of": 1})
    table = pq.read_table(io.BytesIO(v1.content))
    assert table.num_rows == 3
    assert [(f.name, str(f.type)) for f in table.schema] == [
        ("id", "string"),
        ("inputs", "string"),
        ("outputs", "string"),
        ("metadata", "string"),
        ("splits", "list<element: string>"),
        ("lineage", "string"),
    ]
    assert table.schema.metadata[b"goldloop.format"] == b"dataset-examples/1"
    assert table.schema.metadata[b"goldloop.version"] == b"1"
    lines = (await client.get(f"{API}/datasets/golden/export")).content.splitlines()
    assert len(lines) == 4


async def test_csv_with_flat_columns(client: httpx.AsyncClient) -> None:
    await client.post(f"{API}/datasets", json={"name": "sheet"})
    csv_text = (
        "inputs.question,outputs.answer,metadata.topic,splits\n"
        'Refund?,No,refunds,"test,hard"\n'
        "Pets?,Dogs only,pets,\n"
    )
    r = await client.post(
        f"{API}/datasets/sheet/import",
        content=csv_text.encode(),
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    items = (await client.get(f"{API}/datasets/sheet/examples")).json()["items"]
    assert [(e["inputs"], e["outputs"], e["metadata"], e["splits"]) for e in items] == [
        ({"question": "Refund?"}, {"answer": "No"}, {"topic": "refunds"}, ["hard", "test"]),
        ({"question": "Pets?"}, {"answer": "Dogs only"}, {"topic": "pets"}, None),
    ]


async def test_bad_files_get_a_clear_400(client: httpx.AsyncClient) -> None:
    await client.post(
        f"{API}/datasets",
        json={"name": "d", "inputs_schema": {"type": "object", "required": ["q"]}},
    )

    async def error(content: bytes, **params: Any) -> str:
        r = await client.post(f"{API}/datasets/d/import", params=params, content=content)
        assert r.status_code == 400, r.text
        return str(r.json()["error"]["message"])

    assert "say which format" in await error(b'{"inputs": {}}\n')
    assert "format must be one of" in await error(b"", format="xml")
    broken = await error(b'{"inputs": {"q": 1}}\n{oops\n', format="jsonl")
    assert broken.startswith("line 2: not valid JSON (")
    assert "line 1: inputs are required" in await error(b'{"outputs": 1}\n', format="jsonl")
    assert "needs an 'inputs' column" in await error(b"question\nx\n", format="csv")
    assert "line 2: column 'inputs' must hold JSON" in await error(
        b"inputs\nnot json\n", format="csv"
    )
    assert "not a readable Parquet file" in await error(b"PAR1 nonsense", format="parquet")
    violation = await error(b'{"inputs": {"q": 1}}\n{"inputs": {"x": 1}}\n', format="jsonl")
    assert violation.startswith("schema violation: example 1: inputs at $: 'q' is a required")
    unknown = await client.post(
        f"{API}/datasets/nope/import", params={"format": "jsonl"}, content=b'{"inputs": {}}'
    )
    assert unknown.status_code == 404
    bad_export = await client.get(f"{API}/datasets/d/export", params={"format": "xlsx"})
    assert bad_export.status_code == 400
