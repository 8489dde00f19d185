"""/api/v1/feedback, /api/v1/feedback-keys and /api/v1/projects/{id}/feedback-stats"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from goldloop.domain.clock import to_iso
from goldloop.domain.feedback import KeySpec
from goldloop.http.deps import Admin, Ctx, Who
from goldloop.http.params import parse_time
from goldloop.services import feedback as svc
from goldloop.services import feedback_export as export_svc
from goldloop.store.feedback import FeedbackFilter, FeedbackRow

router = APIRouter(tags=["feedback"])


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    key: str = Field(description="What is scored, e.g. `correctness`.")
    run_id: str | None = Field(default=None, description="The run scored (may not exist yet).")
    trace_id: str | None = Field(default=None, description="Or the whole trace.")
    project_id: str | None = Field(
        default=None,
        description="Or a whole experiment (its project id), with no run: a summary score.",
    )
    score: Any = Field(default=None, description="A number or a boolean.")
    value: Any = Field(default=None, description="A category or free text.")
    comment: str | None = None
    correction: Any = Field(default=None, description="What the run should have returned.")
    source: str = Field(
        default="api", description="human, api, app, model, rule or online-evaluator."
    )
    source_info: dict[str, Any] | None = Field(
        default=None,
        description="Provenance: evaluator, evaluator_version, model, prompt_hash, rule_id, user.",
    )
    feedback_id: str | None = Field(
        default=None, description="Client-chosen id: makes creation idempotent."
    )


class FeedbackPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str | None = None
    score: Any = None
    value: Any = None
    comment: str | None = None
    correction: Any = None
    source: str | None = None
    source_info: dict[str, Any] | None = None


class FeedbackOut(BaseModel):
    id: str
    run_id: str | None
    trace_id: str | None
    project_id: str | None = Field(description="Set on experiment-level (summary) feedback.")
    key: str
    score: float | bool | None
    value: Any
    comment: str | None
    correction: Any
    source: str
    source_info: dict[str, Any] | None
    created_at: int
    created_at_iso: str | None
    updated_at: int
    updated_at_iso: str | None

    @classmethod
    def of(cls, row: FeedbackRow) -> FeedbackOut:
        return cls(
            id=row.id,
            run_id=row.run_id,
            trace_id=row.trace_id,
            project_id=row.project_id,
            key=row.key,
            score=row.score,
            value=row.value,
            comment=row.comment,
            correction=row.correction,
            source=row.source,
            source_info=row.source_info,
            created_at=row.created_at,
            created_at_iso=to_iso(row.created_at),
            updated_at=row.updated_at,
            updated_at_iso=to_iso(row.updated_at),
        )


class FeedbackList(BaseModel):
    items: list[FeedbackOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page.")


class Deleted(BaseModel):
    id: str
    deleted: bool


@router.post("/feedback", status_code=201, response_model=FeedbackOut)
def create_feedback(body: FeedbackIn, ctx: Ctx, who: Who, response: Response) -> FeedbackOut:
    """Create feedback. Repeating a request with the same `feedback_id` and body returns the
    same feedback (header `Idempotent-Replayed: true`); a different body with it is 409."""
    result = svc.create(ctx, who, svc.NewFeedback(**body.model_dump()))
    if not result.created:
        response.headers["Idempotent-Replayed"] = "true"
    return FeedbackOut.of(result.feedback)


@router.get("/feedback", response_model=FeedbackList)
def list_feedback(
    ctx: Ctx,
    who: Who,
    run_id: str | None = None,
    trace_id: str | None = Query(
        default=None, description="Feedback on the trace or on any of its runs."
    ),
    project_id: str | None = Query(
        default=None, description="Experiment-level (summary) feedback of this project."
    ),
    key: str | None = None,
    source: str | None = None,
    since: str | None = Query(default=None, description="Created at or after (ISO or µs)."),
    until: str | None = Query(default=None, description="Created before (ISO or µs)."),
    has_correction: bool | None = None,
    limit: int = Query(default=100, ge=1, le=svc.MAX_LIMIT),
    cursor: str | None = None,
) -> FeedbackList:
    """Newest first."""
    where = FeedbackFilter(
        run_id=run_id,
        trace_id=trace_id,
        key=key,
        source=source,
        since=parse_time("since", since),
        until=parse_time("until", until),
        has_correction=has_correction,
        project_id=project_id,
    )
    page = svc.list_feedback(ctx, who, where, limit=limit, cursor=cursor)
    return FeedbackList(items=[FeedbackOut.of(f) for f in page.items], next_cursor=page.next_cursor)


@router.get("/feedback/{feedback_id}", response_model=FeedbackOut)
def get_feedback(feedback_id: str, ctx: Ctx, who: Who) -> FeedbackOut:
    return FeedbackOut.of(svc.get(ctx, who, feedback_id))


@router.patch("/feedback/{feedback_id}", response_model=FeedbackOut)
def update_feedback(feedback_id: str, body: FeedbackPatch, ctx: Ctx, who: Who) -> FeedbackOut:
    """Change the fields sent; `null` clears a field. The run and trace cannot change."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return FeedbackOut.of(svc.update(ctx, who, feedback_id, changes))


