"""Alert conditions and the alert state machine (pure: no I/O, no clock reads).

An alert rule watches one metric of a project over a window and fires when a condition holds:

- ``threshold``: the window's value compared with a fixed number (``< <= > >=``);
- ``change``: the window is significantly worse than a baseline window (the window before it,
  ``baseline_windows`` times as long), by a one-sided test (two-proportion z-test for rates,
  Welch's t-test for means), with a minimum sample size in both windows and an optional minimum
  effect, so five noisy samples never page anyone and a real drop always does.

State: ``ok`` -> ``firing`` (notify once) -> ``resolved`` (notify once) -> ``ok``; repeated firing
evaluations while firing are deduplicated; a ``cooldown_s`` after a resolution suppresses flapping
re-fires; acknowledging a firing alert records who took it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from goldloop.domain.errors import InvalidInput
from goldloop.domain.significance import Moments, mean_drop, proportion_drop

MetricKind = Literal[
    "feedback_mean",
    "feedback_pass_rate",
    "category_share",
    "error_rate",
    "latency_p95",
    "cost",
    "volume",
]
METRICS: dict[str, dict[str, Any]] = {
    # kind: what it needs, whether a higher value is worse, which test a "change" condition uses
    "feedback_mean": {"key": True, "higher_is_worse": False, "test": "mean"},
    "feedback_pass_rate": {"key": True, "higher_is_worse": False, "test": "proportion"},
    "category_share": {
        "key": True,
        "category": True,
        "higher_is_worse": True,
        "test": "proportion",
    },
    "error_rate": {"higher_is_worse": True, "test": "proportion"},
    "latency_p95": {"higher_is_worse": True, "test": None},
    "cost": {"higher_is_worse": True, "test": "mean"},
    "volume": {"higher_is_worse": False, "test": None},
}
OPS = ("<", "<=", ">", ">=")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    kind: str
    key: str | None = None  # feedback key
    category: str | None = None  # for category_share
    pass_threshold: float = 1.0  # feedback_pass_rate: a score >= this passes
    filter: str | None = None  # run filter language, narrows the runs considered


@dataclass(frozen=True, slots=True)
class Condition:
    type: Literal["threshold", "change"]
    op: str = "<"
    value: float = 0.0
    alpha: float = 0.01
    min_samples: int = 30
    min_effect: float = 0.0
    baseline_windows: int = 6


@dataclass(frozen=True, slots=True)
class WindowStats:
    """What the store measured in one window. For rates: ``successes`` of ``n``; for means:
    ``moments``; ``value`` is the metric as shown to people (rate, mean, p95, count)."""

    n: int
    value: float | None
    successes: int = 0
    moments: Moments | None = None
    worst_run_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Evaluation:
    firing: bool
    decided: bool  # False: not enough data to say anything, leave the state as it is
    value: float | None
    n: int
    baseline: float | None = None
    baseline_n: int | None = None
    p_value: float | None = None
    reason: str = ""
    worst_run_ids: tuple[str, ...] = field(default=())

    def numbers(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "samples": self.n,
            "baseline": self.baseline,
            "baseline_samples": self.baseline_n,
            "p_value": self.p_value,
        }


def validate(metric: MetricSpec, cond: Condition) -> None:
    spec = METRICS.get(metric.kind)
    if spec is None:
        raise InvalidInput(
            f"unknown metric {metric.kind!r}; use one of {', '.join(METRICS)}",
            details={"field": "metric.kind"},
        )
    if spec.get("key") and not metric.key:
        raise InvalidInput(
            f"metric {metric.kind} needs a feedback key", details={"field": "metric.key"}
        )
    if spec.get("category") and metric.category is None:
        raise InvalidInput(
            "metric category_share needs a category", details={"field": "metric.category"}
        )
    if cond.type == "threshold":
        if cond.op not in OPS:
            raise InvalidInput(
                f"op must be one of {' '.join(OPS)}", details={"field": "condition.op"}
            )
        if not math.isfinite(cond.value):
            raise InvalidInput(
                "threshold value must be a finite number", details={"field": "condition.value"}
            )
    elif cond.type == "change":
        if spec["test"] is None:
            raise InvalidInput(
                f"metric {metric.kind} supports only threshold conditions",
                details={"field": "condition.type"},
            )
        if not 0 < cond.alpha < 0.5:
            raise InvalidInput(
                "alpha must be between 0 and 0.5", details={"field": "condition.alpha"}
            )
        if cond.min_samples < 2 or cond.baseline_windows < 1:
            raise InvalidInput(
                "min_samples must be >= 2 and baseline_windows >= 1",
                details={"field": "condition"},
            )
    else:
        raise InvalidInput(
            "condition.type must be threshold or change", details={"field": "condition.type"}
        )
    if cond.min_samples < 0:
        raise InvalidInput(
            "min_samples must not be negative", details={"field": "condition.min_samples"}
        )


def _compare(value: float, op: str, limit: float) -> bool:
    return {
        "<": value < limit,
        "<=": value <= limit,
        ">": value > limit,
        ">=": value >= limit,
    }[op]


def evaluate(
    metric: MetricSpec, cond: Condition, current: WindowStats, baseline: WindowStats | None
) -> Evaluation:
    """Decide whether the condition holds for ``current`` (and ``baseline`` for changes)."""
    worst = current.worst_run_ids
    if cond.type == "threshold":
        # Volume is the one metric whose "no data" is itself the signal.
        value = float(current.n) if metric.kind == "volume" else current.value
        if metric.kind != "volume" and (value is None or current.n < max(cond.min_samples, 1)):
            return Evaluation(False, False, value, current.n, reason="not enough data")
        assert value is not None
        firing = _compare(value, cond.op, cond.value)
        reason = f"{metric.kind} = {value:.6g} ({'' if firing else 'not '}{cond.op} {cond.value:g})"
        return Evaluation(firing, True, value, current.n, reason=reason, worst_run_ids=worst)

    assert baseline is not None, "a change condition needs a baseline window"
    if current.n < cond.min_samples or baseline.n < cond.min_samples:
        return Evaluation(
            False,
            False,
            current.value,
            current.n,
            baseline.value,
            baseline.n,
            reason=f"need {cond.min_samples} samples in both windows "
            f"(have {current.n} now, {baseline.n} in the baseline)",
        )
    worse_is_higher = bool(METRICS[metric.kind]["higher_is_worse"])
    if METRICS[metric.kind]["test"] == "proportion":
        if worse_is_higher:  # test "current rate is higher" as a drop of the complement
            result = proportion_drop(
                baseline.n - baseline.successes,
                baseline.n,
                current.n - current.successes,
                current.n,
            )
            effect = current.successes / current.n - baseline.successes / baseline.n
        else:
            result = proportion_drop(baseline.successes, baseline.n, current.successes, current.n)
            effect = baseline.successes / baseline.n - current.successes / current.n
    else:
        assert baseline.moments is not None
        assert current.moments is not None
        b, c = baseline.moments, current.moments
        if worse_is_higher:
            b, c = Moments(b.n, -b.mean, b.variance), Moments(c.n, -c.mean, c.variance)
        result = mean_drop(b, c)
        effect = b.mean - c.mean
    firing = result.p_value < cond.alpha and effect >= cond.min_effect and effect > 0
    direction = "rise" if worse_is_higher else "drop"
    reason = (
        f"{metric.kind} {current.value:.4g} vs baseline {baseline.value:.4g}: "
        f"{'significant' if firing else 'no significant'} {direction} "
        f"(p = {result.p_value:.3g}, alpha = {cond.alpha:g})"
    )
    return Evaluation(
        firing,
        True,
        current.value,
        current.n,
        baseline.value,
        baseline.n,
        result.p_value,
        reason,
        worst,
    )


AlertState = Literal["ok", "firing"]


@dataclass(frozen=True, slots=True)
class Transition:
    new_state: AlertState
    event: Literal["fired", "resolved"] | None  # what to record and notify, if anything


def next_state(
    state: AlertState,
    evaluation: Evaluation,
    *,
    now_us: int,
    last_resolved_us: int | None,
    cooldown_s: float,
) -> Transition:
    if not evaluation.decided:
        return Transition(state, None)
    if state == "ok" and evaluation.firing:
        in_cooldown = (
            last_resolved_us is not None and now_us - last_resolved_us < cooldown_s * 1_000_000
        )
        return Transition("ok", None) if in_cooldown else Transition("firing", "fired")
    if state == "firing" and not evaluation.firing:
        return Transition("ok", "resolved")
    return Transition(state, None)
