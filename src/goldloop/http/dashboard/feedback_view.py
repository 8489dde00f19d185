"""What the trace page's feedback section shows besides the feedback itself: the declared keys
(score configs) with their forms, each feedback's history, the feedback deleted from the run,
and the marks on runs that have feedback."""

from __future__ import annotations

from typing import Any

import orjson

from goldloop.services import feedback
from goldloop.services.context import Principal, ServiceContext
from goldloop.store.feedback import FeedbackRow
from goldloop.store.feedback_history import HistoryRow


def edit_text(correction: Any) -> str:
    """A correction as the edit form shows it: text as it is, anything else as JSON."""
    if correction is None:
        return ""
    if isinstance(correction, str):
        return correction
    return orjson.dumps(correction, option=orjson.OPT_INDENT_2).decode()


def section(
    ctx: ServiceContext, who: Principal, run_id: str, rows: list[FeedbackRow]
) -> dict[str, Any]:
    specs = feedback.list_keys(ctx, who)
    history: dict[str, list[HistoryRow]] = {}
    for h in feedback.histories(ctx, who, [f.id for f in rows]) if rows else []:
        history.setdefault(h.feedback_id, []).append(h)
    return {
        "score_configs": specs,
        "declared_keys": [s.key for s in specs],
        "feedback_keys": [s.key for s in specs],
        "feedback_history": history,
        "deleted_feedback": feedback.deleted_from_run(ctx, who, run_id),
        "correction_texts": {f.id: edit_text(f.correction) for f in rows},
    }


def marks(ctx: ServiceContext, who: Principal, run_ids: list[str]) -> dict[str, int]:
    """How much feedback each run has, for the runs table and the trace tree."""
    return feedback.counts(ctx, who, run_ids) if run_ids else {}
