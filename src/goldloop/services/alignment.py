"""Judge alignment: how far a judge's scores agree with people's on the same runs.

The judge's scores are feedback from machine sources (``model``, ``rule``,
``online-evaluator``), optionally only one rule's or one evaluator's; people's are feedback from
``human`` and ``app`` sources (``api`` too when asked: scripts post with it). Each run counts once
per side, with its newest score. A pass/fail human key gives TPR, TNR, accuracy, kappa and the
confusion matrix (a continuous judge score passes at ``threshold``); a continuous one gives
correlations. The same read gives the judge's pass rate on all the runs it scored, and, for a
pass/fail key, that rate corrected for the judge's known errors. Figures are also given per judge
identity (evaluator, model, prompt hash), so a judge that changed shows as two.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from goldloop.domain import agreement
from goldloop.domain.errors import InvalidInput, NotFound
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import alignment as store
from goldloop.store import projects as project_store

JUDGE_SOURCES = ("model", "rule", "online-evaluator")
HUMAN_SOURCES = ("human", "app")
OPTIONAL_HUMAN_SOURCES = ("api",)
MAX_SCORES = 50_000  # newest scores read per side
MAX_DISAGREEMENTS = 100


@dataclass(frozen=True, slots=True)
class AlignmentQuery:
    judge_key: str
    human_key: str | None = None  # default: the judge's key
    rule_id: str | None = None
    evaluator: str | None = None
    project_id: str | None = None
    since: int | None = None
    until: int | None = None
    threshold: float = 0.5
    confidence: float = 0.95
    human_sources: tuple[str, ...] = HUMAN_SOURCES


def _check(q: AlignmentQuery) -> None:
    if not q.judge_key:
        raise InvalidInput("judge_key is required", details={"field": "judge_key"})
    if not 0.5 < q.confidence < 1:
        raise InvalidInput("confidence must be between 0.5 and 1", details={"field": "confidence"})
    allowed = HUMAN_SOURCES + OPTIONAL_HUMAN_SOURCES
    bad = [s for s in q.human_sources if s not in allowed]
    if bad or not q.human_sources:
        raise InvalidInput(
            f"human_sources must be some of {', '.join(allowed)}",
            details={"field": "human_sources"},
        )
    if q.since is not None and q.until is not None and q.since >= q.until:
        raise InvalidInput("since must be before until", details={"field": "since"})


def _identity(s: store.Score) -> tuple[str | None, str | None, str | None]:
    info = s.source_info or {}

    def text(name: str) -> str | None:
        value = info.get(name)
        return value if isinstance(value, str) else None

    # Goldloop's judges record ``judge_model``; other clients are asked for ``model``.
    return text("evaluator"), text("judge_model") or text("model"), text("prompt_hash")


def _newest_per_run(rows: Iterable[store.Score]) -> dict[str, store.Score]:
    newest: dict[str, store.Score] = {}
    for row in rows:  # newest first
        newest.setdefault(row.run_id, row)
    return newest


def _is_binary(values: Iterable[float]) -> bool:
    return all(v in (0.0, 1.0) for v in values)


def _fit(
    pairs: Sequence[tuple[store.Score, store.Score]], q: AlignmentQuery, binary: bool
) -> agreement.BinaryAlignment | agreement.ContinuousAlignment:
    if binary:
        return agreement.binary_alignment(
            [(j.score >= q.threshold, h.score >= 0.5) for j, h in pairs], q.confidence
        )
    return agreement.continuous_alignment([(j.score, h.score) for j, h in pairs], q.confidence)


def _figures(
    pairs: Sequence[tuple[store.Score, store.Score]], q: AlignmentQuery, binary: bool
) -> dict[str, Any]:
    return _fit(pairs, q, binary).as_dict()


def judge_alignment(ctx: ServiceContext, who: Principal, q: AlignmentQuery) -> dict[str, Any]:
    _check(q)
    human_key = q.human_key or q.judge_key

    def read(conn: Any) -> tuple[list[store.Score], list[store.Score]]:
        if (
            q.project_id is not None
            and project_store.get(conn, who.workspace_id, q.project_id) is None
        ):
            raise NotFound(f"no project with id {q.project_id!r}")

        def side(key: str, sources: Sequence[str]) -> list[store.Score]:
            return store.scores(
                conn,
                who.workspace_id,
                key,
                sources,
                project_id=q.project_id,
                since=q.since,
                until=q.until,
                limit=MAX_SCORES,
            )

        judged = side(q.judge_key, JUDGE_SOURCES)
        labelled = side(human_key, q.human_sources)
        return judged, labelled

    judged_rows, labelled_rows = ctx.db.read(read)
    if q.rule_id is not None:
        judged_rows = [r for r in judged_rows if (r.source_info or {}).get("rule_id") == q.rule_id]
    if q.evaluator is not None:
        judged_rows = [r for r in judged_rows if _identity(r)[0] == q.evaluator]
    judged = _newest_per_run(judged_rows)
    labelled = _newest_per_run(labelled_rows)
    pairs = [(judged[run], labelled[run]) for run in judged if run in labelled]
    binary = _is_binary(h.score for _, h in pairs)

    by_judge: dict[tuple[str | None, str | None, str | None], list[tuple[Any, Any]]] = {}
    for j, h in pairs:
        by_judge.setdefault(_identity(j), []).append((j, h))

    disagreements: list[tuple[float, dict[str, Any]]] = []
    for j, h in pairs:
        differs = (j.score >= q.threshold) != (h.score >= 0.5) if binary else j.score != h.score
        if differs:
            entry = {
                "run_id": j.run_id,
                "trace_id": j.trace_id or h.trace_id,
                "judge_score": j.score,
                "human_score": h.score,
                "judge_comment": j.comment,
                "human_comment": h.comment,
            }
            disagreements.append((abs(j.score - h.score), entry))
    disagreements.sort(key=lambda d: -d[0])

    overall = _fit(pairs, q, binary) if pairs else None
    result: dict[str, Any] = {
        "judge_key": q.judge_key,
        "human_key": human_key,
        "rule_id": q.rule_id,
        "evaluator": q.evaluator,
        "project_id": q.project_id,
        "threshold": q.threshold,
        "confidence": q.confidence,
        "human_sources": list(q.human_sources),
        "judged_runs": len(judged),
        # the LLM judges (models) behind the judged scores, whether or not people labelled them
        "judge_models": sorted({m for m in (_identity(r)[1] for r in judged.values()) if m}),
        "labelled_runs": len(labelled),
        "n": len(pairs),
        "kind": "binary" if binary else "continuous",
        "alignment": overall.as_dict() if overall is not None else None,
        "by_judge": [
            {
                "evaluator": ident[0],
                "model": ident[1],
                "prompt_hash": ident[2],
                "alignment": _figures(group, q, binary),
            }
            for ident, group in sorted(by_judge.items(), key=lambda kv: -len(kv[1]))
        ],
        "disagreements": [d for _, d in disagreements[:MAX_DISAGREEMENTS]],
        "disagreements_total": len(disagreements),
        "truncated": len(judged_rows) >= MAX_SCORES or len(labelled_rows) >= MAX_SCORES,
        "pass_rate": None,
    }
    if isinstance(overall, agreement.BinaryAlignment):
        passed = sum(1 for j in judged.values() if j.score >= q.threshold)
        result["pass_rate"] = agreement.corrected_pass_rate(
            passed, len(judged), overall, q.confidence
        ).as_dict()
    return result
