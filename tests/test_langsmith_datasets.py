"""LangSmith datasets, examples, versions, tags and as_of reads on Goldloop's versioned datasets,
checked through Goldloop's own API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from langsmith.utils import LangSmithConflictError, LangSmithNotFoundError

from goldloop.settings import Settings
from langsmith_live import HTTP_TIMEOUT, Live, live_server, ref, sdk_client

pytestmark = pytest.mark.slow


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    with live_server(settings) as server:
        yield server


def _outputs(api: httpx.Client, dataset_id: str, **params: str) -> dict[str, object]:
    r = api.get(f"/datasets/{dataset_id}/examples", params=params)
    assert r.status_code == 200, r.text
    return {e["id"]: e["outputs"] for e in r.json()["items"]}


def test_dataset_examples_versions_tags_and_as_of(live: Live) -> None:
    with sdk_client(live) as client:
        ds = client.create_dataset("ls-golden", description="support answers")
        with pytest.raises(LangSmithConflictError):
            client.create_dataset("ls-golden")
        assert client.read_dataset(dataset_name="ls-golden").id == ds.id
        assert client.has_dataset(dataset_name="ls-golden")
        made = client.create_examples(
            dataset_id=ds.id,
            examples=[
                {
                    "inputs": {"q": "a"},
                    **ref({"a": "1"}),
                    "split": "train",
                    "metadata": {"topic": "refunds"},
                },
                {"inputs": {"q": "b"}, **ref({"a": "2"})},
            ],
        )
        first, second = (str(i) for i in made["example_ids"])
        one = client.create_example(inputs={"q": "c"}, **ref({"a": "3"}), dataset_id=ds.id)
        third = str(one.id)
        assert client.read_dataset(dataset_id=ds.id).example_count == 3
        versions = list(client.list_dataset_versions(dataset_id=ds.id))
        assert len(versions) == 3  # created, bulk add, single add
        v2 = versions[0].as_of  # newest first
        client.update_dataset_tag(dataset_id=ds.id, as_of=v2, tag="prod")

        client.update_example(first, outputs={"a": "one"})
        client.update_examples(dataset_id=ds.id, updates=[{"id": third, "outputs": {"a": "three"}}])
        client.delete_example(second)

        now = {str(e.id): e.outputs for e in client.list_examples(dataset_id=ds.id)}
        assert now == {first: {"a": "one"}, third: {"a": "three"}}
        tagged = {
            str(e.id): e.outputs for e in client.list_examples(dataset_id=ds.id, as_of="prod")
        }
        assert tagged == {first: {"a": "1"}, second: {"a": "2"}, third: {"a": "3"}}
        timed = {str(e.id): e.outputs for e in client.list_examples(dataset_id=ds.id, as_of=v2)}
        assert timed == tagged
        assert client.read_example(first, as_of=v2).outputs == {"a": "1"}
        assert client.read_example(first).outputs == {"a": "one"}
        assert client.read_dataset_version(dataset_id=ds.id, tag="prod").as_of == v2
        assert client.read_dataset_version(dataset_id=ds.id, as_of=v2).as_of == v2
        diff = client.diff_dataset_versions(
            dataset_id=ds.id, from_version="prod", to_version="latest"
        )
        assert [str(i) for i in diff.examples_modified] == sorted([first, third])
        assert [str(i) for i in diff.examples_removed] == [second]
        train = list(client.list_examples(dataset_id=ds.id, splits=["train"]))
        assert [str(e.id) for e in train] == [first]
        assert train[0].metadata == {"topic": "refunds", "dataset_split": ["train"]}
        assert sorted(client.list_dataset_splits(dataset_id=ds.id)) == ["base", "train"]
        client.update_dataset_splits(dataset_id=ds.id, split_name="test", example_ids=[third])
        assert [str(e.id) for e in client.list_examples(dataset_id=ds.id, splits=["test"])] == [
            third
        ]

    with live.api() as api:
        mine = api.get(f"/datasets/{ds.id}").json()
        assert mine["name"] == "ls-golden"
        assert _outputs(api, str(ds.id), as_of="prod") == tagged
        assert _outputs(api, str(ds.id)) == {first: {"a": "one"}, third: {"a": "three"}}
        example = api.get(f"/datasets/{ds.id}/examples/{first}").json()
        assert example["splits"] == ["train"]
        assert example["metadata"] == {"topic": "refunds"}

    with sdk_client(live) as client:
        client.delete_examples([first, third])
        assert list(client.list_examples(dataset_id=ds.id)) == []
        client.delete_dataset(dataset_id=ds.id)
        with pytest.raises(LangSmithNotFoundError):
            client.read_dataset(dataset_id=ds.id)


def test_bulk_create_is_idempotent_and_pages_honour_limit(live: Live) -> None:
    headers = {"x-api-key": live.key}
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=live.endpoint, headers=headers) as raw:
        ds = raw.post("/datasets", json={"name": "paged", "data_type": "kv"}).json()
        assert {"id", "name", "created_at", "example_count"} <= set(ds)
        body = [
            {"id": f"00000000-0000-7000-8000-{i:012d}", "dataset_id": ds["id"], "inputs": {"i": i}}
            for i in range(7)
        ]
        for _ in range(2):  # a retry re-sends the same examples
            created = raw.post("/examples/bulk", json=body)
            assert created.status_code == 200, created.text
            assert [e["id"] for e in created.json()] == [e["id"] for e in body]
        page = raw.get("/examples", params={"dataset": ds["id"], "offset": 5, "limit": 5}).json()
        assert [e["inputs"]["i"] for e in page] == [5, 6]
        versions = raw.get(f"/datasets/{ds['id']}/versions", params={"limit": 100}).json()
        assert len(versions) == 2  # created, then one for both identical requests
        assert raw.get("/examples/nope").status_code == 404
