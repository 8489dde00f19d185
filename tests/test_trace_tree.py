"""Traces as trees: the pure builder, and GET /api/v1/traces/{id} with 10,000 runs."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from goldloop.domain import trace_tree
from goldloop.domain.clock import to_iso
from goldloop.services import auth
from goldloop.services.run_views import iso
from run_rows import T0, post_runs, run_row


def _run(rid: str, parent: str | None, start: int | None) -> dict[str, Any]:
    return {"id": rid, "parent_id": parent, "start_time": start}


def _shape(runs: list[dict[str, Any]]) -> list[tuple[str, int, list[str], bool]]:
    return [(runs[n.index]["id"], n.depth, n.children, n.orphan) for n in trace_tree.build(runs)]


def test_pre_order_with_siblings_by_start_time() -> None:
    runs = [
        _run("c2", "root", 30),
        _run("root", None, 0),
        _run("g1", "c1", 25),
        _run("c1", "root", 20),
        _run("c0", "root", None),  # no start time: sorts first
    ]
    assert _shape(runs) == [
        ("root", 0, ["c0", "c1", "c2"], False),
        ("c0", 1, [], False),
        ("c1", 1, ["g1"], False),
        ("g1", 2, [], False),
        ("c2", 1, [], False),
    ]


def test_missing_parents_and_cycles_do_not_lose_runs() -> None:
    runs = [
        _run("a", "b", 1),  # a <-> b: a cycle
        _run("b", "a", 2),
        _run("x", "gone", 3),  # parent never arrived
        _run("y", "x", 4),
        _run("self", "self", 5),
    ]
    shape = _shape(runs)
    assert sorted(s[0] for s in shape) == ["a", "b", "self", "x", "y"]
    assert ("x", 0, ["y"], True) in shape
    assert ("y", 1, [], False) in shape
    assert ("self", 0, [], True) in shape
    assert shape.index(("a", 0, ["b"], True)) + 1 == shape.index(("b", 1, [], False))


def test_a_chain_deeper_than_any_recursion_limit() -> None:
    n = 50_000
    runs = [_run(f"r{i}", f"r{i - 1}" if i else None, i) for i in range(n)]
    nodes = trace_tree.build(list(reversed(runs)))
    assert [n.depth for n in nodes] == list(range(n))


def _reference_build(runs: list[dict[str, Any]]) -> list[tuple[str, int, list[str], bool]]:
    """The first implementation of the tree (before the columnar one), kept as an oracle."""

    def start_key(run: dict[str, Any]) -> tuple[int, int, str]:
        start = run.get("start_time")
        return (0 if start is None else 1, start or 0, str(run["id"]))

    order = sorted(range(len(runs)), key=lambda i: start_key(runs[i]))
    by_id = {runs[i]["id"]: i for i in order}
    children: dict[int, list[int]] = {}
    roots: list[int] = []
    for i in order:
        parent = runs[i].get("parent_id")
        parent_index = by_id.get(parent) if parent is not None else None
        if parent_index is None or parent_index == i:
            roots.append(i)
        else:
            children.setdefault(parent_index, []).append(i)
    out: list[tuple[str, int, list[str], bool]] = []
    visited = [False] * len(runs)

    def walk(root: int) -> None:
        stack = [(root, 0)]
        while stack:
            i, depth = stack.pop()
            if visited[i]:
                continue
            visited[i] = True
            kids = [k for k in children.get(i, []) if not visited[k]]
            stack.extend((k, depth + 1) for k in reversed(kids))
            orphan = i == root and runs[i].get("parent_id") is not None
            out.append((runs[i]["id"], depth, [runs[k]["id"] for k in kids], orphan))

    for r in roots:
        walk(r)
    for i in order:
        if not visited[i]:
            walk(i)
    return out


@given(
    st.lists(
        st.tuples(
            st.integers(0, 30),  # parent: an index (maybe itself, maybe absent), or none
            st.one_of(st.none(), st.integers(0, 5)),  # start times collide often
        ),
        max_size=40,
    )
)
def test_tree_matches_the_reference_on_any_parent_links(
    links: list[tuple[int, int | None]],
) -> None:
    runs = [
        _run(f"r{i}", None if parent == 0 else f"r{parent - 1}", start)
        for i, (parent, start) in enumerate(links)
    ]
    assert _shape(runs) == _reference_build(runs)


async def test_trace_endpoint_with_10000_runs(app: FastAPI, client: httpx.AsyncClient) -> None:
    ws = auth.workspace_by_name(app.state.ctx, auth.DEFAULT_WORKSPACE).id
    rows = [run_row(ws, "deep", "t-root", trace_id="T", start_time=T0)]
    # 100 agent steps, each a chain of 99 nested calls: wide and 100 deep
    for step in range(100):
        parent = "t-root"
        for depth in range(99):
            rid = f"s{step}-{depth}"
            rows.append(
                run_row(ws, "deep", rid, trace_id="T", parent_id=parent, start_time=T0 + step)
            )
            parent = rid
    await post_runs(client, "deep", rows)
    r = await client.get("/api/v1/traces/T", params={"select": "light"})
    assert r.status_code == 200
    body = r.json()
    assert body["run_count"] == 9901
    assert body["root_ids"] == ["t-root"]
    runs = body["runs"]
    assert runs[0]["id"] == "t-root"
    assert runs[0]["children"] == [f"s{i}-0" for i in range(100)]
    assert [x["id"] for x in runs[1:100]] == [f"s0-{d}" for d in range(99)]
    assert max(x["depth"] for x in runs) == 99
    assert "inputs" not in runs[5]
    full = (await client.get("/api/v1/traces/T")).json()
    assert full["runs"][3]["inputs"] == {"question": "q"}
    assert (await client.get("/api/v1/traces/nope")).status_code == 404


@given(st.integers(min_value=0, max_value=4_102_444_800_000_000))  # 1970-2100
def test_fast_iso_matches_to_iso(us: int) -> None:
    assert iso(us) == to_iso(us)
