"""Pairwise review in the dashboard: creating a pairwise queue from the comparison page, and
the review page of a pairwise queue: the input once, the two outputs side by side as "Output 1"
and "Output 2" in the order drawn for the item (never the experiments' names), and the choice
1 / 2 / 3 (tie) with an optional comment. The form works without JavaScript; goldloop.js gives
it the review page's keyboard (number keys pick, Enter submits, s skips)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from goldloop.domain import pairwise
from goldloop.domain.errors import Conflict, InvalidInput, NotFound
from goldloop.http.dashboard import web
from goldloop.http.dashboard.run_pages import run_panels
from goldloop.services import annotation_queues as queues_svc
from goldloop.services import annotation_reviews as reviews_svc
from goldloop.services import pairwise_reviews as svc
from goldloop.services import run_queries
from goldloop.services.context import Principal, ServiceContext

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)


@router.post("/queues/pairwise")
def create_queue(request: Request, session: web.SignedIn, form: web.Form) -> Response:
    """A pairwise queue from the comparison page's two experiments (``experiment_a``, ``_b``)."""
    queue, _info, _added = svc.create(
        web.ctx_of(request),
        session.principal,
        name=form.get("name", ""),
        experiments=[form.get("experiment_a", ""), form.get("experiment_b", "")],
        reviewers_needed=1,
    )
    return web.redirect(f"/queues/{web.seg(queue.id)}")


def _side(ctx: ServiceContext, who: Principal, run_id: str) -> dict[str, Any]:
    try:
        run = run_queries.get_run(ctx, who, run_id)
    except NotFound:
        return {"run": None, "inputs": None, "outputs": None}
    panels = {p["key"]: p for p in run_panels(run)}
    return {"run": run, "inputs": panels["inputs"], "outputs": panels["outputs"]}


def render_review(
    request: Request,
    session: web.SignedIn,
    queue_id: str,
    *,
    problem: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """The caller's next pair, reserved for them (the same one until they answer it)."""
    ctx = web.ctx_of(request)
    who = session.principal
    view = queues_svc.get(ctx, who, queue_id)
    got = reviews_svc.next_item(ctx, who, queue_id)
    context: dict[str, Any] = {
        "view": view,
        "reservation": got,
        "mine_left": queues_svc.left_for(ctx, who, queue_id),
        "done": request.query_params.get("done"),
        "skipped": request.query_params.get("skipped"),
        "problem": problem,
        "form": form or {},
    }
    if got is not None:
        pair = svc.get_pair(ctx, who, queue_id, got.item.id)
        left = _side(ctx, who, pair.left[0])
        right = _side(ctx, who, pair.right[0])
        same_input = (
            left["run"] is None
            or right["run"] is None
            or (left["run"].get("inputs") == right["run"].get("inputs"))
        )
        context |= {"left": left, "right": right, "same_input": same_input}
    return web.render(
        request, "queue_pairwise.html", status_code=400 if problem else 200, **context
    )


@router.post("/queues/{queue_id}/pairs/{item_id}/review")
def submit_review(
    request: Request, queue_id: str, item_id: str, session: web.SignedIn, form: web.Form
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    pair = svc.get_pair(ctx, who, queue_id, item_id)
    choice = form.get("choice", "")
    preference = pairwise.choice_to_preference(choice, pair.pair.swapped)
    try:
        if preference is None:
            raise InvalidInput("choose Output 1, Output 2 or a tie")
        svc.submit(
            ctx,
            who,
            queue_id,
            item_id,
            preference=preference,
            comment=form.get("comment", "").strip() or None,
        )
    except (InvalidInput, Conflict) as exc:
        return render_review(request, session, queue_id, problem=exc.message, form=form)
    return web.redirect(f"/queues/{web.seg(queue_id)}/review?done=1")
