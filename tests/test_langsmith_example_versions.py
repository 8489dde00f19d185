"""Soft and hard deletes of examples, and updates that change nothing, through the real SDK
against a live server, on the dataset version model (checked through Goldloop's own API)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import requests
from langsmith.utils import LangSmithError

from fixture_runs import workspace_id
from goldloop.services import auth
from goldloop.settings import Settings
from langsmith_live import HTTP_TIMEOUT, Live, live_server, ref, sdk_client

pytestmark = pytest.mark.slow


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    with live_server(settings) as server:
        yield server


def _ids(api: httpx.Client, dataset_id: str, **params: str) -> set[str]:
    r = api.get(f"/datasets/{dataset_id}/examples", params=params)
    assert r.status_code == 200, r.text
    return {e["id"] for e in r.json()["items"]}


@pytest.mark.parametrize("suffix", ["", "/api/v1"])
def test_soft_and_hard_delete(live: Live, suffix: str) -> None:
    with sdk_client(live) as client:
        client.api_url = live.endpoint + suffix  # both URL shapes the SDK builds paths from
        ds = client.create_dataset("deletes")
        made = client.create_examples(
            dataset_id=ds.id,
            examples=[{"inputs": {"q": i}, **ref({"secret": f"s{i}"})} for i in range(4)],
        )
        a, b, c, d = (str(i) for i in made["example_ids"])
        v1 = next(iter(client.list_dataset_versions(dataset_id=ds.id))).as_of

        client.delete_examples([a], hard_delete=False)  # soft: still there as of v1
        assert {str(e.id) for e in client.list_examples(dataset_id=ds.id)} == {b, c, d}
        assert {str(e.id) for e in client.list_examples(dataset_id=ds.id, as_of=v1)} == {a, b, c, d}

        client.delete_examples([b, a], hard_delete=True)  # a: only in the past; b: current
        now = {str(e.id) for e in client.list_examples(dataset_id=ds.id)}
        then = {str(e.id) for e in client.list_examples(dataset_id=ds.id, as_of=v1)}
        assert now == {c, d}
        assert then == {c, d}  # their content is gone from every version
        for gone in (a, b):
            with pytest.raises(LangSmithError):
                client.read_example(gone, as_of=v1)

        with pytest.raises(requests.HTTPError, match="404"):  # nothing left to delete
            client.delete_examples([a], hard_delete=True)

    with live.api() as api:  # Goldloop's own view agrees, in every version
        versions = api.get(f"/datasets/{ds.id}/versions").json()["items"]
        assert [v["removed"] for v in versions[:2]] == [1, 1]
        for version in range(len(versions)):
            assert not _ids(api, str(ds.id), as_of=str(version)) & {a, b}


def test_hard_delete_needs_an_admin_key_and_stays_in_the_workspace(live: Live) -> None:
    ctx = live.app.state.ctx
    workspace = auth.create_workspace(ctx, "other")
    other = auth.create_key(ctx, workspace.id, "intruder", role="admin").secret
    member = auth.create_key(ctx, workspace_id(live.app), "member", role="member").secret
    with sdk_client(live) as client:
        ds = client.create_dataset("guarded")
        example = client.create_example(inputs={"q": 1}, dataset_id=ds.id)
    url = live.endpoint + "/v1/platform/datasets/examples/delete"
    body = {"example_ids": [str(example.id)], "hard_delete": True}
    with httpx.Client(timeout=HTTP_TIMEOUT) as raw:
        assert raw.post(url, json=body).status_code == 401
        assert raw.post(url, json=body, headers={"x-api-key": member}).status_code == 403
        assert raw.post(url, json=body, headers={"x-api-key": other}).status_code == 404
        for bad in (
            {"example_ids": "x"},
            {"example_ids": [1]},
            {"example_ids": [], "hard_delete": 1},
        ):
            r = raw.post(url, json=bad, headers={"x-api-key": live.key})
            assert r.status_code == 400, r.text
        soft = {"example_ids": [str(example.id)], "hard_delete": False}
        assert raw.post(url, json=soft, headers={"x-api-key": member}).status_code == 200
    with sdk_client(live) as client:
        assert list(client.list_examples(dataset_id=ds.id)) == []


def test_an_update_that_changes_nothing_is_still_a_modification(live: Live) -> None:
    with sdk_client(live) as client:
        ds = client.create_dataset("touched")
        one = client.create_example(inputs={"q": 1}, **ref({"a": 1}), dataset_id=ds.id)
        two = client.create_example(inputs={"q": 2}, **ref({"a": 2}), dataset_id=ds.id)
        before = next(iter(client.list_dataset_versions(dataset_id=ds.id))).as_of
        client.update_example(one.id, outputs={"a": 1})  # the same outputs again
        after = client.read_example(one.id)
        assert after.modified_at is not None
        assert one.modified_at is not None
        assert after.modified_at > one.modified_at
        diff = client.diff_dataset_versions(
            dataset_id=ds.id, from_version=before, to_version="latest"
        )
        assert [str(i) for i in diff.examples_modified] == [str(one.id)]
        assert diff.examples_added == []
        assert diff.examples_removed == []
        client.update_examples(dataset_id=ds.id, updates=[{"id": two.id, "inputs": {"q": 2}}])
        diff = client.diff_dataset_versions(
            dataset_id=ds.id, from_version=before, to_version="latest"
        )
        assert sorted(str(i) for i in diff.examples_modified) == sorted([str(one.id), str(two.id)])

    with live.api() as api:  # Goldloop's own diff compares content: nothing changed
        r = api.get(f"/datasets/{ds.id}/diff", params={"from": "2"})
        assert r.json()["changed"] == []
