"""Export a project's runs, or a filtered set, as OTLP/JSON Lines (see ``domain.otel_export``).

Import needs no service of its own: every exported line is an OTLP/JSON request, posted to
``/v1/traces`` (with the target project in ``x-goldloop-project``) like any exporter's.

With a filter, the runs that match are exported; with ``whole_traces`` every run of each trace
that has a match (so ``root and feedback.correctness < 0.5`` takes out the failing
conversations with all their steps). Paging is by keyset (seq, or trace id then pk), so an
export holds one page in memory however large the project or a trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

from goldloop.domain import filters
from goldloop.domain.otel.export import export_lines
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.run_queries import resolve_project
from goldloop.store import run_rows
from goldloop.store.run_filters import compile_filter

EXPORT_PAGE = 500
TRACE_PAGE = 100  # traces whose runs are read together in whole-trace exports

T = TypeVar("T")


def export_project(
    ctx: ServiceContext,
    who: Principal,
    project_ref: str,
    *,
    filter: str | None = None,
    whole_traces: bool = False,
    page: int = EXPORT_PAGE,
) -> Iterator[bytes]:
    """Check the project (id or name) exists (``NotFound``) and the filter parses
    (``InvalidInput``, with the position), then yield one line per page of runs."""
    project = resolve_project(ctx, who, project_ref)
    node = filters.parse(filter or "")
    condition = None
    if node is not None:
        condition = compile_filter(
            node, dialect=ctx.db.dialect, workspace_id=who.workspace_id, now=ctx.clock()
        )

    def read(fn: Callable[..., T], **kwargs: Any) -> T:
        """``fn(conn, workspace_id=..., project_id=..., **kwargs)`` on a read connection."""
        return ctx.db.read(
            partial(fn, workspace_id=who.workspace_id, project_id=project.id, **kwargs)
        )

    def matching_runs() -> Iterator[list[dict[str, Any]]]:
        after = 0
        while rows := read(
            run_rows.page_project_rows, after_seq=after, limit=page, condition=condition
        ):
            yield rows
            after = rows[-1]["seq"]

    def traces_with_a_match() -> Iterator[list[dict[str, Any]]]:
        after_trace = ""
        while ids := read(
            run_rows.page_trace_ids, condition=condition, after=after_trace, limit=TRACE_PAGE
        ):
            at: tuple[str, int] = ("", 0)
            while rows := read(run_rows.page_trace_rows, trace_ids=ids, after=at, limit=page):
                yield rows
                at = (rows[-1]["trace_id"], rows[-1]["pk"])
            after_trace = ids[-1]

    pages = traces_with_a_match() if whole_traces and condition is not None else matching_runs()
    return (export_lines(rows, project.name) for rows in pages)
