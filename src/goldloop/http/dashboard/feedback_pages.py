"""Feedback from the trace page: score, value, comment and a correction of the run's output;
editing and deleting it (its history is kept)."""

from __future__ import annotations

import math
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from goldloop.domain.errors import InvalidInput
from goldloop.http.dashboard import web
from goldloop.http.dashboard.feedback_view import edit_text
from goldloop.http.dashboard.run_pages import correction_text, render_trace
from goldloop.services import feedback, run_queries
from goldloop.store.feedback import FeedbackRow

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)


def parse_correction(text: str, outputs: Any) -> Any:
    """The edited correction, or None when it was left as the run's output (or emptied)."""
    if not text.strip() or text.replace("\r\n", "\n") == correction_text(outputs):
        return None
    if isinstance(outputs, str):
        return text.replace("\r\n", "\n")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"the correction is not valid JSON: {exc}", details={"field": "correction"}
        ) from None
    return None if value == outputs else value


def parse_score(text: str) -> float | bool | None:
    text = text.strip().lower()
    if not text:
        return None
    if text in ("true", "false"):
        return text == "true"
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(
            f"score must be a number or true/false, not {text!r}", details={"field": "score"}
        ) from None
    if not math.isfinite(value):
        raise InvalidInput("score must be a finite number", details={"field": "score"})
    return value


@router.post("/runs/{run_id}/feedback")
def add_feedback(request: Request, run_id: str, session: web.SignedIn, form: web.Form) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    run = run_queries.get_run(ctx, who, run_id)
    try:
        new = feedback.NewFeedback(
            key=form.get("key", "").strip(),
            run_id=run["id"],
            trace_id=run["trace_id"],
            score=parse_score(form.get("score_number", "").strip() or form.get("score", "")),
            value=form.get("value", "").strip() or None,
            comment=form.get("comment", "").strip() or None,
            correction=parse_correction(form.get("correction", ""), run.get("outputs")),
            source="human",
            source_info={"via": "dashboard", "api_key_id": who.key_id},
        )
        if all(v is None for v in (new.score, new.value, new.comment, new.correction)):
            raise InvalidInput(
                "give a score, a value, a comment or a correction", details={"field": "score"}
            )
        created = feedback.create(ctx, who, new)
    except InvalidInput as exc:
        return render_trace(
            request, session, run["trace_id"], run["id"], form=form, problem=exc.message
        )
    target = f"/traces/{web.seg(run['trace_id'])}"
    return web.redirect(
        web.query(target, {"run": run["id"], "saved": created.feedback.id}) + "#feedback"
    )


def _edit_changes(form: dict[str, str], current: FeedbackRow) -> dict[str, Any]:
    """The fields the edit form changed (unchanged fields are left out, so a categorical key's
    category and score are not both sent when only one was changed)."""
    changes: dict[str, Any] = {}
    score = parse_score(form.get("score", ""))
    if score != current.score or type(score) is not type(current.score):
        changes["score"] = score
    value = form.get("value", "").strip() or None
    if value != (None if current.value is None else str(current.value)):
        changes["value"] = value
    comment = form.get("comment", "").strip() or None
    if comment != current.comment:
        changes["comment"] = comment
    text = form.get("correction", "").replace("\r\n", "\n")
    if text.strip() != edit_text(current.correction).strip():
        if not text.strip():
            changes["correction"] = None
        elif isinstance(current.correction, str):
            changes["correction"] = text
        else:
            try:
                changes["correction"] = orjson.loads(text)
            except orjson.JSONDecodeError:
                changes["correction"] = text  # free text is a correction too
    return changes


def _back(run_id: str, trace_id: str | None, **flags: str) -> Response:
    target = f"/traces/{web.seg(trace_id or '')}"
    return web.redirect(web.query(target, {"run": run_id, **flags}) + "#feedback")


@router.post("/feedback/{feedback_id}/edit")
def edit_feedback(
    request: Request, feedback_id: str, session: web.SignedIn, form: web.Form
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    current = feedback.get(ctx, who, feedback_id)
    run_id = current.run_id or form.get("run", "")
    run = run_queries.get_run(ctx, who, run_id)
    try:
        changes = _edit_changes(form, current)
        if changes:
            feedback.update(ctx, who, feedback_id, changes)
    except InvalidInput as exc:
        return render_trace(request, session, run["trace_id"], run["id"], problem=exc.message)
    return _back(run["id"], run["trace_id"], saved=feedback_id)


@router.post("/feedback/{feedback_id}/delete")
def delete_feedback(
    request: Request, feedback_id: str, session: web.SignedIn, form: web.Form
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    current = feedback.get(ctx, who, feedback_id)
    run = run_queries.get_run(ctx, who, current.run_id or form.get("run", ""))
    feedback.delete(ctx, who, feedback_id)
    return _back(run["id"], run["trace_id"], deleted=feedback_id)
