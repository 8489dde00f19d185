"""/api/v1/judge-alignment: a judge's agreement with people on the runs both scored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from goldloop.http.deps import Ctx, Who
from goldloop.http.params import parse_time
from goldloop.services import alignment as svc

router = APIRouter(tags=["feedback"])


@router.get("/judge-alignment")
def judge_alignment(
    ctx: Ctx,
    who: Who,
    judge_key: str = Query(description="The feedback key the judge writes."),
    human_key: str | None = Query(
        default=None, description="The key people label (default: the judge's key)."
    ),
    rule_id: str | None = Query(default=None, description="Only this online rule's judge."),
    evaluator: str | None = Query(default=None, description="Only this evaluator's scores."),
    project_id: str | None = Query(default=None, description="Only runs of this project."),
    since: str | None = Query(default=None, description="Feedback created at or after."),
    until: str | None = Query(default=None, description="Feedback created before."),
    threshold: float = Query(
        default=0.5, description="A judge score at or above this passes (pass/fail keys)."
    ),
    confidence: float = Query(default=0.95, gt=0.5, lt=1, description="Interval level."),
    include_api: bool = Query(
        default=False, description="Count feedback with source `api` as people's labels too."
    ),
) -> dict[str, Any]:
    """TPR and TNR (Wilson intervals), accuracy, Cohen's kappa (with its interval) and the
    confusion matrix for pass/fail keys; Pearson (Fisher interval), Spearman and the mean
    difference for continuous ones; per judge identity (evaluator, model, prompt hash); the
    disagreements (largest first); and the judge's pass rate with the rate corrected for its
    known errors (Rogan-Gladen)."""
    sources = svc.HUMAN_SOURCES + (svc.OPTIONAL_HUMAN_SOURCES if include_api else ())
    return svc.judge_alignment(
        ctx,
        who,
        svc.AlignmentQuery(
            judge_key=judge_key,
            human_key=human_key,
            rule_id=rule_id,
            evaluator=evaluator,
            project_id=project_id,
            since=parse_time("since", since),
            until=parse_time("until", until),
            threshold=threshold,
            confidence=confidence,
            human_sources=sources,
        ),
    )
