"""The lineage of an example made from a run: where it came from and which corrections set its
reference outputs.

The fields, as stored in the example's ``lineage`` JSON::

    run_id, trace_id, project_id   the run the example was made from
    feedback_ids                   all feedback on the run (oldest first), when last written
    correction_feedback_id         the correction the reference outputs come from now (or null)
    correction_feedback_ids        every correction that set the reference, oldest first; the
                                   last is ``correction_feedback_id``
    outputs_from                   "correction" or "run"

``correction_feedback_ids`` came later than the other fields: lineage written before it names
at most one correction in ``correction_feedback_id``, and ``correction_history`` reads both.
"""

from __future__ import annotations

from typing import Any


def from_run(
    *,
    run_id: str,
    trace_id: str,
    project_id: str,
    feedback_ids: list[str],
    correction_id: str | None,
) -> dict[str, Any]:
    """The lineage of an example just made from a run (its outputs from ``correction_id`` when
    there is one, else from the run)."""
    return {
        "run_id": run_id,
        "trace_id": trace_id,
        "project_id": project_id,
        "feedback_ids": feedback_ids,
        "correction_feedback_id": correction_id,
        "correction_feedback_ids": [correction_id] if correction_id is not None else [],
        "outputs_from": "correction" if correction_id is not None else "run",
    }


def correction_history(lineage: Any) -> list[str]:
    """Ids of the corrections that set the reference outputs, oldest first (also for lineage
    written before the history was kept, or given by hand on import)."""
    if not isinstance(lineage, dict):
        return []
    history = lineage.get("correction_feedback_ids")
    if isinstance(history, list):
        return [str(i) for i in history]
    current = lineage.get("correction_feedback_id")
    return [str(current)] if current is not None else []


def corrected(lineage: Any, correction_id: str, feedback_ids: list[str]) -> dict[str, Any]:
    """The lineage once a later correction has replaced the reference outputs: that correction
    is now the current one and is appended to the history; ``feedback_ids`` gains the feedback
    given since (earlier ids stay, in their order). Other fields are kept as they were."""
    old = dict(lineage) if isinstance(lineage, dict) else {}
    known = old.get("feedback_ids")
    seen = [str(i) for i in known] if isinstance(known, list) else []
    return {
        **old,
        "feedback_ids": seen + [i for i in feedback_ids if i not in seen],
        "correction_feedback_id": correction_id,
        "correction_feedback_ids": [*correction_history(lineage), correction_id],
        "outputs_from": "correction",
    }
