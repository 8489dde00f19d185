from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from fixture_runs import StepClock, other_workspace_client

API = "/api/v1"


async def make(client: httpx.AsyncClient, name: str = "support-golden", **body: Any) -> Any:
    r = await client.post(f"{API}/datasets", json={"name": name, **body})
    assert r.status_code == 201, r.text
    return r.json()


async def add(client: httpx.AsyncClient, ds: str, *examples: Any, **extra: Any) -> Any:
    r = await client.post(f"{API}/datasets/{ds}/examples", json={"examples": examples, **extra})
    assert r.status_code == 201, r.text
    return r.json()


async def listed(client: httpx.AsyncClient, ds: str, **params: Any) -> Any:
    r = await client.get(f"{API}/datasets/{ds}/examples", params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_create_get_rename_list_delete(client: httpx.AsyncClient) -> None:
    ds = await make(client, description="golden answers")
    assert (ds["version"], ds["example_count"], ds["tags"]) == (0, 0, {})
    assert (await client.get(f"{API}/datasets/{ds['id']}")).json() == ds
    assert (await client.get(f"{API}/datasets/support-golden")).json() == ds
    by_name = (await client.get(f"{API}/datasets", params={"name": "support-golden"})).json()
    assert [d["id"] for d in by_name["items"]] == [ds["id"]]

    renamed = await client.patch(f"{API}/datasets/{ds['id']}", json={"name": "support"})
    assert renamed.json()["name"] == "support"
    assert renamed.json()["description"] == "golden answers"
    assert (await client.get(f"{API}/datasets/support-golden")).status_code == 404

    await make(client, "another")
    dup = await client.post(f"{API}/datasets", json={"name": "another"})
    assert dup.status_code == 409
    clash = await client.patch(f"{API}/datasets/support", json={"name": "another"})
    assert clash.status_code == 409
    names = [d["name"] for d in (await client.get(f"{API}/datasets")).json()["items"]]
    assert names == ["another", "support"]
    page = (await client.get(f"{API}/datasets", params={"limit": 1})).json()
    assert [d["name"] for d in page["items"]] == ["another"]
    rest = (await client.get(f"{API}/datasets", params={"cursor": page["next_cursor"]})).json()
    assert [d["name"] for d in rest["items"]] == ["support"]

    await add(client, "support", {"inputs": {"q": "a"}})
    gone = await client.delete(f"{API}/datasets/support")
    assert gone.json() == {"id": ds["id"], "deleted": True}
    assert (await client.get(f"{API}/datasets/{ds['id']}")).status_code == 404
    assert (await client.get(f"{API}/datasets/{ds['id']}/examples")).status_code == 404


async def test_each_write_is_one_version_and_as_of_reads_the_past(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    clock = StepClock(step=1_000_000)
    app.state.ctx.clock = clock
    await make(client)
    ds = "support-golden"
    first = await add(
        client,
        ds,
        {"inputs": {"q": "refund?"}, "outputs": {"a": "no"}, "splits": ["test"]},
        {"inputs": {"q": "late checkout?"}, "outputs": {"a": "yes"}, "metadata": {"topic": "x"}},
        {"inputs": {"q": "pets?"}, "outputs": {"a": "no"}},
        message="seed",
    )
    assert (first["version"], first["changed"], len(first["added"])) == (1, True, 3)
    a, b, c = first["added"]
    assert first["added"] == sorted(first["added"])  # time-ordered ids: list order = add order

    upd = await client.patch(
        f"{API}/datasets/{ds}/examples/{b}", json={"outputs": {"a": "until noon"}}
    )
    assert upd.status_code == 200
    assert (upd.json()["version"], upd.json()["example"]["outputs"]) == (2, {"a": "until noon"})
    same = await client.patch(
        f"{API}/datasets/{ds}/examples/{b}", json={"outputs": {"a": "until noon"}}
    )
    assert (same.json()["version"], same.json()["changed"]) == (2, False)

    removed = (await client.delete(f"{API}/datasets/{ds}/examples/{c}")).json()
    assert (removed["version"], removed["removed"]) == (3, [c])
    d = (await add(client, ds, {"inputs": {"q": "wifi?"}}))["added"][0]

    current = await listed(client, ds)
    assert current["version"] == 4
    assert [e["id"] for e in current["items"]] == [a, b, d]
    v1 = await listed(client, ds, as_of=1)
    assert [e["id"] for e in v1["items"]] == [a, b, c]
    assert v1["items"][1]["outputs"] == {"a": "yes"}
    assert v1["items"][1]["version"] == 1
    assert (await listed(client, ds, as_of=0))["items"] == []
    old_b = await client.get(f"{API}/datasets/{ds}/examples/{b}", params={"as_of": "1"})
    assert old_b.json()["outputs"] == {"a": "yes"}
    assert old_b.json()["created_at"] == current["items"][1]["created_at"]

    versions = (await client.get(f"{API}/datasets/{ds}/versions")).json()["items"]
    assert [
        (v["version"], v["added"], v["updated"], v["removed"], v["message"]) for v in versions
    ] == [
        (4, 1, 0, 0, None),
        (3, 0, 0, 1, None),
        (2, 0, 1, 0, None),
        (1, 3, 0, 0, "seed"),
        (0, 0, 0, 0, "created"),
    ]
    # as_of a time: the newest version at or before it
    v2_time = versions[2]["created_at_iso"]
    assert (await listed(client, ds, as_of=v2_time))["version"] == 2
    just_before_v3 = versions[1]["created_at"] - 1
    from goldloop.domain.clock import to_iso

    assert (await listed(client, ds, as_of=to_iso(just_before_v3)))["version"] == 2

    diff = (await client.get(f"{API}/datasets/{ds}/diff", params={"from": 1})).json()
    assert diff == {
        "from_version": 1,
        "to_version": 4,
        "added": [d],
        "removed": [c],
        "changed": [b],
    }
    back = (await client.get(f"{API}/datasets/{ds}/diff", params={"from": 4, "to": 1})).json()
    assert (back["added"], back["removed"], back["changed"]) == ([c], [d], [b])


async def test_tags_pin_versions_and_move(client: httpx.AsyncClient) -> None:
    await make(client)
    ds = "support-golden"
    await add(client, ds, {"inputs": {"q": 1}})
    base = await client.put(f"{API}/datasets/{ds}/tags/baseline", json={})
    assert base.json() == {"tag": "baseline", "version": 1, "previous_version": None}
    await add(client, ds, {"inputs": {"q": 2}})
    prod = await client.put(f"{API}/datasets/{ds}/tags/prod", json={"as_of": "baseline"})
    assert prod.json()["version"] == 1
    moved = await client.put(f"{API}/datasets/{ds}/tags/prod", json={"as_of": 2})
    assert moved.json() == {"tag": "prod", "version": 2, "previous_version": 1}
    assert len((await listed(client, ds, as_of="baseline"))["items"]) == 1
    assert len((await listed(client, ds, as_of="prod"))["items"]) == 2
    info = (await client.get(f"{API}/datasets/{ds}")).json()
    assert info["tags"] == {"baseline": 1, "prod": 2}
    versions = (await client.get(f"{API}/datasets/{ds}/versions")).json()["items"]
    assert [v["tags"] for v in versions] == [["prod"], ["baseline"], []]
    left = await client.delete(f"{API}/datasets/{ds}/tags/baseline")
    assert left.json() == {"tags": {"prod": 2}}
    assert (await client.delete(f"{API}/datasets/{ds}/tags/baseline")).status_code == 404


async def test_bad_versions_tags_and_times_get_clear_4xx(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    app.state.ctx.clock = StepClock(start=1_764_150_816_000_000)
    await make(client)
    ds = "support-golden"
    await add(client, ds, {"inputs": {"q": 1}})

    async def error(status: int, path: str, **params: Any) -> str:
        r = await client.get(f"{API}/datasets/{ds}{path}", params=params)
        assert r.status_code == status, r.text
        return str(r.json()["error"]["message"])

    msg = await error(404, "/examples", as_of="prod")
    assert msg == "dataset 'support-golden' has no tag 'prod' (tags: none)"
    msg = await error(404, "/examples", as_of=9)
    assert msg == "dataset 'support-golden' has no version 9 (versions 0-1)"
    msg = await error(400, "/examples", as_of="2020-01-01T00:00:00Z")
    assert "did not exist at 2020-01-01T00:00:00+00:00: it was created at 2025-11-26" in msg
    msg = await error(400, "/examples", as_of="last tuesday")
    assert "not a version number, a tag or an ISO-8601 time" in msg
    assert "no tag 'nope'" in await error(404, "/diff", **{"from": "nope"})
    bad_tag = await client.put(f"{API}/datasets/{ds}/tags/1.0", json={})
    assert bad_tag.status_code == 400
    assert "starting with a letter" in bad_tag.json()["error"]["message"]
    unknown = await client.get(f"{API}/datasets/nope/examples")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "no dataset with id or name 'nope'"
    no_example = await client.get(f"{API}/datasets/{ds}/examples/nope")
    assert no_example.status_code == 404
    empty = await client.post(f"{API}/datasets/{ds}/examples", json={"examples": []})
    assert empty.status_code == 400
    no_inputs = await client.post(f"{API}/datasets/{ds}/examples", json={"examples": [{}]})
    assert no_inputs.status_code == 400
    assert no_inputs.json()["error"]["details"][0]["field"] == "examples.0.inputs"
    slash = await client.post(f"{API}/datasets", json={"name": "a/b"})
    assert slash.status_code == 400
    bad_meta = await client.get(f"{API}/datasets/{ds}/examples", params={"metadata": "[1]"})
    assert bad_meta.status_code == 400


async def test_json_schemas_are_enforced_on_every_write(client: httpx.AsyncClient) -> None:
    schema_in = {
        "type": "object",
        "required": ["question"],
        "properties": {"question": {"type": "string"}},
    }
    schema_out = {
        "type": "object",
        "properties": {"label": {"enum": ["refundable", "non-refundable"]}},
    }
    bad_schema = await client.post(
        f"{API}/datasets", json={"name": "x", "inputs_schema": {"type": "strnig"}}
    )
    assert bad_schema.status_code == 400
    assert "inputs_schema is not a valid JSON Schema" in bad_schema.json()["error"]["message"]

    await make(client, inputs_schema=schema_in, outputs_schema=schema_out)
    ds = "support-golden"
    ok = {"inputs": {"question": "refund?"}, "outputs": {"label": "non-refundable"}}
    r = await client.post(
        f"{API}/datasets/{ds}/examples",
        json={
            "examples": [
                ok,
                {"id": "ex-b", "inputs": {"question": "?"}, "outputs": {"label": "maybe"}},
                {"inputs": {"question": 7}},
            ]
        },
    )
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["message"] == (
        "schema violation: example 1 (id ex-b): outputs at $.label: 'maybe' is not one of "
        "['refundable', 'non-refundable'] (and 1 more)"
    )
    assert [(d["index"], d["field"], d["path"]) for d in err["details"]] == [
        (1, "outputs", "$.label"),
        (2, "inputs", "$.question"),
    ]
    assert (await client.get(f"{API}/datasets/{ds}")).json()["version"] == 0  # nothing written

    first = (await add(client, ds, ok))["added"][0]
    patch = await client.patch(
        f"{API}/datasets/{ds}/examples/{first}", json={"inputs": {"q": "no question"}}
    )
    assert patch.status_code == 400
    assert "example 0 (id " in patch.json()["error"]["message"]
    assert "'question' is a required property" in patch.json()["error"]["message"]

    stricter = await client.patch(
        f"{API}/datasets/{ds}",
        json={"outputs_schema": {"type": "object", "required": ["reason"]}},
    )
    assert stricter.status_code == 400
    assert "does not hold for the current examples" in stricter.json()["error"]["message"]
    cleared = await client.patch(f"{API}/datasets/{ds}", json={"outputs_schema": None})
    assert cleared.json()["outputs_schema"] is None
    await add(client, ds, {"inputs": {"question": "x"}, "outputs": "anything"})


async def test_filters_pagination_ids_and_upsert(client: httpx.AsyncClient) -> None:
    await make(client)
    ds = "support-golden"
    examples = [
        {
            "inputs": {"n": i},
            "splits": ["test"] if i % 3 == 0 else ["train"],
            "metadata": {"topic": "refunds" if i % 2 else "wifi", "n": i, "hard": i > 20},
        }
        for i in range(25)
    ]
    ids = (await add(client, ds, *examples))["added"]
    test_ids = [ids[i] for i in range(25) if i % 3 == 0]
    assert [e["id"] for e in (await listed(client, ds, split="test"))["items"]] == test_ids
    refunds = await listed(client, ds, metadata='{"topic": "refunds", "hard": true}')
    assert [e["inputs"]["n"] for e in refunds["items"]] == [21, 23]
    by_number = await listed(client, ds, metadata='{"n": 4}')
    assert [e["inputs"]["n"] for e in by_number["items"]] == [4]

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        page = await listed(client, ds, **params)
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids

    mine = await add(client, ds, {"id": "custom-1", "inputs": {"n": 100}})
    assert mine["added"] == ["custom-1"]
    dup = await client.post(
        f"{API}/datasets/{ds}/examples", json={"examples": [{"id": "custom-1", "inputs": {}}]}
    )
    assert dup.status_code == 409
    upsert = await add(
        client,
        ds,
        {"id": "custom-1", "inputs": {"n": 100}},
        {"id": "custom-2", "inputs": {"n": 101}},
        {"id": ids[0], "inputs": {"n": 0}, "outputs": "new"},
        upsert=True,
    )
    assert (upsert["added"], upsert["updated"], upsert["unchanged"]) == (
        ["custom-2"],
        [ids[0]],
        ["custom-1"],
    )
    bulk = await client.post(f"{API}/datasets/{ds}/examples/delete", json={"ids": ids[:5]})
    assert (bulk.json()["removed"], bulk.json()["version"]) == (sorted(ids[:5]), 4)
    missing = await client.post(f"{API}/datasets/{ds}/examples/delete", json={"ids": ["zz"]})
    assert missing.status_code == 404


async def test_workspaces_are_isolated(app: FastAPI, client: httpx.AsyncClient) -> None:
    ds = await make(client)
    await add(client, ds["id"], {"id": "e1", "inputs": {"q": 1}})
    async with await other_workspace_client(app) as other:
        for path in ("", "/examples", "/examples/e1", "/versions", "/tags"):
            r = await other.get(f"{API}/datasets/{ds['id']}{path}")
            assert r.status_code == 404, path
        assert (await other.get(f"{API}/datasets")).json()["items"] == []
        assert (await other.delete(f"{API}/datasets/{ds['id']}")).status_code == 404
        theirs = await other.post(f"{API}/datasets", json={"name": "support-golden"})
        assert theirs.status_code == 201
        assert (await other.get(f"{API}/datasets/support-golden/examples")).json()["items"] == []
    assert len((await listed(client, "support-golden"))["items"]) == 1
