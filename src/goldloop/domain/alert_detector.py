"""The sequential change detector behind ``change`` alert conditions (pure: no I/O, no clock).

A one-sided CUSUM (Page's cumulative sum) of log-likelihood ratios: for every run, how much
more likely its outcome is if the metric has dropped by ``shift`` from the baseline than if it
has not. The sum drifts down on normal traffic (it is clamped at zero) and up after a drop; it
pages when it crosses ``h``. For a CUSUM of exact log-likelihood ratios the expected number of
observations between false alarms is at least ``e^h`` (Lorden), so ``h`` is chosen from what a
person cares about: the expected days between false pages times the runs per day.

- rates (``feedback_pass_rate``, ``error_rate``, ``category_share``): a Bernoulli likelihood
  ratio on the "good" outcome (a pass; a run without error; a value other than the category),
  reference ``p0`` against ``p1 = p0 - shift``;
- means (``feedback_mean``, ``cost``): a Gaussian likelihood ratio with the baseline's standard
  deviation, reference ``mu0`` against ``mu0 - shift`` (negated for cost, where up is bad).

The reference is estimated from a baseline window, so it is shrunk to a one-sided 95% confidence
bound (Wilson for rates, 1.645 standard errors for means): traffic is then rarely judged against
a baseline better than it really was, which is what inflates false pages (unshrunk, the
simulation gave 8.8 false pages per 30 days at 60 runs/h instead of 0.08).

The store aggregates runs into buckets of ``BUCKET_S`` seconds by start time; the log-likelihood
ratio of a bucket is the sum of its runs'. The detector's state is small and kept with the rule:
the statistic at a *checkpoint* (the end of the buckets that have settled), the start of the
current excursion, and, while an incident lasts, the frozen baseline.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

BUCKET_S = 60
# How many standard errors the baseline is shrunk by (one-sided bound, ~95%).
SHRINK_Z = 1.645
# Default drop a change detector is tuned to when ``min_effect`` is 0.
DEFAULT_RATE_SHIFT = 0.1
DEFAULT_MEAN_SHIFT_SD = 0.5


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket of runs: ``n`` samples; ``successes`` as the store counts them (passes,
    errors or category hits) for rates; ``total`` (sum of values) for means."""

    start_us: int
    n: int
    successes: int = 0
    total: float = 0.0


@dataclass(frozen=True, slots=True)
class Baseline:
    """What the detector compares with, in the "good is up" orientation.

    ``value`` is the baseline as people see it (a pass rate, an error rate, a mean cost);
    ``reference`` the shrunk good-direction reference (``p0`` or ``mu0``); ``shift`` the drop
    tuned to; ``sd`` the standard deviation (means); ``h`` the threshold; ``kind`` rate|mean."""

    kind: Literal["rate", "mean"]
    value: float
    n: int
    reference: float
    shift: float
    sd: float
    h: float
    runs_per_day: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Baseline:
        return cls(**raw)


