"""How far a gate's verdict can be trusted: Goldloop's own comparison code replayed on synthetic
experiments whose truth is known.

Prints, and writes to bench/results/verdict_simulation-<time>.json:

1. Coverage of the 95% interval of the mean difference, for n = 10, 20, 50, 200 examples,
   pass/fail and continuous (skewed) scores, with and without clusters (examples drawn from
   one conversation move together). Beside it, the percentile bootstrap that the gate used
   before, on the same data.
2. The gate's false-failure rate at alpha = 0.05 when nothing changed: pass/fail scores, and
   continuous differences with mean exactly 0 and skewness +2 or -2, at n = 50 and 200;
   beside it the old two-sided Wilcoxon verdict on the same data.
3. Power of the gate against a 10-point drop at 50 examples with 1, 3 and 5 repetitions
   (per-example pass probabilities; repetitions re-draw the agent's answer), and the minimum
   detectable effect the report states for that design.

Every verdict is `goldloop.domain.comparison.compare_key` + `significant_regression`, the code
`goldloop gate`, `goldloop compare`, the pytest plugin and the server run.

    PYTHONPATH=src python bench/verdict_simulation.py            # ~4 minutes on 2 cores
    PYTHONPATH=src python bench/verdict_simulation.py --quick    # ~40 s, coarse
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import results_file

from goldloop.domain.comparison import compare_key, significant_regression
from goldloop.domain.stats import bootstrap_mean_ci, wilcoxon_signed_rank

Scores = dict[str, list[float | bool | None]]
Sample = tuple[Scores, Scores, dict[str, str] | None, float]  # A, B, clusters, true difference

CLUSTER_SIZES = (1, 2, 3, 4)
"""Examples per conversation when clustered (uniform): about 2.5 turns each."""


def _units(rng: random.Random, n: int, clustered: bool) -> list[list[str]]:
    units: list[list[str]] = []
    left = 0
    while left < n:
        size = min(n - left, rng.choice(CLUSTER_SIZES) if clustered else 1)
        units.append([f"e{left + i}" for i in range(size)])
        left += size
    return units


def binary_sample(rng: random.Random, n: int, clustered: bool) -> Sample:
    """Pass/fail, one repetition. Unclustered: P(fell) 0.12, P(rose) 0.06. Clustered: half the
    conversations are hard for the candidate (fell 0.25, rose 0.05), half easy (0.03, 0.11):
    a true difference of -0.06 either way."""
    a: Scores = {}
    b: Scores = {}
    clusters: dict[str, str] = {}
    for u, members in enumerate(_units(rng, n, clustered)):
        if clustered:
            fell, rose = (0.25, 0.05) if rng.random() < 0.5 else (0.03, 0.11)
        else:
            fell, rose = 0.12, 0.06
        for ex in members:
            x = rng.random()
            a[ex], b[ex] = ([1.0], [0.0]) if x < fell else (
                ([0.0], [1.0]) if x < fell + rose else ([1.0], [1.0]))  # fmt: skip
            clusters[ex] = f"c{u}"
    return a, b, clusters if clustered else None, -0.06


def continuous_sample(rng: random.Random, n: int, clustered: bool, *, skew: float = 1.0) -> Sample:
    """Judge-like scores; per-example differences = -0.05 + a conversation effect (sd 0.1,
    clustered only) + 0.1 * (Exp(1) - 1) * skew: skewness 2, long tail on one side."""
    a: Scores = {}
    b: Scores = {}
    clusters: dict[str, str] = {}
    for u, members in enumerate(_units(rng, n, clustered)):
        shared = rng.gauss(0.0, 0.1) if clustered else 0.0
        for ex in members:
            base = rng.uniform(0.3, 0.7)
            a[ex] = [base]
            b[ex] = [base - 0.05 + shared + skew * 0.1 * (rng.expovariate(1.0) - 1.0)]
            clusters[ex] = f"c{u}"
    return a, b, clusters if clustered else None, -0.05


def coverage(
    make: Callable[[random.Random], Sample], trials: int, seed: int
) -> tuple[float, float]:
    """(Goldloop's interval, the old percentile bootstrap) coverage over ``trials`` samples."""
    rng = random.Random(seed)
    new = old = 0
    for _ in range(trials):
        a, b, clusters, truth = make(rng)
        cmp = compare_key("k", a, b, clusters=clusters)
        new += cmp.ci_low <= truth <= cmp.ci_high
        diffs = [float(b[k][0]) - float(a[k][0]) for k in a]  # type: ignore[arg-type]
        low, high = bootstrap_mean_ci(diffs, n_resamples=400, seed=rng.randrange(2**31))
        old += low <= truth <= high
    return new / trials, old / trials


def null_rates(
    make: Callable[[random.Random], Sample], trials: int, seed: int
) -> tuple[float, float]:
    """(Goldloop's false-failure rate, the old two-sided Wilcoxon + direction-of-the-mean rate)
    at alpha 0.05, where the true mean difference is 0."""
    rng = random.Random(seed)
    new = old = 0
    for _ in range(trials):
        a, b, clusters, _ = make(rng)
        cmp = compare_key("k", a, b, clusters=clusters)
        new += significant_regression(cmp, alpha=0.05).regression
        diffs = [float(b[k][0]) - float(a[k][0]) for k in a]  # type: ignore[arg-type]
        old += sum(diffs) < 0 and wilcoxon_signed_rank(diffs).p_value < 0.05
    return new / trials, old / trials


def _shifted(sample: Sample) -> Sample:
    """The same sample with the true difference moved to 0 (for null rates)."""
    a, b, clusters, truth = sample
    return a, {k: [float(v[0]) - truth] for k, v in b.items()}, clusters, 0.0  # type: ignore[arg-type]


def repeated(rng: random.Random, n: int, reps: int, drop: float) -> tuple[Scores, Scores]:
    """Per-example pass probabilities p_i ~ Beta(4, 1) (mean 0.8); the candidate passes with
    p_i - drop; each repetition draws the agent's answer again."""
    a: Scores = {}
    b: Scores = {}
    for i in range(n):
        p = rng.betavariate(4.0, 1.0)
        q = min(1.0, max(0.0, p - drop))
        a[f"e{i}"] = [float(rng.random() < p) for _ in range(reps)]
        b[f"e{i}"] = [float(rng.random() < q) for _ in range(reps)]
    return a, b


def gate_power(reps: int, drop: float, trials: int, seed: int) -> tuple[float, float]:
    """(share of gates that fail, median stated minimum detectable effect)."""
    rng = random.Random(seed)
    fails = 0
    mdes = []
    for _ in range(trials):
        a, b = repeated(rng, 50, reps, drop)
        cmp = compare_key("correct", a, b)
        fails += significant_regression(cmp, alpha=0.05).regression
        mdes.append(cmp.mde)
    return fails / trials, statistics.median(mdes)


def mc_error(p: float, trials: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-9) / trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials (coarse figures)")
    args = parser.parse_args()
    trials = 300 if args.quick else 2000
    started = time.perf_counter()
    out: dict[str, object] = {"trials": trials}

    print(f"1. Coverage of the 95% interval ({trials} samples a cell; MC error ~"
          f"{mc_error(0.95, trials):.3f})")  # fmt: skip
    print(f"{'scores':12} {'clusters':9} {'n':>4} {'Goldloop':>9} {'old bootstrap':>14}")
    cells = []
    for kind in ("binary", "continuous"):
        for clustered in (False, True):
            for n in (10, 20, 50, 200):

                def make(
                    rng: random.Random, n: int = n, c: bool = clustered, k: str = kind
                ) -> Sample:
                    return (
                        binary_sample(rng, n, c) if k == "binary" else continuous_sample(rng, n, c)
                    )

                new, old = coverage(make, trials, seed=n * 31 + clustered + (kind == "binary"))
                cells.append({"scores": kind, "clustered": clustered, "n": n,
                              "coverage": new, "old_percentile_bootstrap": old})  # fmt: skip
                flag = "" if n < 20 or new >= 0.93 else "  < 0.93"
                print(f"{kind:12} {'yes' if clustered else 'no':9} {n:4d} {new:9.3f} {old:14.3f}"
                      f"{flag}", flush=True)  # fmt: skip
    out["coverage"] = cells

    print(f"\n2. False-failure rate at alpha 0.05 when nothing changed (MC error ~"
          f"{mc_error(0.05, trials):.3f})")  # fmt: skip
    print(f"{'case':36} {'n':>4} {'Goldloop':>9} {'old Wilcoxon':>13}")
    nulls = []
    cases: list[tuple[str, Callable[[random.Random, int], Sample]]] = [
        ("pass/fail, P(fell) = P(rose) = 0.09", lambda r, n: _null_binary(r, n)),
        ("continuous, skewness +2 (few big gains)", lambda r, n: _shifted(
            continuous_sample(r, n, False, skew=1.0))),
        ("continuous, skewness -2 (few big drops)", lambda r, n: _shifted(
            continuous_sample(r, n, False, skew=-1.0))),
        ("continuous, clustered", lambda r, n: _shifted(continuous_sample(r, n, True))),
    ]  # fmt: skip
    for name, fn in cases:
        for n in (50, 200):
            new, old = null_rates(lambda r, fn=fn, n=n: fn(r, n), trials, seed=n + len(name))
            nulls.append({"case": name, "n": n, "false_failure": new, "old_wilcoxon": old})
            print(f"{name:36} {n:4d} {new:9.3f} {old:13.3f}", flush=True)
    out["false_failure"] = nulls

    print("\n3. Power against a 10-point drop, 50 examples (Beta(4,1) pass rates)")
    print(f"{'repetitions':>11} {'caught':>8} {'stated MDE':>11} {'false failures':>15}")
    power = []
    for reps in (1, 3, 5):
        caught, mde = gate_power(reps, 0.10, trials, seed=reps)
        null, _ = gate_power(reps, 0.0, trials, seed=100 + reps)
        power.append({"repetitions": reps, "power_10pt": caught, "median_mde": mde,
                      "false_failure": null})  # fmt: skip
        print(f"{reps:11d} {caught:8.3f} {mde:11.3f} {null:15.3f}", flush=True)
    out["power"] = power
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(f"\n{out['seconds']} s")
    results_file.write("verdict_simulation", out)


def _null_binary(rng: random.Random, n: int) -> Sample:
    a: Scores = {}
    b: Scores = {}
    for i in range(n):
        x = rng.random()
        a[f"e{i}"], b[f"e{i}"] = ([1.0], [0.0]) if x < 0.09 else (
            ([0.0], [1.0]) if x < 0.18 else ([1.0], [1.0]))  # fmt: skip
    return a, b, None, 0.0


if __name__ == "__main__":
    main()
