"""The experiment runner on in-memory examples: traces, repetitions, errors, comparison."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path
from typing import Any

import pytest

import goldloop
from goldloop.domain.comparison import regression_verdicts
from goldloop.evaluation import ExperimentResults, build_evaluator

POLICIES = {
    "B1": "non-refundable",
    "B2": "refundable",
    "B3": "non-refundable",
    "B4": "refundable until 48h",
}
DATA = [
    {"id": f"ex-{bid}", "inputs": {"booking_id": bid}, "outputs": {"answer": policy}}
    for bid, policy in POLICIES.items()
]


@goldloop.traced(kind="tool")
def lookup_booking(booking_id: str) -> dict[str, str]:
    return {
        "booking_id": booking_id,
        "rate": "NR" if POLICIES[booking_id].startswith("non") else "F",
    }


@goldloop.traced(kind="tool")
def check_policy(rate: str) -> str:
    return "non-refundable" if rate == "NR" else "refundable"


def agent(inputs: dict[str, Any]) -> dict[str, str]:
    booking = lookup_booking(inputs["booking_id"])
    return {"answer": check_policy(booking["rate"])}


def correct(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> bool:
    return bool(outputs["answer"] == reference_outputs["answer"])


TRAJECTORY = build_evaluator("tool_trajectory", {"expected": ["lookup_booking", "check_policy"]})


def test_evaluate_runs_every_example_with_traces_and_scores() -> None:
    res = goldloop.evaluate(
        agent, DATA, [correct, TRAJECTORY], experiment_prefix="agent-v1", progress=False
    )
    assert res.experiment.startswith("agent-v1-")
    assert len(res.rows) == 4
    assert [r.example_key for r in res.rows] == ["ex-B1", "ex-B2", "ex-B3", "ex-B4"]
    assert res.errors == 0
    row = res.rows[0]
    assert row.run.outputs == {"answer": "non-refundable"}
    assert row.run.inputs == {"booking_id": "B1"}
    assert [c.name for c in row.run.descendants()] == ["lookup_booking", "check_policy"]
    assert row.run.metadata["experiment"] == res.experiment
    assert row.run.metadata["example_id"] == "ex-B1"
    summary = res.summary()
    assert summary["correct"]["mean"] == pytest.approx(0.75)  # B4's policy is not modelled
    assert summary["trajectory"]["mean"] == 1.0
    assert summary["correct"]["n"] == 4
    text = str(res)
    assert "correct" in text
    assert "0.750" in text


def test_repetitions_and_kwargs_targets() -> None:
    calls: list[str] = []
    lock = threading.Lock()

    def by_kwargs(booking_id: str, channel: str = "chat") -> str:
        with lock:
            calls.append(booking_id)
        return POLICIES[booking_id]

    res = goldloop.evaluate(by_kwargs, DATA, [correct], repetitions=3, progress=False)
    assert len(res.rows) == 12
    assert sorted(calls) == sorted(list(POLICIES) * 3)
    assert [r.repetition for r in res.rows[:3]] == [0, 1, 2]
    # a non-dict return value is wrapped as {"output": ...}; one-key outputs unwrap in built-ins
    assert res.rows[0].run.outputs == {"output": "non-refundable"}
    assert res.scores("correct")["ex-B1"] == [None, None, None]  # `correct` raised KeyError
    assert res.evaluator_errors == 12
    exact = build_evaluator("exact_match", {})
    res2 = goldloop.evaluate(by_kwargs, DATA, [exact], repetitions=2, progress=False)
    assert res2.scores("exact_match")["ex-B2"] == [1.0, 1.0]


def test_one_failing_example_does_not_stop_the_experiment() -> None:
    def flaky(inputs: dict[str, Any]) -> dict[str, str]:
        if inputs["booking_id"] == "B3":
            raise TimeoutError("booking service timed out")
        return agent(inputs)

    res = goldloop.evaluate(flaky, DATA, [build_evaluator("exact_match", {})], progress=False)
    assert res.errors == 1
    failed = next(r for r in res.rows if r.error)
    assert failed.example_key == "ex-B3"
    assert failed.error == "TimeoutError: booking service timed out"
    assert failed.run.outputs is None
    # its score is a failure, not a hole: a crash must count against the candidate
    assert res.scores("exact_match")["ex-B3"] == [0.0]


def test_concurrency_is_bounded() -> None:
    active = 0
    peak = 0
    lock = threading.Lock()
    release = threading.Event()
    started = threading.Semaphore(0)

    def slow(inputs: dict[str, Any]) -> str:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        started.release()
        release.wait(timeout=5)
        with lock:
            active -= 1
        return "x"

    data = [{"inputs": {"i": i}, "outputs": "x"} for i in range(12)]
    box: dict[str, ExperimentResults] = {}
    worker = threading.Thread(
        target=lambda: box.setdefault(
            "res", goldloop.evaluate(slow, data, max_concurrency=3, progress=False)
        )
    )
    worker.start()
    for _ in range(3):
        assert started.acquire(timeout=5)
    assert not started.acquire(timeout=0.2)  # a fourth call cannot start while three run
    release.set()
    worker.join(timeout=10)
    assert peak == 3
    assert len(box["res"].rows) == 12
    assert [r.example_key for r in box["res"].rows][:2] == ["#0", "#1"]


async def test_aevaluate_with_async_target_and_evaluator() -> None:
    @goldloop.traced(kind="tool")
    async def fetch(booking_id: str) -> str:
        await asyncio.sleep(0)
        return POLICIES[booking_id]

    async def async_agent(inputs: dict[str, Any]) -> dict[str, str]:
        return {"answer": await fetch(inputs["booking_id"])}

    async def async_correct(outputs: Any, reference_outputs: Any) -> bool:
        return bool(outputs == reference_outputs)

    res = await goldloop.aevaluate(async_agent, DATA, [async_correct], max_concurrency=2,
                                   progress=False)  # fmt: skip
    assert res.summary()["async_correct"]["mean"] == 1.0
    assert all([c.name for c in r.run.descendants()] == ["fetch"] for r in res.rows)


def test_evaluate_accepts_async_targets_from_sync_code() -> None:
    async def async_agent(inputs: dict[str, Any]) -> str:
        return POLICIES[inputs["booking_id"]]

    res = goldloop.evaluate(async_agent, DATA, [build_evaluator("exact_match", {})],
                            progress=False)  # fmt: skip
    assert res.summary()["exact_match"]["mean"] == 1.0


def test_save_load_round_trip(tmp_path: Path) -> None:
    res = goldloop.evaluate(agent, DATA, [correct], repetitions=2, progress=False)
    path = res.save(tmp_path / "exp.json")
    back = ExperimentResults.load(path)
    assert back.experiment == res.experiment
    assert back.scores("correct") == res.scores("correct")
    assert back.summary() == res.summary()


# ------------------------------------------------ the gate's two promises, at runner level

GOLDEN = [{"id": f"q{i}", "inputs": {"q": i}, "outputs": {"answer": f"a{i}"}} for i in range(100)]


def test_injected_regression_is_named_and_noise_is_not() -> None:
    def good(inputs: dict[str, Any]) -> str:
        return f"a{inputs['q']}"

    def broken(inputs: dict[str, Any]) -> str:  # 10% of answers now wrong
        return "sorry" if inputs["q"] % 10 == 3 else f"a{inputs['q']}"

    exact = build_evaluator("exact_match", {"key": "correct"})
    base = goldloop.evaluate(good, GOLDEN, [exact], progress=False)
    cand = goldloop.evaluate(broken, GOLDEN, [exact], progress=False)
    [verdict] = regression_verdicts(cand.compare(base))
    assert verdict.regression
    assert verdict.key == "correct"
    assert "10 regressed" in verdict.reason

    # the same agent twice, scored by a judge that flips 15% of verdicts at random
    lock = threading.Lock()
    calls: dict[str, int] = {}

    def noisy_judge(outputs: Any, reference_outputs: Any) -> bool:
        # the n-th verdict on an example flips the same way whatever the thread order
        with lock:
            n = calls[outputs["output"]] = calls.get(outputs["output"], 0) + 1
        flip = random.Random(f"{outputs['output']}-{n}").random() < 0.15
        return (outputs["output"] == reference_outputs["answer"]) != flip

    run1 = goldloop.evaluate(good, GOLDEN, [noisy_judge], repetitions=3, progress=False)
    run2 = goldloop.evaluate(good, GOLDEN, [noisy_judge], repetitions=3, progress=False)
    [cmp] = run2.compare(run1)
    assert cmp.noise is not None
    assert cmp.noise > 0
    assert not regression_verdicts([cmp])[0].regression


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="repetitions"):
        goldloop.evaluate(agent, DATA, repetitions=0)
    with pytest.raises(TypeError, match="dataset name or an iterable"):
        goldloop.evaluate(agent, {"inputs": {}})


def test_experiments_running_at_the_same_time_keep_their_traces_apart() -> None:
    from goldloop.sdk import tracing as _tracing

    sink_before = (_tracing._SINK, _tracing._ENABLED)
    out: dict[str, ExperimentResults] = {}

    def run(name: str) -> None:
        out[name] = goldloop.evaluate(agent, DATA * 5, [TRAJECTORY], experiment_prefix=name,
                                      max_concurrency=4, progress=False)  # fmt: skip

    threads = [threading.Thread(target=run, args=(n,)) for n in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, res in out.items():
        assert len(res.rows) == 20
        assert res.summary()["trajectory"]["mean"] == 1.0
        assert all(r.run.metadata["experiment"] == res.experiment for r in res.rows)
        assert res.experiment.startswith(name)
    assert sink_before == (_tracing._SINK, _tracing._ENABLED)
