"""The experiment runner's wall time and its own overhead (issue 6's benchmark).

    PYTHONPATH=src python bench/runner.py [--examples 1000] [--repetitions 3] [--sleep-ms 50]

1. 1,000 examples x 3 repetitions, a target that sleeps 50 ms, two deterministic evaluators,
   max_concurrency=16: wall time against the ideal 1000 x 3 x 0.05 / 16 s.
2. The same with a target that returns at once: the runner's own cost per (example,
   repetition) — tracing the call, collecting its trace, two evaluators, bookkeeping — both
   with 16 workers and with 1.

Nothing is sent anywhere (the SDK is not configured to trace). Prints the figures and writes
bench/results/runner-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import goldloop
from goldloop.evaluation import build_evaluator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--sleep-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    data = [
        {"id": f"ex{i}", "inputs": {"q": f"question {i}"}, "outputs": {"answer": f"answer {i}"}}
        for i in range(args.examples)
    ]
    evaluators = [
        build_evaluator("exact_match", {"key": "correct"}),
        build_evaluator("regex", {"pattern": r"^answer \d+$"}),
    ]
    pause = args.sleep_ms / 1000.0

    def sleepy(inputs: dict[str, Any]) -> dict[str, str]:
        time.sleep(pause)
        return {"answer": inputs["q"].replace("question", "answer")}

    def instant(inputs: dict[str, Any]) -> dict[str, str]:
        return {"answer": inputs["q"].replace("question", "answer")}

    calls = args.examples * args.repetitions
    ideal = calls * pause / args.concurrency
    res = goldloop.evaluate(
        sleepy, data, evaluators, repetitions=args.repetitions,
        max_concurrency=args.concurrency, progress=False,
    )  # fmt: skip
    assert res.errors == 0
    assert res.summary()["correct"]["mean"] == 1.0
    print(
        f"{args.examples} examples x {args.repetitions} repetitions, target sleeps "
        f"{args.sleep_ms:g} ms, 2 evaluators, max_concurrency={args.concurrency}:\n"
        f"  wall {res.wall_s:.2f} s, ideal {ideal:.2f} s, ratio {res.wall_s / ideal:.3f}"
    )
    overhead = {}
    for workers in (args.concurrency, 1):
        quick = goldloop.evaluate(
            instant, data, evaluators, repetitions=args.repetitions,
            max_concurrency=workers, progress=False,
        )  # fmt: skip
        overhead[workers] = quick.wall_s / calls * 1000
        print(
            f"  no-op target, {workers:2d} worker(s): {quick.wall_s:.2f} s for {calls} calls = "
            f"{overhead[workers]:.3f} ms per (example, repetition)"
        )
    out_dir = Path(__file__).resolve().parent / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"runner-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {
                "command": " ".join(["python", *sys.argv]),
                "python": platform.python_version(),
                "examples": args.examples,
                "repetitions": args.repetitions,
                "sleep_ms": args.sleep_ms,
                "concurrency": args.concurrency,
                "wall_s": res.wall_s,
                "ideal_s": ideal,
                "ratio": res.wall_s / ideal,
                "overhead_ms_per_call": overhead,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
