"""/api/v1/experiments: experiments (projects the runner registers), their aggregate scores,
results, comparisons and per-dataset tags. See docs/experiments.md."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from goldloop.domain.clock import to_iso
from goldloop.http.deps import Ctx, Who
from goldloop.services import experiment_results as results_svc
from goldloop.services import experiments as svc
from goldloop.services import pairwise_reviews as pairwise_svc
from goldloop.services.experiment_results import ResultRow
from goldloop.services.experiments import Experiment

router = APIRouter(prefix="/experiments", tags=["experiments"])
LowerIsBetter = Annotated[
    tuple[str, ...], Query(description="A key where lower scores are better (repeatable).")
]


class ExperimentIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=200)
    dataset: str | None = Field(default=None, description="Dataset id or name.")
    dataset_version: int | None = Field(
        default=None, description="The version the experiment read (default: the newest)."
    )
    repetitions: int = Field(default=1, ge=1)
    evaluators: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] | None = None
    description: str | None = None


class KeyScoreOut(BaseModel):
    count: int = Field(description="Feedback with this key on the experiment's root runs.")
    n: int = Field(description="Of those, the ones with a score.")
    mean: float | None = Field(description="Mean score (for binary keys: the pass rate).")
    binary: bool = Field(description="Every score is 0 or 1.")


class ExperimentOut(BaseModel):
    id: str
    name: str
    description: str | None
    created_at: str | None
    dataset_id: str | None
    dataset: str | None = Field(description="The dataset's current name.")
    dataset_version: int | None
    repetitions: int | None
    evaluators: list[str]
    metadata: dict[str, Any]
    tags: list[str]
    run_count: int = Field(description="Root runs (target calls).")
    error_count: int = Field(description="Root runs that failed.")
    scores: dict[str, KeyScoreOut] = Field(description="Aggregates per feedback key.")

    @classmethod
    def of(cls, e: Experiment) -> ExperimentOut:
        return cls(
            id=e.id,
            name=e.name,
            description=e.project.description,
            created_at=to_iso(e.created_at),
            dataset_id=e.dataset_id,
            dataset=e.dataset,
            dataset_version=e.dataset_version,
            repetitions=e.repetitions,
            evaluators=e.evaluators,
            metadata=e.metadata,
            tags=e.tags,
            run_count=e.run_count,
            error_count=e.error_count,
            scores={
                s.key: KeyScoreOut(count=s.count, n=s.n, mean=s.mean, binary=s.binary)
                for s in e.scores
            },
        )


class ExperimentList(BaseModel):
    items: list[ExperimentOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page.")


class ResultRowOut(BaseModel):
    run_id: str
    trace_id: str
    example_id: str
    repetition: int
    inputs: Any
    outputs: Any
    error: str | None
    latency_ms: float | None
    start_time: str | None
    scores: dict[str, float | bool | None] = Field(description="The first score of each key.")
    results: list[dict[str, Any]] = Field(
        description="Every score of the run: key, score, value, comment, evaluator provenance."
    )
    reference_hash: str | None = Field(
        default=None,
        description="Fingerprint of the example's reference outputs when the run was made "
        "(how a comparison tells an edited reference from a regression).",
    )
    cluster: str | None = Field(
        default=None, description="The conversation, session or source trace of the example."
    )

    @classmethod
    def of(cls, r: ResultRow) -> ResultRowOut:
        return cls(
            run_id=r.run_id,
            trace_id=r.trace_id,
            example_id=r.example_id,
            repetition=r.repetition,
            inputs=r.inputs,
            outputs=r.outputs,
            error=r.error,
            reference_hash=r.reference_hash,
            cluster=r.cluster,
            latency_ms=r.latency_ms,
            start_time=to_iso(r.start_time) if r.start_time is not None else None,
            scores=r.scores,
            results=r.results,
        )


class ResultsOut(BaseModel):
    experiment: ExperimentOut
    items: list[ResultRowOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page.")


class ComparisonOut(BaseModel):
    baseline: ExperimentOut
    candidate: ExperimentOut
    alpha: float
    comparisons: list[dict[str, Any]] = Field(
        description="Per shared key: KeyComparison.to_dict() plus its `verdict` "
        "(NaN as null); see docs/statistics.md."
    )
    human_preference: dict[str, Any] | None = Field(
        default=None,
        description="From the newest pairwise review queue made from these two experiments: "
        "win rate of B over A (ties count half) with its interval, the tie share, the sign "
        "test and n judged pairs (see docs/annotation-queues.md); null without one.",
    )


class TagOut(BaseModel):
    experiment: ExperimentOut
    previous: str | None = Field(description="The experiment the tag was taken from, if any.")


def _finite(value: Any) -> Any:
    """JSON has no NaN: undefined statistics (no pairs) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@router.post(
    "",
    status_code=201,
    response_model=ExperimentOut,
    responses={200: {"model": ExperimentOut, "description": "An existing project became it"}},
)
def register_experiment(
    body: ExperimentIn, ctx: Ctx, who: Who, response: Response
) -> ExperimentOut:
    """Register an experiment (the runner does, when it starts). An existing project with this
    name becomes the experiment (200)."""
    new = svc.NewExperiment(
        name=body.name,
        dataset=body.dataset,
        dataset_version=body.dataset_version,
        repetitions=body.repetitions,
        evaluators=body.evaluators,
        metadata=body.metadata,
        description=body.description,
    )
    experiment, created = svc.register(ctx, who, new)
    if not created:
        response.status_code = 200
    return ExperimentOut.of(experiment)


