from __future__ import annotations

import dataclasses

import pytest

from goldloop.domain.alert_detector import DetectorState
from goldloop.domain.alerts import (
    AlertState,
    Condition,
    MetricSpec,
    Step,
    Transition,
    WindowStats,
    evaluate,
    step_threshold,
    validate,
)
from goldloop.domain.errors import InvalidInput
from goldloop.domain.notifications import AlertNotice, body_for

S = 1_000_000


def test_thresholds_including_no_data_volume() -> None:
    vol = MetricSpec("volume")
    nothing = evaluate(
        vol, Condition("threshold", op="<", value=1, min_samples=0), WindowStats(0, None)
    )
    assert nothing.firing
    assert nothing.decided
    p95 = MetricSpec("latency_p95")
    slow = evaluate(
        p95,
        Condition("threshold", op=">", value=2000, min_samples=10),
        WindowStats(50, 2500.0),
    )
    assert slow.firing
    undecided = evaluate(
        p95, Condition("threshold", op=">", value=2000, min_samples=10), WindowStats(3, 9e9)
    )
    assert not undecided.decided


@pytest.mark.parametrize(
    ("metric", "cond", "message"),
    [
        (MetricSpec("nope"), Condition("threshold"), "unknown metric"),
        (MetricSpec("feedback_mean"), Condition("threshold"), "needs a feedback key"),
        (MetricSpec("latency_p95"), Condition("change"), "supports only threshold"),
        (MetricSpec("error_rate"), Condition("threshold", op="=="), "op must be one of"),
        (MetricSpec("error_rate"), Condition("change", alpha=0.7), "alpha"),
        (MetricSpec("error_rate"), Condition("change", false_page_days=0.5), "false_page_days"),
        (MetricSpec("error_rate"), Condition("change", min_effect=1.5), "below 1"),
        (MetricSpec("error_rate"), Condition("change", min_effect=-0.1), "between 0 and 1e9"),
        (MetricSpec("cost"), Condition("change", min_effect=8.9e254), "between 0 and 1e9"),
        (MetricSpec("cost"), Condition("change", baseline_windows=10**20), "baseline_windows"),
        (MetricSpec("error_rate"), Condition("threshold", resolve_after_s=-1), "resolve_after"),
        (MetricSpec("category_share", key="k"), Condition("threshold"), "needs a category"),
    ],
)
def test_invalid_rules_are_explained(metric: MetricSpec, cond: Condition, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate(metric, cond)


def test_threshold_fires_once_holds_before_resolving_and_respects_cooldown() -> None:
    errs = MetricSpec("error_rate")
    cond = Condition("threshold", op=">", value=0.1, min_samples=10, resolve_after_s=300)
    bad, good, thin = WindowStats(50, 0.3), WindowStats(50, 0.0), WindowStats(2, 0.0)
    det = DetectorState()

    def at(state: AlertState, stats: WindowStats, t_s: int, resolved: int | None = None) -> Step:
        return step_threshold(
            errs, cond, state, stats, det, now_us=t_s * S, last_resolved_us=resolved, cooldown_s=60
        )

    fired = at("ok", bad, 0)
    assert (fired.transition.new_state, fired.transition.event) == ("firing", "fired")
    assert at("firing", bad, 60).transition == Transition("firing", None)  # deduplicated
    det = at("firing", good, 120).detector  # back: the hold starts
    assert det.recovering_since_us == 120 * S
    assert at("firing", thin, 200).transition.event is None  # too few samples: no evidence
    assert at("firing", bad, 300).detector.recovering_since_us is None  # broken: starts over
    held = at("firing", good, 419)
    assert held.transition.event is None
    assert "back for 299 s of 300 s" in held.evaluation.reason
    resolved = at("firing", good, 420)
    assert (resolved.transition.new_state, resolved.transition.event) == ("ok", "resolved")
    det = DetectorState()
    assert at("ok", bad, 450, resolved=420 * S).transition.event is None  # cooldown
    assert at("ok", bad, 481, resolved=420 * S).transition.event == "fired"


def test_channel_bodies_carry_the_numbers_and_links() -> None:
    notice = AlertNotice(
        alert_rule_id="a1",
        alert_name="refund policy",
        project_name="agent-support",
        event="fired",
        at_iso="2026-11-26T12:00:00+00:00",
        reason="significant drop",
        numbers={
            "value": 0.7,
            "samples": 100,
            "baseline": 0.95,
            "baseline_samples": 600,
            "p_value": 1e-7,
        },
        worst_runs=[{"id": "r1", "url": "http://h/runs/r1"}],
        alert_url="http://h/alerts/a1",
    )
    hook = body_for("webhook", notice, None)
    assert hook["numbers"]["baseline"] == 0.95
    assert hook["worst_runs"][0]["url"] == "http://h/runs/r1"
    slack = body_for("slack", notice, None)
    assert "FIRING" in slack["text"]
    assert "http://h/runs/r1" in str(slack["blocks"])
    pd = body_for("pagerduty", notice, "rk-123")
    assert pd["event_action"] == "trigger"
    assert pd["routing_key"] == "rk-123"
    assert pd["dedup_key"] == "goldloop-alert-a1"
    assert pd["payload"]["custom_details"]["p_value"] == 1e-7
    resolved = body_for("pagerduty", dataclasses.replace(notice, event="resolved"), "rk")
    assert resolved["event_action"] == "resolve"
    assert resolved["dedup_key"] == pd["dedup_key"]
