"""Deleting traces (by id or by run filter) and erasing one person's data.

Both first plan (read): which traces go. A preview (``dry_run``) counts what the plan removes;
a deletion removes it in transactions of ``TRACES_PER_WRITE`` traces, so a large deletion never
holds the write lock for long, and returns what was actually removed. Deleting a trace removes
all its runs and the feedback on them (or on the trace).

Erasure also removes the dataset examples made from the erased runs from EVERY version of their
datasets (an older version no longer returns them), and the traces of experiment runs made from
those examples; it records the counts, never the content or the person's identifier, in the
audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain import filters
from goldloop.domain.errors import Forbidden, InvalidInput
from goldloop.domain.filter_ast import Bool as BoolValue
from goldloop.domain.filter_ast import Compare, Field, Node, Num, Str
from goldloop.services import attachments, audit
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.run_queries import resolve_project
from goldloop.store import erasure as store
from goldloop.store.erasure import Removed
from goldloop.store.run_filters import compile_filter

TRACES_PER_WRITE = 200
PLAN_PAGE = 5000
MAX_TRACE_IDS = 10_000


@dataclass(frozen=True)
class Outcome:
    dry_run: bool
    removed: Removed

    def view(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, **self.removed.counts()}


def _admin(who: Principal, what: str) -> None:
    if not who.is_admin:
        raise Forbidden(f"{what} needs an admin API key (goldloop keys create --role admin)")


def _plan_filter(
    ctx: ServiceContext, who: Principal, node: Node, project_id: str | None
) -> list[str]:
    condition = compile_filter(
        node, dialect=ctx.db.dialect, workspace_id=who.workspace_id, now=ctx.clock()
    )
    traces: dict[str, None] = {}
    after = 0
    while True:
        page, nxt = ctx.db.read(
            partial(
                store.matching_traces,
                workspace_id=who.workspace_id,
                condition=condition,
                project_id=project_id,
                after_pk=after,
                limit=PLAN_PAGE,
            )
        )
        traces.update(dict.fromkeys(page))
        if nxt is None:
            return list(traces)
        after = nxt


def _count(ctx: ServiceContext, who: Principal, trace_ids: list[str]) -> Removed:
    ws = who.workspace_id
    total = Removed()
    for chunk in store.chunks(trace_ids, TRACES_PER_WRITE):
        total.add(ctx.db.read(partial(store.count_traces, workspace_id=ws, trace_ids=chunk)))
    return total


def _delete(ctx: ServiceContext, who: Principal, trace_ids: list[str]) -> Removed:
    ws = who.workspace_id
    total = Removed()
    for chunk in store.chunks(trace_ids, TRACES_PER_WRITE):
        total.add(ctx.db.write(partial(store.delete_traces, workspace_id=ws, trace_ids=chunk)))
    return total


def delete_traces(
    ctx: ServiceContext,
    who: Principal,
    *,
    trace_ids: list[str] | None = None,
    filter: str | None = None,
    project: str | None = None,
    dry_run: bool = False,
) -> Outcome:
    """Delete the given traces, or every trace with a run matching ``filter`` (within
    ``project`` when given). ``dry_run``: only count."""
    _admin(who, "deleting traces")
    if bool(trace_ids) == bool(filter and filter.strip()):
        raise InvalidInput(
            "give either trace_ids or a filter (not both, not neither); to delete a whole "
            "project, delete the project",
            details={"field": "filter" if filter else "trace_ids"},
        )
    if trace_ids:
        if len(trace_ids) > MAX_TRACE_IDS:
            raise InvalidInput(
                f"at most {MAX_TRACE_IDS} trace ids per request", details={"field": "trace_ids"}
            )
        ids = list(dict.fromkeys(trace_ids))
        planned = ctx.db.read(lambda c: store.existing_traces(c, who.workspace_id, ids))
        by = "trace_ids"
    else:
        node = filters.parse(filter or "")
        assert node is not None
        project_id = resolve_project(ctx, who, project).id if project else None
        planned = _plan_filter(ctx, who, node, project_id)
        by = "filter"
    if dry_run:
        return Outcome(True, _count(ctx, who, planned))
    removed = _delete(ctx, who, planned)
    attachments.sweep(ctx)  # the files of the deleted runs' attachments
    details: dict[str, Any] = {"by": by, **removed.counts()}
    if project:
        details["project"] = project
    audit.record(ctx, who, "traces.deleted", target_type="traces", details=details)
    return Outcome(False, removed)


# --- erasure ---------------------------------------------------------------------------------


def selector(
    user_id: str | None, metadata_key: str | None, metadata_value: Any, filter: str | None
) -> tuple[Node, str]:
    """The filter that finds a person's runs, and what kind of selector it was."""
    given = [x is not None for x in (user_id, metadata_key, filter)]
    if sum(given) != 1:
        raise InvalidInput(
            "give exactly one of user_id, metadata (key and value) or filter",
            details={"field": "user_id"},
        )
    if user_id is not None:
        if not user_id.strip():
            raise InvalidInput("user_id must not be empty", details={"field": "user_id"})
        return Compare(Field("user_id"), "=", Str(user_id)), "user_id"
    if metadata_key is not None:
        if not metadata_key:
            raise InvalidInput("metadata key must not be empty", details={"field": "metadata"})
        value: Str | Num | BoolValue
        if isinstance(metadata_value, bool):
            value = BoolValue(metadata_value)
        elif isinstance(metadata_value, int | float):
            value = Num(metadata_value)
        elif isinstance(metadata_value, str):
            value = Str(metadata_value)
        else:
            raise InvalidInput(
                "metadata value must be a string, number or boolean",
                details={"field": "metadata"},
            )
        return Compare(Field("metadata", (metadata_key,)), "=", value), "metadata"
    node = filters.parse(filter or "")
    if node is None:
        raise InvalidInput("the filter must not be empty", details={"field": "filter"})
    return node, "filter"


