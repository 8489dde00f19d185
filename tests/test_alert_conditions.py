from __future__ import annotations

import dataclasses

import pytest

from goldloop.domain.alerts import (
    Condition,
    Evaluation,
    MetricSpec,
    WindowStats,
    evaluate,
    next_state,
    validate,
)
from goldloop.domain.errors import InvalidInput
from goldloop.domain.notifications import AlertNotice, body_for
from goldloop.domain.significance import Moments

PASS = MetricSpec("feedback_pass_rate", key="refund_policy_correct")
DROP = Condition("change", alpha=0.01, min_samples=30)


def rate(successes: int, n: int) -> WindowStats:
    return WindowStats(n=n, value=successes / n if n else None, successes=successes)


def test_a_real_drop_fires_with_its_numbers() -> None:
    ev = evaluate(PASS, DROP, rate(70, 100), rate(570, 600))
    assert ev.firing
    assert ev.decided
    assert ev.p_value is not None
    assert ev.p_value < 1e-6
    assert ev.numbers()["baseline"] == pytest.approx(0.95)
    assert "significant drop" in ev.reason


def test_few_samples_never_decide_and_noise_does_not_fire() -> None:
    tiny = evaluate(PASS, DROP, rate(2, 5), rate(570, 600))
    assert not tiny.decided
    assert "need 30 samples" in tiny.reason
    noise = evaluate(PASS, DROP, rate(93, 100), rate(570, 600))
    assert noise.decided
    assert not noise.firing


def test_min_effect_and_improvement_do_not_fire() -> None:
    small = Condition("change", alpha=0.05, min_samples=30, min_effect=0.2)
    assert not evaluate(PASS, small, rate(800, 1000), rate(950, 1000)).firing
    better = evaluate(PASS, DROP, rate(100, 100), rate(500, 600))
    assert not better.firing


def test_error_rate_rise_is_the_bad_direction() -> None:
    errs = MetricSpec("error_rate")
    assert evaluate(errs, DROP, rate(30, 200), rate(6, 600)).firing  # 15% errors vs 1%
    assert not evaluate(errs, DROP, rate(0, 200), rate(6, 600)).firing


def test_mean_score_and_cost_use_welch() -> None:
    mean = MetricSpec("feedback_mean", key="helpfulness")
    base = WindowStats(200, 4.5, moments=Moments(200, 4.5, 0.25))
    now = WindowStats(80, 3.9, moments=Moments(80, 3.9, 0.5))
    assert evaluate(mean, DROP, now, base).firing
    cost = MetricSpec("cost")
    cheap = WindowStats(200, 0.01, moments=Moments(200, 0.01, 1e-6))
    pricey = WindowStats(200, 0.02, moments=Moments(200, 0.02, 1e-6))
    assert evaluate(cost, DROP, pricey, cheap).firing
    assert not evaluate(cost, DROP, cheap, pricey).firing


def test_thresholds_including_no_data_volume() -> None:
    vol = MetricSpec("volume")
    nothing = evaluate(
        vol, Condition("threshold", op="<", value=1, min_samples=0), WindowStats(0, None), None
    )
    assert nothing.firing
    assert nothing.decided
    p95 = MetricSpec("latency_p95")
    slow = evaluate(
        p95,
        Condition("threshold", op=">", value=2000, min_samples=10),
        WindowStats(50, 2500.0),
        None,
    )
    assert slow.firing
    undecided = evaluate(
        p95, Condition("threshold", op=">", value=2000, min_samples=10), WindowStats(3, 9e9), None
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
        (MetricSpec("category_share", key="k"), Condition("threshold"), "needs a category"),
    ],
)
def test_invalid_rules_are_explained(metric: MetricSpec, cond: Condition, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate(metric, cond)


def _ev(firing: bool, decided: bool = True) -> Evaluation:
    return Evaluation(firing=firing, decided=decided, value=0.5, n=100)


def test_state_machine_fires_once_resolves_once_and_respects_cooldown() -> None:
    t = next_state("ok", _ev(True), now_us=10, last_resolved_us=None, cooldown_s=60)
    assert (t.new_state, t.event) == ("firing", "fired")
    again = next_state("firing", _ev(True), now_us=20, last_resolved_us=None, cooldown_s=60)
    assert (again.new_state, again.event) == ("firing", None)  # deduplicated
    undecided = next_state(
        "firing", _ev(False, decided=False), now_us=30, last_resolved_us=None, cooldown_s=60
    )
    assert (undecided.new_state, undecided.event) == ("firing", None)
    resolved = next_state("firing", _ev(False), now_us=40, last_resolved_us=None, cooldown_s=60)
    assert (resolved.new_state, resolved.event) == ("ok", "resolved")
    flap = next_state("ok", _ev(True), now_us=50_000_000, last_resolved_us=40, cooldown_s=60)
    assert flap.event is None
    later = next_state("ok", _ev(True), now_us=61_000_000, last_resolved_us=40, cooldown_s=60)
    assert later.event == "fired"


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
