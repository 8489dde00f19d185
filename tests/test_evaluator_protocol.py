"""The evaluator protocol: plain functions, async, result coercion, errors, the registry."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import goldloop.evaluation as ge
from goldloop.domain.errors import InvalidInput
from goldloop.evaluation import (
    EvaluationResult,
    Evaluator,
    ExampleData,
    RunData,
    aevaluate_run,
    as_evaluator,
    build_evaluator,
    evaluate_run,
    register_evaluator,
)

RUN = RunData(inputs={"q": "refund?"}, outputs={"answer": "non-refundable"})
EXAMPLE = ExampleData(
    inputs={"q": "refund?"}, outputs={"answer": "non-refundable"}, metadata={"lang": "en"}
)


def test_public_api_is_what_init_exports() -> None:
    assert sorted(ge.__all__) == sorted(n for n in dir(ge) if not n.startswith("_"))
    for name in ge.__all__:
        assert getattr(ge, name) is not None


def test_sdk_side_import_stays_light() -> None:
    # (click is not listed: httpx imports it for its own CLI whenever it is installed)
    code = (
        "import sys, goldloop.evaluation as e; e.evaluator_names();"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'fastapi', 'alembic', 'psycopg', 'numpy', 'scipy')];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    src = str(Path(ge.__file__).parents[2])
    env = {**os.environ, "PYTHONPATH": src}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_function_receives_only_the_parameters_it_names() -> None:
    seen: dict[str, Any] = {}

    def correct(outputs: Any, reference_outputs: Any) -> bool:
        seen["args"] = (outputs, reference_outputs)
        return bool(outputs == reference_outputs)

    [res] = evaluate_run(as_evaluator(correct), RUN, EXAMPLE)
    assert seen["args"] == (RUN.outputs, EXAMPLE.outputs)
    assert (res.key, res.score, res.error) == ("correct", 1.0, None)
    assert res.evaluator is not None
    assert res.evaluator.name == "correct"


def test_every_documented_parameter_and_kwargs() -> None:
    got: dict[str, Any] = {}

    def everything(**kwargs: Any) -> None:
        got.update(kwargs)

    assert evaluate_run(as_evaluator(everything), RUN, EXAMPLE) == []
    assert set(got) == set(ge.FUNCTION_PARAMETERS)
    assert got["metadata"] == {"lang": "en"}
    assert got["run"] is RUN
    assert got["example"] is EXAMPLE


def test_without_example_reference_is_none() -> None:
    def needs_ref(reference_outputs: Any, example: Any) -> float:
        assert reference_outputs is None
        assert example is None
        return 0.5

    [res] = evaluate_run(as_evaluator(needs_ref), RUN)
    assert res.score == 0.5


def test_unknown_parameter_is_rejected_at_adaptation() -> None:
    def bad(prediction: str) -> bool:
        return True

    with pytest.raises(TypeError, match="prediction"):
        as_evaluator(bad)

    def fine(outputs: Any, threshold: float = 0.5) -> bool:
        return True

    assert evaluate_run(as_evaluator(fine), RUN)[0].score == 1.0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, [("f", 1.0, None)]),
        (False, [("f", 0.0, None)]),
        (3, [("f", 3.0, None)]),
        ("good", [("f", None, "good")]),
        ({"score": 0.25, "comment": "meh"}, [("f", 0.25, None)]),
        ({"key": "tone", "value": "polite"}, [("tone", None, "polite")]),
        ({"precision": 0.5, "label": "x"}, [("precision", 0.5, None), ("label", None, "x")]),
        (
            {"results": [{"key": "a", "score": 1}, {"key": "b", "score": 0}]},
            [("a", 1.0, None), ("b", 0.0, None)],
        ),
        ([True, {"key": "k2", "score": False}], [("f", 1.0, None), ("k2", 0.0, None)]),
        (EvaluationResult(key="own", score=0.1), [("own", 0.1, None)]),
        (None, []),
    ],
)
def test_return_values_are_coerced(raw: Any, expected: list[tuple[str, Any, Any]]) -> None:
    def f(outputs: Any) -> Any:
        return raw

    results = evaluate_run(as_evaluator(f), RUN)
    assert [(r.key, r.score, r.value) for r in results] == expected
    assert all(r.evaluator is not None for r in results)


def test_comment_survives_coercion() -> None:
    def f() -> dict[str, Any]:
        return {"score": 1, "comment": "fine", "label_hint": "x"}

    [res] = evaluate_run(as_evaluator(f), RUN)
    assert res.comment == "fine"
    assert res.extra == {"label_hint": "x"}


@pytest.mark.parametrize("raw", [object(), float("nan"), {"score": "high"}])
def test_unusable_return_values_become_error_results(raw: Any) -> None:
    def f() -> Any:
        return raw

    [res] = evaluate_run(as_evaluator(f), RUN)
    assert res.error is not None
    assert res.score is None
    assert not res.ok


def test_exceptions_become_error_results_with_provenance() -> None:
    def boom(outputs: Any) -> bool:
        raise RuntimeError("judge exploded\nsecond line")

    [res] = evaluate_run(as_evaluator(boom), RUN)
    assert res.error == "RuntimeError: judge exploded"
    assert res.key == "boom"
    fb = res.to_feedback()
    assert fb["source"] == "api"
    assert res.to_feedback("online-evaluator")["source"] == "online-evaluator"
    assert fb["source_info"]["error"] == "RuntimeError: judge exploded"
    assert fb["source_info"]["evaluator"] == "boom"


async def test_async_function_evaluator_in_async_and_sync_callers() -> None:
    async def slow_check(outputs: Any) -> bool:
        await asyncio.sleep(0)
        return outputs == {"answer": "non-refundable"}

    ev = as_evaluator(slow_check)
    [res] = await aevaluate_run(ev, RUN)
    assert res.score == 1.0
    # a sync caller inside a running loop still works (the coroutine runs on a helper thread)
    [res2] = evaluate_run(ev, RUN)
    assert res2.score == 1.0


def test_async_function_from_plain_sync_code() -> None:
    async def check(outputs: Any) -> float:
        return 0.75

    assert evaluate_run(as_evaluator(check), RUN)[0].score == 0.75


async def test_sync_evaluator_called_async_runs_in_a_thread() -> None:
    def check(outputs: Any) -> bool:
        return True

    assert (await aevaluate_run(as_evaluator(check), RUN))[0].score == 1.0


def test_evaluator_subclass_async_only() -> None:
    class AsyncOnly(Evaluator):
        name = "async_only"
        version = "3"

        async def aevaluate(
            self, run: RunData, example: ExampleData | None
        ) -> list[EvaluationResult]:
            return [self.result(score=1.0)]

    [res] = evaluate_run(AsyncOnly(), RUN)
    assert res.score == 1.0
    assert res.evaluator is not None
    assert res.evaluator.version == "3"

    class Neither(Evaluator):
        name = "neither"

    [err] = evaluate_run(Neither(), RUN)
    assert err.error is not None
    assert "NotImplementedError" in err.error


def test_as_evaluator_rejects_non_callables() -> None:
    with pytest.raises(TypeError, match="not an evaluator"):
        as_evaluator(42)


def test_registry_builds_builtins_from_json_config() -> None:
    assert {"exact_match", "regex", "json_schema", "tool_trajectory"} <= set(ge.evaluator_names())
    ev = build_evaluator("regex", {"pattern": r"non-?refundable", "flags": ["ignore_case"]})
    assert evaluate_run(ev, RUN)[0].score == 1.0


@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        ("nope", {}, "unknown evaluator"),
        ("regex", {}, "pattern"),
        ("regex", {"pattern": "("}, "invalid pattern"),
        ("regex", {"pattern": "x", "colour": "red"}, "colour"),
        ("json_schema", {"schema": {"type": "banana"}}, "unknown type"),
        ("tool_trajectory", {"expected": ["a"], "mode": "sideways"}, "mode"),
    ],
)
def test_registry_rejects_bad_names_and_configs(
    name: str, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        build_evaluator(name, config)


def test_user_evaluators_register_through_the_same_protocol() -> None:
    @register_evaluator("test_len_under", replace=True)
    class LenUnder(Evaluator):
        name = "len_under"

        def __init__(self, *, limit: int) -> None:
            self.limit = limit

        def evaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
            return [self.result(score=float(len(str(run.outputs)) < self.limit))]

    assert "test_len_under" in ge.evaluator_names()
    assert evaluate_run(build_evaluator("test_len_under", {"limit": 1000}), RUN)[0].score == 1.0
    with pytest.raises(ValueError, match="already registered"):
        register_evaluator("test_len_under")(lambda: LenUnder(limit=1))


def test_run_data_from_trace_builds_the_tree() -> None:
    runs = [
        {
            "id": "t2",
            "trace_id": "T",
            "parent_id": "a",
            "name": "book",
            "kind": "tool",
            "start_time": 30,
        },
        {
            "id": "root",
            "trace_id": "T",
            "name": "agent",
            "kind": "agent",
            "start_time": 1,
            "end_time": 2_501,
            "outputs": {"answer": "ok"},
            "usage": {"total_tokens": 7},
        },
        {
            "id": "a",
            "trace_id": "T",
            "parent_id": "root",
            "name": "plan",
            "kind": "llm",
            "start_time": 10,
            "cost": 0.002,
            "usage": {"input_tokens": 3, "output_tokens": 4},
        },
        {
            "id": "t1",
            "trace_id": "T",
            "parent_id": "a",
            "name": "search",
            "kind": "tool",
            "start_time": "1970-01-01T00:00:00.000020+00:00",
            "cost": 0.5,
        },
    ]
    root = RunData.from_trace(runs)
    assert root.name == "agent"
    assert root.latency_ms == 2.5
    assert [r.name for r in root.descendants()] == ["plan", "search", "book"]
    assert root.total_cost() == 0.002  # the llm run's own cost stands for its subtree
    assert root.total_tokens() == 7
    with pytest.raises(ValueError, match="exactly one root"):
        RunData.from_trace([{"id": "x"}, {"id": "y"}])