@dataclass(frozen=True)
class ErasurePlan:
    trace_ids: list[str]
    examples: set[tuple[str, str]]


def _plan_erasure(ctx: ServiceContext, who: Principal, node: Node) -> ErasurePlan:
    ws = who.workspace_id
    traces = _plan_filter(ctx, who, node, None)

    def derived(conn: Connection) -> ErasurePlan:
        run_ids = store.run_ids_of(conn, ws, traces)
        keys = store.examples_from_runs(conn, ws, run_ids)
        # experiment runs made from those examples carry the person's inputs too
        experiment = store.traces_using_examples(conn, ws, sorted({e for _, e in keys}))
        more = [t for t in experiment if t not in set(traces)]
        if more:
            keys |= store.examples_from_runs(conn, ws, store.run_ids_of(conn, ws, more))
        return ErasurePlan(traces + more, keys)

    return ctx.db.read(derived)


def erase(
    ctx: ServiceContext,
    who: Principal,
    *,
    user_id: str | None = None,
    metadata_key: str | None = None,
    metadata_value: Any = None,
    filter: str | None = None,
    dry_run: bool = False,
) -> Outcome:
    """Erase the runs a selector finds (whole traces), the feedback on them, the examples made
    from them in every version, and experiment runs made from those examples."""
    _admin(who, "erasure")
    node, by = selector(user_id, metadata_key, metadata_value, filter)
    plan = _plan_erasure(ctx, who, node)
    ws = who.workspace_id
    if dry_run:
        removed = _count(ctx, who, plan.trace_ids)
        removed.examples = len(plan.examples)
        removed.example_rows = ctx.db.read(lambda c: store.count_examples(c, plan.examples))
        return Outcome(True, removed)
    total = Removed()
    keys: set[tuple[str, str]] = set()
    for chunk in store.chunks(plan.trace_ids, TRACES_PER_WRITE):

        def write(
            conn: Connection, chunk: list[str] = chunk
        ) -> tuple[Removed, int, set[tuple[str, str]]]:
            found = store.examples_from_runs(conn, ws, store.run_ids_of(conn, ws, chunk))
            rows = store.delete_examples(conn, found - keys)
            return store.delete_traces(conn, ws, chunk), rows, found

        removed, rows, found = ctx.db.write(write)
        keys.update(found)
        total.add(removed)
        total.example_rows += rows
    rest = plan.examples - keys
    if rest:
        total.example_rows += ctx.db.write(lambda c: store.delete_examples(c, rest))
    total.examples = len(keys | plan.examples)
    attachments.sweep(ctx)  # the files attached to the erased runs and examples
    # counts and the kind of selector only: the identifier itself is personal data
    audit.record(ctx, who, "erasure", target_type=by, details={"by": by, **total.counts()})
    return Outcome(False, total)
