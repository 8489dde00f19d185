"""What happens to attachment files when their runs and examples go: erasure and trace deletion
forget the rows and sweep the files nobody names any more; a file another workspace still holds
stays; a file used moments ago is never swept."""

from __future__ import annotations

import hashlib
import os
import time
import uuid

import httpx
import orjson
from fastapi import FastAPI

from goldloop.services import attachments, auth
from goldloop.services.context import ServiceContext
from goldloop.store import attachments as rows
from goldloop.store.attachments import AttachmentRow

SHARED = b"\x89PNG shared bytes"
PRIVATE = b"\x89PNG only the erased run has these"


def _form(*parts: tuple[str, str, bytes]) -> tuple[bytes, dict[str, str]]:
    out = b""
    for name, content_type, data in parts:
        head = (
            f'--lc\r\nContent-Disposition: form-data; name="{name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        out += head.encode() + data + b"\r\n"
    return out + b"--lc--\r\n", {"content-type": "multipart/form-data; boundary=lc"}


async def _run_with_files(
    client: httpx.AsyncClient, name: str, *, key: str | None = None, **files: bytes
) -> str:
    run_id = str(uuid.uuid4())
    run = {
        "trace_id": run_id,
        "dotted_order": f"20261126T100000000000Z{run_id}",
        "name": name,
        "run_type": "llm",
        "session_name": "files",
        "start_time": "2026-11-26T10:00:00+00:00",
        "inputs": {"q": "x"},
    }
    parts = [(f"post.{run_id}", "application/json", orjson.dumps(run))]
    parts += [(f"attachment.{run_id}.{k}", "image/png", v) for k, v in files.items()]
    body, headers = _form(*parts)
    if key is not None:
        headers["x-api-key"] = key
    r = await client.post("/langsmith/runs/multipart", content=body, headers=headers)
    assert r.status_code == 202, r.text
    return run_id


def _age(ctx: ServiceContext, data: bytes) -> str:
    """Make a blob look written an hour ago; returns its path."""
    path = attachments.blobs(ctx).path_of(hashlib.sha256(data).hexdigest())
    old = time.time() - 3600
    os.utime(path, (old, old))
    return str(path)


async def test_erasure_forgets_attachments_and_sweeps_their_files(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ctx: ServiceContext = app.state.ctx
    other_key = auth.create_key(ctx, auth.create_workspace(ctx, "other").id, "k", "admin").secret
    other = {"x-api-key": other_key}
    run_id = await _run_with_files(client, "secret-call", photo=SHARED, scan=PRIVATE)
    await _run_with_files(client, "kept-call", photo=b"kept bytes")
    await _run_with_files(client, "theirs", key=other_key, same=SHARED)
    # an example made from the erased run, holding a copy of its file
    made = await client.post("/api/v1/datasets", json={"name": "from-run"})
    example_id = str(uuid.uuid4())
    meta = orjson.dumps({"source_run_id": run_id, "use_source_run_attachments": ["scan"]})
    body, headers = _form(
        (example_id, "application/json", meta),
        (f"{example_id}.inputs", "application/json", b'{"q": "x"}'),
    )
    r = await client.post(
        f"/langsmith/v1/platform/datasets/{made.json()['id']}/examples",
        content=body,
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/attachments/usage")).json()["attachments"] == 4

    shared_path, private_path = _age(ctx, SHARED), _age(ctx, PRIVATE)
    r = await client.post("/api/v1/erasure", json={"filter": 'name = "secret-call"'})
    assert r.status_code == 200, r.text
    assert r.json()["examples"] == 1

    digest = hashlib.sha256(PRIVATE).hexdigest()
    assert (await client.get(f"/api/v1/attachments/{digest}")).status_code == 404
    assert not os.path.exists(private_path)  # nobody names it: its bytes are gone
    usage = (await client.get("/api/v1/attachments/usage")).json()
    assert usage == {"attachments": 1, "blobs": 1, "bytes": len(b"kept bytes")}
    # the other workspace's run holds the same bytes: the file stays, and they still read it
    assert os.path.exists(shared_path)
    shared = hashlib.sha256(SHARED).hexdigest()
    theirs_now = await client.get(f"/api/v1/attachments/{shared}", headers=other)
    assert theirs_now.status_code == 200
    assert theirs_now.content == SHARED
    # ...and this workspace can no longer read it, even by its digest
    assert (await client.get(f"/api/v1/attachments/{shared}")).status_code == 404


async def test_trace_deletion_forgets_attachments(client: httpx.AsyncClient, app: FastAPI) -> None:
    ctx: ServiceContext = app.state.ctx
    run_id = await _run_with_files(client, "to-delete", scan=PRIVATE)
    path = _age(ctx, PRIVATE)
    r = await client.post("/api/v1/traces/delete", json={"trace_ids": [run_id]})
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/attachments/usage")).json()["attachments"] == 0
    assert not os.path.exists(path)


def test_sweep_spares_recent_and_named_blobs(ctx: ServiceContext) -> None:
    store = attachments.blobs(ctx)
    loose = store.put(b"written a moment ago, no row yet")
    named = store.put(b"named by a row")
    ws = auth.create_workspace(ctx, "sweep").id
    row = AttachmentRow("run", "r1", "f", named, 14, "image/png", ctx.clock())
    ctx.db.write(lambda c: rows.put(c, ws, [row]))
    assert attachments.sweep_all(ctx) == 0  # the loose one is too recent to be swept
    assert store.exists(loose)
    assert attachments.sweep(ctx, idle_s=0) == 0  # it never lost a row: not a candidate
    assert attachments.sweep_all(ctx, idle_s=0) == 1
    assert not store.exists(loose)
    assert store.exists(named)
    # reusing a blob makes it recent again
    old = time.time() - 3600
    again = store.put(b"reused")
    os.utime(store.path_of(again), (old, old))
    store.put(b"reused")
    assert attachments.sweep_all(ctx) == 0
    assert store.exists(again)


async def _example_with_file(
    client: httpx.AsyncClient, dataset_id: str, example_id: str, data: bytes
) -> None:
    body, headers = _form(
        (example_id, "application/json", b"{}"),
        (f"{example_id}.inputs", "application/json", b'{"q": "x"}'),
        (f"{example_id}.attachment.file", "image/png", data),
    )
    r = await client.post(
        f"/langsmith/v1/platform/datasets/{dataset_id}/examples", content=body, headers=headers
    )
    assert r.status_code == 200, r.text


async def test_an_example_id_in_two_datasets_has_two_sets_of_files(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ctx: ServiceContext = app.state.ctx
    first = (await client.post("/api/v1/datasets", json={"name": "original"})).json()["id"]
    copy = (await client.post("/api/v1/datasets", json={"name": "copy"})).json()["id"]
    example_id = str(uuid.uuid4())  # a copied dataset keeps its examples' ids
    await _example_with_file(client, first, example_id, b"original file")
    await _example_with_file(client, copy, example_id, PRIVATE)

    async def file_of(dataset_id: str) -> bytes:
        r = await client.get(
            "/langsmith/examples",
            params={"dataset": dataset_id, "select": ["attachment_urls"]},
        )
        (example,) = r.json()
        url = example["attachment_urls"]["attachment.file"]["presigned_url"]
        return (await client.get(url)).content

    assert await file_of(first) == b"original file"
    assert await file_of(copy) == PRIVATE
    path = _age(ctx, PRIVATE)
    assert (await client.delete(f"/api/v1/datasets/{copy}")).status_code in (200, 204)
    assert not os.path.exists(path)  # only the deleted copy held it
    assert await file_of(first) == b"original file"
    assert (await client.get("/api/v1/attachments/usage")).json()["attachments"] == 1


async def test_hard_delete_takes_an_examples_files(client: httpx.AsyncClient, app: FastAPI) -> None:
    ctx: ServiceContext = app.state.ctx
    dataset_id = (await client.post("/api/v1/datasets", json={"name": "hard"})).json()["id"]
    example_id = str(uuid.uuid4())
    await _example_with_file(client, dataset_id, example_id, PRIVATE)
    path = _age(ctx, PRIVATE)
    r = await client.post(
        "/langsmith/v1/platform/datasets/examples/delete",
        json={"example_ids": [example_id], "hard_delete": True},
    )
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/attachments/usage")).json()["attachments"] == 0
    assert not os.path.exists(path)


def test_a_file_that_lost_its_row_is_swept_once_idle(ctx: ServiceContext) -> None:
    store = attachments.blobs(ctx)
    digest = store.put(b"held, then let go")
    ws = auth.create_workspace(ctx, "orphans").id
    row = AttachmentRow("run", "r1", "f", digest, 17, "image/png", ctx.clock())
    ctx.db.write(lambda c: rows.put(c, ws, [row]))
    ctx.db.write(lambda c: rows.remove_owners(c, ws, "run", ["r1"]))
    assert attachments.sweep(ctx) == 0  # used moments ago: kept, still a candidate
    assert store.exists(digest)
    old = time.time() - 3600
    os.utime(store.path_of(digest), (old, old))
    assert attachments.sweep(ctx) == 1
    assert not store.exists(digest)
    assert ctx.db.read(lambda c: rows.orphan_page(c, "", 10)) == []  # settled
