"""Change alerts on synthetic traffic with known truth: false pages, detection delay, resolution.

    python bench/alert_simulation.py            # ~2-4 minutes
    python bench/alert_simulation.py --quick    # ~20 seconds, wider Monte Carlo error

Replays Goldloop's own alert code, the functions ``services.alerts`` calls on every evaluation
(``alert_detector.plan``, ``alerts.step_change``), on a seeded stream of runs (Poisson arrivals,
each run passes with probability p), aggregated into the same 60-second buckets the store
computes in SQL, with one evaluation every 60 s and the default condition of a
``feedback_pass_rate`` change rule (``window_s`` 3600, ``baseline_windows`` 6, ``min_samples``
30, ``false_page_days`` 30, ``resolve_after_s`` 900, ``cooldown_s`` 900):

- stationary traffic (p = 0.9 throughout) at 60 and 300 runs/h: false pages per 30 days;
- incidents: p drops from 0.9 to 0.7 for 6 hours, then recovers: detection delay (median,
  p90), the share of incidents that sent "resolved" while still degraded, pages per incident,
  and the time from recovery to "resolved".

The same scenarios also run through the old rule (a one-sided two-proportion z-test of the last
hour against the 6 hours before, alpha 0.01, re-tested every minute) for comparison.
Figures go to bench/results/alert_simulation-<time>.json.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import results_file  # noqa: E402

from goldloop.domain import alert_detector as det  # noqa: E402
from goldloop.domain.alerts import (  # noqa: E402
    AlertState,
    Condition,
    MetricSpec,
    WindowStats,
    step_change,
)
from goldloop.domain.significance import proportion_drop  # noqa: E402

MIN = 60_000_000
WINDOW_S = 3600
COOLDOWN_S = 900
METRIC = MetricSpec("feedback_pass_rate", key="ok")
COND = Condition("change")
HISTORY_MIN = (WINDOW_S // 60) * (1 + COND.baseline_windows) + 60  # traffic before the first tick


@dataclass
class Traffic:
    """Runs per minute: ``n[i]`` runs of which ``good[i]`` passed, minute i from t = 0."""

    n: np.ndarray[Any, Any]
    good: np.ndarray[Any, Any]

    @classmethod
    def make(cls, rng: np.random.Generator, per_hour: float, p: np.ndarray[Any, Any]) -> Traffic:
        n = rng.poisson(per_hour / 60.0, size=p.shape[0])
        return cls(n, rng.binomial(n, p))

    def sums(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        cn = np.concatenate(([0], np.cumsum(self.n)))
        cg = np.concatenate(([0], np.cumsum(self.good)))
        return cn, cg


class Detector:
    """The new change rule, evaluated every minute exactly as the service does."""

    def __init__(self, traffic: Traffic) -> None:
        self.n = traffic.n.tolist()
        self.good = traffic.good.tolist()
        self.cn, self.cg = (a.tolist() for a in traffic.sums())
        self.state: AlertState = "ok"
        self.detector = det.DetectorState()
        self.last_resolved: int | None = None

    def window(self, start_us: int, end_us: int) -> WindowStats:
        a, b = max(0, start_us // MIN), max(0, end_us // MIN)
        n, g = self.cn[b] - self.cn[a], self.cg[b] - self.cg[a]
        return WindowStats(n, g / n if n else None, successes=g)

    def tick(self, minute: int) -> str | None:
        now = minute * MIN + 5_000_000  # five seconds into the minute
        the_plan = det.plan(
            self.detector,
            now_us=now,
            window_s=WINDOW_S,
            baseline_windows=COND.baseline_windows,
            settle_s=COND.settle_s,
        )
        first, last = the_plan.buckets_from_us // MIN, the_plan.buckets_until_us // MIN
        buckets = [
            det.Bucket(i * MIN, self.n[i], self.good[i]) for i in range(first, last) if self.n[i]
        ]
        baseline = self.window(the_plan.baseline_from_us, the_plan.baseline_until_us)
        recent = self.window(now - WINDOW_S * 1_000_000, now)
        step = step_change(
            METRIC,
            COND,
            self.state,
            self.detector,
            the_plan,
            buckets,
            baseline,
            recent,
            now_us=now,
            window_s=WINDOW_S,
            last_resolved_us=self.last_resolved,
            cooldown_s=COOLDOWN_S,
        )
        self.state, self.detector = step.transition.new_state, step.detector
        if step.transition.event == "resolved":
            self.last_resolved = now
        return step.transition.event


class OldRule:
    """The rule before: z-test of the last hour vs the 6 hours before, alpha 0.01, no hold."""

    def __init__(self, traffic: Traffic) -> None:
        self.cn, self.cg = (a.tolist() for a in traffic.sums())
        self.state = "ok"
        self.last_resolved: int | None = None

    def tick(self, minute: int) -> str | None:
        w = WINDOW_S // 60
        b0, b1, c1 = minute - w * 7, minute - w, minute
        bn, bg = self.cn[b1] - self.cn[b0], self.cg[b1] - self.cg[b0]
        n, g = self.cn[c1] - self.cn[b1], self.cg[c1] - self.cg[b1]
        if n < 30 or bn < 30:
            return None
        firing = proportion_drop(bg, bn, g, n).p_value < 0.01 and bg / bn - g / n > 0
        if self.state == "ok" and firing:
            if self.last_resolved is not None and minute - self.last_resolved < COOLDOWN_S // 60:
                return None
            self.state = "firing"
            return "fired"
        if self.state == "firing" and not firing:
            self.state = "ok"
            self.last_resolved = minute
            return "resolved"
        return None


def stationary(rule: str, per_hour: float, months: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    minutes = months * 30 * 1440
    pages = 0
    for _ in range(months):  # one month at a time keeps memory flat
        p = np.full(HISTORY_MIN + 30 * 1440, 0.9)
        traffic = Traffic.make(rng, per_hour, p)
        sim: Detector | OldRule = Detector(traffic) if rule == "new" else OldRule(traffic)
        for minute in range(HISTORY_MIN, p.shape[0]):
            if sim.tick(minute) == "fired":
                pages += 1
    rate = pages / minutes * 30 * 1440
    # Poisson error on a count of pages (at least the error of one page when none were seen).
    err = math.sqrt(max(pages, 1)) / minutes * 30 * 1440
    return {"months": months, "pages": pages, "per_30_days": rate, "mc_error": err}


def _quantile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def incidents(rule: str, per_hour: float, count: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    drop_min, after_min = 6 * 60, 6 * 60
    delays: list[float] = []
    resolve_after: list[float] = []
    missed = false_resolves = 0
    pages: list[int] = []
    for _ in range(count):
        lead = HISTORY_MIN + int(rng.integers(120, 240))  # a steady stretch before the drop
        start, end = lead, lead + drop_min
        p = np.full(end + after_min, 0.9)
        p[start:end] = 0.7
        traffic = Traffic.make(rng, per_hour, p)
        sim: Detector | OldRule = Detector(traffic) if rule == "new" else OldRule(traffic)
        fired_at: int | None = None
        fired = 0
        resolved_during = False
        resolved_at: int | None = None
        for minute in range(HISTORY_MIN, p.shape[0]):
            event = sim.tick(minute)
            if event == "fired" and minute >= start:
                fired += 1
                if fired_at is None:
                    fired_at = minute
            elif event == "resolved" and fired_at is not None:
                if minute < end:
                    resolved_during = True
                elif resolved_at is None:
                    resolved_at = minute
        if fired_at is None:
            missed += 1
            continue
        delays.append(float(fired_at - start))
        pages.append(fired)
        false_resolves += resolved_during
        if resolved_at is not None:
            resolve_after.append(float(resolved_at - end))
    detected = count - missed
    return {
        "incidents": count,
        "missed": missed,
        "delay_median_min": _quantile(delays, 0.5),
        "delay_p90_min": _quantile(delays, 0.9),
        "resolved_while_degraded": false_resolves / detected if detected else None,
        "two_or_more_pages": sum(1 for x in pages if x >= 2) / detected if detected else None,
        "pages_per_incident": statistics.mean(pages) if pages else None,
        "resolve_after_recovery_median_min": _quantile(resolve_after, 0.5),
        "not_resolved_6h_after_recovery": detected - len(resolve_after),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer simulated months/incidents")
    parser.add_argument("--months", type=int, default=None, help="stationary months per rate")
    parser.add_argument("--incidents", type=int, default=None, help="incidents per rate")
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    months = args.months or (4 if args.quick else 40)
    count = args.incidents or (20 if args.quick else 100)
    began = time.perf_counter()
    out: dict[str, Any] = {"months": months, "incidents": count, "rules": {}}
    for rule in ("new", "old"):
        rows: dict[str, Any] = {}
        # The old rule pages often; a tenth of the months estimates its rate well enough.
        rule_months = months if rule == "new" else max(1, months // 10)
        for per_hour in (60, 300):
            st = stationary(rule, per_hour, rule_months, args.seed + per_hour)
            inc = incidents(rule, per_hour, count, args.seed + 7 * per_hour)
            rows[f"{per_hour}/h"] = {"stationary": st, "drop_0.9_to_0.7": inc}
            print(
                f"{rule:3} {per_hour:3} runs/h: false pages/30 d {st['per_30_days']:.2f} "
                f"± {st['mc_error']:.2f} ({st['pages']} in {st['months']} months); "
                f"delay median {inc['delay_median_min']} min, p90 {inc['delay_p90_min']} min, "
                f"missed {inc['missed']}/{count}; resolved while degraded "
                f"{_pct(inc['resolved_while_degraded'])}; "
                f"2+ pages {_pct(inc['two_or_more_pages'])}; "
                f"resolved {inc['resolve_after_recovery_median_min']} min after recovery",
                flush=True,
            )
        out["rules"][rule] = rows
    out["seconds"] = round(time.perf_counter() - began, 1)
    print(f"{out['seconds']} s")
    results_file.write("alert_simulation", out)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


if __name__ == "__main__":
    main()
