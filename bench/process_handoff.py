"""What handing a request to an ingest worker process costs: the pipe against shared memory.

An OTLP request of 500 benchmark spans is ~1.5 MB and the encoded runs that come back ~2.3 MB.
``ingest_processes`` sends both through ``ProcessPoolExecutor``'s pipes (pickled call and
result). This measures, for bodies and results of those sizes and a worker that does nothing
else, the CPU per request of the server side and of the worker (from ``/proc``) and the wall
time, through the pipe and through files in ``/dev/shm`` (one write and one read each way).

    python bench/process_handoff.py [--requests 200] [--body-bytes 1500000] [--result-bytes 2300000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import results_file

SHM = Path("/dev/shm")


def through_pipe(body: bytes, result_bytes: int) -> bytes:
    return b"r" * result_bytes


def through_shm(path: str, result_bytes: int) -> str:
    Path(path).read_bytes()
    os.unlink(path)
    out = path + ".result"
    Path(out).write_bytes(b"r" * result_bytes)
    return out


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_of(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--body-bytes", type=int, default=1_500_000)
    parser.add_argument("--result-bytes", type=int, default=2_300_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not SHM.is_dir():
        raise SystemExit("/dev/shm is not available here")
    body = os.urandom(args.body_bytes)
    results: list[dict[str, object]] = []
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(through_pipe, b"", 1).result()
        workers = list(pool._processes)  # the one worker, to read its CPU time
        for _ in range(args.rounds):
            for way in ("pipe", "shared memory"):
                main0, worker0, t0 = own_cpu(), cpu_of(workers), time.perf_counter()
                for i in range(args.requests):
                    if way == "pipe":
                        pool.submit(through_pipe, body, args.result_bytes).result()
                        continue
                    path = SHM / f"goldloop-handoff-{os.getpid()}-{i}"
                    path.write_bytes(body)
                    out = Path(pool.submit(through_shm, str(path), args.result_bytes).result())
                    out.read_bytes()
                    out.unlink()
                n = args.requests
                row = {
                    "way": way,
                    "server_cpu_ms": round((own_cpu() - main0) / n * 1000, 2),
                    "worker_cpu_ms": round((cpu_of(workers) - worker0) / n * 1000, 2),
                    "wall_ms": round((time.perf_counter() - t0) / n * 1000, 2),
                }
                results.append(row)
                print(
                    f"{way:14} server {row['server_cpu_ms']:5.2f} ms CPU, worker "
                    f"{row['worker_cpu_ms']:5.2f} ms CPU, {row['wall_ms']:5.2f} ms wall each",
                    flush=True,
                )
    results_file.write("process-handoff", {"args": vars(args), "results": results})


if __name__ == "__main__":
    main()
