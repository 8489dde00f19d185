"""Lay a trace out for the page: tree rows with waterfall bars, and which subtrees start open.

Input is the query service's flat pre-order tree (each run with ``depth`` and ``children``).
The page nests ``<details>`` elements so a subtree collapses with no script; this module says,
for each row it renders, whether it opens a subtree, how many subtrees close after it, and where
its bar sits on the timeline (in thousandths of the trace's span).

Big traces stay fast: levels of the tree open breadth-first only while the rows on screen stay
within ``ROW_BUDGET`` (plus the path to the selected run). The rows inside a collapsed subtree
are not sent at all: the page fetches them when the subtree is opened (``subtree``), and
without script a collapsed run's link selects it, which opens it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TIMELINE = 1000  # width of the waterfall's coordinate system (SVG viewBox units)
MIN_BAR = 2  # a zero-length run still shows as a sliver
ROW_BUDGET = 300  # rows shown before subtrees start collapsed


@dataclass(frozen=True, slots=True)
class TreeRow:
    run: Mapping[str, Any]
    depth: int
    has_children: bool
    open: bool  # for rows with children: the subtree is expanded (and its rows follow)
    closes: int  # how many open subtrees end right after this row
    bar_x: float
    bar_w: float
    descendants: int


@dataclass(frozen=True, slots=True)
class _Span:
    start: int | None
    size: int  # 0 when unknown


def _span(trace: Mapping[str, Any]) -> _Span:
    runs: Sequence[Mapping[str, Any]] = trace["runs"]
    start = trace.get("start_time")
    if start is None:
        return _Span(None, 0)
    end = trace.get("end_time") or start
    for r in runs:
        end = max(end, r.get("end_time") or r.get("start_time") or start)
    return _Span(start, max(0, end - start))


def _bar(run: Mapping[str, Any], span: _Span) -> tuple[float, float]:
    if not span.size or span.start is None or run.get("start_time") is None:
        return 0.0, float(TIMELINE)
    x = (run["start_time"] - span.start) / span.size * TIMELINE
    run_end = run.get("end_time") or run["start_time"]
    w = max((run_end - run["start_time"]) / span.size * TIMELINE, MIN_BAR)
    x = min(max(x, 0.0), TIMELINE - MIN_BAR)
    return round(x, 2), round(min(w, TIMELINE - x), 2)


def descendant_counts(runs: Sequence[Mapping[str, Any]]) -> list[int]:
    """Subtree sizes from a pre-order list with depths, in one backwards pass."""
    counts = [0] * len(runs)
    stack: list[int] = []  # later rows whose subtree is complete
    for i in range(len(runs) - 1, -1, -1):
        depth = runs[i]["depth"]
        total = 0
        while stack and runs[stack[-1]]["depth"] > depth:
            j = stack.pop()
            if runs[j]["depth"] == depth + 1:
                total += counts[j] + 1
        counts[i] = total
        stack.append(i)
    return counts


def _ancestors(runs: Sequence[Mapping[str, Any]], selected: str | None) -> set[str]:
    if selected is None:
        return set()
    parent_of = {r["id"]: r.get("parent_id") for r in runs}
    out: set[str] = set()
    current = parent_of.get(selected)
    while current is not None and current in parent_of and current not in out:
        out.add(current)
        current = parent_of.get(current)
    return out


def _open_depth(runs: Sequence[Mapping[str, Any]], lo: int, hi: int, base: int) -> int:
    """The deepest level (exclusive) to open in runs[lo:hi] so that visible rows fit the
    budget: rows at depth d are visible when every level above d is open."""
    per_level: dict[int, int] = {}
    for i in range(lo, hi):
        d = runs[i]["depth"]
        per_level[d] = per_level.get(d, 0) + 1
    visible = per_level.get(base, 0)
    level = base
    while level + 1 in per_level and visible + per_level[level + 1] <= ROW_BUDGET:
        visible += per_level[level + 1]
        level += 1
    return level  # nodes at depth < level are open


def _rows(
    runs: Sequence[Mapping[str, Any]],
    counts: list[int],
    lo: int,
    hi: int,
    base: int,
    span: _Span,
    keep_open: set[str],
) -> list[TreeRow]:
    """Rendered rows of runs[lo:hi] (a forest whose roots are at depth ``base``)."""
    levels = _open_depth(runs, lo, hi, base)
    chosen: list[tuple[int, bool]] = []  # (index, open)
    i = lo
    while i < hi:
        run = runs[i]
        has_children = counts[i] > 0
        is_open = has_children and (run["depth"] < levels or run["id"] in keep_open)
        chosen.append((i, is_open))
        i += 1 if is_open or not has_children else counts[i] + 1  # skip a collapsed subtree
    out = []
    for n, (i, is_open) in enumerate(chosen):
        run = runs[i]
        depth = run["depth"]
        next_depth = runs[chosen[n + 1][0]]["depth"] if n + 1 < len(chosen) else base
        x, w = _bar(run, span)
        out.append(
            TreeRow(
                run=run,
                depth=depth,
                has_children=counts[i] > 0,
                open=is_open,
                closes=0 if is_open else max(0, depth - next_depth),
                bar_x=x,
                bar_w=w,
                descendants=counts[i],
            )
        )
    return out


def layout(trace: Mapping[str, Any], selected: str | None = None) -> list[TreeRow]:
    """The rows the trace page renders, with the selected run and its parents open."""
    runs: Sequence[Mapping[str, Any]] = trace["runs"]
    keep_open = _ancestors(runs, selected)
    if selected is not None:
        keep_open.add(selected)
    return _rows(runs, descendant_counts(runs), 0, len(runs), 0, _span(trace), keep_open)


def subtree(trace: Mapping[str, Any], run_id: str) -> list[TreeRow] | None:
    """The rows under ``run_id`` (its children and, within the budget, deeper), or None."""
    runs: Sequence[Mapping[str, Any]] = trace["runs"]
    index = next((i for i, r in enumerate(runs) if r["id"] == run_id), None)
    if index is None:
        return None
    counts = descendant_counts(runs)
    base = runs[index]["depth"] + 1
    return _rows(runs, counts, index + 1, index + 1 + counts[index], base, _span(trace), set())
