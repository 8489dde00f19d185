"""Benchmark attachments end to end through the HTTP stack (in process, no sockets).

For each file size (default 10 KB and 1 MB), uploads examples with one attachment each through
the LangSmith multipart examples endpoint (``POST /langsmith/v1/platform/datasets/{id}/examples``,
``--per-request`` examples a request), then:

- reads every file back through its signed URL (``GET /attachments/{token}``);
- uploads the same bytes again into a second dataset (content addressing: no new files);
- times a full scan of the blob store with nothing to delete (``sweep_all``), then deletes the
  datasets and times the sweep of the files they let go (``sweep``, candidates only).

Usage:
    python bench/attachments.py                         # SQLite in a temporary directory
    python bench/attachments.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench_att

Results go to bench/results/attachments-<backend>-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import results_file

from goldloop.http.app import create_app
from goldloop.services import attachments
from goldloop.settings import load_settings


def _form(parts: list[tuple[str, str, bytes]]) -> tuple[bytes, dict[str, str]]:
    chunks = []
    for name, content_type, data in parts:
        head = (
            f'--bench\r\nContent-Disposition: form-data; name="{name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        chunks += [head.encode(), data, b"\r\n"]
    chunks.append(b"--bench--\r\n")
    return b"".join(chunks), {"content-type": "multipart/form-data; boundary=bench"}


async def _upload(
    client: httpx.AsyncClient, dataset_id: str, files: list[bytes], per_request: int
) -> float:
    start = time.perf_counter()
    for i in range(0, len(files), per_request):
        parts = []
        for data in files[i : i + per_request]:
            ex = str(uuid.uuid4())
            parts += [
                (ex, "application/json", b"{}"),
                (f"{ex}.inputs", "application/json", b'{"q": "bench"}'),
                (f"{ex}.attachment.file", "image/png", data),
            ]
        body, headers = _form(parts)
        r = await client.post(
            f"/langsmith/v1/platform/datasets/{dataset_id}/examples", content=body, headers=headers
        )
        r.raise_for_status()
    return time.perf_counter() - start


async def _read_back(client: httpx.AsyncClient, dataset_id: str) -> tuple[float, int]:
    r = await client.get(
        "/langsmith/examples",
        params={"dataset": dataset_id, "select": ["attachment_urls"], "limit": 100},
    )
    r.raise_for_status()
    urls = [e["attachment_urls"]["attachment.file"]["presigned_url"] for e in r.json()]
    offset = 100
    while len(r.json()) == 100:
        r = await client.get(
            "/langsmith/examples",
            params={
                "dataset": dataset_id,
                "select": ["attachment_urls"],
                "limit": 100,
                "offset": offset,
            },
        )
        urls += [e["attachment_urls"]["attachment.file"]["presigned_url"] for e in r.json()]
        offset += 100
    start = time.perf_counter()
    total = 0
    for url in urls:
        got = await client.get(url)
        got.raise_for_status()
        total += len(got.content)
    return time.perf_counter() - start, total


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="goldloop-bench-att-"))
    settings = load_settings(
        {
            "data_dir": str(data_dir),
            "database_url": args.database_url or None,
            "max_request_bytes": 64 * 1024 * 1024,
            "workers_in_process": False,
            "ingest_processes": 0,
        },
        environ={},
    )
    app = create_app(settings)
    rng = random.Random(21)
    out: dict[str, Any] = {"sizes": []}
    async with app.router.lifespan_context(app):
        key = settings.admin_key_path.read_text().strip()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers={"x-api-key": key}, timeout=600
        ) as client:
            ctx = app.state.ctx
            for size in args.sizes:
                count = max(1, args.megabytes * 1024 * 1024 // size)
                files = [rng.randbytes(size) for _ in range(count)]
                first = (
                    await client.post("/api/v1/datasets", json={"name": f"bench-{size}"})
                ).json()["id"]
                up_s = await _upload(client, first, files, args.per_request)
                read_s, read_bytes = await _read_back(client, first)
                again = (
                    await client.post("/api/v1/datasets", json={"name": f"bench-{size}-again"})
                ).json()["id"]
                blobs_before = sum(1 for _ in attachments.blobs(ctx).stored())
                dup_s = await _upload(client, again, files, args.per_request)
                blobs_after = sum(1 for _ in attachments.blobs(ctx).stored())
                mb = count * size / 1e6
                row = {
                    "file_bytes": size,
                    "files": count,
                    "upload_s": round(up_s, 3),
                    "upload_mb_per_s": round(mb / up_s, 1),
                    "upload_files_per_s": round(count / up_s, 1),
                    "read_s": round(read_s, 3),
                    "read_mb_per_s": round(read_bytes / 1e6 / read_s, 1),
                    "read_files_per_s": round(count / read_s, 1),
                    "same_bytes_again_s": round(dup_s, 3),
                    "new_files_for_same_bytes": blobs_after - blobs_before,
                }
                print(row)
                out["sizes"].append(row)
            start = time.perf_counter()
            kept = attachments.sweep_all(ctx, idle_s=0)
            out["full_scan_nothing_to_delete_s"] = round(time.perf_counter() - start, 3)
            out["full_scan_deleted_nothing"] = kept == 0
            stored = sum(1 for _ in attachments.blobs(ctx).stored())
            out["blobs_on_disk"] = stored
            for name in [f"bench-{s}" for s in args.sizes] + [
                f"bench-{s}-again" for s in args.sizes
            ]:
                (await client.delete(f"/api/v1/datasets/{name}")).raise_for_status()
            start = time.perf_counter()
            out["files_swept_after_delete"] = attachments.sweep(ctx, idle_s=0)
            out["sweep_after_delete_s"] = round(time.perf_counter() - start, 3)
            out["blobs_left"] = sum(1 for _ in attachments.blobs(ctx).stored())
    out["backend"] = "postgresql" if args.database_url else "sqlite"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--megabytes", type=int, default=50, help="bytes uploaded per size, MB")
    parser.add_argument("--per-request", type=int, default=10)
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    figures.update(
        {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "megabytes_per_size": args.megabytes,
            "per_request": args.per_request,
        }
    )
    results_file.write(f"attachments-{figures['backend']}", figures)


if __name__ == "__main__":
    main()
