"""The comparison page's per-example rows: two experiments' results side by side, with each
score key's movement, ordered regressions first, then improvements, then unchanged.

Pure code over what the services return (``Comparison`` and ``ResultRow``s); the page module
fetches, this module arranges.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from goldloop.domain.comparison import ExampleDelta, KeyComparison, Outcome
from goldloop.services.experiment_results import ResultRow

SHOWS = ("all", "regressed", "improved", "unchanged")
_RANK: dict[Outcome, int] = {"regressed": 0, "improved": 1, "unchanged": 2}


@dataclass
class ExampleRow:
    """One example: its runs in A and in B (repetition order) and, per score key, how its
    per-example mean moved from A to B (``None`` for a key it has no paired scores for)."""

    example_id: str
    outcome: Outcome
    cells: dict[str, ExampleDelta | None]
    a: list[ResultRow] = field(default_factory=list)
    b: list[ResultRow] = field(default_factory=list)
    beyond_noise: bool | None = None
    """For a regressed/improved example: whether a moved key exceeds its run-to-run noise
    (None without repetitions on both sides)."""
    severity: float = 0.0
    """The largest move in the example's outcome direction (good-direction units)."""

    @property
    def inputs(self) -> Any:
        for row in (*self.a, *self.b):
            return row.inputs
        return None


def _good(delta: ExampleDelta, higher_is_better: bool) -> float:
    return delta.delta if higher_is_better else -delta.delta


def _by_example(rows: Iterable[ResultRow]) -> dict[str, list[ResultRow]]:
    out: dict[str, list[ResultRow]] = {}
    for row in rows:
        out.setdefault(row.example_id, []).append(row)
    for runs in out.values():
        runs.sort(key=lambda r: r.repetition)
    return out


def example_rows(comparisons: Sequence[KeyComparison], examples: Iterable[str]) -> list[ExampleRow]:
    """Every example both experiments ran, regressions first (beyond-noise ones, then the
    biggest drops), then improvements (biggest first), then unchanged (by example id).

    An example regressed when any key regressed, improved when none regressed and one
    improved; examples without paired scores (e.g. every call failed) count as unchanged.
    The rows' runs are left empty: ``attach`` them for the examples a page shows."""
    deltas = {c.key: {d.example_id: d for d in c.examples} for c in comparisons}
    direction = {c.key: c.higher_is_better for c in comparisons}
    scored = {ex for per_key in deltas.values() for ex in per_key}
    out = []
    for ex in set(examples) | scored:
        cells = {key: per_key.get(ex) for key, per_key in deltas.items()}
        moved: dict[Outcome, list[tuple[float, bool | None]]] = {"regressed": [], "improved": []}
        for key, cell in cells.items():
            if cell is not None and cell.outcome != "unchanged":
                moved[cell.outcome].append((abs(_good(cell, direction[key])), cell.exceeds_noise))
        outcome: Outcome = (
            "regressed" if moved["regressed"] else "improved" if moved["improved"] else "unchanged"
        )
        flags = [noise for _, noise in moved.get(outcome, [])]
        beyond = None if not flags or all(f is None for f in flags) else any(flags)
        severity = max((size for size, _ in moved.get(outcome, [])), default=0.0)
        out.append(ExampleRow(ex, outcome, cells, [], [], beyond, severity))
    out.sort(key=lambda r: (_RANK[r.outcome], r.beyond_noise is False, -r.severity, r.example_id))
    return out


def attach(
    rows: Sequence[ExampleRow], a_rows: Iterable[ResultRow], b_rows: Iterable[ResultRow]
) -> None:
    """Give each example row its runs in A and in B, in repetition order."""
    a_by, b_by = _by_example(a_rows), _by_example(b_rows)
    for row in rows:
        row.a = a_by.get(row.example_id, [])
        row.b = b_by.get(row.example_id, [])


def counts(rows: Sequence[ExampleRow]) -> dict[str, int]:
    tally = dict.fromkeys(SHOWS, 0)
    tally["all"] = len(rows)
    for row in rows:
        tally[row.outcome] += 1
    return tally
