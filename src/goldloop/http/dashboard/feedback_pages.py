"""Feedback from the trace page: score, value, comment and a correction of the run's output."""

from __future__ import annotations

import math
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from goldloop.domain.errors import InvalidInput
from goldloop.http.dashboard import web
from goldloop.http.dashboard.run_pages import correction_text, render_trace
from goldloop.services import feedback, run_queries

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
            score=parse_score(form.get("score", "")),
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
