"""Budget built-ins: latency and cost/tokens of a run (its own, or summed over its children)."""

from __future__ import annotations

from goldloop.evaluation._protocol import Evaluator
from goldloop.evaluation._registry import register_evaluator
from goldloop.evaluation._types import EvaluationResult, ExampleData, RunData

__all__ = ["CostBudget", "LatencyBudget"]


@register_evaluator("latency_budget")
class LatencyBudget(Evaluator):
    """Score 1 when the run took at most ``max_ms`` milliseconds; the latency goes in
    ``value``."""

    name = "latency_budget"
    version = "1"

    def __init__(self, *, max_ms: float, key: str = "latency_budget") -> None:
        if max_ms <= 0:
            raise ValueError("max_ms must be positive")
        self.max_ms, self.key = float(max_ms), key

    def evaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
        latency = run.latency_ms
        if latency is None:
            raise ValueError("the run has no start and end time")
        ok = latency <= self.max_ms
        comment = None if ok else f"{latency:.1f} ms > budget {self.max_ms:g} ms"
        return [self.result(self.key, score=1.0 if ok else 0.0, value=latency, comment=comment)]


@register_evaluator("cost_budget")
class CostBudget(Evaluator):
    """Score 1 when the run's cost is at most ``max_cost`` and its tokens at most
    ``max_tokens`` (either or both). A run without its own figure is charged the sum over its
    child runs; a run with no figure at all fails when ``require_known`` (default), since a
    budget that cannot be checked protects nothing."""

    name = "cost_budget"
    version = "1"

    def __init__(
        self,
        *,
        max_cost: float | None = None,
        max_tokens: int | None = None,
        require_known: bool = True,
        key: str = "cost_budget",
    ) -> None:
        if max_cost is None and max_tokens is None:
            raise ValueError("give max_cost and/or max_tokens")
        self.max_cost, self.max_tokens = max_cost, max_tokens
        self.require_known, self.key = require_known, key

    def evaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
        problems: list[str] = []
        cost = run.total_cost()
        tokens = run.total_tokens()
        if self.max_cost is not None:
            if cost is None:
                if self.require_known:
                    problems.append("cost unknown")
            elif cost > self.max_cost:
                problems.append(f"cost {cost:.6g} > budget {self.max_cost:g}")
        if self.max_tokens is not None:
            if tokens is None:
                if self.require_known:
                    problems.append("token count unknown")
            elif tokens > self.max_tokens:
                problems.append(f"{tokens} tokens > budget {self.max_tokens}")
        ok = not problems
        value = {"cost": cost, "total_tokens": tokens}
        comment = None if ok else "; ".join(problems)
        return [self.result(self.key, score=1.0 if ok else 0.0, value=value, comment=comment)]
