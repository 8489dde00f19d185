"""Attachments in a real browser: an image shows (decoded, under the dashboard's CSP) and audio
gets a player, on the trace page and the dataset page; a hostile attachment name stays text."""

from __future__ import annotations

import struct
import uuid
import zlib

import orjson
from dashboard_harness import Pages, Server

EVIL = '<img src=x onerror="window.__xss=1;alert(1)">'


def _png(width: int = 3, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _wav(samples: int = 800) -> bytes:
    data = b"\x00\x00" * samples
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


def _form(*parts: tuple[str, str, bytes]) -> tuple[bytes, dict[str, str]]:
    out = b""
    for name, content_type, data in parts:
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        head = (
            f'--bnd\r\nContent-Disposition: form-data; name="{quoted}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        out += head.encode() + data + b"\r\n"
    return out + b"--bnd--\r\n", {"content-type": "multipart/form-data; boundary=bnd"}


def _image_decoded(tab: Pages) -> bool:
    return bool(
        tab.page.evaluate(
            "() => [...document.querySelectorAll('.attachment img')]"
            ".every(i => i.complete && i.naturalWidth === 3)"
        )
    )


def test_trace_and_dataset_pages_show_images_and_audio(tab: Pages, server: Server) -> None:
    run_id = str(uuid.uuid4())
    run = {
        "trace_id": run_id,
        "dotted_order": f"20261126T100000000000Z{run_id}",
        "name": "vision-call",
        "run_type": "llm",
        "session_name": "browser-files",
        "start_time": "2026-11-26T10:00:00+00:00",
        "end_time": "2026-11-26T10:00:01+00:00",
        "inputs": {"q": "what is this?"},
    }
    body, headers = _form(
        (f"post.{run_id}", "application/json", orjson.dumps(run)),
        (f"attachment.{run_id}.photo", "image/png", _png()),
        (f"attachment.{run_id}.voice", "audio/wav", _wav()),
        (f"attachment.{run_id}.{EVIL}", "text/html", b"<script>window.__xss=1</script>"),
    )
    with server.api() as api:
        r = api.post("/langsmith/runs/multipart", content=body, headers=headers)
        assert r.status_code == 202, r.text
        made = api.post("/api/v1/datasets", json={"name": f"files-{run_id[:8]}"})
        assert made.status_code in (200, 201), made.text
        dataset_id = made.json()["id"]
        example_id = str(uuid.uuid4())
        body, headers = _form(
            (example_id, "application/json", b"{}"),
            (f"{example_id}.inputs", "application/json", b'{"q": "a picture"}'),
            (f"{example_id}.attachment.shot", "image/png", _png()),
        )
        r = api.post(
            f"/langsmith/v1/platform/datasets/{dataset_id}/examples", content=body, headers=headers
        )
        assert r.status_code == 200, r.text

    tab.sign_in()
    tab.goto(f"/traces/{run_id}")
    tab.page.wait_for_selector(".attachment img")
    tab.page.wait_for_function(
        "() => [...document.querySelectorAll('.attachment img')].every(i => i.complete)"
    )
    assert _image_decoded(tab)
    assert tab.page.locator(".attachment audio").count() == 1
    assert tab.page.get_by_text(EVIL).count() == 1  # the hostile name is shown as text
    tab.shot("trace-attachments")

    tab.goto(f"/datasets/{dataset_id}")
    tab.page.wait_for_selector(".attachment img")
    tab.page.wait_for_function(
        "() => [...document.querySelectorAll('.attachment img')].every(i => i.complete)"
    )
    assert _image_decoded(tab)
    tab.shot("dataset-attachments")
    assert not tab.xss_fired()
    assert tab.dialogs == []
    assert not [e for e in tab.console_errors if "Content Security Policy" in e]
