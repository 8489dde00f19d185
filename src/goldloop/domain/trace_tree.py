"""Arrange the runs of one trace as a tree, in O(n) after one sort, without recursion.

The tree is returned flat, in depth-first pre-order (each parent before its children, siblings by
start time), with each run's ``depth`` and its ``children`` ids. A flat tree has no nesting limit:
a 10,000-deep chain of agent steps serializes like any other list, where a nested JSON document
would hit the recursion limits of JSON encoders and browsers.

Robust to what real senders produce: a run whose parent never arrived is a root (``orphan``), a
parent id cycle is broken at the earliest run of the cycle, duplicate ids cannot occur (the store
keys runs by id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TreeNode:
    index: int  # position of the run in the input sequence
    depth: int
    children: list[str]
    orphan: bool  # has a parent_id, but that parent is not in the trace (or is in a cycle)


def _start_key(run: Mapping[str, Any]) -> tuple[int, int, str]:
    start = run.get("start_time")
    return (0 if start is None else 1, start or 0, str(run["id"]))


def build(runs: Sequence[Mapping[str, Any]]) -> list[TreeNode]:
    """Pre-order nodes for ``runs`` (each a mapping with ``id``, ``parent_id``, ``start_time``)."""
    order = sorted(range(len(runs)), key=lambda i: _start_key(runs[i]))
    by_id = {runs[i]["id"]: i for i in order}
    children: dict[int, list[int]] = {}
    roots: list[int] = []
    for i in order:  # in start order, so every child list comes out sorted
        parent = runs[i].get("parent_id")
        parent_index = by_id.get(parent) if parent is not None else None
        if parent_index is None or parent_index == i:
            roots.append(i)
        else:
            children.setdefault(parent_index, []).append(i)

    out: list[TreeNode] = []
    visited = [False] * len(runs)
    ids = [run["id"] for run in runs]

    def walk(root: int) -> None:
        stack = [(root, 0)]
        while stack:
            i, depth = stack.pop()
            if visited[i]:
                continue
            visited[i] = True
            kids = children.get(i)
            if kids:
                kids = [k for k in kids if not visited[k]]
                stack.extend((k, depth + 1) for k in reversed(kids))
            orphan = i == root and runs[i].get("parent_id") is not None
            out.append(TreeNode(i, depth, [ids[k] for k in kids] if kids else [], orphan))

    for r in roots:
        walk(r)
    if len(out) < len(runs):  # only runs in parent cycles are left: cut each at its first run
        for i in order:
            if not visited[i]:
                walk(i)
    return out
