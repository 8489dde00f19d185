"""The change detector replayed through the domain code, tick by tick, on seeded traffic.

Each test drives ``plan`` and ``step_change`` the way ``services.alerts.step`` does (60-second
buckets, one evaluation a minute), on hours or days of simulated traffic with a known truth.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from goldloop.domain import alert_detector as det
from goldloop.domain.alerts import (
    AlertState,
    Condition,
    MetricSpec,
    WindowStats,
    step_change,
    validate,
)
from goldloop.domain.significance import Moments

S = 1_000_000
MIN = 60 * S
PASS = MetricSpec("feedback_pass_rate", key="refund_policy_ok")


@dataclass
class Sim:
    """Minute buckets of traffic and a rule evaluated once a minute, as the service does."""

    metric: MetricSpec
    cond: Condition
    window_s: int = 3600
    cooldown_s: int = 900
    n: list[int] = field(default_factory=list)
    hits: list[int] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    sq: list[float] = field(default_factory=list)
    state: AlertState = "ok"
    detector: det.DetectorState = field(default_factory=det.DetectorState)
    last_resolved: int | None = None
    events: list[tuple[int, str]] = field(default_factory=list)
    last_reason: str = ""

    def add(self, n: int, hits: int = 0, values: list[float] | None = None) -> None:
        values = values or []
        self.n.append(n)
        self.hits.append(hits)
        self.total.append(sum(values))
        self.sq.append(sum(v * v for v in values))

    def window(self, start_us: int, end_us: int) -> WindowStats:
        a, b = max(0, start_us // MIN), max(0, min(len(self.n), end_us // MIN))
        n, hits = sum(self.n[a:b]), sum(self.hits[a:b])
        if METRIC_TEST[self.metric.kind] == "mean":
            m = Moments.from_sums(n, sum(self.total[a:b]), sum(self.sq[a:b]))
            return WindowStats(n, m.mean if n else None, moments=m)
        return WindowStats(n, hits / n if n else None, successes=hits)

    def tick(self) -> str | None:
        now = len(self.n) * MIN + 5 * S
        the_plan = det.plan(
            self.detector,
            now_us=now,
            window_s=self.window_s,
            baseline_windows=self.cond.baseline_windows,
            settle_s=self.cond.settle_s,
        )
        first, last = the_plan.buckets_from_us // MIN, the_plan.buckets_until_us // MIN
        buckets = [
            det.Bucket(i * MIN, self.n[i], self.hits[i], self.total[i])
            for i in range(max(0, first), min(last, len(self.n)))
            if self.n[i]
        ]
        step = step_change(
            self.metric,
            self.cond,
            self.state,
            self.detector,
            the_plan,
            buckets,
            self.window(the_plan.baseline_from_us, the_plan.baseline_until_us),
            self.window(now - self.window_s * S, now),
            now_us=now,
            window_s=self.window_s,
            last_resolved_us=self.last_resolved,
            cooldown_s=self.cooldown_s,
        )
        # What the service stores between evaluations is JSON: go through it every time.
        self.detector = det.DetectorState.from_json(json.loads(json.dumps(step.detector.to_json())))
        self.state = step.transition.new_state
        self.last_reason = step.evaluation.reason
        event = step.transition.event
        if event is not None:
            self.events.append((len(self.n), event))
            if event == "resolved":
                self.last_resolved = now
        return event

    def run(self, minutes: int, make: Callable[[], None]) -> None:
        for _ in range(minutes):
            make()
            self.tick()


METRIC_TEST = {"feedback_pass_rate": "rate", "error_rate": "rate", "feedback_mean": "mean"}


def passes(sim: Sim, rng: random.Random, p: float, per_minute: int) -> Callable[[], None]:
    return lambda: sim.add(per_minute, sum(rng.random() < p for _ in range(per_minute)))


def test_a_sustained_drop_pages_once_stays_firing_and_resolves_after_recovery() -> None:
    rng = random.Random(19)
    sim = Sim(PASS, Condition("change"))
    sim.run(8 * 60, passes(sim, rng, 0.9, 5))  # 300 runs/h at 0.9
    assert sim.events == []
    drop = len(sim.n)
    sim.run(6 * 60, passes(sim, rng, 0.7, 5))  # six hours at 0.7
    assert [e for _, e in sim.events] == ["fired"]
    fired_at = sim.events[0][0]
    assert 0 < fired_at - drop <= 45  # minutes
    assert sim.state == "firing"  # the incident never became the baseline
    assert "frozen baseline 0.9" in sim.last_reason
    recovered = len(sim.n)
    sim.run(3 * 60, passes(sim, rng, 0.9, 5))
    assert [e for _, e in sim.events] == ["fired", "resolved"]
    resolved_at = sim.events[1][0]
    # The last hour's pass rate has to climb back (window 1 h), then hold for 15 minutes.
    assert 15 <= resolved_at - recovered <= 100


def test_steady_traffic_for_days_does_not_page() -> None:
    rng = random.Random(7)
    sim = Sim(PASS, Condition("change"))
    sim.run(5 * 1440, passes(sim, rng, 0.9, 1))  # five days at 60 runs/h
    assert sim.events == []
    assert "no sustained drop" in sim.last_reason


def test_a_rate_where_up_is_bad_and_a_mean_score() -> None:
    rng = random.Random(3)
    errors = Sim(MetricSpec("error_rate"), Condition("change", min_effect=0.05))
    errors.run(8 * 60, passes(errors, rng, 0.02, 5))
    errors.run(90, passes(errors, rng, 0.2, 5))
    assert [e for _, e in errors.events] == ["fired"]

    scores = Sim(MetricSpec("feedback_mean", key="helpfulness"), Condition("change"))

    def score(mean: float) -> Callable[[], None]:
        def make() -> None:
            values = [min(1.0, max(0.0, rng.gauss(mean, 0.15))) for _ in range(5)]
            scores.add(5, values=values)

        return make

    scores.run(8 * 60, score(0.8))
    assert scores.events == []
    scores.run(90, score(0.6))
    assert [e for _, e in scores.events] == ["fired"]


def test_late_feedback_within_the_settle_delay_still_counts() -> None:
    """Online scores land after their run: buckets younger than settle_s are read again."""
    sim = Sim(PASS, Condition("change", settle_s=600))
    for _ in range(8 * 60):
        sim.add(5, 5 if len(sim.n) % 10 else 4)  # 0.98
        sim.tick()
    late = len(sim.n)
    for _ in range(5):  # five minutes of runs whose scores have not arrived yet
        sim.add(0)
        sim.tick()
    assert sim.events == []
    for i in range(5):  # the scores arrive, all failures
        sim.n[late + i], sim.hits[late + i] = 5, 0
    sim.add(0)
    assert sim.tick() == "fired"


def test_first_evaluation_outage_and_bounded_catch_up() -> None:
    fresh = det.plan(det.DetectorState(), now_us=10 * 3600 * S + 7, window_s=600,
                     baseline_windows=6, settle_s=900)  # fmt: skip
    assert fresh.restart
    assert fresh.buckets_until_us - fresh.buckets_from_us == 600 * S  # one window back
    assert (fresh.baseline_from_us, fresh.baseline_until_us) == (
        fresh.buckets_until_us - 4200 * S,
        fresh.buckets_until_us - 600 * S,
    )
    assert fresh.commit_until_us == fresh.buckets_from_us  # nothing settled yet
    kept = det.DetectorState(s=3.0, checkpoint_us=10 * 3600 * S)
    soon = det.plan(kept, now_us=10 * 3600 * S + 1800 * S, window_s=600, baseline_windows=6,
                    settle_s=900)  # fmt: skip
    assert not soon.restart
    assert soon.buckets_from_us == kept.checkpoint_us
    assert soon.commit_until_us == kept.checkpoint_us + 900 * S
    later = det.plan(kept, now_us=20 * 3600 * S, window_s=600, baseline_windows=6, settle_s=900)
    assert later.restart  # a ten-hour outage: start again one window back, from zero
    assert later.buckets_until_us - later.buckets_from_us == 600 * S


def test_rules_stored_before_the_detector_still_load_and_evaluate() -> None:
    stored = {
        "type": "change",
        "op": "<",
        "value": 0.0,
        "alpha": 0.01,
        "min_samples": 30,
        "min_effect": 0.0,
        "baseline_windows": 6,
    }
    cond = Condition(**stored)
    validate(PASS, cond)
    assert (cond.false_page_days, cond.resolve_after_s, cond.settle_s) == (30.0, 900, 900)
    assert det.DetectorState.from_json(None) == det.DetectorState()
    # A rule that was firing before the upgrade has no frozen baseline: it freezes the one it
    # sees and resolves when traffic is back near it.
    rng = random.Random(5)
    sim = Sim(PASS, cond, state="firing")
    sim.run(8 * 60, passes(sim, rng, 0.95, 5))
    assert sim.detector.frozen is not None
    assert [e for _, e in sim.events] == ["resolved"]


@pytest.mark.parametrize("per_day", [1_440.0, 7_200.0])
def test_the_threshold_grows_with_traffic_and_the_false_page_budget(per_day: float) -> None:
    base = det.rate_baseline(
        324, 360, higher_is_worse=False, shift=0.1, false_page_days=30, runs_per_day=per_day
    )
    assert base.reference < 0.9  # shrunk towards the safe side
    longer = det.rate_baseline(
        324, 360, higher_is_worse=False, shift=0.1, false_page_days=300, runs_per_day=per_day
    )
    assert longer.h == pytest.approx(base.h + 2.302585, abs=1e-6)  # ln(10) more evidence