@router.delete("/feedback/{feedback_id}", response_model=Deleted)
def delete_feedback(feedback_id: str, ctx: Ctx, who: Who) -> Deleted:
    svc.delete(ctx, who, feedback_id)
    return Deleted(id=feedback_id, deleted=True)


class HistoryOut(BaseModel):
    action: str = Field(description="`edited` or `deleted`.")
    changed_at: int
    changed_at_iso: str | None
    changed_by: str | None = Field(description="The id of the API key that made the change.")
    changed_by_name: str | None = Field(description="That key's name (None once it is gone).")
    old: dict[str, Any] = Field(
        description="The feedback before the change: key, score, value, comment, correction, "
        "source, source_info, updated_at."
    )


class HistoryList(BaseModel):
    id: str
    items: list[HistoryOut]


@router.get("/feedback/{feedback_id}/history", response_model=HistoryList)
def feedback_history(feedback_id: str, ctx: Ctx, who: Who) -> HistoryList:
    """Every edit and the deletion of a feedback, oldest first, each with the old fields; also
    for a deleted feedback."""
    rows = svc.history(ctx, who, feedback_id)
    return HistoryList(
        id=feedback_id,
        items=[
            HistoryOut(
                action=h.action,
                changed_at=h.changed_at,
                changed_at_iso=to_iso(h.changed_at),
                changed_by=h.changed_by,
                changed_by_name=h.changed_by_name,
                old=h.old,
            )
            for h in rows
        ],
    )


@router.get(
    "/feedback-export",
    response_class=Response,
    responses={200: {"content": {t: {} for t in export_svc.FORMATS.values()}}},
)
def export_feedback(
    ctx: Ctx,
    who: Who,
    format: str = Query(default="jsonl", description="jsonl or parquet."),
    run_id: str | None = None,
    trace_id: str | None = None,
    key: str | None = None,
    source: str | None = None,
    since: str | None = Query(default=None, description="Created at or after (ISO or µs)."),
    until: str | None = Query(default=None, description="Created before (ISO or µs)."),
    has_correction: bool | None = None,
) -> Response:
    """All feedback matching the same filters as the list, as one JSONL or Parquet file."""
    where = FeedbackFilter(
        run_id=run_id,
        trace_id=trace_id,
        key=key,
        source=source,
        since=parse_time("since", since),
        until=parse_time("until", until),
        has_correction=has_correction,
    )
    count, data, media_type = export_svc.export(ctx, who, where, format)
    return Response(
        content=data,
        media_type=media_type,
        headers={
            "Content-Disposition": f"attachment; filename=feedback.{format}",
            "X-Goldloop-Feedback-Count": str(count),
        },
    )


# --- declared keys -------------------------------------------------------------------------


class CategoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(description="The category's name, sent as the feedback's `value`.")
    score: float | None = Field(default=None, description="The score it stands for.")


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(description="continuous, categorical, boolean or freeform.")
    min: float | None = Field(default=None, description="continuous: lowest allowed score.")
    max: float | None = Field(default=None, description="continuous: highest allowed score.")
    categories: list[str | CategoryIn] | None = Field(
        default=None,
        description="categorical: the values, as labels or `{label, score}` objects "
        "(every category scored, or none).",
    )
    description: str | None = Field(default=None, description="What the key measures.")
    rubric: str | None = Field(default=None, description="What reviewers read before scoring.")
    correction_expected: bool = Field(
        default=False, description="Whether reviewers should also write a correction."
    )
    lower_is_better: bool = Field(default=False, description="Whether a lower score is better.")


