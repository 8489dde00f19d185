"""Alert conditions and the alert state machine (pure: no I/O, no clock reads).

An alert rule watches one metric of a project and fires when a condition holds:

- ``threshold``: the value over the last window compared with a fixed number (``< <= > >=``);
- ``change``: a sequential change detector (a CUSUM, see ``alert_detector``) finds that the
  metric has dropped (or, where up is bad, risen) from its baseline. Its threshold comes from
  ``false_page_days``, the expected days between false pages on steady traffic.

State: ``ok`` -> ``firing`` (notify once) -> ``resolved`` (notify once) -> ``ok``. One incident
pages once: while firing, a change condition's baseline is frozen, and the alert resolves only
after the metric has been back near that baseline (a threshold: no longer breached) for
``resolve_after_s`` without a break. A ``cooldown_s`` after a resolution suppresses re-fires;
acknowledging a firing alert records who took it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from goldloop.domain.alert_detector import (
    Advance,
    Baseline,
    Bucket,
    DetectorState,
    Plan,
    Scorer,
    advance,
    mean_baseline,
    rate_baseline,
)
from goldloop.domain.errors import InvalidInput
from goldloop.domain.significance import Moments

MetricKind = Literal[
    "feedback_mean",
    "feedback_pass_rate",
    "category_share",
    "error_rate",
    "latency_p95",
    "cost",
    "volume",
    "judge_drift",
    "workers_alive",
    "rule_backlog",
    "rule_backlog_age",
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
    # the judge's agreement with people on a rule's canaries dropped (services.canary_alerts)
    "judge_drift": {"higher_is_worse": False, "test": None},
    # Goldloop watching itself (services.self_watch): a gauge read now, not a window of runs.
    # Worker processes heart-beating (server-wide), and the online-evaluation backlog of the
    # workspace's rules (or of ``rule_id``): pending actions, and the oldest one's age in seconds.
    "workers_alive": {"higher_is_worse": False, "test": None, "gauge": True},
    "rule_backlog": {"higher_is_worse": True, "test": None, "gauge": True},
    "rule_backlog_age": {"higher_is_worse": True, "test": None, "gauge": True},
}
GAUGES = frozenset(kind for kind, spec in METRICS.items() if spec.get("gauge"))
OPS = ("<", "<=", ">", ">=")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    kind: str
    key: str | None = None  # feedback key
    category: str | None = None  # for category_share
    pass_threshold: float = 1.0  # feedback_pass_rate: a score >= this passes
    filter: str | None = None  # run filter language, narrows the runs considered
    # judge_drift: the rule whose canaries it watches; rule_backlog(_age): the rule whose pending
    # actions count (None: every rule of the workspace)
    rule_id: str | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    type: Literal["threshold", "change", "drift"]
    op: str = "<"
    value: float = 0.0
    # No longer used (the change detector has no per-check significance level): kept so rules
    # stored with it load; ``false_page_days`` is what sets how often a change alert may be wrong.
    alpha: float = 0.01
    min_samples: int = 30
    min_effect: float = 0.0  # change: the smallest drop worth a page (0: 0.1 for rates, 0.5 sd)
    baseline_windows: int = 6
    false_page_days: float = 30.0  # change: expected days between false pages on steady traffic
    resolve_after_s: int = 900  # how long the metric must be back before "resolved"
    settle_s: int = 900  # change: how late a run's feedback may arrive and still be counted


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
    statistic: float | None = None  # change: the detector's evidence (nats)
    limit: float | None = None  # change: the evidence that pages

    def numbers(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "samples": self.n,
            "baseline": self.baseline,
            "baseline_samples": self.baseline_n,
            "p_value": self.p_value,
            "statistic": None if self.statistic is None else round(self.statistic, 3),
            "limit": None if self.limit is None else round(self.limit, 3),
        }


def validate(metric: MetricSpec, cond: Condition) -> None:
    spec = METRICS.get(metric.kind)
    if spec is None:
        raise InvalidInput(
            f"unknown metric {metric.kind!r}; use one of {', '.join(METRICS)}",
            details={"field": "metric.kind"},
        )
    if (metric.kind == "judge_drift") != (cond.type == "drift"):
        raise InvalidInput(
            "metric judge_drift goes with condition type drift, and only with it",
            details={"field": "condition.type"},
        )
    if cond.type == "drift":
        return
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
        if not (2 <= cond.min_samples <= 10**9 and 1 <= cond.baseline_windows <= 1000):
            raise InvalidInput(
                "min_samples must be between 2 and 1e9 and baseline_windows between 1 and 1000",
                details={"field": "condition"},
            )
        if not (math.isfinite(cond.false_page_days) and 1 <= cond.false_page_days <= 36_500):
            raise InvalidInput(
                "false_page_days must be between 1 and 36500",
                details={"field": "condition.false_page_days"},
            )
        if not (math.isfinite(cond.min_effect) and 0 <= cond.min_effect <= 1e9):
            raise InvalidInput(
                "min_effect must be between 0 and 1e9", details={"field": "condition.min_effect"}
            )
        if spec["test"] == "proportion" and cond.min_effect >= 1:
            raise InvalidInput(
                "min_effect of a rate must be below 1", details={"field": "condition.min_effect"}
            )
        if not 0 <= cond.settle_s <= 86_400:
            raise InvalidInput(
                "settle_s must be between 0 and 86400", details={"field": "condition.settle_s"}
            )
    else:
        raise InvalidInput(
            "condition.type must be threshold, change or drift",
            details={"field": "condition.type"},
        )
    if cond.min_samples < 0:
        raise InvalidInput(
            "min_samples must not be negative", details={"field": "condition.min_samples"}
        )
    if not 0 <= cond.resolve_after_s <= 30 * 86_400:
        raise InvalidInput(
            "resolve_after_s must be between 0 and 2592000",
            details={"field": "condition.resolve_after_s"},
        )


def _compare(value: float, op: str, limit: float) -> bool:
    return {
        "<": value < limit,
        "<=": value <= limit,
        ">": value > limit,
        ">=": value >= limit,
    }[op]


def evaluate(metric: MetricSpec, cond: Condition, current: WindowStats) -> Evaluation:
    """Decide whether a threshold condition holds for the ``current`` window."""
    if cond.type != "threshold":
        raise ValueError("evaluate() decides threshold conditions; use step_change")
    # Volume is the one metric whose "no data" is itself the signal; a gauge is one reading.
    value = float(current.n) if metric.kind == "volume" else current.value
    needed = 1 if metric.kind in GAUGES else max(cond.min_samples, 1)
    if metric.kind != "volume" and (value is None or current.n < needed):
        return Evaluation(False, False, value, current.n, reason="not enough data")
    assert value is not None
    firing = _compare(value, cond.op, cond.value)
    reason = f"{metric.kind} = {value:.6g} ({'' if firing else 'not '}{cond.op} {cond.value:g})"
    return Evaluation(
        firing, True, value, current.n, reason=reason, worst_run_ids=current.worst_run_ids
    )


AlertState = Literal["ok", "firing"]


@dataclass(frozen=True, slots=True)
class Transition:
    new_state: AlertState
    event: Literal["fired", "resolved"] | None  # what to record and notify, if anything


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of one evaluation: the state change, what was measured, the state to keep."""

    transition: Transition
    evaluation: Evaluation
    detector: DetectorState


