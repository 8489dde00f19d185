"""The pairwise judge (both orders, against a real local server) and the answer parsers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from fake_llm import FakeLLM, completion, section, user_text
from goldloop.evaluation import ExampleData, JudgeBudget, PairwiseJudge, RunData
from goldloop.evaluation._judge_parse import JudgeParseError, parse_choice, parse_score

A = RunData(inputs={"q": "Refund?"}, outputs={"answer": "It is non-refundable."})
B = RunData(inputs={"q": "Refund?"}, outputs={"answer": "Sure, full refund."})


def always_first(body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    """A judge with pure position bias: whatever is shown first wins."""
    return 200, completion('{"reasoning": "first looks better", "winner": "A"}'), {}


def knows_policy(body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    text = user_text(body)
    winner = "A" if "non-refundable" in section(text, "response_a") else "B"
    return 200, completion(orjson.dumps({"reasoning": "policy", "winner": winner}).decode()), {}


def run_pair(responder: Any, **kw: Any) -> tuple[Any, FakeLLM]:
    server = FakeLLM(responder)
    try:
        with PairwiseJudge(base_url=server.url, model="judge-1", cache=False, **kw) as j:
            return j.compare(A, B, kw.pop("example", None)), server
    finally:
        server.stop()


def test_both_orders_cancel_position_bias() -> None:
    res, server = run_pair(always_first)
    assert server.calls == 2
    first, second = (user_text(b) for b in server.requests)
    assert "non-refundable" in section(first, "response_a")
    assert "non-refundable" in section(second, "response_b")
    assert res.winner == "tie"
    assert res.consistent is False
    assert res.verdicts == ("A", "B")
    assert (res.score_a, res.score_b) == (0.5, 0.5)


def test_a_consistent_preference_wins() -> None:
    res, _ = run_pair(knows_policy)
    assert res.winner == "A"
    assert res.consistent is True
    assert (res.score_a, res.score_b) == (1.0, 0.0)
    ra, rb = res.results()
    assert (ra.key, ra.score, ra.value) == ("preference", 1.0, "win")
    assert (rb.score, rb.value) == (0.0, "loss")
    assert ra.evaluator is not None
    assert ra.evaluator.name == "pairwise_judge"
    assert ra.evaluator.judge_model == "judge-1"
    assert ra.usage == {"input_tokens": 240, "output_tokens": 60}


def test_reference_is_shown_when_the_example_has_one() -> None:
    server = FakeLLM(knows_policy)
    try:
        with PairwiseJudge(base_url=server.url, model="m", cache=False) as j:
            j.compare(A, B, ExampleData(outputs={"answer": "non-refundable"}))
    finally:
        server.stop()
    assert all("<reference>" in user_text(b) for b in server.requests)


def test_budget_skip_and_errors_are_reported_not_raised() -> None:
    server = FakeLLM(knows_policy)
    try:
        budget = JudgeBudget(max_tokens=10)
        with PairwiseJudge(base_url=server.url, model="m", cache=False, budget=budget) as j:
            res = j.compare(A, B)
        assert res.winner is None
        assert "budget" in (res.skipped or "")
        assert server.calls == 0
        server.responder = lambda body: (200, completion("no idea"), {})
        with PairwiseJudge(base_url=server.url, model="m", cache=False) as j:
            res2 = j.compare(A, B)
        assert res2.winner is None
        assert "no A/B/tie verdict" in (res2.error or "")
    finally:
        server.stop()


async def test_async_compare() -> None:
    server = FakeLLM(knows_policy)
    try:
        with PairwiseJudge(base_url=server.url, model="m", cache=False) as j:
            res = await j.acompare(B, A)
    finally:
        server.stop()
    assert res.winner == "B"


@pytest.mark.parametrize(
    ("text", "binary", "score", "reason"),
    [
        ('{"score": 4, "reasoning": "solid"}', False, 4.0, "solid"),
        ('{"Score": "3/5", "Explanation": "ok"}', False, 3.0, "ok"),
        ('```json\n{"rating": 2, "reason": "meh"}\n```', False, 2.0, "meh"),
        (
            'Sure! Here is my verdict: {"reasoning": "a {brace}", "score": 5} Thanks',
            False,
            5.0,
            "a {brace}",
        ),
        ('{"score": true, "reasoning": "right"}', True, 1.0, "right"),
        ('{"verdict": "FAIL", "reasoning": "wrong"}', True, 0.0, "wrong"),
        ("The answer is close.\nScore: 7/10", False, 7.0, None),
        ("**Rating** 4", False, 4.0, None),
        ("I'd give it 3 / 5.", False, 3.0, None),
        ("The response contradicts the reference; no refund is possible.\nFAIL", True, 0.0, None),
        ("PASS\nNo problems found.", True, 1.0, None),
    ],
)
def test_parse_score(text: str, binary: bool, score: float, reason: str | None) -> None:
    got, why = parse_score(text, binary=binary)
    assert got == score
    if reason is not None:
        assert why == reason
    else:
        assert why is not None


@pytest.mark.parametrize("text", ["", "I cannot judge this.", '{"reasoning": "no score"}'])
def test_parse_score_failures(text: str) -> None:
    with pytest.raises(JudgeParseError):
        parse_score(text, binary=False)


@pytest.mark.parametrize(
    ("text", "choice"),
    [
        ('{"winner": "B", "reasoning": "x"}', "B"),
        ('{"preference": "Response A"}', "A"),
        ('{"winner": "tie"}', "tie"),
        ("After comparing both, the winner is **B**.", "B"),
        ("[[A]]", "A"),
        ("tie", "tie"),
    ],
)
def test_parse_choice(text: str, choice: str) -> None:
    assert parse_choice(text)[0] == choice


def test_parse_choice_failure() -> None:
    with pytest.raises(JudgeParseError):
        parse_choice("both have merits")
