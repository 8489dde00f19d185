"""LangSmith feedback -> Goldloop feedback (``services.feedback``); nothing is stored twice.

What Goldloop has no column for (the experiment ``session_id``, ``feedback_config``, the
evaluator run in ``feedback_source.metadata.__run``, a non-scalar ``value``...) is kept in
``source_info["langsmith"]`` and given back on reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from goldloop.domain.errors import InvalidInput
from goldloop.services import feedback
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.langsmith import feedback_configs
from goldloop.store.feedback import FeedbackFilter, FeedbackRow

# LangSmith feedback source types -> Goldloop sources.
SOURCES = {"api": "api", "model": "model", "app": "app", "human": "human"}
KEPT = (
    "session_id",
    "feedback_config",
    "extra",
    "error",
    "start_time",
    "comparative_experiment_id",
    "feedback_group_id",
)
MAX_PAGE = 100


def _str_id(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    return None if value is None else str(value)


def source_of(raw: Any) -> str:
    """``model``, ``FeedbackSourceType.MODEL`` (an enum repr in a query string) -> ``model``."""
    text = str(raw).rsplit(".", 1)[-1].strip().lower()
    return SOURCES.get(text, "api")


def to_new(body: Mapping[str, Any]) -> feedback.NewFeedback:
    key = body.get("key")
    if not isinstance(key, str) or not key:
        raise InvalidInput("feedback needs a 'key'", details={"field": "key"})
    raw_source = body.get("feedback_source")
    source: dict[str, Any] = raw_source if isinstance(raw_source, dict) else {}
    langsmith: dict[str, Any] = {k: body[k] for k in KEPT if body.get(k) is not None}
    if source:
        langsmith["feedback_source"] = source
    value = body.get("value")
    if isinstance(value, dict | list):
        langsmith["value"] = value
        value = None
    info: dict[str, Any] = {"langsmith": langsmith} if langsmith else {}
    evaluator_run = ((source.get("metadata") or {}).get("__run") or {}).get("run_id")
    if evaluator_run is not None:
        info["evaluator_run_id"] = str(evaluator_run)
    run_id = _str_id(body, "run_id")
    trace_id = _str_id(body, "trace_id")
    # No run and no trace: experiment-level feedback (a summary evaluator's) on the session.
    project_id = _str_id(body, "session_id") if run_id is None and trace_id is None else None
    return feedback.NewFeedback(
        project_id=project_id,
        key=key,
        run_id=run_id or trace_id,
        trace_id=trace_id,
        score=body.get("score"),
        value=value,
        comment=body.get("comment"),
        correction=body.get("correction"),
        source=source_of(source.get("type", "api")),
        source_info=info or None,
        feedback_id=_str_id(body, "id"),
    )


def create(ctx: ServiceContext, who: Principal, body: Mapping[str, Any]) -> FeedbackRow:
    """Create feedback; its ``feedback_config`` declares the key first when an admin key sends
    it for a key not declared yet (as LangSmith creates a config on first use)."""
    new = to_new(body)
    feedback_configs.declare_on_first_use(ctx, who, new.key, body.get("feedback_config"))
    return feedback.create(ctx, who, new).feedback


def create_many(ctx: ServiceContext, who: Principal, bodies: Sequence[Mapping[str, Any]]) -> None:
    for body in bodies:
        create(ctx, who, body)


def get(ctx: ServiceContext, who: Principal, feedback_id: str) -> FeedbackRow:
    return feedback.get(ctx, who, feedback_id)


def update(
    ctx: ServiceContext, who: Principal, feedback_id: str, body: Mapping[str, Any]
) -> FeedbackRow:
    """``PATCH /feedback/{id}``: only the keys sent change, and here null means clear."""
    changes = {k: body[k] for k in ("score", "value", "comment", "correction") if k in body}
    if isinstance(changes.get("value"), dict | list):
        raise InvalidInput("value must be a string, number or boolean", details={"field": "value"})
    return feedback.update(ctx, who, feedback_id, changes)


def delete(ctx: ServiceContext, who: Principal, feedback_id: str) -> None:
    feedback.delete(ctx, who, feedback_id)


def _all(
    ctx: ServiceContext, who: Principal, where: FeedbackFilter, stop: int
) -> list[FeedbackRow]:
    rows: list[FeedbackRow] = []
    cursor: str | None = None
    while len(rows) < stop:
        page = feedback.list_feedback(ctx, who, where, limit=1000, cursor=cursor)
        rows += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    return rows


def list_feedback(
    ctx: ServiceContext,
    who: Principal,
    *,
    run_ids: list[str],
    keys: list[str],
    sources: list[str],
    offset: int,
    limit: int,
    sessions: list[str] | None = None,
) -> list[FeedbackRow]:
    """Newest first, offset-paged (the SDK stops at a page shorter than ``limit``).
    ``sessions``: all feedback of these sessions (projects): their own (experiment-level) and
    the feedback on their runs and traces."""
    limit = max(1, min(limit, MAX_PAGE))
    stop = offset + limit
    wanted_sources = [source_of(s) for s in sources]
    base = FeedbackFilter(
        key=keys[0] if len(keys) == 1 else None,
        source=wanted_sources[0] if len(wanted_sources) == 1 else None,
    )
    if run_ids or sessions:
        seen: dict[str, FeedbackRow] = {}
        filters = [
            FeedbackFilter(run_id=r, key=base.key, source=base.source)
            for r in dict.fromkeys(run_ids)
        ]
        filters += [
            FeedbackFilter(session_id=s, key=base.key, source=base.source)
            for s in dict.fromkeys(sessions or [])
        ]
        for where in filters:
            for row in _all(ctx, who, where, stop):
                seen[row.id] = row
        rows = sorted(seen.values(), key=lambda r: (r.created_at, r.id), reverse=True)
    else:
        rows = _all(ctx, who, base, stop if not (keys or sources) else 10**9)
    if keys:
        rows = [r for r in rows if r.key in keys]
    if wanted_sources:
        rows = [r for r in rows if r.source in wanted_sources]
    return rows[offset:stop]