@dataclass(frozen=True, slots=True)
class DetectorState:
    """Kept with the rule between evaluations (JSON). ``checkpoint_us``: end of the settled
    buckets folded into ``s``; ``since_us``: where the current excursion (s > 0) began;
    ``frozen``: the baseline of the incident (kept after it resolves until ``frozen_until_us``,
    so the incident's own traffic never becomes the baseline); ``recovering_since_us``: when the
    metric came back near the frozen baseline (or a threshold stopped holding)."""

    s: float = 0.0
    checkpoint_us: int | None = None
    since_us: int | None = None
    # where the excursion began on the latest (partly unsettled) buckets: the baseline ends there
    pending_since_us: int | None = None
    frozen: Baseline | None = None
    frozen_until_us: int | None = None
    recovering_since_us: int | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["frozen"] = None if self.frozen is None else self.frozen.to_json()
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> DetectorState:
        if not raw:
            return cls()
        frozen = raw.get("frozen")
        names = ("s", "checkpoint_us", "since_us", "pending_since_us")
        known = {k: raw[k] for k in names if k in raw}
        return cls(
            **known,
            frozen=Baseline.from_json(frozen) if frozen else None,
            frozen_until_us=raw.get("frozen_until_us"),
            recovering_since_us=raw.get("recovering_since_us"),
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """What to read for one evaluation: buckets in [buckets_from_us, buckets_until_us) and,
    unless a frozen baseline applies, the baseline window [baseline_from_us, baseline_until_us).
    Buckets before ``commit_until_us`` have settled and are folded into the checkpoint."""

    buckets_from_us: int
    buckets_until_us: int
    commit_until_us: int
    baseline_from_us: int
    baseline_until_us: int
    restart: bool  # the checkpoint was missing or too old: the statistic starts from zero


def _floor(t_us: int) -> int:
    step = BUCKET_S * 1_000_000
    return t_us // step * step


def plan(
    state: DetectorState,
    *,
    now_us: int,
    window_s: int,
    baseline_windows: int,
    settle_s: int,
) -> Plan:
    """Which buckets and which baseline window the evaluation at ``now_us`` needs.

    A first evaluation starts one window back. After a long outage the detector catches up at
    most one baseline span (``window_s * baseline_windows``) and restarts from zero before that.
    The baseline is the ``baseline_windows`` windows before the latest window, or before the
    current excursion began if that is earlier, so a drop that builds up evidence slowly is
    never compared with itself."""
    until = _floor(now_us)
    window = window_s * 1_000_000
    span = window * baseline_windows
    start = state.checkpoint_us
    restart = start is None or start < until - span
    if restart:
        start = _floor(until - window)
    assert start is not None
    start = min(start, until)
    commit = max(start, min(until, _floor(now_us - settle_s * 1_000_000)))
    base_end = until - window
    if not restart:
        for since in (state.since_us, state.pending_since_us):
            if since is not None:
                base_end = min(base_end, since)
    return Plan(start, until, commit, base_end - span, base_end, restart)


# --- baselines --------------------------------------------------------------------------------


def _wilson_lower(good: int, n: int, z: float) -> float:
    p = good / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - margin) / denom


def threshold_h(false_page_days: float, runs_per_day: float, info: float) -> float:
    """``h`` for one false page in ``false_page_days`` on average at ``runs_per_day``.

    ``info`` is the Kullback-Leibler divergence per run of the unchanged distribution from the
    changed one: the mean downward drift of the statistic on steady traffic. Siegmund's
    approximation of the average run length on steady traffic, ARL0 ~ e^h / info runs (the
    overshoot of h only lengthens it), gives h = ln(runs * info); Lorden's bound e^h would be
    safe but slower by ln(1 / info) nats (40 % for a 0.9 -> 0.8 rate). The shrunk reference
    (SHRINK_Z) pays for the baseline being estimated: measured in bench/alert_simulation.py."""
    runs = max(1.0, false_page_days * runs_per_day)
    if info <= 0:
        return math.log(max(math.e, runs))
    return max(1.0, math.log(runs * info))


def rate_baseline(
    good: int,
    n: int,
    *,
    higher_is_worse: bool,
    shift: float,
    false_page_days: float,
    runs_per_day: float,
) -> Baseline:
    """A rate baseline from ``good`` of ``n`` runs in the good orientation."""
    p0 = _wilson_lower(good, n, SHRINK_Z)
    step = shift if shift > 0 else DEFAULT_RATE_SHIFT
    # Keep p1 a proper probability below p0 even when the baseline is already poor.
    step = min(step, p0 / 2)
    shown = (n - good) / n if higher_is_worse else good / n
    p0c, p1 = min(p0, 1 - 1e-9), p0 - step
    info = p0c * math.log(p0c / p1) + (1 - p0c) * math.log((1 - p0c) / (1 - p1))
    h = threshold_h(false_page_days, runs_per_day, info)
    return Baseline("rate", shown, n, p0, step, 0.0, h, runs_per_day)


