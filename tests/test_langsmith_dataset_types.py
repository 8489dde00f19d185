"""LangSmith dataset types and metadata, CSV upload and ``version?tag=latest``, through the real
SDK (sync and async) against a live server, checked through Goldloop's own API too."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator

import httpx
import langsmith
import pytest
from langsmith.utils import LangSmithConflictError, LangSmithError

from goldloop.settings import Settings
from langsmith_live import HTTP_TIMEOUT, Live, live_server, sdk_client

pytestmark = pytest.mark.slow


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    with live_server(settings) as server:
        yield server


def test_data_type_and_metadata_are_stored_returned_and_filtered(live: Live) -> None:
    with sdk_client(live) as client:
        chat = client.create_dataset(
            "chats", data_type=langsmith.schemas.DataType.chat, metadata={"team": "support"}
        )
        llm = client.create_dataset(
            "completions", data_type=langsmith.schemas.DataType.llm, metadata={"team": "search"}
        )
        kv = client.create_dataset("plain")
        assert chat.data_type == langsmith.schemas.DataType.chat
        read = client.read_dataset(dataset_id=chat.id)
        assert read.data_type == langsmith.schemas.DataType.chat
        assert read.metadata is not None
        assert read.metadata["team"] == "support"
        assert "runtime" in read.metadata  # what the SDK adds is kept too
        assert client.read_dataset(dataset_name="completions").data_type.value == "llm"
        assert client.read_dataset(dataset_id=kv.id).data_type.value == "kv"

        by_type = {d.name for d in client.list_datasets(data_type="chat")}
        assert by_type == {"chats"}
        assert {d.name for d in client.list_datasets(data_type="kv")} == {"plain"}
        by_meta = {d.name for d in client.list_datasets(metadata={"team": "search"})}
        assert by_meta == {"completions"}
        assert list(client.list_datasets(metadata={"team": "nobody"})) == []
        listed = {d.name: d for d in client.list_datasets()}
        assert listed["chats"].metadata is not None
        assert listed["chats"].metadata["team"] == "support"
        assert str(llm.id) == str(listed["completions"].id)

    with live.api() as api:  # Goldloop's own API shows and changes them too
        mine = api.get(f"/datasets/{chat.id}").json()
        assert mine["data_type"] == "chat"
        assert mine["metadata"]["team"] == "support"
        made = api.post(
            "/datasets", json={"name": "native", "data_type": "llm", "metadata": {"a": 1}}
        )
        assert made.status_code == 201, made.text
        assert (made.json()["data_type"], made.json()["metadata"]) == ("llm", {"a": 1})
        bad = api.post("/datasets", json={"name": "bad", "data_type": "table"})
        assert bad.status_code == 400
        assert "data_type" in bad.text
        patched = api.patch("/datasets/native", json={"data_type": "chat", "metadata": None})
        assert (patched.json()["data_type"], patched.json()["metadata"]) == ("chat", None)

    headers = {"x-api-key": live.key}
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=live.endpoint, headers=headers) as raw:
        bad_type = raw.post("/datasets", json={"name": "x", "data_type": "table"})
        assert bad_type.status_code == 400
        assert "data_type" in bad_type.text
        bad_meta = raw.post("/datasets", json={"name": "x", "extra": {"metadata": [1]}})
        assert bad_meta.status_code == 400
        assert "metadata" in bad_meta.text
        bad_filter = raw.get("/datasets", params={"metadata": "not json"})
        assert bad_filter.status_code == 400
        assert "metadata" in bad_filter.text


def test_async_client_creates_and_filters_by_type(live: Live) -> None:
    async def scenario() -> tuple[str, list[str]]:
        async with langsmith.AsyncClient(api_url=live.endpoint, api_key=live.key) as client:
            made = await client.create_dataset(
                "async-chats", data_type="chat", extra={"metadata": {"k": "v"}}
            )
            await client.create_dataset("async-kv")
            names = [d.name async for d in client.list_datasets(data_type="chat")]
            read = await client.read_dataset(dataset_id=made.id)
            assert read.metadata == {"k": "v"}
            return read.data_type.value if read.data_type else "", names

    data_type, names = asyncio.run(scenario())
    assert data_type == "chat"
    assert names == ["async-chats"]


CSV = (
    b"question,answer,source\r\nwhat is 2+2?,4,maths\r\n"
    b'"multi\nline, with comma",yes,"quote ""q"""\r\n'
)


