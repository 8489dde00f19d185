"""LangSmith filter strings -> Goldloop filter strings."""

from __future__ import annotations

import pytest

from goldloop.domain import filters
from goldloop.domain.errors import InvalidInput
from goldloop.domain.langsmith.filter import to_goldloop


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        ('eq(name, "extractor")', 'name = "extractor"'),
        ("neq(error, null)", 'status = "error"'),
        ("eq(error, null)", 'status != "error"'),
        ("eq(error, true)", 'status = "error"'),
        ("gt(latency, 10)", "latency > 10s"),
        ("lte(latency, 0.5)", "latency <= 0.5s"),
        ('gt(start_time, "2023-07-15T12:34:56Z")', 'start_time > "2023-07-15T12:34:56Z"'),
        ('has(tags, "beta")', 'tags = "beta"'),
        ("eq(run_type, 'LLM')", 'kind = "llm"'),
        ("gte(total_tokens, 100)", "tokens >= 100"),
        ('exists(metadata, "k")', 'metadata."k"'),
        ('eq(thread_id, "c-1")', 'session_id = "c-1"'),
        ("eq(is_root, true)", "root = true"),
        ('search("refund")', 'text ~ "refund"'),
        (
            'and(eq(metadata_key, "customer"), eq(metadata_value, "acme"))',
            'metadata."customer" = "acme"',
        ),
        (
            'and(eq(run_type, "tool"), or(neq(name, "a\\"b"), not(has(tags, "x"))))',
            '(kind = "tool" and (name != "a\\"b" or not (tags = "x")))',
        ),
        ("", None),
        ("   ", None),
    ],
)
def test_translation(theirs: str, ours: str | None) -> None:
    assert to_goldloop(theirs) == ours
    if ours is not None:
        assert filters.parse(ours) is not None  # Goldloop's own parser accepts it


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('eq(feedback_key, "x")', "not supported"),
        ('eq(colour, "x")', "unknown field 'colour'"),
        ('like(name, "x")', "function 'like' is not supported"),
        ("eq(name, ", "ends too early"),
        ('eq(name "x")', "expected ','"),
        ("name", "expected a function call"),
        ('eq(name, "x") extra', "after the expression"),
        ('gt(latency, "slow")', "number of seconds"),
        ("eq(name, $)", "unexpected character"),
        ("not(" * 60 + "eq(name, 1)" + ")" * 60, "nested deeper"),
    ],
)
def test_bad_filters_say_why(text: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        to_goldloop(text)
