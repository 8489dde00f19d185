"""The lean trace read path (``store.trace_rows`` + ``run_views.tree_views``) gives exactly the
views the general path gives (``run_view`` over SQLAlchemy rows), key order included, on SQLite
and PostgreSQL, for runs with every field set and for the odd documents senders produce."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from goldloop.domain.errors import NotFound
from goldloop.services import run_queries
from goldloop.services.context import ServiceContext
from goldloop.services.run_views import GCPaused, run_view
from goldloop.store import run_queries as run_store
from run_rows import T0, insert, principal, project_id, run_row

EVERYTHING = {
    "error": {"type": "ValueError", "message": "boom", "lines": [1, 2]},
    "inputs": {"messages": [{"role": "user", "content": "héllo ✓ \u2028"}], "n": 3},
    "outputs": {"answer": "a", "score": 0.30000000000000004, "big": 2**62},
    "model": "gpt-x",
    "provider": "openai",
    "input_tokens": 11,
    "output_tokens": 22,
    "total_tokens": 33,
    "cost": 1.2345678901234567e-05,
    "session_id": "s-1",
    "user_id": "u-1",
    "tags": ["prod", "v2"],
    "metadata": {"customer": "acme", "nested": {"k": [1, None, 2.5]}},
    "extra": {
        "usage": {"reasoning_tokens": 7, "total_tokens": 99},
        "events": [{"name": "retry", "time": 5}],
        "otel": {"attr": "x"},
    },
    "reference_example_id": "ex-1",
}

# id, parent, start (offset from T0; None: no start time), overrides
RUNS: list[tuple[str, str | None, int | None, dict[str, Any]]] = [
    ("root", None, 0, EVERYTHING),
    # bare documents (SQLite stores the numbers as numbers), and no tags/metadata/extra at all
    ("child-a", "root", None, {"inputs": 2.5, "outputs": 5, "error": "plain", "tags": None}),
    (
        "child-b",
        "root",
        10,
        {
            "metadata": None,
            "extra": {"usage": "not a dict", "events": "not a list"},
            "outputs": "text",
            "inputs": [1, 2],
            "cost": 0.1,
            "is_root": True,  # stored as given, even when it disagrees with parent_id
        },
    ),
    ("grandchild", "child-b", 20, {"extra": [1], "outputs": True, "inputs": -1, "error": 1.0}),
    ("orphan", "never-arrived", 30, {"extra": {"events": []}, "latency_us": None}),
    ("cy-1", "cy-2", 40, {}),
    ("cy-2", "cy-1", 41, {"extra": {}}),
]
SHAPE = [  # id, depth, children, orphan
    ("root", 0, ["child-a", "child-b"], False),
    ("child-a", 1, [], False),
    ("child-b", 1, ["grandchild"], False),
    ("grandchild", 2, [], False),
    ("orphan", 0, [], True),
    ("cy-1", 0, ["cy-2"], True),
    ("cy-2", 1, [], False),
]


@pytest.fixture
def stored(ctx: ServiceContext) -> Any:
    who = principal(ctx)
    pid = project_id(ctx, who)
    rows = []
    for rid, parent, start, overrides in RUNS:
        row = run_row(
            who.workspace_id,
            pid,
            rid,
            trace_id="T",
            parent_id=parent,
            start_time=None if start is None else T0 + start * 1000,
        )
        rows.append({**row, **overrides})
    # the same trace id elsewhere: another trace's runs must not leak in
    other = principal(ctx, "other-ws")
    rows.append(run_row(other.workspace_id, project_id(ctx, other), "intruder", trace_id="T"))
    rows.append(run_row(who.workspace_id, pid, "neighbour", trace_id="T2"))
    insert(ctx.db, rows)
    return who


def _general_view(ctx: ServiceContext, who: Any, run_id: str, light: bool) -> dict[str, Any]:
    row = ctx.db.read(lambda c: run_store.get(c, who.workspace_id, run_id))
    assert row is not None
    return run_view(row, light=light)


@pytest.mark.parametrize("light", [False, True])
def test_tree_views_equal_the_general_views(ctx: ServiceContext, stored: Any, light: bool) -> None:
    trace = run_queries.get_trace(ctx, stored, "T", light=light)
    got = trace["runs"]
    assert [(v["id"], v["depth"], v["children"], v["orphan"]) for v in got] == SHAPE
    for view in got:
        expected = _general_view(ctx, stored, view["id"], light)
        expected.update(depth=view["depth"], children=view["children"], orphan=view["orphan"])
        assert view == expected
        assert list(view) == list(expected)  # same key order: byte-identical JSON
        for key, value in expected.items():
            assert type(view[key]) is type(value), key
    assert trace["run_count"] == len(RUNS)
    assert trace["root_ids"] == ["root", "orphan", "cy-1"]
    assert trace["start_time"] == T0
    assert trace["end_time"] == max(v["end_time"] for v in got if v["end_time"] is not None)
    root = got[0]
    assert (
        root["usage"]
        == {
            "reasoning_tokens": 7,
            "total_tokens": 33,
            "input_tokens": 11,
            "output_tokens": 22,
        }
        or light
    )
    assert root["cost"] == EVERYTHING["cost"]


def test_missing_trace_and_the_collector_resumes(ctx: ServiceContext, stored: Any) -> None:
    assert gc.isenabled()
    with pytest.raises(NotFound):
        run_queries.get_trace(ctx, stored, "nope")
    assert gc.isenabled()
    run_queries.get_trace(ctx, stored, "T")
    assert gc.isenabled()


def test_gc_pauses_nest_and_keep_a_disabled_collector_off() -> None:
    assert gc.isenabled()
    with GCPaused():
        assert not gc.isenabled()
        with GCPaused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with GCPaused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
