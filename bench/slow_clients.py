"""Hostile clients without a key against a real `goldloop serve` (issue 22, items 1 and 2).

1. Slow bodies: authenticated OTLP protobuf ingestion (spans acknowledged per second, 4 client
   threads, bodies of 100 spans built before the clock) for ``--seconds``, first alone, then
   while ``--attackers`` connections without a key each send the headers of
   ``POST /v1/traces`` with ``Content-Length: 100000`` and a few bytes, then nothing; an
   attacker whose connection the server closes opens a new one after ``--reopen-after`` seconds
   (a separate process: 256 connections kept open as far as the server lets them).
2. Large bodies: 40 concurrent 24 MiB bodies on ``/api/v1/projects`` without a key, then 40
   with one; the server process's RSS before and its peak (VmHWM) after.

    python bench/slow_clients.py                     # SQLite
    python bench/slow_clients.py --database-url postgresql://postgres@127.0.0.1:5432/test

Prints the figures and writes bench/results/slow_clients-<backend>-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import results_file  # noqa: E402
from ingest import build_traces, private_schema, start_server, warm_up  # noqa: E402

from otlp_builders import request  # noqa: E402

MIB = 1024 * 1024
ATTACK_HEAD = (
    b"POST /v1/traces HTTP/1.1\r\nhost: bench\r\ncontent-type: application/x-protobuf\r\n"
    b"content-length: 100000\r\n\r\n\n\x05abcde"
)


def otlp_bodies(n_spans: int = 4000, per_body: int = 100) -> list[bytes]:
    spans = [s for trace in build_traces(n_spans // 5, 1000) for s in trace]
    out = []
    for i in range(0, len(spans), per_body):
        out.append(request(spans[i : i + per_body], service="bench-slow").SerializeToString())
    return out


def ingest_rate(base: str, key: str, bodies: list[bytes], seconds: float) -> dict[str, Any]:
    """Spans acknowledged per second by 4 threads sending ``bodies`` in a loop."""
    counts = {"spans": 0, "errors": 0}
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    headers = {"x-api-key": key, "content-type": "application/x-protobuf"}

    def worker(offset: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
            i = offset
            while time.monotonic() < stop:
                r = c.post("/v1/traces", content=bodies[i % len(bodies)])
                with lock:
                    if r.status_code == 200:
                        counts["spans"] += 100
                    else:
                        counts["errors"] += 1
                i += 4

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return {"spans_per_s": counts["spans"] / elapsed, "errors": counts["errors"]}


async def _attack(host: str, port: int, n: int, reopen_after: float, seconds: float) -> None:
    opened = closed = 0
    stop = time.monotonic() + seconds

    async def one() -> None:
        nonlocal opened, closed
        while time.monotonic() < stop:
            try:
                reader, writer = await asyncio.open_connection(host, port)
                opened += 1
                writer.write(ATTACK_HEAD)
                await writer.drain()
                await asyncio.wait_for(reader.read(), max(0.0, stop - time.monotonic()))
                closed += 1  # the server answered and closed it
                writer.close()
            except (TimeoutError, OSError):
                pass
            await asyncio.sleep(reopen_after)

    await asyncio.gather(*(one() for _ in range(n)))
    print(json.dumps({"opened": opened, "closed_by_server": closed}))


def large_bodies(base: str, key: str, pid: int) -> dict[str, Any]:
    def status(headers: dict[str, str]) -> int:
        try:
            r = httpx.post(
                f"{base}/api/v1/projects", content=b"x" * (24 * MIB), headers=headers, timeout=60
            )
        except httpx.TransportError:
            return 0  # closed after the answer, before the whole body was sent
        return r.status_code

    rss = vm(pid, "VmRSS")
    out: dict[str, Any] = {"rss_before_mib": rss}
    for name, headers in [("without_key", {}), ("with_key", {"x-api-key": key})]:
        with ThreadPoolExecutor(40) as pool:
            statuses = list(pool.map(status, [headers] * 40))
        out[name] = {str(s): statuses.count(s) for s in sorted(set(statuses))}
        out[f"rss_peak_after_{name}_mib"] = vm(pid, "VmHWM")
    return out


def vm(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--attackers", type=int, default=256)
    parser.add_argument("--reopen-after", type=float, default=1.0)
    parser.add_argument("--attack", nargs=2, metavar=("HOST", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attack:
        host, port = args.attack
        asyncio.run(_attack(host, int(port), args.attackers, args.reopen_after, args.seconds))
        return
    backend = "postgres" if args.database_url else "sqlite"
    bodies = otlp_bodies()
    with tempfile.TemporaryDirectory() as tmp, private_schema(args.database_url) as url:
        # more pending connections per address than the attackers: they share one address
        env = {"GOLDLOOP_MAX_UNAUTHENTICATED_PER_CLIENT": str(args.attackers + 64)}
        proc, base = start_server(Path(tmp) / "data", url, env)
        try:
            key = (Path(tmp) / "data" / "admin-key").read_text().strip()
            warm_up(base, key, proc.pid)
            alone = ingest_rate(base, key, bodies, args.seconds)
            host, port = base.removeprefix("http://").split(":")
            attacker = subprocess.Popen(
                [sys.executable, __file__, "--attack", host, port, "--attackers",
                 str(args.attackers), "--reopen-after", str(args.reopen_after),
                 "--seconds", str(args.seconds + 2)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(1.0)  # every attacker connected
            attacked = ingest_rate(base, key, bodies, args.seconds)
            out, _ = attacker.communicate(timeout=args.seconds + 30)
            memory = large_bodies(base, key, proc.pid)
        finally:
            proc.kill()
            proc.wait(10)
    ratio = attacked["spans_per_s"] / alone["spans_per_s"]
    result = {
        "backend": backend,
        "seconds": args.seconds,
        "attackers": args.attackers,
        "reopen_after_s": args.reopen_after,
        "unattacked": alone,
        "attacked": attacked,
        "attacked_over_unattacked": round(ratio, 3),
        "attack": json.loads(out.strip().splitlines()[-1]) if out.strip() else {},
        "large_bodies": memory,
    }
    print(f"{backend}: authenticated OTLP ingestion, spans/s")
    print(f"  alone:                         {alone['spans_per_s']:9.0f}  errors {alone['errors']}")
    print(
        f"  with {args.attackers} slow keyless connections: {attacked['spans_per_s']:9.0f}  "
        f"errors {attacked['errors']}  ({ratio:.0%} of alone; attack {result['attack']})"
    )
    print(f"large bodies: {json.dumps(memory)}")
    results_file.write(f"slow_clients-{backend}", result)


if __name__ == "__main__":
    main()
