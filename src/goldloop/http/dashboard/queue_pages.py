"""Annotation queues in the dashboard: the list, a queue's page (progress, reviewers,
agreement), and the review page: one item at a time, reserved for the signed-in key, with the
run as a conversation, the rubric and the score controls of the queue's keys. Every form works
without JavaScript; goldloop.js adds the keyboard (number keys pick, Enter submits, s skips).

``POST /queues/add-runs`` takes ``queue`` plus repeated ``run_id`` fields (and an optional
``back`` path): the trace page's "Add to queue" form posts there, and so can a bulk action.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from goldloop.domain.errors import Conflict, InvalidInput, NotFound
from goldloop.domain.feedback import KeySpec
from goldloop.http.dashboard import pairwise_pages, web
from goldloop.http.dashboard.feedback_pages import parse_correction, parse_score
from goldloop.http.dashboard.run_pages import correction_text, run_panels
from goldloop.services import annotation_agreement as agreement_svc
from goldloop.services import annotation_queues as svc
from goldloop.services import annotation_reviews as reviews_svc
from goldloop.services import datasets, feedback, pairwise_reviews, run_queries
from goldloop.services.context import Principal, ServiceContext

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)


@router.get("/queues")
def queue_list(request: Request, session: web.SignedIn) -> Response:
    return _render_list(request, session)


def _render_list(
    request: Request,
    session: web.SignedIn,
    *,
    problem: str | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    queues = svc.list_queues(ctx, who, limit=200)
    return web.render(
        request,
        "queues.html",
        status_code=400 if problem else 200,
        queues=queues,
        pairwise=pairwise_reviews.pairwise_ids(ctx, who, [v.queue.id for v in queues]),
        keys=feedback.list_keys(ctx, who),
        dataset_names=[d.row.name for d in datasets.list_datasets(ctx, who, limit=200).items],
        problem=problem,
        form=form or {},
    )


@router.post("/queues")
def create_queue(request: Request, session: web.SignedIn, form: web.FormLists) -> Response:
    ctx = web.ctx_of(request)
    one = {k: (v[-1] if v else "") for k, v in form.items()}
    try:
        needed = one.get("reviewers_needed", "1").strip() or "1"
        if not needed.isdigit():
            raise InvalidInput("reviewers needed is a whole number")
        view = svc.create(
            ctx,
            session.principal,
            name=one.get("name", ""),
            instructions=one.get("instructions", "").strip() or None,
            keys=[k for k in form.get("keys", []) if k],
            reviewers_needed=int(needed),
            dataset=one.get("dataset", "").strip() or None,
        )
    except (InvalidInput, Conflict, NotFound) as exc:
        return _render_list(request, session, problem=exc.message, form=one)
    return web.redirect(f"/queues/{web.seg(view.queue.id)}")


@router.get("/queues/{queue_id}")
def queue_page(request: Request, queue_id: str, session: web.SignedIn) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    view = svc.get(ctx, who, queue_id)
    pairwise = pairwise_reviews.info(ctx, who, queue_id)
    return web.render(
        request,
        "queue.html",
        view=view,
        pairwise=pairwise_reviews.results(ctx, who, queue_id) if pairwise else None,
        reviewers=reviews_svc.reviewers(ctx, who, queue_id),
        agreement=agreement_svc.queue_agreement(ctx, who, queue_id),
        items=svc.list_items(ctx, who, queue_id, limit=100),
        mine_left=svc.left_for(ctx, who, queue_id),
        added=request.query_params.get("added"),
    )


def _specs(ctx: ServiceContext, who: Principal, keys: list[str]) -> list[KeySpec]:
    found = {s.key: s for s in feedback.list_keys(ctx, who)}
    return [found.get(k) or KeySpec(k, "freeform") for k in keys]


@router.get("/queues/{queue_id}/review")
def review_page(request: Request, queue_id: str, session: web.SignedIn) -> Response:
    """The caller's next item, reserved for them (the same one until they answer it); a
    pairwise queue's review page shows two outputs (``pairwise_pages``)."""
    if pairwise_reviews.info(web.ctx_of(request), session.principal, queue_id) is not None:
        return pairwise_pages.render_review(request, session, queue_id)
    return _render_review(request, session, queue_id)