def mean_baseline(
    n: int,
    mean: float,
    variance: float,
    *,
    higher_is_worse: bool,
    shift: float,
    false_page_days: float,
    runs_per_day: float,
) -> Baseline:
    """A mean baseline; ``mean`` as measured (oriented here)."""
    sd = math.sqrt(max(variance, 0.0))
    step = shift if shift > 0 else DEFAULT_MEAN_SHIFT_SD * sd
    # A baseline with no spread (every score 1.0): judge with a spread of half the shift.
    floor = max(step / 2, 1e-9 * max(1.0, abs(mean)))
    sd = max(sd, floor)
    if step <= 0:
        step = DEFAULT_MEAN_SHIFT_SD * sd
    oriented = -mean if higher_is_worse else mean
    mu0 = oriented - SHRINK_Z * sd / math.sqrt(n)
    h = threshold_h(false_page_days, runs_per_day, step * step / (2 * sd * sd))
    return Baseline("mean", mean, n, mu0, step, sd, h, runs_per_day)


# --- the statistic ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scorer:
    """Per-run log-likelihood ratio weights, computed once per evaluation."""

    kind: Literal["rate", "mean"]
    higher_is_worse: bool
    a: float  # rate: LLR of a good run; mean: slope per unit of value (oriented)
    b: float  # rate: LLR of a bad run; mean: constant per run

    @classmethod
    def of(cls, baseline: Baseline, higher_is_worse: bool) -> Scorer:
        if baseline.kind == "rate":
            p0 = min(baseline.reference, 1 - 1e-9)
            p1 = p0 - baseline.shift
            return cls("rate", higher_is_worse, math.log(p1 / p0), math.log((1 - p1) / (1 - p0)))
        var = baseline.sd * baseline.sd
        d = baseline.shift
        # log N(x; mu0 - d) - log N(x; mu0) = -d (x - mu0) / var - d^2 / (2 var)
        return cls(
            "mean", higher_is_worse, -d / var, d * baseline.reference / var - d * d / 2 / var
        )

    def llr(self, bucket: Bucket) -> float:
        if bucket.n == 0:
            return 0.0
        if self.kind == "rate":
            good = bucket.n - bucket.successes if self.higher_is_worse else bucket.successes
            return good * self.a + (bucket.n - good) * self.b
        total = -bucket.total if self.higher_is_worse else bucket.total
        return self.a * total + self.b * bucket.n


@dataclass(frozen=True, slots=True)
class Advance:
    """The statistic after the new buckets: ``peak`` its highest value on the way, ``s`` its
    value at the end, and the state to keep (folded up to the commit point)."""

    peak: float
    s: float
    state: DetectorState


def advance(
    state: DetectorState,
    the_plan: Plan,
    buckets: list[Bucket],
    scorer: Scorer,
) -> Advance:
    """Fold the plan's buckets (sorted by start; missing buckets are empty) into the CUSUM."""
    s = 0.0 if the_plan.restart else state.s
    since = None if the_plan.restart else state.since_us
    committed = (s, since)
    peak = s
    step = BUCKET_S * 1_000_000
    for bucket in buckets:
        if bucket.start_us < the_plan.buckets_from_us:
            continue
        s_next = s + scorer.llr(bucket)
        if s_next <= 0:
            s, since = 0.0, None
        else:
            if s == 0.0:
                since = bucket.start_us
            s = s_next
        peak = max(peak, s)
        if bucket.start_us + step <= the_plan.commit_until_us:
            committed = (s, since)
    kept = replace(
        state,
        s=committed[0],
        since_us=committed[1],
        pending_since_us=since,
        checkpoint_us=the_plan.commit_until_us,
    )
    return Advance(peak, s, kept)