def _in_cooldown(now_us: int, last_resolved_us: int | None, cooldown_s: float) -> bool:
    return last_resolved_us is not None and now_us - last_resolved_us < cooldown_s * 1_000_000


def _hold(
    detector: DetectorState, back: bool | None, now_us: int, resolve_after_s: int
) -> tuple[bool, DetectorState]:
    """While firing: has the metric been back (``back``; None: no evidence either way) without a
    break for ``resolve_after_s``? Returns (resolve now, state to keep)."""
    if back is None:
        return False, detector
    if not back:
        return False, replace(detector, recovering_since_us=None)
    since = detector.recovering_since_us if detector.recovering_since_us is not None else now_us
    if now_us - since >= resolve_after_s * 1_000_000:
        return True, replace(detector, recovering_since_us=None)
    return False, replace(detector, recovering_since_us=since)


def step_threshold(
    metric: MetricSpec,
    cond: Condition,
    state: AlertState,
    current: WindowStats,
    detector: DetectorState,
    *,
    now_us: int,
    last_resolved_us: int | None,
    cooldown_s: float,
) -> Step:
    ev = evaluate(metric, cond, current)
    if state == "ok":
        if ev.decided and ev.firing and not _in_cooldown(now_us, last_resolved_us, cooldown_s):
            return Step(Transition("firing", "fired"), ev, DetectorState())
        return Step(Transition("ok", None), ev, detector)
    back = None if not ev.decided else not ev.firing
    resolve, kept = _hold(detector, back, now_us, cond.resolve_after_s)
    if resolve:
        return Step(Transition("ok", "resolved"), ev, kept)
    if kept.recovering_since_us is not None:
        held = (now_us - kept.recovering_since_us) // 1_000_000
        ev = replace(ev, reason=f"{ev.reason}; back for {held} s of {cond.resolve_after_s} s")
    return Step(Transition("firing", None), ev, kept)


