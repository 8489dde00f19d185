"""Cost per call of the deterministic built-in evaluators, and of a comparison.

    PYTHONPATH=src python bench/evaluators.py [--calls 20000]

Each evaluator is built by name (as rules do) and called through ``evaluate_run`` (the path
the experiment runner and the online evaluator take, error capture included) on a realistic
run: a support-agent answer with a JSON booking and a trace of 12 child runs, 4 of them tool
calls. Prints a table and writes bench/results/evaluators-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from goldloop.domain.comparison import compare_key
from goldloop.evaluation import ExampleData, RunData, build_evaluator, evaluate_run

ANSWER = (
    "Thanks for reaching out. I checked booking B1234 for you: the rate you booked is "
    "non-refundable, so a cancellation would not be refunded. You can still change the "
    "dates once for a fee of 25 EUR. Would you like me to do that?"
)


def make_run() -> RunData:
    tools = ["lookup_booking", "check_policy", "quote_change", "send_email"]
    children = []
    t = 1_000_000
    for i in range(12):
        name = tools[i // 3] if i % 3 == 0 else f"llm_step_{i}"
        kind = "tool" if i % 3 == 0 else "llm"
        children.append(
            RunData(
                name=name,
                kind=kind,
                start_time=t + i * 1000,
                end_time=t + i * 1000 + 800,
                inputs={"booking_id": "B1234", "rate": "NR"},
                cost=0.0004 if kind == "llm" else None,
                usage={"input_tokens": 300, "output_tokens": 60} if kind == "llm" else {},
            )
        )
    return RunData(
        inputs={"question": "Can I cancel my booking B1234 and get my money back?"},
        outputs={
            "answer": ANSWER,
            "booking": {"id": "B1234", "refundable": False, "change_fee": 25.0},
            "json": '{"booking_id": "B1234", "refundable": false}',
        },
        start_time=t,
        end_time=t + 1_850_000,
        child_runs=tuple(children),
    )


EXAMPLE = ExampleData(
    inputs={"question": "Can I cancel my booking B1234 and get my money back?"},
    outputs={
        "answer": ANSWER.replace("Thanks", "Thank you"),
        "label": "non-refundable",
        "fee": 25,
        "tool_calls": ["lookup_booking", "check_policy"],
        "paraphrase": (
            "Hello, I looked up your booking B1234. Unfortunately this rate cannot be refunded "
            "if you cancel. A one-time date change is possible for a 25 EUR fee; shall I go "
            "ahead and change it?"
        ),
    },
)

SCHEMA = {
    "type": "object",
    "required": ["booking_id", "refundable"],
    "properties": {
        "booking_id": {"type": "string", "pattern": "^B[0-9]+$"},
        "refundable": {"type": "boolean"},
    },
    "additionalProperties": False,
}

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("exact_match", "exact_match", {"field": "answer", "reference_field": "answer"}),
    (
        "exact_match (normalised)",
        "exact_match",
        {
            "field": "answer",
            "reference_field": "answer",
            "case_sensitive": False,
            "collapse_whitespace": True,
            "ignore_punctuation": True,
        },
    ),
    ("contains", "contains", {"field": "answer", "substrings": ["non-refundable", "B1234"]}),
    (
        "regex",
        "regex",
        {"field": "answer", "pattern": r"non-?refundable", "flags": ["ignore_case"]},
    ),
    ("json_parse", "json_parse", {"field": "json", "expect_type": "object"}),
    ("json_schema", "json_schema", {"field": "json", "schema": SCHEMA}),
    ("required_fields", "required_fields", {"fields": ["booking.id", "booking.refundable"]}),
    (
        "numeric_tolerance",
        "numeric_tolerance",
        {"field": "booking.change_fee", "reference_field": "fee", "abs_tol": 0.01},
    ),
    (
        "tool_trajectory (in_order)",
        "tool_trajectory",
        {"expected": ["lookup_booking", "check_policy"], "forbidden": ["issue_refund"]},
    ),
    (
        "tool_trajectory (unordered+args)",
        "tool_trajectory",
        {
            "expected": [
                {"name": "send_email"},
                {"name": "lookup_booking", "args": {"rate": "NR"}},
                "check_policy",
                "quote_change",
            ],
            "mode": "unordered",
        },
    ),
    ("latency_budget", "latency_budget", {"max_ms": 3000}),
    ("cost_budget", "cost_budget", {"max_cost": 0.01, "max_tokens": 5000}),
    (
        "string_distance (near-identical)",
        "string_distance",
        {"field": "answer", "reference_field": "answer"},
    ),
    (
        "string_distance (2 x ~200 chars)",
        "string_distance",
        {"field": "answer", "reference_field": "paraphrase"},
    ),
]


def time_calls(fn: Any, calls: int) -> float:
    """Median over 5 rounds of the mean seconds per call."""
    rounds = []
    per_round = max(1, calls // 5)
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(per_round):
            fn()
        rounds.append((time.perf_counter() - start) / per_round)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    run = make_run()
    rows = []
    print(f"{'evaluator':36} {'us/call':>10} {'calls/s':>10}  score")
    for label, name, config in CASES:
        ev = build_evaluator(name, config)
        [res] = evaluate_run(ev, run, EXAMPLE)
        assert res.error is None, (label, res.error)
        calls = args.calls // 200 if "2 x" in label else args.calls
        sec = time_calls(lambda ev=ev: evaluate_run(ev, run, EXAMPLE), calls)
        rows.append({"evaluator": label, "us_per_call": sec * 1e6, "score": res.score})
        print(f"{label:36} {sec * 1e6:10.1f} {1 / sec:10,.0f}  {res.score}")

    rng = random.Random(1)
    a = {f"e{i}": [float(rng.random() < 0.8) for _ in range(3)] for i in range(1000)}
    b = {k: [float(rng.random() < 0.78) for _ in range(3)] for k in a}
    start = time.perf_counter()
    cmp = compare_key("correct", a, b)
    compare_s = time.perf_counter() - start
    print(
        f"\ncompare_key, 1000 examples x 3 repetitions (one-sided test, interval and power): "
        f"{compare_s * 1000:.0f} ms (p={cmp.test.p_value:.3g})"
    )
    out_dir = Path(__file__).resolve().parent / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"evaluators-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {
                "command": " ".join(["python", *sys.argv]),
                "python": platform.python_version(),
                "machine": platform.machine(),
                "calls": args.calls,
                "evaluators": rows,
                "compare_1000x3_ms": compare_s * 1000,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
