"""The deterministic built-in evaluators, built by name from JSON config as rules will."""

from __future__ import annotations

import functools
import random
from typing import Any

import pytest

from goldloop.evaluation import (
    EvaluationResult,
    ExampleData,
    RunData,
    build_evaluator,
    evaluate_run,
    levenshtein,
    levenshtein_similarity,
)


def run_of(outputs: Any, **kw: Any) -> RunData:
    return RunData(inputs={"q": "?"}, outputs=outputs, **kw)


def ex(outputs: Any) -> ExampleData:
    return ExampleData(inputs={"q": "?"}, outputs=outputs)


def one(
    name: str, config: dict[str, Any], run: RunData, example: ExampleData | None = None
) -> EvaluationResult:
    [res] = evaluate_run(build_evaluator(name, config), run, example)
    return res


# ---------------------------------------------------------------- exact match


@pytest.mark.parametrize(
    ("config", "got", "want", "score"),
    [
        ({}, "Non-refundable", "Non-refundable", 1.0),
        ({}, " Non-refundable\n", "Non-refundable", 1.0),  # strip is on by default
        ({"strip": False}, " Non-refundable", "Non-refundable", 0.0),
        ({}, "non-refundable", "Non-refundable", 0.0),
        ({"case_sensitive": False}, "NON-refundable", "Non-Refundable", 1.0),
        ({"collapse_whitespace": True}, "not   refundable\tat all", "not refundable at all", 1.0),
        ({"ignore_punctuation": True, "case_sensitive": False}, "Yes!", "yes", 1.0),
        ({}, {"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}, 1.0),
        ({}, {"a": 1}, {"a": 2}, 0.0),
    ],
)
def test_exact_match(config: dict[str, Any], got: Any, want: Any, score: float) -> None:
    res = one(
        "exact_match",
        config,
        run_of(got if isinstance(got, dict) else {"answer": got}),
        ex(want if isinstance(want, dict) else {"answer": want}),
    )
    assert res.score == score
    assert (res.comment is None) == (score == 1.0)


def test_exact_match_fields_and_expected_literal() -> None:
    run = run_of({"answer": "B", "reason": "..."})
    assert one("exact_match", {"field": "answer"}, run, ex({"label": "B"})).score == 1.0
    assert one("exact_match", {"field": "answer", "expected": "B"}, run).score == 1.0
    res = one("exact_match", {"field": "nope"}, run, ex({"label": "B"}))
    assert res.score == 0.0
    assert "nope" in (res.comment or "")


def test_exact_match_without_reference_is_an_error() -> None:
    res = one("exact_match", {}, run_of({"answer": "B"}))
    assert res.score is None
    assert "needs reference outputs" in (res.error or "")


# ---------------------------------------------------------------- contains / regex


def test_contains_all_any_negate_and_reference() -> None:
    run = run_of("Your rate is Non-Refundable, sorry.")
    assert one("contains", {"substrings": ["rate", "sorry"]}, run).score == 1.0
    assert one("contains", {"substrings": ["rate", "refund!"]}, run).score == 0.0
    assert one("contains", {"substrings": ["rate", "refund!"], "mode": "any"}, run).score == 1.0
    assert one("contains", {"substrings": "non-refundable"}, run).score == 0.0
    cfg = {"substrings": "non-refundable", "case_sensitive": False}
    assert one("contains", cfg, run).score == 1.0
    neg = one("contains", {"substrings": ["fully refundable"], "negate": True}, run)
    assert neg.score == 1.0
    assert one("contains", {}, run, ex({"must": ["rate", "sorry"]})).score == 1.0


def test_regex_search_fullmatch_negate_flags() -> None:
    run = run_of({"answer": "Booking REF-12345 confirmed"})
    assert one("regex", {"pattern": r"REF-\d{5}"}, run).score == 1.0
    assert one("regex", {"pattern": r"REF-\d{5}", "match": "fullmatch"}, run).score == 0.0
    assert one("regex", {"pattern": r"ref-\d+", "flags": ["ignore_case"]}, run).score == 1.0
    card = one("regex", {"pattern": r"\b\d{4} \d{4} \d{4} \d{4}\b", "negate": True}, run)
    assert card.score == 1.0
    leaked = one("regex", {"pattern": r"REF", "negate": True}, run)
    assert leaked.score == 0.0
    assert "matched" in (leaked.comment or "")


# ---------------------------------------------------------------- JSON


@pytest.mark.parametrize(
    ("outputs", "config", "score"),
    [
        ({"output": '{"a": 1}'}, {}, 1.0),
        ({"output": "```json\n[1, 2]\n```"}, {}, 1.0),
        ({"output": "{a: 1}"}, {}, 0.0),
        ({"output": "[1]"}, {"expect_type": "object"}, 0.0),
        ({"a": 1, "b": 2}, {"expect_type": "object"}, 1.0),
        ({"text": "x", "data": "[]"}, {"field": "data", "expect_type": "array"}, 1.0),
    ],
)
def test_json_parse(outputs: Any, config: dict[str, Any], score: float) -> None:
    assert one("json_parse", config, run_of(outputs)).score == score


BOOKING_SCHEMA = {
    "type": "object",
    "required": ["booking_id", "refundable"],
    "properties": {
        "booking_id": {"type": "string", "pattern": "^B[0-9]+$"},
        "refundable": {"type": "boolean"},
        "nights": {"type": "integer", "minimum": 1},
    },
    "additionalProperties": False,
}


def test_json_schema_valid_invalid_and_string_outputs() -> None:
    ok = run_of({"booking_id": "B12", "refundable": False, "nights": 2})
    assert one("json_schema", {"schema": BOOKING_SCHEMA}, ok).score == 1.0
    bad = run_of({"booking_id": "X", "nights": 0, "extra": 1})
    res = one("json_schema", {"schema": BOOKING_SCHEMA}, bad)
    assert res.score == 0.0
    assert isinstance(res.value, list)
    joined = " | ".join(res.value)
    assert "missing required property 'refundable'" in joined
    assert "$.booking_id: does not match pattern" in joined
    assert "$.nights: 0 < minimum 1" in joined
    assert "unexpected property 'extra'" in joined
    as_text = run_of({"reply": "x", "json": '{"booking_id": "B1", "refundable": true}'})
    assert one("json_schema", {"schema": BOOKING_SCHEMA, "field": "json"}, as_text).score == 1.0
    broken = run_of({"reply": "x", "json": "{not json"})
    res2 = one("json_schema", {"schema": BOOKING_SCHEMA, "field": "json"}, broken)
    assert res2.score == 0.0
    assert "not valid JSON" in (res2.comment or "")


def test_required_fields() -> None:
    run = run_of({"booking": {"id": "B1", "refundable": False, "notes": ""}, "items": [1]})
    cfg = {"fields": ["booking.id", "booking.refundable", "items.0"]}
    assert one("required_fields", cfg, run).score == 1.0
    res = one("required_fields", {"fields": ["booking.notes", "booking.price", "items.3"]}, run)
    assert res.score == 0.0
    assert res.value == ["booking.notes", "booking.price", "items.3"]
    cfg2 = {"fields": ["booking.notes"], "allow_empty": True}
    assert one("required_fields", cfg2, run).score == 1.0


@pytest.mark.parametrize(
    ("got", "want", "config", "score"),
    [
        (10.0, 10, {}, 1.0),
        (10.04, 10, {"abs_tol": 0.05}, 1.0),
        (10.06, 10, {"abs_tol": 0.05}, 0.0),
        (1020, 1000, {"rel_tol": 0.02}, 1.0),
        (1021, 1000, {"rel_tol": 0.02}, 0.0),
        ("1,250.50", 1250.5, {}, 1.0),
        ("about ten", 10, {"abs_tol": 5}, 0.0),
        (True, 1, {}, 0.0),
    ],
)
def test_numeric_tolerance(got: Any, want: Any, config: dict[str, Any], score: float) -> None:
    res = one("numeric_tolerance", config, run_of({"total": got}), ex({"total": want}))
    assert res.score == score


# ---------------------------------------------------------------- tool trajectory


def tool(name: str, start: int, **args: Any) -> RunData:
    return RunData(name=name, kind="tool", start_time=start, inputs=args)


AGENT = RunData(
    name="agent",
    kind="agent",
    outputs={"answer": "done"},
    child_runs=(
        RunData(
            name="plan",
            kind="llm",
            start_time=1,
            child_runs=(tool("lookup_booking", 2, booking_id="B1"),),
        ),
        tool("check_policy", 5, rate="NR"),
        RunData(name="reply", kind="llm", start_time=6),
        tool("send_email", 8, to="guest@example.com"),
    ),
)


@pytest.mark.parametrize(
    ("config", "score"),
    [
        ({"expected": ["lookup_booking", "check_policy", "send_email"], "mode": "exact"}, 1.0),
        ({"expected": ["lookup_booking", "send_email"], "mode": "exact"}, 0.0),
        ({"expected": ["lookup_booking", "send_email"], "mode": "in_order"}, 1.0),
        ({"expected": ["send_email", "lookup_booking"], "mode": "in_order"}, 0.0),
        ({"expected": ["send_email", "lookup_booking"], "mode": "subset"}, 1.0),
        ({"expected": ["send_email", "refund"], "mode": "subset"}, 0.0),
        (
            {"expected": ["send_email", "check_policy", "lookup_booking"], "mode": "unordered"},
            1.0,
        ),
        ({"expected": ["send_email", "check_policy"], "mode": "unordered"}, 0.0),
        ({"expected": ["lookup_booking"], "forbidden": ["issue_refund"]}, 1.0),
        ({"expected": ["lookup_booking"], "forbidden": ["send_email"]}, 0.0),
        ({"expected": [], "max_calls": 2}, 0.0),
        ({"expected": [{"name": "check_policy", "args": {"rate": "NR"}}]}, 1.0),
        ({"expected": [{"name": "check_policy", "args": {"rate": "FLEX"}}]}, 0.0),
        (
            {
                "expected": [{"name": "send_email", "args": {"to": "guest@example.com"}}],
                "strict_args": True,
            },
            1.0,
        ),
    ],
)
def test_tool_trajectory(config: dict[str, Any], score: float) -> None:
    res = one("tool_trajectory", config, AGENT)
    assert res.score == score, res.comment
    assert res.value == ["lookup_booking", "check_policy", "send_email"]


def test_tool_trajectory_from_reference_and_explanations() -> None:
    example = ex({"answer": "x", "tool_calls": ["lookup_booking", "issue_refund"]})
    res = one("tool_trajectory", {}, AGENT, example)
    assert res.score == 0.0
    assert "issue_refund" in (res.comment or "")
    res2 = one(
        "tool_trajectory", {"expected": ["check_policy"], "forbidden": ["send_email"]}, AGENT
    )
    assert "forbidden" in (res2.comment or "")


def test_tool_trajectory_subset_needs_distinct_calls() -> None:
    # two expected lookups, only one happened: a matching must not reuse a call
    twice = [{"name": "lookup_booking"}, {"name": "lookup_booking", "args": {"booking_id": "B1"}}]
    assert one("tool_trajectory", {"expected": twice, "mode": "subset"}, AGENT).score == 0.0


# ---------------------------------------------------------------- budgets


def test_latency_budget() -> None:
    fast = RunData(start_time=1_000_000, end_time=1_250_000)
    assert one("latency_budget", {"max_ms": 300}, fast).score == 1.0
    res = one("latency_budget", {"max_ms": 200}, fast)
    assert res.score == 0.0
    assert res.value == 250.0
    assert one("latency_budget", {"max_ms": 200}, RunData()).error is not None


def test_cost_budget_sums_children_and_requires_known_figures() -> None:
    run = RunData(
        child_runs=(
            RunData(kind="llm", cost=0.01, usage={"input_tokens": 100, "output_tokens": 50}),
            RunData(kind="llm", cost=0.02, usage={"total_tokens": 400}),
        )
    )
    assert one("cost_budget", {"max_cost": 0.05, "max_tokens": 600}, run).score == 1.0
    over = one("cost_budget", {"max_cost": 0.025}, run)
    assert over.score == 0.0
    assert over.value == {"cost": pytest.approx(0.03), "total_tokens": 550}
    assert one("cost_budget", {"max_tokens": 500}, run).score == 0.0
    unknown = one("cost_budget", {"max_cost": 1.0}, RunData())
    assert unknown.score == 0.0
    assert unknown.comment == "cost unknown"
    assert one("cost_budget", {"max_cost": 1.0, "require_known": False}, RunData()).score == 1.0


# ---------------------------------------------------------------- string distance


@functools.cache
def _reference_distance(a: str, b: str) -> int:
    # the textbook recursive definition
    if not a:
        return len(b)
    if not b:
        return len(a)
    return min(
        _reference_distance(a[1:], b) + 1,
        _reference_distance(a, b[1:]) + 1,
        _reference_distance(a[1:], b[1:]) + (a[0] != b[0]),
    )


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [
        ("", "", 0),
        ("", "abc", 3),
        ("kitten", "sitting", 3),
        ("flaw", "lawn", 2),
        ("refundable", "non-refundable", 4),
        ("gumbo", "gambol", 2),
        ("ça", "ca", 1),
    ],
)
def test_levenshtein_known_pairs(a: str, b: str, d: int) -> None:
    assert levenshtein(a, b) == d
    assert levenshtein(b, a) == d


def test_levenshtein_matches_the_recursive_definition_on_random_strings() -> None:
    rng = random.Random(12)
    for _ in range(300):
        a = "".join(rng.choice("abc") for _ in range(rng.randint(0, 8)))
        b = "".join(rng.choice("abc") for _ in range(rng.randint(0, 8)))
        assert levenshtein(a, b) == _reference_distance(a, b), (a, b)


def _dp_distance(a: str, b: str) -> int:
    # Wagner-Fischer, the plain full-matrix dynamic programme
    rows = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            rows[i][j] = min(
                rows[i - 1][j] + 1,
                rows[i][j - 1] + 1,
                rows[i - 1][j - 1] + (a[i - 1] != b[j - 1]),
            )
    return rows[-1][-1]


def test_levenshtein_matches_dynamic_programming_on_long_strings() -> None:
    rng = random.Random(99)
    for _ in range(60):
        alphabet = rng.choice(["ab", "abcdef", "abcdefghijklmnopqrstuvwxyz ", "äöü€😀x"])
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 150)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 150)))
        if rng.random() < 0.3:  # near-identical pairs exercise the prefix/suffix trimming
            b = a[: len(a) // 3] + b[:10] + a[len(a) // 2 :]
        assert levenshtein(a, b) == _dp_distance(a, b), (a, b)


def test_similarity_and_the_evaluator() -> None:
    assert levenshtein_similarity("", "") == 1.0
    assert levenshtein_similarity("abc", "xyz") == 0.0
    assert levenshtein_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    run = run_of("The rate is  non-refundable")
    res = one("string_distance", {}, run, ex("the rate is non-refundable"))
    assert res.score == pytest.approx(1 - 1 / 26)
    gate = one("string_distance", {"min_similarity": 0.99}, run, ex("the rate is non-refundable"))
    assert gate.score == 0.0
    assert gate.value == pytest.approx(1 - 1 / 26)
    cfg = {"min_similarity": 0.99, "case_sensitive": False}
    assert one("string_distance", cfg, run, ex("the rate is non-refundable")).score == 1.0
