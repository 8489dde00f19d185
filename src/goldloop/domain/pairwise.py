"""Pairwise human review: which of two outputs for the same input is better (issue #20).

Vocabulary as for the LLM pairwise judge (``goldloop.evaluation._pairwise``): a reviewer
prefers ``A``, ``B`` or calls a ``tie``. A is the baseline (the first experiment, or production),
B the candidate. Reviewers never see which is which: each item shows the two outputs as
"Output 1" and "Output 2" in an order drawn at random when the item is made and recorded with
it (``swapped``: B is on the left), so a reviewer's habit of preferring one side cannot decide
the result.

Results count one unit per pair (item), not per review: the reviews of an item are averaged
(B = 1, tie = 1/2, A = 0) and the item is a win for B above 1/2, for A below, a tie at 1/2.

* **win rate of B** = (B wins + ties / 2) / n, with a Wilson score interval on that share
  (Wilson 1927). A tie varies less than a win or a loss, so with ties the interval is a little
  wider than it needs to be (conservative).
* **decisive win rate** = B wins / (B wins + A wins), ties left out, with its Wilson interval;
* **tie share** = ties / n;
* **sign test**: the exact two-sided binomial test of B wins against A wins (ties left out)
  under "neither is better" (p = 1/2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from goldloop.domain.agreement import Estimate, wilson, z_of

PREFERENCES = ("A", "B", "tie")
POINTS = {"A": 0.0, "tie": 0.5, "B": 1.0}
PREFERENCE_KEY = "preference"  # the pseudo key reviews store the choice under (for agreement)


def choice_to_preference(choice: str, swapped: bool) -> str | None:
    """What a reviewer's on-screen choice means: ``left`` / ``right`` / ``tie`` (or the keys
    ``1`` / ``2`` / ``0``) as A, B or tie, given whether the item shows B on the left."""
    choice = choice.strip().lower()
    if choice in ("tie", "0"):
        return "tie"
    if choice in ("left", "1"):
        return "B" if swapped else "A"
    if choice in ("right", "2"):
        return "A" if swapped else "B"
    return None


def item_outcome(preferences: Iterable[str]) -> str | None:
    """The pair's verdict from its reviews' preferences: A, B or tie (None: no reviews)."""
    points = [POINTS[p] for p in preferences if p in POINTS]
    if not points:
        return None
    mean = sum(points) / len(points)
    if math.isclose(mean, 0.5):
        return "tie"
    return "B" if mean > 0.5 else "A"


def sign_test(wins: int, losses: int) -> float | None:
    """Exact two-sided binomial (sign) test p-value of ``wins`` against ``losses`` under p = 1/2
    (None when there are no decisive pairs)."""
    m = wins + losses
    if m == 0:
        return None
    k = min(wins, losses)
    tail: float = sum(math.comb(m, i) for i in range(k + 1)) / 2**m
    return min(1.0, 2 * tail)


def _share(points: float, n: int, confidence: float) -> Estimate:
    """A share with a Wilson score interval, for a count that may hold halves (ties)."""
    if n <= 0:
        return Estimate(None, None, None, 0)
    z = z_of(confidence)
    p = points / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n)


@dataclass(frozen=True, slots=True)
class PairwiseResult:
    n: int  # judged pairs
    b_wins: int
    a_wins: int
    ties: int
    win_rate: Estimate  # of B, ties counted half
    decisive: Estimate  # B wins / (B wins + A wins)
    tie_share: float | None
    p_value: float | None  # exact two-sided sign test over non-tied pairs
    confidence: float

    def as_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "b_wins": self.b_wins,
            "a_wins": self.a_wins,
            "ties": self.ties,
            "win_rate": self.win_rate.as_dict(),
            "decisive_win_rate": self.decisive.as_dict(),
            "tie_share": self.tie_share,
            "p_value": self.p_value,
            "confidence": self.confidence,
            "ties_count_as": 0.5,
        }


def summarize(outcomes: Sequence[str], confidence: float = 0.95) -> PairwiseResult:
    """Win rate of B over A from the pairs' verdicts (``A``, ``B`` or ``tie`` each)."""
    b = sum(1 for o in outcomes if o == "B")
    a = sum(1 for o in outcomes if o == "A")
    t = sum(1 for o in outcomes if o == "tie")
    n = a + b + t
    return PairwiseResult(
        n=n,
        b_wins=b,
        a_wins=a,
        ties=t,
        win_rate=_share(b + t / 2, n, confidence),
        decisive=wilson(b, a + b, confidence),
        tie_share=t / n if n else None,
        p_value=sign_test(b, a),
        confidence=confidence,
    )
