"""Feedback: create (idempotent with a client id), get, update, delete, list, statistics; and
the workspace's declared feedback keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain import feedback as rules
from goldloop.domain.errors import Conflict, Forbidden, GoldloopError, InvalidInput, NotFound
from goldloop.domain.feedback import KeySpec
from goldloop.domain.safe_values import scrub
from goldloop.services import redaction
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import feedback as store
from goldloop.store import feedback_history as history_store
from goldloop.store import projects as project_store
from goldloop.store.feedback import FeedbackFilter, FeedbackRow, StatsBucket
from goldloop.store.feedback_history import HistoryRow

MAX_LIMIT = 1000
MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class NewFeedback:
    """What a caller sends to create feedback (field names as in the API)."""

    key: str
    run_id: str | None = None
    trace_id: str | None = None
    score: Any = None
    value: Any = None
    comment: str | None = None
    correction: Any = None
    source: str = "api"
    source_info: dict[str, Any] | None = None
    feedback_id: str | None = None
    project_id: str | None = None  # experiment-level feedback: a project instead of a run

    def as_request(self) -> dict[str, Any]:
        project = {"project_id": self.project_id} if self.project_id is not None else {}
        return {
            **project,
            "run_id": self.run_id,
            "trace_id": self.trace_id,
            "key": self.key,
            "score": self.score,
            "value": self.value,
            "comment": self.comment,
            "correction": self.correction,
            "source": self.source,
            "source_info": self.source_info,
        }


@dataclass(frozen=True)
class Created:
    feedback: FeedbackRow
    created: bool  # False when an identical earlier request already created it


@dataclass(frozen=True)
class FeedbackPage:
    items: list[FeedbackRow]
    next_cursor: str | None


@dataclass(frozen=True)
class _Checked:
    """A create request after validation, scrubbing and redaction: what the write stores."""

    new: NewFeedback
    score: float | None
    value: Any
    digest: str
    feedback_id: str


def _check_new(ctx: ServiceContext, who: Principal, new: NewFeedback) -> _Checked:
    if new.run_id is None and new.trace_id is None and new.project_id is None:
        raise InvalidInput(
            "feedback needs a run_id or a trace_id (or both), or the project_id of an experiment",
            details={"field": "run_id"},
        )
    if new.project_id is not None and (new.run_id is not None or new.trace_id is not None):
        raise InvalidInput(
            "feedback is on a run or trace, or on a whole experiment (project_id), not both",
            details={"field": "project_id"},
        )
    rules.check_id("project_id", new.project_id)
    rules.check_id("run_id", new.run_id)
    rules.check_id("trace_id", new.trace_id)
    rules.check_id("feedback_id", new.feedback_id)
    rules.check_key(new.key)
    rules.check_source(new.source)
    score = rules.check_score(new.score)
    texts = redaction.redact_values(
        ctx, who.workspace_id, {"comment": scrub(new.comment), "correction": scrub(new.correction)}
    )
    new = replace(
        new,
        value=scrub(new.value),
        comment=texts["comment"],
        correction=texts["correction"],
        source_info=scrub(new.source_info),
    )
    value = rules.check_value(new.value)
    digest = rules.request_hash(new.as_request())
    return _Checked(new, score, value, digest, new.feedback_id or str(uuid.uuid4()))


def _new_row(
    who: Principal, checked: _Checked, spec: KeySpec | None, trace_id: str | None, now: int
) -> FeedbackRow:
    """The row a checked request stores: its score and value fitted to the declared key."""
    new = checked.new
    fitted_score, fitted_value = rules.fit(spec, checked.score, checked.value)
    return FeedbackRow(
        id=checked.feedback_id,
        workspace_id=who.workspace_id,
        run_id=new.run_id,
        trace_id=trace_id,
        key=new.key,
        score=fitted_score,
        value=fitted_value,
        comment=new.comment,
        correction=new.correction,
        source=new.source,
        source_info=new.source_info,
        created_at=now,
        updated_at=now,
        project_id=new.project_id,
    )


def _store_new(conn: Connection, who: Principal, checked: _Checked, now: int) -> Created:
    """Insert one checked request (inside the caller's transaction), or find the identical one
    an earlier request stored; raises Conflict when the id holds a different body."""
    new = checked.new
    if new.project_id and project_store.get(conn, who.workspace_id, new.project_id) is None:
        raise NotFound(f"no project with id {new.project_id!r}", details={"field": "project_id"})
    spec = store.get_key(conn, who.workspace_id, new.key)
    trace_id = new.trace_id
    if trace_id is None and new.run_id is not None:
        trace_id = store.run_trace_id(conn, who.workspace_id, new.run_id)
    row = _new_row(who, checked, spec, trace_id, now)
    if store.insert_if_absent(conn, row, checked.digest):
        return Created(row, True)
    if store.get_request_hash(conn, who.workspace_id, checked.feedback_id) != checked.digest:
        raise Conflict(
            f"feedback {checked.feedback_id!r} already exists with a different body; "
            "use a new feedback_id, or PATCH to change it",
            details={"field": "feedback_id"},
        )
    return Created(row, False)


def create(ctx: ServiceContext, who: Principal, new: NewFeedback) -> Created:
    checked = _check_new(ctx, who, new)
    now = ctx.clock()
    created = ctx.db.write(lambda conn: _store_new(conn, who, checked, now)).created
    return Created(get(ctx, who, checked.feedback_id), created)


def create_many(
    ctx: ServiceContext, who: Principal, items: list[NewFeedback]
) -> list[Created | GoldloopError]:
    """Create several feedback in one write transaction (what an online rule stores for one
    run: a score per evaluator key). Each item succeeds or fails on its own, as ``create``
    would: the result at each position is the stored feedback (as written, or the identical
    earlier one) or the error that request would have raised."""
    out: list[Created | GoldloopError | _Checked] = []
    for new in items:
        try:
            out.append(_check_new(ctx, who, new))
        except GoldloopError as exc:
            out.append(exc)
    if not any(isinstance(o, _Checked) for o in out):
        return [o for o in out if not isinstance(o, _Checked)]
    now = ctx.clock()

    def write(conn: Connection) -> list[Created | GoldloopError]:
        done: list[Created | GoldloopError] = []
        for item in out:
            if not isinstance(item, _Checked):
                done.append(item)
                continue
            try:
                stored = _store_new(conn, who, item, now)
            except GoldloopError as exc:
                done.append(exc)
                continue
            if not stored.created:  # the earlier request's row, as stored
                earlier = store.get(conn, who.workspace_id, item.feedback_id)
                stored = Created(earlier or stored.feedback, False)
            done.append(stored)
        return done

    return ctx.db.write(write)


def get(ctx: ServiceContext, who: Principal, feedback_id: str) -> FeedbackRow:
    row = ctx.db.read(lambda c: store.get(c, who.workspace_id, feedback_id))
    if row is None:
        raise NotFound(f"no feedback with id {feedback_id!r}")
    return row


UPDATABLE = ("key", "score", "value", "comment", "correction", "source", "source_info")


def update(
    ctx: ServiceContext, who: Principal, feedback_id: str, changes: dict[str, Any]
) -> FeedbackRow:
    """Change the given fields (a field set to None is cleared; absent fields stay)."""
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise InvalidInput(
            f"cannot change {', '.join(unknown)}; updatable: {', '.join(UPDATABLE)}",
            details={"field": unknown[0]},
        )
    if "key" in changes:
        if changes["key"] is None:
            raise InvalidInput("key cannot be cleared", details={"field": "key"})
        rules.check_key(changes["key"])
    if "source" in changes:
        rules.check_source(changes["source"] or "")
    changes = {name: scrub(value) for name, value in changes.items()}
    texts: dict[str, Any] = {k: changes[k] for k in ("comment", "correction") if k in changes}
    if texts:
        changes.update(redaction.redact_values(ctx, who.workspace_id, texts))
    if "score" in changes:
        changes["score"] = rules.check_score(changes["score"])
    if "value" in changes:
        changes["value"] = rules.check_value(changes["value"])

    def write(conn: Connection) -> None:
        current = store.get(conn, who.workspace_id, feedback_id)
        if current is None:
            raise NotFound(f"no feedback with id {feedback_id!r}")
        now = ctx.clock()
        merged = replace(current, **changes, updated_at=now)
        spec = store.get_key(conn, who.workspace_id, merged.key)
        score = merged.score if merged.score is None else rules.check_score(merged.score)
        if spec is not None and any(c.score is not None for c in spec.categories or ()):
            # a new category brings its score, a new score its category
            if "value" in changes and "score" not in changes:
                score = None
            elif "score" in changes and "value" not in changes:
                merged = replace(merged, value=None)
        fitted_score, fitted_value = rules.fit(spec, score, merged.value)
        final = replace(merged, score=fitted_score, value=fitted_value)
        if history_store.snapshot(final) == history_store.snapshot(
            replace(current, updated_at=now)
        ):
            return
        history_store.add_history(conn, current, "edited", who.key_id, now)
        store.replace(conn, final)

    ctx.db.write(write)
    return get(ctx, who, feedback_id)


def delete(ctx: ServiceContext, who: Principal, feedback_id: str) -> None:
    """Delete a feedback; what it was is kept in its history."""

    def write(conn: Connection) -> bool:
        current = store.get(conn, who.workspace_id, feedback_id)
        if current is None:
            return False
        history_store.add_history(conn, current, "deleted", who.key_id, ctx.clock())
        return store.delete(conn, who.workspace_id, feedback_id)

    if not ctx.db.write(write):
        raise NotFound(f"no feedback with id {feedback_id!r}")


def history(ctx: ServiceContext, who: Principal, feedback_id: str) -> list[HistoryRow]:
    """Every change of a feedback, oldest first (also after it was deleted)."""

    def read(conn: Connection) -> list[HistoryRow]:
        rows = history_store.history(conn, who.workspace_id, [feedback_id])
        if not rows and store.get(conn, who.workspace_id, feedback_id) is None:
            raise NotFound(f"no feedback with id {feedback_id!r}")
        return rows

    return ctx.db.read(read)


def histories(ctx: ServiceContext, who: Principal, feedback_ids: list[str]) -> list[HistoryRow]:
    return ctx.db.read(lambda c: history_store.history(c, who.workspace_id, feedback_ids))


def deleted_from_run(ctx: ServiceContext, who: Principal, run_id: str) -> list[HistoryRow]:
    """The feedback deleted from a run, as it was, oldest first."""
    return ctx.db.read(
        lambda c: history_store.history(c, who.workspace_id, deleted_from_run=run_id)
    )


def counts(ctx: ServiceContext, who: Principal, run_ids: list[str]) -> dict[str, int]:
    """How much feedback each of these runs has (runs without feedback are left out)."""
    return ctx.db.read(lambda c: history_store.feedback_counts(c, who.workspace_id, run_ids))


def list_feedback(
    ctx: ServiceContext,
    who: Principal,
    where: FeedbackFilter,
    *,
    limit: int = 100,
    cursor: str | None = None,
) -> FeedbackPage:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    before: int | None = None
    if cursor is not None:
        if not cursor.isdigit():
            raise InvalidInput("cursor is not one this API gave out", details={"field": "cursor"})
        before = int(cursor)
    if where.source is not None:
        rules.check_source(where.source)
    rows = ctx.db.read(
        lambda c: store.list_page(c, who.workspace_id, where, limit=limit + 1, before=before)
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return FeedbackPage([r for _, r in rows], str(rows[-1][0]) if more and rows else None)


def for_runs(ctx: ServiceContext, who: Principal, run_ids: list[str]) -> list[FeedbackRow]:
    return ctx.db.read(lambda c: store.for_runs(c, who.workspace_id, run_ids))


def project_stats(
    ctx: ServiceContext,
    who: Principal,
    project_id: str,
    *,
    bucket: str = "1d",
    since: int | None = None,
    until: int | None = None,
    key: str | None = None,
) -> list[StatsBucket]:
    bucket_us = rules.parse_bucket(bucket)
    if since is not None and until is not None:
        if since >= until:
            raise InvalidInput("since must be before until", details={"field": "since"})
        if (until - since) // bucket_us > MAX_BUCKETS:
            raise InvalidInput(
                f"more than {MAX_BUCKETS} buckets: choose a wider bucket or a shorter range",
                details={"field": "bucket"},
            )

    def read(conn: Connection) -> list[StatsBucket]:
        if project_store.get(conn, who.workspace_id, project_id) is None:
            raise NotFound(f"no project with id {project_id!r}")
        return store.project_stats(
            conn,
            who.workspace_id,
            project_id,
            bucket_us=bucket_us,
            since=since,
            until=until,
            key=key,
        )

    return ctx.db.read(read)


# --- declared keys -------------------------------------------------------------------------


def put_key(
    ctx: ServiceContext,
    who: Principal,
    key: str,
    kind: str,
    *,
    min_score: float | None = None,
    max_score: float | None = None,
    categories: list[Any] | None = None,
    description: str | None = None,
    rubric: str | None = None,
    correction_expected: bool = False,
    lower_is_better: bool = False,
) -> tuple[KeySpec, bool]:
    """Declare or redeclare a key (admins only: it changes what everyone may send)."""
    _need_admin(who)
    spec = rules.make_spec(
        key,
        kind,
        min_score=min_score,
        max_score=max_score,
        categories=categories,
        description=description,
        rubric=rubric,
        correction_expected=correction_expected,
        lower_is_better=lower_is_better,
    )
    created = ctx.db.write(lambda c: store.put_key(c, who.workspace_id, spec, ctx.clock()))
    return spec, created


def get_key(ctx: ServiceContext, who: Principal, key: str) -> KeySpec:
    spec = ctx.db.read(lambda c: store.get_key(c, who.workspace_id, key))
    if spec is None:
        raise NotFound(f"feedback key {key!r} is not declared")
    return spec


def find_key(ctx: ServiceContext, who: Principal, key: str) -> KeySpec | None:
    return ctx.db.read(lambda c: store.get_key(c, who.workspace_id, key))


def key_times(ctx: ServiceContext, who: Principal) -> dict[str, int]:
    """When each declared key was last (re)declared, µs."""
    return ctx.db.read(lambda c: store.key_times(c, who.workspace_id))


def list_keys(ctx: ServiceContext, who: Principal) -> list[KeySpec]:
    return ctx.db.read(lambda c: store.list_keys(c, who.workspace_id))


def delete_key(ctx: ServiceContext, who: Principal, key: str) -> None:
    _need_admin(who)
    if not ctx.db.write(lambda c: store.delete_key(c, who.workspace_id, key)):
        raise NotFound(f"feedback key {key!r} is not declared")


def _need_admin(who: Principal) -> None:
    if not who.is_admin:
        raise Forbidden(
            "declaring feedback keys needs an admin API key (goldloop keys create --role admin)"
        )
