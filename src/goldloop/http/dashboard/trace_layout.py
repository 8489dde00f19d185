"""Lay a trace out for the page: tree rows with waterfall bars, and which subtrees start open.

Input is the query service's flat pre-order tree (each run with ``depth`` and ``children``).
The page nests ``<details>`` elements so a subtree collapses with no script; this module says,
for each row, whether it opens a subtree, how many subtrees close after it, where its bar sits
on the timeline (in thousandths of the trace's span) and whether it starts expanded.

Big traces stay usable: only the first levels start open (fewer when the trace is large), plus
the path to the selected run, so the browser lays out a few hundred rows first, not thousands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TIMELINE = 1000  # width of the waterfall's coordinate system (SVG viewBox units)
MIN_BAR = 2  # a zero-length run still shows as a sliver


@dataclass(frozen=True, slots=True)
class TreeRow:
    run: Mapping[str, Any]
    depth: int
    has_children: bool
    closes: int  # how many open subtrees end right after this row
    open: bool  # for rows with children: the subtree starts expanded
    bar_x: float
    bar_w: float
    descendants: int


def open_depth(run_count: int) -> int:
    """How many levels start expanded: everything for small traces, less as they grow."""
    if run_count <= 200:
        return 64
    if run_count <= 1_000:
        return 3
    return 2


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


def _descendant_counts(runs: Sequence[Mapping[str, Any]]) -> list[int]:
    """Subtree sizes from a pre-order list with depths, in one backwards pass."""
    counts = [0] * len(runs)
    stack: list[int] = []  # indexes of rows whose subtree is still accumulating
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


def layout(trace: Mapping[str, Any], selected: str | None = None) -> list[TreeRow]:
    runs: Sequence[Mapping[str, Any]] = trace["runs"]
    start = trace.get("start_time")
    end = trace.get("end_time")
    if start is not None:
        ends = [r["end_time"] or r["start_time"] or start for r in runs]
        end = max([end or start, *ends])
    span = (end - start) if start is not None and end is not None and end > start else 0
    keep_open = _ancestors(runs, selected)
    levels = open_depth(len(runs))
    counts = _descendant_counts(runs)
    rows = []
    for i, run in enumerate(runs):
        depth = run["depth"]
        next_depth = runs[i + 1]["depth"] if i + 1 < len(runs) else 0
        has_children = next_depth > depth
        closes = 0 if has_children else max(0, depth - next_depth)
        x, w = 0.0, float(TIMELINE)
        if span and run.get("start_time") is not None:
            x = (run["start_time"] - start) / span * TIMELINE
            run_end = run.get("end_time") or run["start_time"]
            w = max((run_end - run["start_time"]) / span * TIMELINE, MIN_BAR)
            x = min(x, TIMELINE - MIN_BAR)
            w = min(w, TIMELINE - x)
        rows.append(
            TreeRow(
                run=run,
                depth=depth,
                has_children=has_children,
                closes=closes,
                open=depth < levels or run["id"] in keep_open,
                bar_x=round(x, 2),
                bar_w=round(w, 2),
                descendants=counts[i],
            )
        )
    return rows
