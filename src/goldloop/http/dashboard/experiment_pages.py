"""Experiments: the list (all, or one dataset's) and the comparison of a baseline with up to four
candidates (statistics per key, then examples side by side). One experiment's page, with its
results and tagging, is ``experiment_detail``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from goldloop.domain.errors import InvalidInput, NotFound
from goldloop.domain.example_labels import example_label
from goldloop.http.dashboard import experiment_compare, web
from goldloop.services import (
    datasets,
    experiment_references,
    experiment_results,
    experiments,
    pairwise_reviews,
)
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.datasets import DatasetInfo
from goldloop.services.experiment_results import ResultRow
from goldloop.services.experiments import Experiment
from goldloop.services.sessions import Session

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)

PAGE_SIZE = 50  # experiments per list page
COMPARE_PAGE = 50  # examples per comparison page
MAX_COMPARED = 5  # experiments on one comparison page: a baseline and up to four candidates
LETTERS = "ABCDE"
BASELINE_TAG = "main"


def experiment_url(e: Experiment) -> str:
    return f"/experiments/{web.seg(e.id)}"


def compare_url(baseline: str, candidate: str | Sequence[str], **params: Any) -> str:
    """The comparison of ``baseline`` (A) with one candidate or several (B, C, ...)."""
    candidates = [candidate] if isinstance(candidate, str) else list(candidate)
    pairs = [("baseline", baseline), *(("candidate", c) for c in candidates)]
    pairs += [(k, v) for k, v in params.items() if v not in (None, "")]
    return f"/experiments/compare?{urlencode(pairs)}"


def baseline_of(ctx: ServiceContext, who: Principal, dataset_id: str | None) -> str | None:
    """The id of the dataset's experiment tagged ``main``, if any."""
    if dataset_id is None:
        return None
    try:
        return experiments.tagged_experiment(ctx, who, dataset_id, BASELINE_TAG).id
    except NotFound:
        return None


