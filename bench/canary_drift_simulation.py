"""Judge drift canaries on simulated judges with known truth: false alarms and power.

    python bench/canary_drift_simulation.py     # ~20 seconds

Replays Goldloop's own drift test (``domain.canaries.compare``, the function every canary run
calls) on 100 canaries (70% labelled pass), with a judge that errs consistently on a fixed set of
hard canaries (10 of them, as a temperature-0 judge does) plus a share of random flips on every
call. Each cycle compares a fresh baseline run with a later run of either the same judge (false
alarms) or a judge that now also errs on ``extra`` more canaries (power), at ``alpha`` 0.001
and ``min_drop`` 0.05 (the defaults). Beside it, a one-sided two-proportion z-test on the two
agreement rates, the unpaired alternative, at the same level.
"""

from __future__ import annotations

import math
import random
from statistics import NormalDist

from goldloop.domain import canaries

N_CANARIES = 100
CYCLES = 2000
ALPHA = 0.001
MIN_DROP = 0.05
_Z = NormalDist()


def two_proportion_p(right_before: int, right_after: int, n: int) -> float:
    p = (right_before + right_after) / (2 * n)
    se = math.sqrt(max(p * (1 - p) * 2 / n, 1e-12))
    return 1 - _Z.cdf((right_before - right_after) / n / se)


def main() -> None:
    rng = random.Random(2026)
    labels = {f"r{i}": float(rng.random() < 0.7) for i in range(N_CANARIES)}
    items = list(labels)

    def run(hard: set[str], flip: float) -> dict[str, float]:
        return {
            r: (1 - h if (r in hard) != (rng.random() < flip) else h) for r, h in labels.items()
        }

    def right(verdicts: dict[str, float]) -> int:
        return sum(1 for r in labels if (verdicts[r] >= 0.5) == (labels[r] >= 0.5))

    print(f"{N_CANARIES} canaries, {CYCLES} cycles per row, alpha {ALPHA}, min_drop {MIN_DROP}")
    print("random flips | extra errors | paired sign test | two-proportion z-test")
    for flip in (0.0, 0.02, 0.05):
        for extra in (0.0, 0.1, 0.15, 0.2):
            paired = unpaired = 0
            for _ in range(CYCLES):
                hard = set(rng.sample(items, 10))
                base = run(hard, flip)
                more = set(rng.sample([i for i in items if i not in hard], int(extra * N_CANARIES)))
                latest = run(hard | more, flip)
                d = canaries.compare(
                    "binary", base, latest, labels, threshold=0.5, alpha=ALPHA, min_drop=MIN_DROP
                )
                paired += d.drifted
                unpaired += two_proportion_p(right(base), right(latest), N_CANARIES) < ALPHA
            what = "false alarms" if extra == 0 else "power"
            print(
                f"{flip:12.2f} | {extra:12.2f} | {what} {paired / CYCLES:.4f} | "
                f"{unpaired / CYCLES:.4f}"
            )


if __name__ == "__main__":
    main()
