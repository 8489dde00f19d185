"""Multipart examples and attachments through the real LangSmith SDK, on a live server.

``/info`` advertises ``dataset_examples_multipart_enabled`` and ``examples_multipart_enabled``,
so the SDK's create_example(s), update_example(s), upload_examples_multipart and
upsert_examples_multipart all take the multipart path; runs carry files through
``/runs/multipart``. Blobs are read back through the signed URLs the SDK downloads without an API
key, and by digest with an API key of the same workspace only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import langsmith
import pytest
from langsmith.run_trees import RunTree
from langsmith.utils import LangSmithError

from goldloop.services import auth
from goldloop.settings import Settings
from langsmith_live import HTTP_TIMEOUT, Live, live_server, ref, sdk_client

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

RNG = random.Random(21)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(RNG.randrange(256) for _ in range(3000))
WAV = b"RIFF" + bytes(RNG.randrange(256) for _ in range(2000))
PDF = b"%PDF-1.4\n" + bytes(RNG.randrange(256) for _ in range(500))


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    with live_server(settings) as server:
        yield server


def _files(example: Any) -> dict[str, tuple[str | None, bytes]]:
    return {
        name: (info["mime_type"], info["reader"].read())
        for name, info in (example.attachments or {}).items()
    }


def _multipart_posts(live: Live, dataset_id: str, method: str) -> int:
    suffix = f"/v1/platform/datasets/{dataset_id}/examples"
    return sum(1 for m, path, _ in live.seen if m == method and path.endswith(suffix))


def test_examples_with_attachments_take_the_multipart_path(live: Live) -> None:
    with sdk_client(live) as client:
        flags = client.info.instance_flags or {}
        assert flags.get("dataset_examples_multipart_enabled") is True
        assert flags.get("examples_multipart_enabled") is True
        ds = client.create_dataset("with-files")
        made = client.create_examples(
            dataset_id=ds.id,
            examples=[
                {
                    "inputs": {"q": "what is in the picture?"},
                    **ref({"a": "a cat"}),
                    "metadata": {"kind": "vision"},
                    "split": "test",
                    "attachments": {
                        "photo": ("image/png", PNG),
                        "voice": {"mime_type": "audio/wav", "data": WAV},
                    },
                },
                {"inputs": {"q": "no files"}, **ref({"a": "fine"})},
            ],
        )
        assert made["count"] == 2
        first, second = (str(i) for i in made["example_ids"])
        assert _multipart_posts(live, str(ds.id), "POST") == 1

        read = client.read_example(first)
        assert read.inputs == {"q": "what is in the picture?"}
        assert read.outputs == {"a": "a cat"}
        assert read.metadata is not None
        assert read.metadata["kind"] == "vision"
        assert _files(read) == {"photo": ("image/png", PNG), "voice": ("audio/wav", WAV)}
        assert _files(client.read_example(second)) == {}

        one = client.create_example(
            inputs={"q": "a report"},
            dataset_id=ds.id,
            attachments={"report": ("application/pdf", PDF)},
        )
        assert _multipart_posts(live, str(ds.id), "POST") == 2
        assert _files(one) == {"report": ("application/pdf", PDF)}

        listed = {
            str(e.id): e for e in client.list_examples(dataset_id=ds.id, include_attachments=True)
        }
        assert set(listed) == {first, second, str(one.id)}
        assert _files(listed[first])["photo"] == ("image/png", PNG)
        plain = list(client.list_examples(dataset_id=ds.id))
        assert all(not e.attachments for e in plain)  # only fetched when asked for

        # rename one, drop the other (not retained), add a new one: one multipart PATCH
        client.update_example(
            first,
            outputs={"a": "a black cat"},
            attachments_operations={"rename": {"photo": "picture"}, "retain": []},
            attachments={"transcript": ("text/plain", b"meow")},
        )
        assert _multipart_posts(live, str(ds.id), "PATCH") == 1
        after = client.read_example(first)
        assert after.outputs == {"a": "a black cat"}
        assert _files(after) == {
            "picture": ("image/png", PNG),
            "transcript": ("text/plain", b"meow"),
        }

        updated = client.update_examples(
            dataset_id=ds.id,
            updates=[
                {
                    "id": second,
                    "inputs": {"q": "now with a file"},
                    "attachments": {"f": ("image/gif", b"GIF89a")},
                },
                {"id": str(one.id), "metadata": {"reviewed": True}},
            ],
        )
        assert updated["count"] == 2
        assert sorted(str(i) for i in updated["example_ids"]) == sorted([second, str(one.id)])
        assert client.read_example(second).inputs == {"q": "now with a file"}
        assert _files(client.read_example(second)) == {"f": ("image/gif", b"GIF89a")}
        assert _files(client.read_example(one.id)) == {"report": ("application/pdf", PDF)}
        legacy = client.update_examples(example_ids=[second], outputs=[{"a": "legacy kwargs"}])
        assert legacy["count"] == 1

        # the deprecated explicit calls
        new_id = uuid.uuid4()
        up = client.upload_examples_multipart(
            dataset_id=ds.id,
            uploads=[
                langsmith.schemas.ExampleCreate(
                    id=new_id,
                    inputs={"q": "up"},
                    attachments={"x": ("image/jpeg", b"\xff\xd8\xff")},
                )
            ],
        )
        assert [str(i) for i in up["example_ids"]] == [str(new_id)]
        upsert = client.upsert_examples_multipart(
            upserts=[
                langsmith.schemas.ExampleUpsertWithAttachments(
                    id=new_id, dataset_id=ds.id, inputs={"q": "upserted"}
                )
            ]
        )
        assert upsert["count"] == 1
        assert client.read_example(new_id).inputs == {"q": "upserted"}
        assert _files(client.read_example(new_id)) == {"x": ("image/jpeg", b"\xff\xd8\xff")}

    # Goldloop's own API holds the same versioned examples
    with live.api() as api:
        r = api.get(f"/datasets/{ds.id}/examples")
        assert r.status_code == 200, r.text
        by_id = {e["id"]: e for e in r.json()["items"]}
        assert by_id[first]["outputs"] == {"a": "a black cat"}
        assert by_id[first]["splits"] == ["test"]
        usage = api.get("/attachments/usage").json()
        # picture (= the PNG), transcript, f, report, x; the WAV was dropped but its blob stays
        assert usage["attachments"] == 5
        assert usage["bytes"] == len(PNG) + 4 + 6 + len(PDF) + 3


@pytest.mark.parametrize("mode", ["multipart", "multipart-zstd"])
def test_run_attachments_round_trip(settings: Settings, mode: str) -> None:
    with live_server(settings, mode) as live, sdk_client(live) as client:
        run = RunTree(
            name="describe",
            run_type="llm",
            inputs={"prompt": "describe"},
            project_name="files",
            client=client,
            attachments={"image": ("image/png", PNG), "clip": ("audio/mpeg", WAV)},
        )
        run.post()
        run.end(outputs={"text": "a cat"})
        run.patch()
        client.flush()
        stored = client.read_run(run.id)
        assert stored.outputs == {"text": "a cat"}
        assert _files(stored) == {"image": ("image/png", PNG), "clip": ("audio/mpeg", WAV)}
        listed = list(client.list_runs(project_name="files"))
        assert len(listed) == 1
        assert _files(listed[0]) == {"image": ("image/png", PNG), "clip": ("audio/mpeg", WAV)}
        # an example made from the run takes its attachments
        ds = client.create_dataset("from-runs")
        client.create_example(
            inputs={"prompt": "describe"},
            dataset_id=ds.id,
            source_run_id=run.id,
            use_source_run_attachments=["image"],
        )
        (example,) = client.list_examples(dataset_id=ds.id, include_attachments=True)
        assert _files(example) == {"image": ("image/png", PNG)}


def _raw_form(*parts: tuple[str, str, bytes], boundary: str = "xYz") -> tuple[bytes, str]:
    out = b""
    for name, content_type, data in parts:
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        out += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _post_form(live: Live, key: str, path: str, *parts: tuple[str, str, bytes]) -> httpx.Response:
    body, content_type = _raw_form(*parts)
    return httpx.post(
        live.endpoint + path,
        content=body,
        headers={"x-api-key": key, "content-type": content_type},
        timeout=HTTP_TIMEOUT,
    )


def test_blobs_are_isolated_and_served_safely(live: Live) -> None:
    ctx = live.app.state.ctx
    other = auth.create_workspace(ctx, "other")
    other_key = auth.create_key(ctx, other.id, "other").secret
    page = b"<html><script>alert(1)</script></html>"
    with sdk_client(live) as client:
        ds = client.create_dataset("mine")
        ex = client.create_example(
            inputs={"q": 1},
            dataset_id=ds.id,
            attachments={"page": ("text/html", page), "logo": ("image/svg+xml", b"<svg/>")},
        )
        urls = client.session.get(
            f"{live.endpoint}/examples/{ex.id}", headers={"x-api-key": live.key}
        ).json()["attachment_urls"]
    page_url = urls["attachment.page"]["presigned_url"]
    assert page_url.startswith(live.base + "/attachments/")

    # a signed URL needs no key; what it serves never runs in a browser
    r = httpx.get(page_url, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    assert r.content == page
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in r.headers["content-security-policy"]
    svg = httpx.get(urls["attachment.logo"]["presigned_url"], timeout=HTTP_TIMEOUT)
    assert svg.headers["content-type"] == "application/octet-stream"
    # a tampered token is refused
    token = page_url.rsplit("/", 1)[1]
    payload, mac = token.split(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + mac
    assert httpx.get(f"{live.base}/attachments/{forged}", timeout=HTTP_TIMEOUT).status_code == 404
    assert httpx.get(f"{live.base}/attachments/garbage", timeout=HTTP_TIMEOUT).status_code == 404

    digest = hashlib.sha256(page).hexdigest()
    with live.api() as api:
        mine = api.get(f"/attachments/{digest}")
        assert mine.status_code == 200
        assert mine.content == page
        assert mine.headers["x-content-type-options"] == "nosniff"
        assert api.get("/attachments/" + "0" * 64).status_code == 404
        assert api.get("/attachments/..%2F..%2Fetc%2Fpasswd").status_code == 404
    theirs = httpx.get(
        f"{live.base}/api/v1/attachments/{digest}",
        headers={"x-api-key": other_key},
        timeout=HTTP_TIMEOUT,
    )
    assert theirs.status_code == 404  # even knowing the digest
    assert (
        httpx.get(f"{live.base}/api/v1/attachments/{digest}", timeout=HTTP_TIMEOUT).status_code
        == 401
    )
    intruder = httpx.get(
        f"{live.endpoint}/examples/{ex.id}", headers={"x-api-key": other_key}, timeout=HTTP_TIMEOUT
    )
    assert intruder.status_code == 404
    # another workspace cannot attach files to this workspace's example either
    r = _post_form(
        live,
        other_key,
        "/v1/platform/examples/multipart",
        (str(ex.id), "application/json", f'{{"dataset_id": "{ds.id}"}}'.encode()),
        (f"{ex.id}.inputs", "application/json", b'{"q": 2}'),
        (f"{ex.id}.attachment.page", "image/png", b"overwritten"),
    )
    assert r.status_code == 404, r.text
    with live.api() as api:
        assert api.get(f"/attachments/{digest}").content == page


def test_hostile_multipart_examples(settings: Settings) -> None:
    small = dataclasses.replace(settings, max_attachment_bytes=1000)
    with live_server(small) as live, sdk_client(live) as client:
        ds = client.create_dataset("hostile")
        with pytest.raises(LangSmithError) as too_big:
            client.create_example(
                inputs={"q": 1}, dataset_id=ds.id, attachments={"big": ("image/png", PNG)}
            )
        assert "413" in str(too_big.value)
        assert "max_attachment_bytes" in str(too_big.value)
        assert list(client.list_examples(dataset_id=ds.id)) == []  # nothing stored

        ex_id = str(uuid.uuid4())
        path = f"/v1/platform/datasets/{ds.id}/examples"
        main = (ex_id, "application/json", b"{}")
        inputs = (f"{ex_id}.inputs", "application/json", b'{"q": 1}')
        for bad_name in ("../../etc/passwd", "a/b", "a\\b", "..", "tab\there"):
            r = _post_form(
                live,
                live.key,
                path,
                main,
                inputs,
                (f"{ex_id}.attachment.{bad_name}", "image/png", b"x"),
            )
            assert r.status_code == 400, (bad_name, r.text)
            assert "attachment name" in r.json()["error"]["message"]
        for parts, wanted in (
            ([("not-a-uuid", "application/json", b"{}")], "UUID"),
            ([main, (f"{ex_id}.secret", "application/json", b"{}")], "unknown example field"),
            ([main, (f"{ex_id}.inputs", "application/json", b"{nope")], "not valid JSON"),
            ([main, (f"{ex_id}.inputs", "application/json", b"[1]")], "JSON object"),
        ):
            r = _post_form(live, live.key, path, *parts)
            assert r.status_code == 400, r.text
            assert wanted in r.json()["error"]["message"]
        r = httpx.post(
            live.endpoint + path,
            content=b"garbage",
            headers={"x-api-key": live.key, "content-type": "multipart/form-data; boundary=q"},
            timeout=HTTP_TIMEOUT,
        )
        assert r.status_code == 400
        r = httpx.post(live.endpoint + path, content=b"x", timeout=HTTP_TIMEOUT)
        assert r.status_code == 401
        missing = _post_form(
            live, live.key, f"/v1/platform/datasets/{uuid.uuid4()}/examples", main, inputs
        )
        assert missing.status_code == 404
        # a strange name and media type are kept as data, served as a download
        odd = 'résumé (final) "v2"; rm -rf.pdf'
        ok = _post_form(
            live,
            live.key,
            path,
            main,
            inputs,
            (f"{ex_id}.attachment.{odd}", "text/html<script>; x=1", b"%PDF"),
        )
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"example_ids": [ex_id], "count": 1}
        (example,) = client.list_examples(dataset_id=ds.id, include_attachments=True)
        info = example.attachments[odd]
        assert info["mime_type"] == "application/octet-stream"
        assert info["reader"].read() == b"%PDF"
        r = httpx.get(info["presigned_url"], timeout=HTTP_TIMEOUT)
        assert r.headers["content-type"] == "application/octet-stream"
        assert "\n" not in r.headers["content-disposition"]
        assert "filename*=UTF-8''r%C3%A9sum%C3%A9" in r.headers["content-disposition"]


def test_evaluate_hands_attachments_to_the_target_and_evaluators(live: Live) -> None:
    from langsmith.evaluation import evaluate

    seen: list[bytes] = []
    with sdk_client(live) as client:
        ds = client.create_dataset("vision-eval")
        client.create_examples(
            dataset_id=ds.id,
            examples=[
                {
                    "inputs": {"q": f"picture {i}"},
                    **ref({"size": len(PNG) + i}),
                    "attachments": {"photo": ("image/png", PNG + bytes(i))},
                }
                for i in range(3)
            ],
        )

        def target(inputs: dict[str, Any], attachments: dict[str, Any]) -> dict[str, Any]:
            data = attachments["photo"]["reader"].read()
            seen.append(data)
            return {"size": len(data)}

        def size_matches(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> bool:
            return bool(outputs["size"] == reference_outputs["size"])

        results = evaluate(
            target, data=ds.name, evaluators=[size_matches], client=client, max_concurrency=0
        )
        scores = [r["evaluation_results"]["results"][0].score for r in results]
    assert sorted(seen) == sorted(PNG + bytes(i) for i in range(3))
    assert scores == [True, True, True]