def _list_page(
    request: Request,
    session: Session,
    info: DatasetInfo | None,
    order: str | None,
    after: str | None,
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    oldest = order == "asc"
    page = experiments.list_experiments(
        ctx,
        who,
        dataset=info.row.id if info else None,
        limit=PAGE_SIZE,
        cursor=after,
        oldest_first=oldest,
    )
    items = page.items
    mains = {
        ds: baseline_of(ctx, who, ds)
        for ds in sorted({e.dataset_id for e in items if e.dataset_id})
    }
    base = f"/datasets/{web.seg(info.row.id)}/experiments" if info else "/experiments"
    rows = [
        {
            "e": e,
            "scores": {s.key: s for s in e.scores},
            "main": mains.get(e.dataset_id) if e.dataset_id else None,
        }
        for e in items
    ]
    ids = [e.id for e in items]
    on_page_main = next((m for m in mains.values() if m in ids), None)
    baseline = on_page_main or (ids[1] if len(ids) > 1 else None)
    candidate = next((i for i in ids if i != baseline), None)
    return web.render(
        request,
        "experiments.html",
        info=info,
        base=base,
        rows=rows,
        keys=sorted({s.key for e in items for s in e.scores}),
        oldest=oldest,
        flip_url=web.query(base, {"order": None if oldest else "asc"}),
        first_url=web.query(base, {"order": "asc" if oldest else None}) if after else None,
        next_url=web.query(base, {"order": "asc" if oldest else None, "after": page.next_cursor})
        if page.next_cursor
        else None,
        checked_baseline=baseline,
        checked_candidate=candidate,
        compare_url=compare_url,
        max_compared=MAX_COMPARED,
    )


@router.get("/experiments")
def experiment_list(
    request: Request, session: web.SignedIn, order: str | None = None, after: str | None = None
) -> Response:
    return _list_page(request, session, None, order, after)


@router.get("/datasets/{ref}/experiments")
def dataset_experiments(
    request: Request,
    ref: str,
    session: web.SignedIn,
    order: str | None = None,
    after: str | None = None,
) -> Response:
    info = datasets.get(web.ctx_of(request), session.principal, ref)
    return _list_page(request, session, info, order, after)


def _candidates(baseline: str | None, candidate: Sequence[str]) -> tuple[str, list[str]]:
    chosen = [c for c in (c.strip() for c in candidate) if c]
    if not baseline or not chosen:
        raise InvalidInput(
            "choose a baseline (A) and one to four candidates (B, C, ...): tick them in an "
            "experiments list, or follow “compare with main” on an experiment's page",
            details={"field": "baseline" if not baseline else "candidate"},
        )
    if len(chosen) + 1 > MAX_COMPARED:
        raise InvalidInput(
            f"compare at most {MAX_COMPARED} experiments at once: a baseline and up to "
            f"{MAX_COMPARED - 1} candidates ({len(chosen)} candidates were given)",
            details={"field": "candidate"},
        )
    return baseline, chosen


@router.get("/experiments/compare")
def experiment_comparison(
    request: Request,
    session: web.SignedIn,
    baseline: str | None = None,
    candidate: Annotated[list[str] | None, Query()] = None,
    show: str = "all",
    page: int = 1,
    alpha: float = 0.05,
    lower: str = "",
) -> Response:
    """``candidate`` may repeat (up to four: five experiments in all); each is compared with
    the baseline. ``lower``: comma-separated score keys where lower is better (e.g.
    ``latency,cost``)."""
    ctx = web.ctx_of(request)
    who = session.principal
    lower_keys = [k.strip() for k in lower.split(",") if k.strip()]
    base_ref, candidate_refs = _candidates(baseline, candidate or [])
    cmps = [
        experiment_results.compare_experiments(
            ctx, who, base_ref, ref, alpha=alpha, lower_is_better=lower_keys
        )
        for ref in candidate_refs
    ]
    base = cmps[0].baseline
    if any(c.candidate.id == base.id for c in cmps):
        raise InvalidInput(
            "the baseline is also a candidate; choose different experiments",
            details={"field": "candidate"},
        )
    candidate_ids = [c.candidate.id for c in cmps]
    if len(set(candidate_ids)) != len(candidate_ids):
        raise InvalidInput(
            "the same candidate is given twice; choose different experiments",
            details={"field": "candidate"},
        )
    rows = experiment_compare.merged_rows(
        [experiment_compare.example_rows(c.comparisons, c.examples) for c in cmps]
    )
    tally = experiment_compare.counts(rows)
    shown = show if show in experiment_compare.SHOWS else "all"
    chosen = rows if shown == "all" else [r for r in rows if r.outcome == shown]
    pages = max(1, -(-len(chosen) // COMPARE_PAGE))
    number = min(max(page, 1), pages)
    start = (number - 1) * COMPARE_PAGE
    shown_rows = chosen[start : start + COMPARE_PAGE]
    ids = [r.example_id for r in shown_rows]

    def results(experiment_id: str, runs_of: Mapping[str, Sequence[str]]) -> list[ResultRow]:
        run_ids = [run_id for example in ids for run_id in runs_of.get(example, ())]
        return experiment_results.results_of_runs(ctx, who, experiment_id, run_ids)

    experiment_compare.attach(
        shown_rows,
        results(base.id, cmps[0].runs_of[0]),
        [results(c.candidate.id, c.runs_of[1]) for c in cmps],
    )
    alpha_param = None if alpha == 0.05 else alpha
    kept = {"alpha": alpha_param, "lower": ",".join(lower_keys)}

    def url(**changes: Any) -> str:
        params: dict[str, Any] = {"show": None if shown == "all" else shown, **kept}
        params.update(changes)
        return compare_url(base.id, candidate_ids, **params)

    def as_baseline(new_base: str) -> str:
        """This comparison with ``new_base`` as A and the old baseline among the candidates."""
        others = [base.id if i == new_base else i for i in candidate_ids]
        return compare_url(new_base, others, **kept)

    return web.render(
        request,
        "experiment_compare.html",
        base=base,
        cmps=cmps,
        letters=LETTERS,
        stats=[list(zip(c.comparisons, c.verdicts, strict=True)) for c in cmps],
        regressions=[[v.key for v in c.verdicts if v.regression] for c in cmps],
        repeated=[any(k.noise is not None for k in c.comparisons) for c in cmps],
        rows=shown_rows,
        references=experiment_references.reference_outputs(ctx, who, base, ids),
        label=example_label,
        first_index=start,
        tally=tally,
        show=shown,
        show_url=lambda s: url(show=None if s == "all" else s),
        prev_url=url(page=number - 1) if number > 1 else None,
        next_url=url(page=number + 1) if number < pages else None,
        page=number,
        pages=pages,
        as_baseline=as_baseline,
        alpha=cmps[0].alpha,
        lower=", ".join(lower_keys),
        experiment_url=experiment_url,
        max_compared=MAX_COMPARED,
        preference=pairwise_reviews.for_experiments(ctx, who, base.id, candidate_ids[0])
        if len(cmps) == 1
        else None,
    )