@router.get("", response_model=ExperimentList)
def list_experiments(
    ctx: Ctx,
    who: Who,
    dataset: str | None = Query(default=None, description="Only experiments on this dataset."),
    tag: str | None = Query(default=None, description="Only the experiment(s) with this tag."),
    limit: int = Query(default=100, ge=1, le=svc.MAX_LIMIT),
    cursor: str | None = Query(default=None),
) -> ExperimentList:
    """Newest first, with aggregate scores per feedback key."""
    page = svc.list_experiments(ctx, who, dataset=dataset, tag=tag, limit=limit, cursor=cursor)
    return ExperimentList(
        items=[ExperimentOut.of(e) for e in page.items], next_cursor=page.next_cursor
    )


@router.get("/compare", response_model=ComparisonOut)
def compare_experiments(
    ctx: Ctx,
    who: Who,
    baseline: str = Query(description="Experiment A (id or name), the reference."),
    candidate: str = Query(description="Experiment B (id or name)."),
    alpha: float = Query(default=0.05, gt=0, lt=1, description="Significance level."),
    min_effect: float = Query(default=0.0, ge=0, description="Ignore smaller drops."),
    lower_is_better: LowerIsBetter = (),
    examples: bool = Query(default=False, description="Include every example's scores."),
    exclude_errors: bool = Query(
        default=False,
        description="Leave out failed attempts instead of counting a candidate failure as the "
        "key's worst score.",
    ),
    only_unchanged: bool = Query(
        default=False,
        description="Compare keys on the examples whose references did not change between "
        "the two dataset versions, instead of refusing them.",
    ),
    allow_judge_change: bool = Query(
        default=False, description="Compare keys whose judge model or prompt differs."
    ),
) -> ComparisonOut:
    """Paired comparison of two experiments on the same dataset, one entry per shared key:
    one-sided test of "the candidate is worse", interval, errored examples on each side,
    minimum detectable effect, and `comparable: false` with the reason when the references
    or the judge changed (see docs/statistics.md)."""
    out = results_svc.compare_experiments(
        ctx, who, baseline, candidate, alpha=alpha, min_effect=min_effect,
        lower_is_better=lower_is_better,
        errors="exclude" if exclude_errors else "fail",
        changed="unchanged-only" if only_unchanged else "refuse",
        judge_change="allow" if allow_judge_change else "refuse",
    )  # fmt: skip
    items = [
        _finite({**c.to_dict(with_examples=examples), "verdict": v.to_dict()})
        for c, v in zip(out.comparisons, out.verdicts, strict=True)
    ]
    return ComparisonOut(
        baseline=ExperimentOut.of(out.baseline),
        candidate=ExperimentOut.of(out.candidate),
        alpha=out.alpha,
        comparisons=items,
        human_preference=pairwise_svc.for_experiments(ctx, who, out.baseline.id, out.candidate.id),
    )


@router.get("/{ref}", response_model=ExperimentOut)
def get_experiment(ref: str, ctx: Ctx, who: Who) -> ExperimentOut:
    """By id or by name."""
    return ExperimentOut.of(svc.get_experiment(ctx, who, ref))


@router.get("/{ref}/results", response_model=ResultsOut)
def experiment_results(
    ref: str,
    ctx: Ctx,
    who: Who,
    limit: int = Query(default=100, ge=1, le=results_svc.MAX_LIMIT),
    cursor: str | None = Query(default=None),
) -> ResultsOut:
    """One row per target call (example, repetition) with its scores, in the order stored;
    paginated (at most 1,000 rows a page)."""
    page = results_svc.experiment_results(ctx, who, ref, limit=limit, cursor=cursor)
    return ResultsOut(
        experiment=ExperimentOut.of(page.experiment),
        items=[ResultRowOut.of(r) for r in page.rows],
        next_cursor=page.next_cursor,
    )


@router.put("/{ref}/tags/{tag}", response_model=TagOut)
def tag_experiment(ref: str, tag: str, ctx: Ctx, who: Who) -> TagOut:
    """Tag the experiment (e.g. `main`). A tag is unique per dataset: it moves here from the
    experiment of the same dataset that had it."""
    move = svc.tag_experiment(ctx, who, ref, tag)
    return TagOut(experiment=ExperimentOut.of(move.experiment), previous=move.previous)


@router.delete("/{ref}/tags/{tag}", response_model=ExperimentOut)
def untag_experiment(ref: str, tag: str, ctx: Ctx, who: Who) -> ExperimentOut:
    return ExperimentOut.of(svc.untag_experiment(ctx, who, ref, tag))
