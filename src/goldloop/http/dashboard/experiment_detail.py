"""One experiment's page: its aggregates and summary scores, its results a page at a time with
their reference outputs and pass/fail marks, the failure counts and the *failures only* filter,
the LLM judges' alignment, and tagging (the ``main`` baseline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from goldloop.domain import score_marks
from goldloop.domain.errors import InvalidInput
from goldloop.domain.example_labels import example_label
from goldloop.http.dashboard import web
from goldloop.http.dashboard.experiment_pages import (
    BASELINE_TAG,
    baseline_of,
    compare_url,
    experiment_url,
)
from goldloop.services import (
    alignment,
    experiment_failures,
    experiment_references,
    experiment_results,
    experiments,
    feedback,
)
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.sessions import Session
from goldloop.store.feedback import FeedbackFilter

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)

RESULTS_PAGE = 50  # result rows per experiment page
PICKER = 100  # experiments offered as a baseline on an experiment's page
SUMMARY_SHOWN = 100  # experiment-level (summary) scores shown on an experiment's page
MAX_ALIGNED_KEYS = 8  # keys of an experiment checked for an LLM judge's alignment card


@dataclass(frozen=True)
class ResultFilter:
    """The experiment page's *failures only* filter, from its URL (``failing=1``, ``key=...``,
    ``pass=0.5``)."""

    failing: bool = False
    key: str | None = None
    pass_mark: float = score_marks.PASS_MARK

    def params(self, **changes: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "failing": "1" if self.failing else None,
            "key": self.key if self.failing else None,
            "pass": None if self.pass_mark == score_marks.PASS_MARK else self.pass_mark,
        }
        out.update(changes)
        return out


def _experiment_page(
    request: Request,
    session: Session,
    ref: str,
    after: str | None = None,
    problem: str | None = None,
    shown: ResultFilter | None = None,
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    shown = shown or ResultFilter()
    experiment_failures.check_pass_mark(shown.pass_mark)
    if shown.failing:
        page, failures = experiment_failures.failing_results(
            ctx, who, ref, key=shown.key, pass_mark=shown.pass_mark, limit=RESULTS_PAGE,
            cursor=after,
        )  # fmt: skip
    else:
        page = experiment_results.experiment_results(
            ctx, who, ref, limit=RESULTS_PAGE, cursor=after
        )
        failures = experiment_failures.failure_counts(ctx, who, page.experiment.id, shown.pass_mark)
    e = page.experiment
    main = baseline_of(ctx, who, e.dataset_id)
    others = []
    if e.dataset_id:
        same = experiments.list_experiments(ctx, who, dataset=e.dataset_id, limit=PICKER)
        others = [o for o in same.items if o.id != e.id]
    keys = sorted(
        {s.key for s in e.scores}
        | {r["key"] for row in page.rows for r in row.results}
        | set(failures.by_key)
    )
    summary = feedback.list_feedback(
        ctx, who, FeedbackFilter(project_id=e.id), limit=SUMMARY_SHOWN
    ).items
    alignments = judge_alignments(ctx, who, e.id, keys)
    references = experiment_references.reference_outputs(
        ctx, who, e, {row.example_id for row in page.rows}
    )
    here = experiment_url(e)
    return web.render(
        request,
        "experiment.html",
        status_code=400 if problem else 200,
        e=e,
        scores={s.key: s for s in e.scores},
        keys=keys,
        summary=sorted(summary, key=lambda f: (f.key, f.created_at)),
        rows=page.rows,
        references=references,
        label=example_label,
        mark=lambda result: score_marks.result_mark(result, shown.pass_mark),
        shown=shown,
        failures=failures,
        filter_url=lambda **changes: web.query(here, shown.params(**changes)),
        main=main,
        main_url=compare_url(main, e.id) if main and main != e.id else None,
        others=others,
        next_url=web.query(here, shown.params(after=page.next_cursor))
        if page.next_cursor
        else None,
        first_url=web.query(here, shown.params()) if after else None,
        problem=problem,
        baseline_tag=BASELINE_TAG,
        alignments=alignments,
    )


def judge_alignments(
    ctx: ServiceContext, who: Principal, experiment_id: str, keys: list[str]
) -> list[dict[str, Any]]:
    """For each key an LLM judge scored in this experiment: that judge key's agreement with
    people, over every run both scored (people rarely label an experiment's own runs)."""
    shown = []
    for key in keys[:MAX_ALIGNED_KEYS]:
        here = alignment.judge_alignment(
            ctx, who, alignment.AlignmentQuery(judge_key=key, project_id=experiment_id)
        )
        if not here["judge_models"]:
            continue  # not an LLM judge's key here (a code evaluator, or people)
        shown.append(alignment.judge_alignment(ctx, who, alignment.AlignmentQuery(judge_key=key)))
    return shown


@router.get("/experiments/{ref}")
def experiment_page(
    request: Request,
    ref: str,
    session: web.SignedIn,
    after: str | None = None,
    failing: str | None = None,
    key: str | None = None,
    pass_mark: Annotated[float, Query(alias="pass")] = score_marks.PASS_MARK,
) -> Response:
    """``failing=1`` shows only the runs that failed (``key=...``: on that key); ``pass``: the
    pass mark of 0-1 scores (default 0.5)."""
    shown = ResultFilter(
        failing=(failing or "").lower() in ("1", "true", "on", "yes"),
        key=key or None,
        pass_mark=pass_mark,
    )
    return _experiment_page(request, session, ref, after, shown=shown)


@router.post("/experiments/{ref}/tags")
def experiment_tag(request: Request, ref: str, session: web.SignedIn, form: web.Form) -> Response:
    """Put a tag (``main`` by default) on the experiment; it leaves the dataset's other one."""
    ctx = web.ctx_of(request)
    e = experiments.get_experiment(ctx, session.principal, ref)
    try:
        experiments.tag_experiment(
            ctx, session.principal, e.id, form.get("tag", "").strip() or BASELINE_TAG
        )
    except InvalidInput as exc:
        return _experiment_page(request, session, e.id, problem=exc.message)
    return web.redirect(experiment_url(e))


@router.post("/experiments/{ref}/tags/{tag}/remove")
def experiment_untag(
    request: Request, ref: str, tag: str, session: web.SignedIn, form: web.Form
) -> Response:
    """Take a tag off the experiment (e.g. a `main` baseline that should no longer gate)."""
    ctx = web.ctx_of(request)
    e = experiments.untag_experiment(ctx, session.principal, ref, tag)
    return web.redirect(experiment_url(e))