def step_verdict(
    state: AlertState,
    ev: Evaluation,
    detector: DetectorState,
    *,
    now_us: int,
    last_resolved_us: int | None,
    cooldown_s: float,
) -> Step:
    """A condition decided elsewhere (``drift``: a canary run's verdict): fire when it holds,
    resolve at the first decided evaluation where it no longer does."""
    if state == "ok":
        if ev.decided and ev.firing and not _in_cooldown(now_us, last_resolved_us, cooldown_s):
            return Step(Transition("firing", "fired"), ev, detector)
        return Step(Transition("ok", None), ev, detector)
    if ev.decided and not ev.firing:
        return Step(Transition("ok", "resolved"), ev, detector)
    return Step(Transition("firing", None), ev, detector)


def _oriented(kind: str) -> bool:
    return bool(METRICS[kind]["higher_is_worse"])


def baseline_of(
    metric: MetricSpec, cond: Condition, stats: WindowStats, span_s: float
) -> Baseline | None:
    """The detector's baseline from a baseline window of ``span_s`` seconds, or None when it
    has fewer than ``min_samples`` samples."""
    if stats.n < max(cond.min_samples, 2) or span_s <= 0:
        return None
    per_day = stats.n / span_s * 86_400
    worse_up = _oriented(metric.kind)
    if METRICS[metric.kind]["test"] == "proportion":
        good = stats.n - stats.successes if worse_up else stats.successes
        return rate_baseline(
            good,
            stats.n,
            higher_is_worse=worse_up,
            shift=cond.min_effect,
            false_page_days=cond.false_page_days,
            runs_per_day=per_day,
        )
    m = stats.moments or Moments(stats.n, stats.value or 0.0, 0.0)
    return mean_baseline(
        m.n,
        m.mean,
        m.variance,
        higher_is_worse=worse_up,
        shift=cond.min_effect,
        false_page_days=cond.false_page_days,
        runs_per_day=per_day,
    )


def _back_near(
    metric: MetricSpec, frozen: Baseline, recent: WindowStats, min_samples: int
) -> bool | None:
    """Is the recent window back within half the tuned shift of the frozen baseline?"""
    if recent.n < max(min_samples, 1) or recent.value is None:
        return None
    sign = -1.0 if _oriented(metric.kind) else 1.0
    return sign * recent.value >= sign * frozen.value - frozen.shift / 2


def _recovery_level(metric: MetricSpec, frozen: Baseline) -> str:
    if _oriented(metric.kind):
        return f"<= {frozen.value + frozen.shift / 2:.4g}"
    return f">= {frozen.value - frozen.shift / 2:.4g}"


def _restart(detector: DetectorState, checkpoint_us: int) -> DetectorState:
    """The detector with no evidence gathered, counting again from ``checkpoint_us``."""
    return replace(
        detector, s=0.0, since_us=None, pending_since_us=None, checkpoint_us=checkpoint_us
    )