def test_upload_csv_makes_one_example_per_row(live: Live, tmp_path: object) -> None:
    with sdk_client(live) as client:
        ds = client.upload_csv(
            ("qa.csv", io.BytesIO(CSV)),
            input_keys=["question"],
            output_keys=["answer"],
            name="qa-from-csv",
            description="two rows",
            data_type="llm",
        )
        assert ds.name == "qa-from-csv"
        assert ds.description == "two rows"
        assert ds.data_type is not None
        assert ds.data_type.value == "llm"
        examples = sorted(
            client.list_examples(dataset_id=ds.id), key=lambda e: e.inputs["question"]
        )
        assert [(e.inputs, e.outputs) for e in examples] == [
            ({"question": "multi\nline, with comma"}, {"answer": "yes"}),
            ({"question": "what is 2+2?"}, {"answer": "4"}),
        ]
        assert client.read_dataset(dataset_id=ds.id).example_count == 2
        assert len(list(client.list_dataset_versions(dataset_id=ds.id))) == 2  # created, rows

        with pytest.raises(LangSmithConflictError):  # the name is taken
            client.upload_csv(
                ("qa.csv", io.BytesIO(CSV)), ["question"], ["answer"], name="qa-from-csv"
            )

        unnamed = client.upload_csv(("x.csv", io.BytesIO(CSV)), ["question", "source"], [])
        assert unnamed.name.startswith("csv-")
        got = [e.inputs for e in client.list_examples(dataset_id=unnamed.id)]
        assert {"question": "what is 2+2?", "source": "maths"} in got
        assert all(e.outputs in (None, {}) for e in client.list_examples(dataset_id=unnamed.id))

    headers = {"x-api-key": live.key}
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=live.endpoint, headers=headers) as raw:

        def upload(data: bytes, inputs: list[str], outputs: list[str], name: str) -> httpx.Response:
            form = {"input_keys": inputs, "output_keys": outputs, "name": name}
            return raw.post(
                "/datasets/upload", data=form, files={"file": ("f.csv", data, "text/csv")}
            )

        missing = upload(CSV, ["question", "nope"], ["answer"], "m1")
        assert missing.status_code == 400
        assert "'nope'" in missing.text
        ragged = upload(b"q,a\nx,1\ny\n", ["q"], ["a"], "m2")
        assert ragged.status_code == 400
        assert "line 3" in ragged.text
        assert upload(b"q,q\nx,1\n", ["q"], [], "m3").status_code == 400
        assert upload(b"\xff\xfe\x00", ["q"], [], "m4").status_code == 400
        assert upload(b"", ["q"], [], "m5").status_code == 400
        assert upload(b"q\n", ["q"], [], "m6").status_code == 400
        both = upload(b"q,a\nx,1\n", ["q"], ["q"], "m7")
        assert both.status_code == 400
        assert "both" in both.text
        no_file = raw.post("/datasets/upload", data={"input_keys": ["q"], "name": "m8"}, files={})
        assert no_file.status_code in (400, 415)
        assert no_file.status_code < 500
        not_multipart = raw.post("/datasets/upload", json={"name": "m9"})
        assert not_multipart.status_code == 400
        names = {d["name"] for d in raw.get("/datasets").json()}
        assert not names & {f"m{i}" for i in range(1, 10)}  # nothing half-made is left behind
        keyless = httpx.post(live.endpoint + "/datasets/upload", files={"file": ("f.csv", CSV)})
        assert keyless.status_code == 401


def test_upload_respects_the_request_size_limit(settings: Settings) -> None:
    import dataclasses

    small = dataclasses.replace(settings, max_request_bytes=2048)
    with live_server(small) as server, sdk_client(server) as client:
        big = b"q,a\n" + b"".join(b"question %d,answer\n" % i for i in range(500))
        with pytest.raises(LangSmithError) as err:
            client.upload_csv(("big.csv", io.BytesIO(big)), ["q"], ["a"], name="too-big")
        assert "413" in str(err.value)
        assert not client.has_dataset(dataset_name="too-big")


def test_version_latest_and_tags(live: Live) -> None:
    with sdk_client(live) as client:
        ds = client.create_dataset("versions")
        client.create_example(inputs={"q": 1}, dataset_id=ds.id)
        newest = next(iter(client.list_dataset_versions(dataset_id=ds.id))).as_of
        latest = client.read_dataset_version(dataset_id=ds.id, tag="latest")
        assert latest.as_of == newest
        client.update_dataset_tag(dataset_id=ds.id, as_of=newest, tag="prod")
        assert client.read_dataset_version(dataset_id=ds.id, tag="prod").as_of == newest
        with pytest.raises(LangSmithError):
            client.read_dataset_version(dataset_id=ds.id, tag="nope")
