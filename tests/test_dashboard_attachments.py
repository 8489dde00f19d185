"""Attachments in the dashboard: images and audio shown in the trace panel and on the dataset
page through signed same-origin URLs, names escaped, other workspaces shut out."""

from __future__ import annotations

import html as htmllib
import re
import uuid

import httpx
import orjson
from fastapi import FastAPI

from dashboard_helpers import other_workspace_browser

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt "
EVIL = '<img src=x onerror="window.__xss=1">'


def _form(*parts: tuple[str, str, bytes], boundary: str = "att1") -> tuple[bytes, dict[str, str]]:
    out = b""
    for name, content_type, data in parts:
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        out += head.encode() + data + b"\r\n"
    body = out + f"--{boundary}--\r\n".encode()
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


def _srcs(page: str) -> dict[str, str]:
    """tag -> the signed URL it loads (img and audio)."""
    found = re.findall(r'<(img|audio)[^>]* src="([^"]+)"', page)
    return {tag: htmllib.unescape(src) for tag, src in found}


async def test_trace_panel_and_dataset_page_show_attachments(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, app: FastAPI
) -> None:
    run_id = str(uuid.uuid4())
    run = {
        "trace_id": run_id,
        "dotted_order": f"20261126T100000000000Z{run_id}",
        "name": "look",
        "run_type": "llm",
        "session_name": "vision",
        "start_time": "2026-11-26T10:00:00+00:00",
        "end_time": "2026-11-26T10:00:01+00:00",
        "inputs": {"q": "what is this?"},
    }
    body, headers = _form(
        (f"post.{run_id}", "application/json", orjson.dumps(run)),
        (f"attachment.{run_id}.photo", "image/png", PNG),
        (f"attachment.{run_id}.voice", "audio/wav", WAV),
        (f"attachment.{run_id}.{EVIL}", "text/html", b"<b>hi</b>"),
    )
    r = await client.post("/langsmith/runs/multipart", content=body, headers=headers)
    assert r.status_code == 202, r.text

    page = await browser.get(f"/traces/{run_id}")
    assert page.status_code == 200
    assert EVIL not in page.text  # the hostile name is escaped
    assert htmllib.escape(EVIL, quote=False) in page.text or "&lt;img" in page.text
    srcs = _srcs(page.text)
    assert set(srcs) == {"img", "audio"}
    assert all(src.startswith("/attachments/") for src in srcs.values())  # same origin: CSP ok
    image = await browser.get(srcs["img"])
    assert image.status_code == 200
    assert image.content == PNG
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith("inline;")
    audio = await browser.get(srcs["audio"])
    assert audio.content == WAV
    assert audio.headers["content-type"] == "audio/wav"

    # the dataset page: an example made through the multipart examples endpoint
    made = await client.post("/api/v1/datasets", json={"name": "shots"})
    assert made.status_code in (200, 201), made.text
    dataset_id = made.json()["id"]
    example_id = str(uuid.uuid4())
    body, headers = _form(
        (example_id, "application/json", b"{}"),
        (f"{example_id}.inputs", "application/json", b'{"q": "a picture"}'),
        (f"{example_id}.attachment.shot", "image/png", PNG),
    )
    r = await client.post(
        f"/langsmith/v1/platform/datasets/{dataset_id}/examples", content=body, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"example_ids": [example_id], "count": 1}
    listing = await browser.get(f"/datasets/{dataset_id}")
    assert listing.status_code == 200
    shot = _srcs(listing.text)["img"]
    assert (await browser.get(shot)).content == PNG

    # another workspace sees neither the trace nor the example, nor their files by digest
    async with other_workspace_browser(app) as other:
        assert (await other.get(f"/traces/{run_id}")).status_code == 404
        assert (await other.get(f"/datasets/{dataset_id}")).status_code == 404
