"""Bulk dataset writes and reads against a real server on a real socket.

    python bench/datasets_bulk.py [--examples 10000] [--database-url postgresql://...]

Starts `create_app` under uvicorn on 127.0.0.1 (SQLite in a temporary data directory unless
--database-url is given), then times, over HTTP with the Python client:
- adding N examples in ONE request (one new version),
- updating 1% of them (one version), then reading every example as of the first version,
- listing the newest version in pages of 1000, the diff of the two versions,
- exporting JSONL and Parquet, and importing the Parquet file into an empty dataset.
Prints a table and writes bench/results/datasets_bulk-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from goldloop.client import Client
from goldloop.http.app import create_app
from goldloop.settings import load_settings


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()

    def install_signal_handlers(self) -> None:
        pass


def timed(results: dict[str, float], name: str, fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn()
    results[name] = round(time.perf_counter() - start, 3)
    print(f"{name:<44} {results[name]:>8.3f} s", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    n = args.examples

    data_dir = Path(tempfile.mkdtemp(prefix="goldloop-bench-"))
    settings = load_settings({"data_dir": data_dir, "database_url": args.database_url})
    app = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = _Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    server.ready.wait(60)
    endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    key = settings.admin_key_path.read_text().strip()
    results: dict[str, float] = {}
    name = f"bench-{int(time.time())}"
    examples = [
        {
            "inputs": {"question": f"Can I cancel booking B-{i}?", "locale": "en-GB"},
            "outputs": {"answer": "Your rate is non-refundable.", "label": "non-refundable"},
            "metadata": {"topic": "refunds", "n": i},
            "splits": ["test" if i % 5 == 0 else "train"],
        }
        for i in range(n)
    ]
    try:
        with Client(endpoint, key, timeout=600) as client:
            client.create_dataset(name)
            added = timed(
                results,
                f"add {n} examples in one request",
                lambda: client.create_examples(name, examples),
            )
            ids = added["added"]
            changed = ids[::100]
            timed(
                results,
                f"update {len(changed)} examples (one version)",
                lambda: client.create_examples(
                    name,
                    [{"id": i, "inputs": {"question": "changed"}} for i in changed],
                    upsert=True,
                ),
            )
            old = timed(
                results,
                f"read all {n} examples as_of=1 (pages of 1000)",
                lambda: list(client.list_examples(name, as_of=1, page_size=1000)),
            )
            assert len(old) == n
            timed(
                results,
                f"read all {n} newest examples (pages of 1000)",
                lambda: list(client.list_examples(name, page_size=1000)),
            )
            diff = timed(results, "diff v1..v2", lambda: client.diff_versions(name, 1, 2))
            assert len(diff["changed"]) == len(changed)
            timed(results, "export jsonl", lambda: client.export_dataset(name, format="jsonl"))
            parquet = timed(
                results, "export parquet", lambda: client.export_dataset(name, format="parquet")
            )
            client.create_dataset(name + "-copy")
            timed(
                results,
                f"import parquet ({n} examples) into an empty dataset",
                lambda: client.import_dataset(name + "-copy", parquet, format="parquet"),
            )
    finally:
        server.should_exit = True
        thread.join(30)
    out = Path(__file__).parent / "results" / f"datasets_bulk-{int(time.time())}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "examples": n,
                "database": "postgresql" if args.database_url else "sqlite",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "seconds": results,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