def _render_review(
    request: Request,
    session: web.SignedIn,
    queue_id: str,
    *,
    problem: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    view = svc.get(ctx, who, queue_id)
    got = reviews_svc.next_item(ctx, who, queue_id)
    mine_left = svc.left_for(ctx, who, queue_id)
    context: dict[str, Any] = {
        "view": view,
        "reservation": got,
        "mine_left": mine_left,
        "done": request.query_params.get("done"),
        "skipped": request.query_params.get("skipped"),
        "problem": problem,
        "form": form or {},
    }
    if got is not None:
        try:
            run = run_queries.get_run(ctx, who, got.item.run_id)
        except NotFound:
            run = None
        context |= {
            "run": run,
            "panels": run_panels(run) if run else [],
            "reference": reviews_svc.reference(ctx, who, got.item.run_id),
            "specs": _specs(ctx, who, view.queue.keys),
            "correction": (form or {}).get("correction")
            or correction_text(run.get("outputs") if run else None),
        }
    return web.render(request, "queue_review.html", status_code=400 if problem else 200, **context)


def _scores(form: dict[str, str], specs: list[KeySpec]) -> dict[str, Any]:
    """The answer per key from the form's ``k:<key>`` fields (a category label, true/false,
    or a number)."""
    out: dict[str, Any] = {}
    for spec in specs:
        raw = form.get(f"k:{spec.key}", "").strip()
        if not raw:
            continue
        if spec.kind in ("categorical", "freeform"):
            out[spec.key] = {"value": raw}
        else:
            out[spec.key] = {"score": parse_score(raw)}
    return out


@router.post("/queues/{queue_id}/items/{item_id}/review")
def submit_review(
    request: Request, queue_id: str, item_id: str, session: web.SignedIn, form: web.Form
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    view = svc.get(ctx, who, queue_id)
    item = svc.get_item(ctx, who, queue_id, item_id)
    try:
        outputs = run_queries.get_run(ctx, who, item.run_id).get("outputs")
    except NotFound:
        outputs = None
    try:
        reviews_svc.submit(
            ctx,
            who,
            queue_id,
            item_id,
            scores=_scores(form, _specs(ctx, who, view.queue.keys)),
            correction=parse_correction(form.get("correction", ""), outputs),
            comment=form.get("comment", "").strip() or None,
        )
    except (InvalidInput, Conflict) as exc:
        return _render_review(request, session, queue_id, problem=exc.message, form=form)
    return web.redirect(f"/queues/{web.seg(queue_id)}/review?done=1")


@router.post("/queues/{queue_id}/items/{item_id}/skip")
def skip_item(
    request: Request, queue_id: str, item_id: str, session: web.SignedIn, form: web.Form
) -> Response:
    ctx = web.ctx_of(request)
    with contextlib.suppress(Conflict):  # answered already (a double submit): go on
        reviews_svc.skip(ctx, session.principal, queue_id, item_id)
    return web.redirect(f"/queues/{web.seg(queue_id)}/review?skipped=1")


@router.post("/queues/add-runs")
def add_runs(request: Request, session: web.SignedIn, form: web.FormLists) -> Response:
    """Add the ``run_id`` fields' runs to the ``queue`` field's queue; back to ``back`` (a
    local path) or to the queue's page, with ``added=<n>``."""
    ctx = web.ctx_of(request)
    queue_id = (form.get("queue") or [""])[-1]
    run_ids = [r for r in form.get("run_id", []) if r]
    if not queue_id:
        raise InvalidInput("choose a queue to add the runs to")
    if not run_ids:
        raise InvalidInput("select at least one run to add to the queue")
    result = svc.add_runs(ctx, session.principal, queue_id, run_ids)
    target = web.local_path((form.get("back") or [""])[-1], f"/queues/{web.seg(queue_id)}")
    sep = "&" if "?" in target else "?"
    return web.redirect(f"{target}{sep}added={len(result.added)}&queue={web.seg(queue_id)}")
