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


# The fields of a TreeNode as a plain tuple: 10,000 of them are made for a big trace.
Node = tuple[int, int, list[str], bool]


def build(runs: Sequence[Mapping[str, Any]]) -> list[TreeNode]:
    """Pre-order nodes for ``runs`` (each a mapping with ``id``, ``parent_id``, ``start_time``)."""
    nodes = build_columns(
        [run["id"] for run in runs],
        [run.get("parent_id") for run in runs],
        [run.get("start_time") for run in runs],
    )
    return [TreeNode(*node) for node in nodes]


def build_columns(
    ids: Sequence[str], parent_ids: Sequence[str | None], starts: Sequence[int | None]
) -> list[Node]:
    """Pre-order ``(index, depth, children, orphan)`` for the runs given as columns: run ``i``
    has id ``ids[i]``, parent ``parent_ids[i]`` and start time ``starts[i]``."""
    n = len(ids)
    keys = [(0, 0, i) if s is None else (1, s, i) for i, s in zip(ids, starts, strict=True)]
    order = sorted(range(n), key=keys.__getitem__)
    by_id = {ids[i]: i for i in order}
    children: list[list[int]] = [[] for _ in range(n)]
    child_ids: list[list[str]] = [[] for _ in range(n)]  # the nodes' ``children``, as they are
    roots: list[int] = []
    for i in order:  # in start order, so every child list comes out sorted
        parent = parent_ids[i]
        p = by_id.get(parent) if parent is not None else None
        if p is None or p == i:
            roots.append(i)
        else:
            children[p].append(i)
            child_ids[p].append(ids[i])

    out: list[Node] = []
    visited = [False] * n
    depths = [0] * n

    def walk(root: int, in_cycle: bool) -> None:
        first = len(out)
        depths[root] = 0
        stack = [root]
        while stack:
            i = stack.pop()
            if visited[i]:
                continue
            visited[i] = True
            kids = children[i]
            kid_ids = child_ids[i]
            if in_cycle and kids:  # leave out the run the cycle was cut at
                kids = [k for k in kids if not visited[k]]
                kid_ids = [ids[k] for k in kids]
            depth = depths[i] + 1
            for k in kids:
                depths[k] = depth
            stack.extend(reversed(kids))
            out.append((i, depth - 1, kid_ids, False))
        if parent_ids[root] is not None:
            node = out[first]
            out[first] = (node[0], node[1], node[2], True)

    for r in roots:  # no run reachable from a root is in a cycle: each is reached once
        walk(r, False)
    if len(out) < n:  # only runs in parent cycles are left: cut each at its first run
        for i in order:
            if not visited[i]:
                walk(i, True)
    return out
