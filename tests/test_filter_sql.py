"""The compiled filters on real SQLite and PostgreSQL agree with the reference evaluator."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filter_reference import evaluate
from goldloop.domain import filters as f
from goldloop.services.context import ServiceContext
from goldloop.store.run_filters import compile_filter
from goldloop.store.schema import feedback, runs
from run_rows import T0, feedback_row, insert, principal, project_id, run_row

NOW = T0 + 3_600_000_000

WORDS = ["llm", "acme", "ACME", "gpt-4o", "gpt", "50%", "a_b", 'say "hi"', "back\\slash", "é", "x"]


def _corpus(ws: str, pid: str) -> list[dict[str, Any]]:
    h = 3_600_000_000
    specs: list[dict[str, Any]] = [
        {
            "kind": "llm",
            "model": "gpt-4o",
            "provider": "openai",
            "latency_us": 2_500_000,
            "total_tokens": 1200,
            "input_tokens": 1000,
            "output_tokens": 200,
            "cost": 0.02,
            "tags": ["prod", "v2"],
            "metadata": {"customer": "acme", "tier": 3, "beta": True},
            "session_id": "s1",
            "user_id": "u1",
            "inputs": {"q": 'say "hi" to ACME'},
        },
        {
            "kind": "llm",
            "model": "gpt-4o-mini",
            "latency_us": 500_000,
            "total_tokens": 80,
            "cost": 0.0001,
            "tags": ["dev"],
            "metadata": {"customer": "Acme Corp", "tier": 3.5},
            "outputs": {"text": "50% done_now"},
        },
        {
            "kind": "tool",
            "name": "search",
            "status": "error",
            "latency_us": None,
            "error": {"type": "TimeoutError", "message": "upstream timed out"},
            "metadata": {"customer": None, "nested": {"k": "v", "n": 7}},
            "outputs": None,
        },
        {
            "kind": "chain",
            "name": "answer",
            "start_time": T0 - 2 * h,
            "tags": None,
            "metadata": {"tier": "3", "beta": False},
            "inputs": None,
            "session_id": "s2",
        },
        {
            "kind": "retriever",
            "name": "fetch_docs",
            "start_time": None,
            "latency_us": None,
            "status": "pending",
            "tags": ["prod"],
            "metadata": {"list": [1, 2]},
            "inputs": {"path": "back\\slash é"},
        },
        {
            "kind": "agent",
            "name": "Planner",
            "model": "claude",
            "cost": 1.5,
            "total_tokens": 99999,
            "metadata": {"customer": "globex", "score": -1},
            "error": "plain string error boom",
            "status": "error",
            "tags": ["a_b", "50%"],
        },
    ]
    rows = []
    for i, spec in enumerate(specs):
        rows.append(run_row(ws, pid, f"r{i}", start_time=spec.pop("start_time", T0 + i), **spec))
    rows.append(run_row(ws, pid, "c1", trace_id="r0", parent_id="r0", kind="llm", model="gpt"))
    return rows


def _fb(ws: str, fid: str, run_id: str | None, key: str, **kw: Any) -> dict[str, Any]:
    row = feedback_row(ws, fid, key, run_id=run_id, **kw)
    row["has_correction"] = row["correction"] is not None
    return row


def _feedback(ws: str, other_ws: str) -> list[dict[str, Any]]:
    fix = {"answer": "the right one"}
    return [
        _fb(
            ws,
            "f1",
            "r0",
            "correctness",
            score=0.0,
            correction=fix,
            source="human",
            value="wrong",
            comment="Bad answer, 50% off",
        ),
        _fb(ws, "f2", "r0", "helpful", score=1.0, score_is_bool=True),
        _fb(ws, "f3", None, "correctness", trace_id="r1", score=1.0, source="model", value=3),
        _fb(ws, "f4", "c1", "tone", value="rude", source="human"),
        _fb(ws, "f5", "ghost", "correctness", score=0.0),  # its run never arrived
        _fb(ws, "f6", None, "trace_q", trace_id="r0", score=0.5),  # on trace r0: its root
        _fb(ws, "f7", "r2", "correctness", score=0.7, source="online-evaluator"),
        _fb(other_ws, "f8", "r5", "correctness", score=0.1, correction=fix),  # another tenant
    ]


@pytest.fixture
def corpus(ctx: ServiceContext) -> tuple[str, str, list[dict[str, Any]]]:
    who = principal(ctx, "filters")
    pid = project_id(ctx, who, "proj-a")
    other = principal(ctx, "elsewhere")  # must never appear in results
    insert(ctx.db, [run_row(other.workspace_id, project_id(ctx, other, "proj-a"), "r5")])
    rows = _corpus(who.workspace_id, pid)
    insert(ctx.db, rows)
    fbs = _feedback(who.workspace_id, other.workspace_id)
    ctx.db.write(lambda c: c.execute(sa.insert(feedback), fbs))
    FEEDBACK[:] = fbs
    return who.workspace_id, pid, rows


FEEDBACK: list[dict[str, Any]] = []  # the corpus' feedback, for the reference evaluator


def _sql_ids(ctx: ServiceContext, ws: str, node: f.Node | None) -> set[str]:
    cond = compile_filter(node, dialect=ctx.db.dialect, workspace_id=ws, now=NOW)
    query = sa.select(runs.c.id).where(runs.c.workspace_id == ws, cond)
    return set(ctx.db.read(lambda c: c.execute(query).scalars().all()))


def _expected(rows: list[dict[str, Any]], node: f.Node) -> set[str]:
    return {r["id"] for r in rows if evaluate(node, r, "proj-a", NOW, FEEDBACK)}


EXAMPLES = [
    ('kind = "llm"', {"r0", "r1", "c1"}),
    ('kind in ("tool", "agent")', {"r2", "r5"}),
    ("latency > 2s", {"r0"}),
    ("latency <= 500ms", {"r1"}),
    ("not latency > 1s", {"r1", "r2", "r3", "r4", "r5", "c1"}),
    ('tag = "prod"', {"r0", "r4"}),
    ('tag != "prod"', {"r1", "r2", "r3", "r5", "c1"}),
    ("tags", {"r0", "r1", "r4", "r5"}),
    ('tag = "50%"', {"r5"}),
    ('metadata.customer = "acme"', {"r0"}),
    ('metadata.customer ~ "acme"', {"r0", "r1"}),
    ("metadata.customer", {"r0", "r1", "r2", "r5"}),
    ("metadata.customer = null", {"r2", "r3", "r4", "c1"}),
    ("metadata.tier = 3", {"r0"}),
    ("metadata.tier >= 3", {"r0", "r1"}),
    ('metadata.tier = "3"', {"r3"}),
    ("metadata.beta = true", {"r0"}),
    ("metadata.beta = false", {"r3"}),
    ("metadata.nested.n > 5", {"r2"}),
    ('metadata.nested.k = "v"', {"r2"}),
    ("metadata.score < 0", {"r5"}),
    ("error", {"r2", "r5"}),
    ('error ~ "timed out"', {"r2"}),
    ('error ~ "BOOM"', {"r5"}),
    ('status = "pending"', {"r4"}),
    ('model ~ "gpt"', {"r0", "r1", "c1"}),
    ('model != "gpt-4o"', {"r1", "r2", "r3", "r4", "r5", "c1"}),
    ("model = null", {"r2", "r3", "r4"}),
    ('name ~ "plan"', {"r5"}),
    ("root", {"r0", "r1", "r2", "r3", "r4", "r5"}),
    ("not root", {"c1"}),
    ('trace = "r0"', {"r0", "c1"}),
    ('parent = "r0"', {"c1"}),
    ('session = "s1" or user = "u1"', {"r0"}),
    ("tokens >= 1200 and cost < 1", {"r0"}),
    ("input_tokens = 1000", {"r0"}),
    ("cost > 1", {"r5"}),
    ("start_time < 1h ago", {"r3"}),
    ('start_time >= "2025-11-26T09:40:00Z"', {"r0", "r1", "r2", "r5", "c1"}),
    ("end_time = null", {"r2", "r4"}),
    ('text ~ "say \\"hi\\""', {"r0"}),
    ('inputs ~ "acme"', {"r0"}),
    ('outputs ~ "50%"', {"r1"}),
    ('outputs ~ "e_n"', {"r1"}),
    ('outputs ~ "e%n"', set()),
    ('inputs ~ "back\\\\slash é"', {"r4"}),
    ('project = "proj-a" and kind = "chain"', {"r3"}),
    ('project != "proj-a"', set()),
    ('(kind = "llm" or kind = "agent") and not error', {"r0", "r1", "c1"}),
    ("feedback", {"r0", "r1", "r2", "c1"}),
    ("not feedback", {"r3", "r4", "r5"}),
    ("feedback.correctness < 0.5", {"r0"}),
    ("feedback.correctness >= 0.5", {"r1", "r2"}),
    ("feedback.correctness != 1", {"r0", "r2", "r3", "r4", "r5", "c1"}),
    ("feedback.correctness in (0, 0.7)", {"r0", "r2"}),
    ("feedback.correctness", {"r0", "r1", "r2"}),
    ("feedback.helpful = true", {"r0"}),
    ("feedback.helpful = false", set()),
    ("has_correction", {"r0"}),
    ("has_correction = false", {"r1", "r2", "r3", "r4", "r5", "c1"}),
    ("feedback.correctness.has_correction", {"r0"}),
    ('feedback.correctness.source = "human"', {"r0"}),
    ('feedback.correctness.source in ("model", "online-evaluator")', {"r1", "r2"}),
    ('feedback.tone.value = "rude"', {"c1"}),
    ('feedback.tone.value != "rude"', {"r0", "r1", "r2", "r3", "r4", "r5"}),
    ("feedback.correctness.value = 3", {"r1"}),
    ('feedback.correctness.value ~ "WRO"', {"r0"}),
    ('feedback.correctness.comment ~ "50%"', {"r0"}),
    ("feedback.trace_q > 0.1", {"r0"}),
    ("feedback.tone.score", set()),
    ("feedback.tone", {"c1"}),
    ('kind = "llm" and feedback.correctness < 0.5', {"r0"}),
]


@pytest.mark.parametrize(("text", "expected"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_examples(
    ctx: ServiceContext,
    corpus: tuple[str, str, list[dict[str, Any]]],
    text: str,
    expected: set[str],
) -> None:
    ws, _, rows = corpus
    node = f.parse(text)
    assert node is not None
    assert _expected(rows, node) == expected, "the reference evaluator disagrees with the example"
    assert _sql_ids(ctx, ws, node) == expected


def test_empty_filter_is_everything_in_the_workspace(
    ctx: ServiceContext, corpus: tuple[str, str, list[dict[str, Any]]]
) -> None:
    ws, _, rows = corpus
    assert _sql_ids(ctx, ws, f.parse("  ")) == {r["id"] for r in rows}


# -- property: any filter the grammar produces gives the same answer in SQL and in Python --------

_STR = st.sampled_from(WORDS) | st.text(alphabet='abcgptACME_%é"\\', min_size=1, max_size=3)
_NUM = st.integers(-2, 100_000) | st.sampled_from([0.02, 3.5, 1.5, 0.0001])


def _field(name: str, *path: str) -> f.Field:
    return f.Field(name, path)


def _atoms() -> st.SearchStrategy[f.Node]:
    string_fields = ["name", "model", "provider", "session_id", "user_id", "trace_id", "id"]
    str_cmp = st.builds(
        lambda n, op, v: f.Compare(_field(n), op, f.Str(v)),
        st.sampled_from(string_fields),
        st.sampled_from(["=", "!=", "~", "!~"]),
        _STR,
    )
    nulls = st.builds(
        lambda n, op: f.Compare(_field(n), op, f.Null()),
        st.sampled_from(["model", "cost", "latency", "end_time", "start_time"]),
        st.sampled_from(["=", "!="]),
    )
    enums = st.builds(
        lambda n, vs: f.In(_field(n), tuple(f.Str(v) for v in vs)),
        st.just("kind"),
        st.lists(st.sampled_from(sorted(f.RUN_KINDS)), min_size=1, max_size=3),
    )
    ops = st.sampled_from(f.COMPARE_OPS)
    numbers = st.builds(
        lambda n, op, v: f.Compare(_field(n), op, f.Num(v)),
        st.sampled_from(["tokens", "input_tokens", "cost"]),
        ops,
        _NUM,
    )
    latency = st.builds(
        lambda op, us: f.Compare(_field("latency"), op, f.Duration(us)),
        ops,
        st.sampled_from([0, 500_000, 1_000_000, 2_500_000]),
    )
    times = st.builds(
        lambda op, v: f.Compare(_field("start_time"), op, v),
        ops,
        st.sampled_from([f.Time(T0), f.Time(T0 + 3), f.Ago(3_600_000_000), f.Ago(1)]),
    )
    tags = st.builds(
        lambda op, v: f.Compare(_field("tags"), op, f.Str(v)),
        st.sampled_from(["=", "!="]),
        st.sampled_from(["prod", "dev", "a_b", "50%", "x"]),
    )
    meta_values = st.one_of(
        st.sampled_from(WORDS).map(f.Str),
        _NUM.map(f.Num),
        st.booleans().map(f.Bool),
        st.just(f.Null()),
    )
    meta_path = st.sampled_from(
        [("customer",), ("tier",), ("beta",), ("nested", "n"), ("nested", "k"), ("score",)]
    )
    meta_eq = st.builds(
        lambda p, op, v: f.Compare(_field("metadata", *p), op, v),
        meta_path,
        st.sampled_from(["=", "!="]),
        meta_values,
    )
    meta_num = st.builds(
        lambda p, op, v: f.Compare(_field("metadata", *p), op, f.Num(v)), meta_path, ops, _NUM
    )
    meta_text = st.builds(
        lambda p, op, v: f.Compare(_field("metadata", *p), op, f.Str(v)),
        meta_path,
        st.sampled_from(["~", "!~"]),
        _STR,
    )
    text = st.builds(
        lambda n, op, v: f.Compare(_field(n), op, f.Str(v)),
        st.sampled_from(["inputs", "outputs", "text", "error"]),
        st.sampled_from(["~", "!~"]),
        st.sampled_from(WORDS) | st.text(alphabet='abqACME_%é"\\', min_size=1, max_size=3),
    )
    truthy = st.sampled_from(
        ["root", "error", "tags", "model", "cost", "inputs", "outputs", "metadata.customer"]
    ).map(lambda n: f.Truthy(_field(*n.split("."))))
    project = st.builds(
        lambda op, v: f.Compare(_field("project"), op, f.Str(v)),
        st.sampled_from(["=", "!=", "~"]),
        st.sampled_from(["proj-a", "proj", "other"]),
    )
    return st.one_of(
        str_cmp,
        nulls,
        enums,
        numbers,
        latency,
        times,
        tags,
        meta_eq,
        meta_num,
        meta_text,
        text,
        truthy,
        project,
    )


_NODES = st.recursive(
    _atoms(),
    lambda inner: st.one_of(
        inner.map(f.Not),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: f.And(tuple(xs))),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: f.Or(tuple(xs))),
    ),
    max_leaves=6,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(node=_NODES)
def test_sql_agrees_with_the_reference(
    ctx: ServiceContext, corpus: tuple[str, str, list[dict[str, Any]]], node: f.Node
) -> None:
    ws, _, rows = corpus
    assert _sql_ids(ctx, ws, node) == _expected(rows, node), f.to_text(node)
    assert f.parse(f.to_text(node)) == node