def step_change(
    metric: MetricSpec,
    cond: Condition,
    state: AlertState,
    detector: DetectorState,
    the_plan: Plan,
    buckets: list[Bucket],
    baseline: WindowStats | None,
    recent: WindowStats,
    *,
    now_us: int,
    window_s: int,
    last_resolved_us: int | None,
    cooldown_s: float,
) -> Step:
    """One evaluation of a change condition (the same function the bench replays)."""
    span_s = (the_plan.baseline_until_us - the_plan.baseline_from_us) / 1_000_000
    direction = "rise" if _oriented(metric.kind) else "drop"
    fresh = detector.frozen is not None and (
        detector.frozen_until_us is not None and now_us < detector.frozen_until_us
    )
    use = detector.frozen if (state == "firing" or fresh) else None
    if use is None and baseline is not None:
        use = baseline_of(metric, cond, baseline, span_s)
    shown = recent.value
    if use is None:
        have = 0 if baseline is None else baseline.n
        ev = Evaluation(
            state == "firing",
            False,
            shown,
            recent.n,
            None if baseline is None else baseline.value,
            have,
            reason=f"need {cond.min_samples} samples in the baseline (have {have})",
        )
        # No evidence gathered; unsettled buckets are read again once the baseline fills.
        kept = _restart(detector, the_plan.commit_until_us)
        return Step(Transition(state, None), ev, kept)

    def evaluation(firing: bool, reason: str, statistic: float | None) -> Evaluation:
        assert use is not None
        return Evaluation(
            firing,
            True,
            shown,
            recent.n,
            use.value,
            use.n,
            reason=reason,
            worst_run_ids=recent.worst_run_ids,
            statistic=statistic,
            limit=use.h,
        )

    now_text = "no data" if shown is None else f"{shown:.4g}"
    if state == "firing":
        frozen = use
        back = _back_near(metric, frozen, recent, cond.min_samples)
        resolve, kept = _hold(detector, back, now_us, cond.resolve_after_s)
        kept = replace(_restart(kept, the_plan.buckets_until_us), frozen=frozen)
        if resolve:
            hold_us = (window_s * (1 + cond.baseline_windows)) * 1_000_000
            kept = replace(kept, frozen_until_us=now_us + hold_us)
            reason = (
                f"{metric.kind} {now_text} back near the baseline {frozen.value:.4g} "
                f"for {cond.resolve_after_s} s"
            )
            return Step(Transition("ok", "resolved"), evaluation(False, reason, None), kept)
        level = _recovery_level(metric, frozen)
        if kept.recovering_since_us is not None:
            held = (now_us - kept.recovering_since_us) // 1_000_000
            status = f"back for {held} s of {cond.resolve_after_s} s"
        else:
            status = f"resolves after {level} for {cond.resolve_after_s} s"
        reason = f"{metric.kind} {now_text} vs frozen baseline {frozen.value:.4g}: {status}"
        return Step(Transition("firing", None), evaluation(True, reason, None), kept)

    scorer = Scorer.of(use, _oriented(metric.kind))
    moved: Advance = advance(detector, the_plan, buckets, scorer)
    kept = moved.state
    if not fresh and kept.frozen is not None:
        kept = replace(kept, frozen=None, frozen_until_us=None)
    tuned = f"tuned to a {direction} of {use.shift:.3g}"
    if moved.peak >= use.h and not _in_cooldown(now_us, last_resolved_us, cooldown_s):
        reason = (
            f"{metric.kind} {now_text} vs baseline {use.value:.4g}: sustained {direction} "
            f"(evidence {moved.peak:.3g} >= {use.h:.3g}, {tuned})"
        )
        fired = DetectorState(checkpoint_us=the_plan.buckets_until_us, frozen=use)
        return Step(Transition("firing", "fired"), evaluation(True, reason, moved.peak), fired)
    reason = (
        f"{metric.kind} {now_text} vs baseline {use.value:.4g}: no sustained {direction} "
        f"(evidence {moved.s:.3g} of {use.h:.3g}, {tuned})"
    )
    return Step(Transition("ok", None), evaluation(False, reason, moved.s), kept)