class CategoryOut(BaseModel):
    label: str
    score: float | None


class KeyOut(BaseModel):
    key: str
    kind: str
    min: float | None
    max: float | None
    categories: list[CategoryOut] | None
    description: str | None
    rubric: str | None
    correction_expected: bool
    lower_is_better: bool

    @classmethod
    def of(cls, spec: KeySpec) -> KeyOut:
        return cls(
            key=spec.key,
            kind=spec.kind,
            min=spec.min_score,
            max=spec.max_score,
            categories=(
                [CategoryOut(label=c.label, score=c.score) for c in spec.categories]
                if spec.categories is not None
                else None
            ),
            description=spec.description,
            rubric=spec.rubric,
            correction_expected=spec.correction_expected,
            lower_is_better=spec.lower_is_better,
        )


class KeyList(BaseModel):
    items: list[KeyOut]


@router.put("/feedback-keys/{key}", response_model=KeyOut)
def put_key(key: str, body: KeyIn, ctx: Ctx, who: Admin, response: Response) -> KeyOut:
    """Declare (201) or redeclare (200) a feedback key (a score config); admin keys only.
    Existing feedback is not re-checked."""
    categories = (
        [c if isinstance(c, str) else c.model_dump() for c in body.categories]
        if body.categories is not None
        else None
    )
    spec, created = svc.put_key(
        ctx,
        who,
        key,
        body.kind,
        min_score=body.min,
        max_score=body.max,
        categories=categories,
        description=body.description,
        rubric=body.rubric,
        correction_expected=body.correction_expected,
        lower_is_better=body.lower_is_better,
    )
    response.status_code = 201 if created else 200
    return KeyOut.of(spec)


@router.get("/feedback-keys", response_model=KeyList)
def list_keys(ctx: Ctx, who: Who) -> KeyList:
    return KeyList(items=[KeyOut.of(s) for s in svc.list_keys(ctx, who)])


@router.get("/feedback-keys/{key}", response_model=KeyOut)
def get_key(key: str, ctx: Ctx, who: Who) -> KeyOut:
    return KeyOut.of(svc.get_key(ctx, who, key))


@router.delete("/feedback-keys/{key}", response_model=KeyOut)
def delete_key(key: str, ctx: Ctx, who: Admin) -> KeyOut:
    """Forget a declaration (its feedback stays); admin keys only. Returns what was declared."""
    spec = svc.get_key(ctx, who, key)
    svc.delete_key(ctx, who, key)
    return KeyOut.of(spec)


# --- statistics ----------------------------------------------------------------------------


class StatsItem(BaseModel):
    key: str
    bucket_start: int
    bucket_start_iso: str | None
    count: int = Field(description="Feedback in the bucket.")
    scored: int = Field(description="Of which with a score.")
    mean_score: float | None = Field(description="Mean score (booleans count as 0 and 1).")


class StatsOut(BaseModel):
    project_id: str
    bucket: str
    items: list[StatsItem]


@router.get("/projects/{project_id}/feedback-stats", response_model=StatsOut)
def feedback_stats(
    project_id: str,
    ctx: Ctx,
    who: Who,
    bucket: str = Query(default="1d", description="Bucket width: 30s, 15m, 1h, 1d, 1w."),
    since: str | None = Query(default=None, description="Created at or after (ISO or µs)."),
    until: str | None = Query(default=None, description="Created before (ISO or µs)."),
    key: str | None = None,
) -> StatsOut:
    """Mean score per feedback key per time bucket (by feedback time), with counts, over the
    feedback on the project's runs and traces."""
    rows = svc.project_stats(
        ctx,
        who,
        project_id,
        bucket=bucket,
        since=parse_time("since", since),
        until=parse_time("until", until),
        key=key,
    )
    items = [
        StatsItem(
            key=r.key,
            bucket_start=r.bucket_start,
            bucket_start_iso=to_iso(r.bucket_start),
            count=r.count,
            scored=r.scored,
            mean_score=r.mean_score,
        )
        for r in rows
    ]
    return StatsOut(project_id=project_id, bucket=bucket, items=items)
