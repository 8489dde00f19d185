"""The comparison page's per-example rows: a baseline's results and up to four candidates'
side by side, with each score key's movement per candidate, ordered regressions first, then
improvements, then unchanged; each candidate's output diffed word by word against the
baseline's.

Pure code over what the services return (``Comparison`` and ``ResultRow``s); the page module
fetches, this module arranges.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from goldloop.domain import word_diff
from goldloop.domain.comparison import ExampleDelta, KeyComparison, Outcome
from goldloop.services.experiment_results import ResultRow

SHOWS = ("all", "regressed", "improved", "unchanged")
_RANK: dict[Outcome, int] = {"regressed": 0, "improved": 1, "unchanged": 2}
MAX_DIFF_CHARS = 20_000  # longer outputs are not diffed (the page shows them in full anyway)


@dataclass
class ExampleRow:
    """One example against one candidate: per score key, how its per-example mean moved from
    A to B (``None`` for a key it has no paired scores for)."""

    example_id: str
    outcome: Outcome
    cells: dict[str, ExampleDelta | None]
    beyond_noise: bool | None = None
    """For a regressed/improved example: whether a moved key exceeds its run-to-run noise
    (None without repetitions on both sides)."""
    severity: float = 0.0
    """The largest move in the example's outcome direction (good-direction units)."""


@dataclass
class Candidate:
    """One candidate's column in an example's row: its movement from A (None when this
    candidate and A share no scored or run example here), its runs, and its first output's word
    diff against A's (None when either has no output, or it is too long)."""

    delta: ExampleRow | None
    runs: list[ResultRow] = field(default_factory=list)
    diff: list[word_diff.Segment] | None = None

    @property
    def same_as_a(self) -> bool:
        return self.diff is not None and all(s.kind == "same" for s in self.diff)


@dataclass
class CompareRow:
    """One example across every experiment compared: its outcome (regressed when it regressed
    against any candidate, else improved when it improved against one), A's runs and each
    candidate's column, in the order the candidates were given."""

    example_id: str
    outcome: Outcome
    candidates: list[Candidate]
    beyond_noise: bool | None = None
    severity: float = 0.0
    a: list[ResultRow] = field(default_factory=list)

    @property
    def inputs(self) -> Any:
        for row in (*self.a, *(r for c in self.candidates for r in c.runs)):
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


def _summary(moved: Sequence[tuple[float, bool | None]]) -> tuple[bool | None, float]:
    flags = [noise for _, noise in moved]
    beyond = None if not flags or all(f is None for f in flags) else any(flags)
    return beyond, max((size for size, _ in moved), default=0.0)


def example_rows(comparisons: Sequence[KeyComparison], examples: Iterable[str]) -> list[ExampleRow]:
    """Every example both experiments ran, regressions first (beyond-noise ones, then the
    biggest drops), then improvements (biggest first), then unchanged (by example id).

    An example regressed when any key regressed, improved when none regressed and one
    improved; examples without paired scores (e.g. every call failed) count as unchanged."""
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
        beyond, severity = _summary(moved.get(outcome, []))
        out.append(ExampleRow(ex, outcome, cells, beyond, severity))
    out.sort(key=_order)
    return out


def _order(r: ExampleRow | CompareRow) -> tuple[int, bool, float, str]:
    return (_RANK[r.outcome], r.beyond_noise is False, -r.severity, r.example_id)


def merged_rows(per_candidate: Sequence[Sequence[ExampleRow]]) -> list[CompareRow]:
    """One row per example any candidate shares with A, in the order ``example_rows`` gives
    (with one candidate, exactly its order): an example that regressed against any candidate
    first, the surest and biggest drops leading."""
    found: dict[str, list[ExampleRow | None]] = {}
    for i, rows in enumerate(per_candidate):
        for row in rows:
            found.setdefault(row.example_id, [None] * len(per_candidate))[i] = row
    out = []
    for ex, deltas in found.items():
        present = [d for d in deltas if d is not None]
        outcome: Outcome = next(
            (o for o in ("regressed", "improved") if any(d.outcome == o for d in present)),
            "unchanged",
        )
        moved = [d for d in present if d.outcome == outcome and outcome != "unchanged"]
        beyond, severity = _summary([(d.severity, d.beyond_noise) for d in moved])
        out.append(CompareRow(ex, outcome, [Candidate(d) for d in deltas], beyond, severity))
    out.sort(key=_order)
    return out


def output_text(outputs: Any) -> str:
    """The text a diff compares: a string as it is, an object with one string value that
    string, anything else pretty-printed JSON with sorted keys (so key order never shows)."""
    if isinstance(outputs, str):
        return outputs
    if isinstance(outputs, dict) and len(outputs) == 1:
        (only,) = outputs.values()
        if isinstance(only, str):
            return only
    try:
        return orjson.dumps(
            outputs, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
        ).decode()
    except TypeError:
        return str(outputs)


def _diff(
    a_runs: Sequence[ResultRow], b_runs: Sequence[ResultRow]
) -> list[word_diff.Segment] | None:
    if not a_runs or not b_runs or a_runs[0].outputs is None or b_runs[0].outputs is None:
        return None
    old, new = output_text(a_runs[0].outputs), output_text(b_runs[0].outputs)
    if len(old) + len(new) > MAX_DIFF_CHARS:
        return None
    return word_diff.word_diff(old, new)


def attach(
    rows: Sequence[CompareRow],
    a_rows: Iterable[ResultRow],
    b_rows: Sequence[Iterable[ResultRow]],
) -> None:
    """Give each example row A's runs and each candidate's (in repetition order), and each
    candidate's word diff of its first output against A's."""
    a_by = _by_example(a_rows)
    b_by = [_by_example(rows) for rows in b_rows]
    for row in rows:
        row.a = a_by.get(row.example_id, [])
        for candidate, runs in zip(row.candidates, b_by, strict=True):
            candidate.runs = runs.get(row.example_id, [])
            candidate.diff = _diff(row.a, candidate.runs)


def counts(rows: Sequence[CompareRow]) -> dict[str, int]:
    tally = dict.fromkeys(SHOWS, 0)
    tally["all"] = len(rows)
    for row in rows:
        tally[row.outcome] += 1
    return tally
