"""LangSmith run ingestion: post/patch run objects -> native run items -> the ingest service.

Nothing here stores runs itself: every LangSmith run becomes a native item (CONTRACTS.md) and goes
through ``services.ingest``, so it is the same run Goldloop's own API reads back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from goldloop.domain.errors import InvalidInput, Unprocessable
from goldloop.domain.langsmith.ops import Batch
from goldloop.domain.langsmith.runs import (
    RunTypeError,
    WireError,
    convert_run,
    derive_lineage,
)
from goldloop.domain.run_items import parse_batch
from goldloop.services import attachments, ingest, projects
from goldloop.services.context import Principal, ServiceContext
from goldloop.services.langsmith import feedback as langsmith_feedback
from goldloop.store import run_rows

log = logging.getLogger("goldloop.langsmith")

DEFAULT_PROJECT = "default"


@dataclass(frozen=True)
class RunOp:
    """One LangSmith run object: the start (``post``) or the end (``patch``) of a run."""

    run: Mapping[str, Any]
    is_post: bool


def _project_names(ctx: ServiceContext, who: Principal, items: list[dict[str, Any]]) -> None:
    """Replace the LangSmith project (name or id) of each item by the native ``project``."""
    by_id: dict[str, str] = {}
    for item in items:
        name = item.pop("ls_project_name", None)
        project_id = item.pop("ls_project_id", None)
        if name is None and project_id is not None:
            if project_id not in by_id:
                try:
                    by_id[project_id] = projects.get(ctx, who, project_id).name
                except Exception:  # an unknown project id: keep the run, in the default project
                    log.info("langsmith run names unknown project id; using %r", DEFAULT_PROJECT)
                    by_id[project_id] = DEFAULT_PROJECT
            name = by_id[project_id]
        if name is not None:
            item["project"] = name


def _fill_lineage(ctx: ServiceContext, who: Principal, items: list[dict[str, Any]]) -> None:
    """Items without ``trace_id`` (manual ``create_run`` / ``update_run``): take it from the stored
    run, else (for a new run) derive it from the parent, as the SDK would have."""
    missing = [item for item in items if "trace_id" not in item]
    if not missing:
        return
    wanted = {item["id"] for item in missing} | {
        item["parent_id"] for item in missing if item.get("parent_id")
    }
    known = {
        row["id"]: row
        for row in ctx.db.read(lambda c: run_rows.rows_by_ids(c, who.workspace_id, list(wanted)))
    }
    for item in missing:
        stored = known.get(item["id"])
        if stored is not None:
            item["trace_id"] = stored["trace_id"]
            continue
        parent = known.get(item.get("parent_id") or "")
        if parent is None:
            derive_lineage(item, None, None)
        else:
            langsmith = (parent.get("extra") or {}).get("langsmith") or {}
            derive_lineage(item, parent["trace_id"], langsmith.get("dotted_order"))


def to_items(ctx: ServiceContext, who: Principal, ops: Sequence[RunOp]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for index, op in enumerate(ops):
        try:
            items.append(convert_run(op.run, is_post=op.is_post))
        except WireError as exc:
            raw_id = op.run.get("id") if isinstance(op.run, Mapping) else None
            which = f"run {index}" + (f" (id {raw_id!r})" if isinstance(raw_id, str) else "")
            # A run type outside LangSmith's set is a 422, as LangSmith answers: the SDK logs
            # the message once and does not retry the batch.
            error = Unprocessable if isinstance(exc, RunTypeError) else InvalidInput
            raise error(
                f"invalid {which}: {exc}",
                details=[{"index": index, "id": raw_id, "problem": str(exc)}],
            ) from None
    _project_names(ctx, who, items)
    _fill_lineage(ctx, who, items)
    return items


def ingest_runs(ctx: ServiceContext, who: Principal, ops: Sequence[RunOp]) -> int:
    """Convert and write LangSmith runs; returns how many operations were accepted."""
    items = to_items(ctx, who, ops)
    if not items:
        return 0
    ingest.write_patches(ctx, who, parse_batch(items), default_project=DEFAULT_PROJECT)
    return len(items)


def ingest_operations(ctx: ServiceContext, who: Principal, batch: Batch) -> int:
    """A ``/runs/multipart`` body: its runs (in body order), then its feedback parts."""
    ops = [RunOp(op.body, op.kind == "post") for op in batch.operations if op.kind != "feedback"]
    files: dict[str, list[attachments.Upload]] = {}
    for run_id, part in batch.attachments:
        files.setdefault(run_id, []).append(
            attachments.Upload(part.name, part.content_type, part.data)
        )
    for run_id, uploads in files.items():
        attachments.check(ctx, run_id, uploads)  # 400 / 413 before anything is written
    written = ingest_runs(ctx, who, ops)
    feedback = [op.body for op in batch.operations if op.kind == "feedback"]
    if feedback:
        langsmith_feedback.create_many(ctx, who, feedback)
    attachments.attach(ctx, who, attachments.RUN, files)
    return written
