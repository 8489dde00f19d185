"""Tool-call trajectory: which tools the agent called (child runs of kind ``tool``), in what
order, with which arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from goldloop.evaluation._protocol import Evaluator
from goldloop.evaluation._registry import register_evaluator
from goldloop.evaluation._select import MISSING, get_path, reference_value
from goldloop.evaluation._types import EvaluationResult, ExampleData, RunData

__all__ = ["ToolTrajectory", "tool_calls"]

MODES = ("exact", "in_order", "subset", "unordered")


@dataclass(frozen=True, slots=True)
class _Step:
    name: str
    args: Mapping[str, Any] | None

    def matches(self, call: RunData, strict_args: bool) -> bool:
        if call.name != self.name:
            return False
        if self.args is None:
            return True
        actual = call.inputs or {}
        if strict_args:
            return dict(actual) == dict(self.args)
        return all(get_path(actual, k) == v for k, v in self.args.items())

    def describe(self) -> str:
        return self.name if self.args is None else f"{self.name}({dict(self.args)})"


def tool_calls(run: RunData) -> list[RunData]:
    """Every tool run in the trace under ``run``, in call order (start time, then depth-first)."""
    calls = [r for r in run.descendants() if r.kind == "tool"]
    order = {id(c): i for i, c in enumerate(calls)}
    return sorted(calls, key=lambda c: (c.start_time or 0, order[id(c)]))


def _steps(raw: Any) -> list[_Step]:
    if not isinstance(raw, list | tuple):
        raise ValueError("expected tools must be a list of names or {name, args} objects")
    steps = []
    for item in raw:
        if isinstance(item, str):
            steps.append(_Step(item, None))
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            args = item.get("args", item.get("arguments"))
            if args is not None and not isinstance(args, Mapping):
                raise ValueError(f"args of {item['name']!r} must be an object")
            steps.append(_Step(item["name"], args))
        else:
            raise ValueError(f"not a tool step: {item!r}")
    return steps


def _match_in_order(steps: Sequence[_Step], calls: Sequence[RunData], strict: bool) -> int:
    """How many leading steps can be matched as a subsequence of the calls (greedy is optimal)."""
    i = 0
    for call in calls:
        if i < len(steps) and steps[i].matches(call, strict):
            i += 1
    return i


def _max_matching(steps: Sequence[_Step], calls: Sequence[RunData], strict: bool) -> list[int]:
    """A maximum matching of steps to distinct calls (Kuhn's augmenting paths); returns the
    indices of the unmatched steps."""
    owner: dict[int, int] = {}

    def augment(s: int, seen: set[int]) -> bool:
        for c, call in enumerate(calls):
            if c in seen or not steps[s].matches(call, strict):
                continue
            seen.add(c)
            if c not in owner or augment(owner[c], seen):
                owner[c] = s
                return True
        return False

    return [s for s in range(len(steps)) if not augment(s, set())]


@register_evaluator("tool_trajectory")
class ToolTrajectory(Evaluator):
    """Checks the tools called under the run against an expected trajectory.

    ``mode``: ``exact`` (exactly these calls in this order), ``in_order`` (these calls in this
    order, others may come between), ``subset`` (each of these calls, any order, others
    allowed), ``unordered`` (exactly these calls, any order). Steps are names or
    ``{"name", "args"}``; ``args`` is a partial match (every given key equal) unless
    ``strict_args``. ``forbidden`` tools must not be called at all; ``max_calls`` caps the
    number of tool calls. Without ``expected`` the trajectory is read from the example's
    reference outputs at ``reference_field`` (default ``tool_calls``)."""

    name = "tool_trajectory"
    version = "1"

    def __init__(
        self,
        *,
        expected: Sequence[str | Mapping[str, Any]] | None = None,
        mode: str = "in_order",
        forbidden: Sequence[str] = (),
        max_calls: int | None = None,
        strict_args: bool = False,
        reference_field: str = "tool_calls",
        key: str = "trajectory",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        self.expected = _steps(expected) if expected is not None else None
        self.mode, self.forbidden = mode, list(forbidden)
        self.max_calls, self.strict_args = max_calls, strict_args
        self.reference_field, self.key = reference_field, key

    def evaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
        steps = self.expected
        if steps is None:
            ref = reference_value(example, self.reference_field, MISSING, evaluator=self.name)
            steps = _steps(ref)
        calls = tool_calls(run)
        names = [c.name for c in calls]
        problems: list[str] = []
        used = sorted({n for n in names if n in self.forbidden})
        if used:
            problems.append(f"called forbidden tool(s) {', '.join(used)}")
        if self.max_calls is not None and len(calls) > self.max_calls:
            problems.append(f"{len(calls)} tool calls > max {self.max_calls}")
        problems.extend(self._check(steps, calls))
        ok = not problems
        comment = None if ok else "; ".join(problems) + f" (called: {names})"
        return [self.result(self.key, score=1.0 if ok else 0.0, value=names, comment=comment)]

    def _check(self, steps: Sequence[_Step], calls: Sequence[RunData]) -> list[str]:
        strict = self.strict_args
        if self.mode in ("exact", "in_order"):
            if self.mode == "exact":
                if len(calls) != len(steps):
                    return [f"expected {len(steps)} tool calls, got {len(calls)}"]
                for i, (step, call) in enumerate(zip(steps, calls, strict=True)):
                    if not step.matches(call, strict):
                        return [f"call {i + 1} is {call.name}, expected {step.describe()}"]
                return []
            matched = _match_in_order(steps, calls, strict)
            if matched < len(steps):
                return [f"expected {steps[matched].describe()} (step {matched + 1}) in order"]
            return []
        unmatched = _max_matching(steps, calls, strict)
        problems = []
        if unmatched:
            missing = ", ".join(steps[i].describe() for i in unmatched)
            problems.append(f"missing call(s): {missing}")
        if self.mode == "unordered" and len(calls) != len(steps):
            problems.append(f"expected {len(steps)} tool calls, got {len(calls)}")
        return problems
