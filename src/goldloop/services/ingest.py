"""Run ingestion: validated patches -> one batched, durable upsert per request.

Used by the native batch API, the OTLP receiver and trace import. Returns only after commit, so
what the API acknowledges is durable. Projects are created on first use, in the same transaction.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.domain.errors import InvalidInput, Overloaded
from goldloop.domain.prices import PriceTable
from goldloop.domain.run_items import RunPatch, parse_batch
from goldloop.domain.run_merge import merge, truncate_payloads
from goldloop.domain.safe_values import scrub
from goldloop.services import payload_compression, redaction
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import run_writes

log = logging.getLogger("goldloop.ingest")

DEFAULT_PROJECT = "default"
MAX_PROJECT_NAME = 200
# PostgreSQL: deadlock / serialization failure; the whole batch is retried (it is idempotent).
_RETRYABLE_SQLSTATES = ("40P01", "40001")
_RETRIES = 8


@functools.lru_cache(maxsize=4)
def cached_price_table(user_file: str) -> PriceTable:
    """The built-in prices overlaid with ``user_file`` if given (loaded once per process)."""
    return PriceTable.load(user_file or None)


def price_table(ctx: ServiceContext) -> PriceTable:
    """The built-in prices overlaid with the user's file (loaded once; errors name the file)."""
    return cached_price_table(ctx.settings.model_prices_file)


def project_name(*candidates: Any) -> str:
    """The first usable project name among the candidates, else ``default``."""
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            name: str = scrub(candidate.strip())
            if len(name) > MAX_PROJECT_NAME:
                raise InvalidInput(
                    f"project name is longer than {MAX_PROJECT_NAME} characters",
                    details={"field": "project"},
                )
            return name
    return DEFAULT_PROJECT


def parse_json_body(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None


def parse_native(doc: Any) -> tuple[list[RunPatch], str | None]:
    """A ``POST /api/v1/runs/batch`` document, validated whole: its patches and its ``project``."""
    if not isinstance(doc, Mapping):
        raise InvalidInput("the body must be a JSON object with a 'runs' array")
    if "runs" not in doc:
        raise InvalidInput(
            "the body needs a 'runs' array", details=[{"field": "runs", "problem": "required"}]
        )
    patches = parse_batch(doc["runs"])
    given = doc.get("project")
    if given is not None and not isinstance(given, str):
        raise InvalidInput(
            "'project' must be a project name (string)", details={"field": "project"}
        )
    return patches, given


def ingest_native(
    ctx: ServiceContext,
    who: Principal,
    doc: Any,
    *,
    header_project: str | None = None,
    body_bytes: int | None = None,
) -> int:
    """``POST /api/v1/runs/batch``: validate the whole batch, then write it. Returns item count."""
    patches, given = parse_native(doc)
    write_patches(
        ctx,
        who,
        patches,
        default_project=project_name(given, header_project),
        body_bytes=body_bytes,
    )
    return len(patches)


def ingest_native_body(
    ctx: ServiceContext, who: Principal, body: bytes, *, header_project: str | None = None
) -> int:
    """``ingest_native`` from the request's JSON body. With ingest worker processes the batch
    is parsed, validated, merged and encoded there, and only inserted here when all its runs
    are new."""
    pool = ctx.ingest_pool
    if pool is not None and redaction.active(ctx, who.workspace_id):
        pool = None  # the workers encode runs as stored: redaction runs here, in write_patches
    dictionary = payload_compression.worker_dictionary(ctx) if pool is not None else None
    prepared = pool.prepare_native(body, dictionary) if pool is not None else None
    if prepared is not None:
        runs, given = prepared
        if write_new_runs(ctx, who, runs, default_project=project_name(given, header_project)):
            return len(runs.encoded)
        # else some are stored already (a retried batch, or a run's end after its start)
    doc = parse_json_body(body)
    return ingest_native(ctx, who, doc, header_project=header_project, body_bytes=len(body))


def write_patches(
    ctx: ServiceContext,
    who: Principal,
    patches: Sequence[RunPatch],
    *,
    default_project: str,
    body_bytes: int | None = None,
) -> int:
    """Write patches (each may name its own project); returns the number of distinct runs."""
    if not patches:
        return 0
    names = [project_name(p.project, default_project) for p in patches]
    redaction.redact_patches(ctx, who.workspace_id, names, patches)  # before anything is stored
    limit = ctx.settings.max_run_payload_bytes
    if _may_hold_oversized(body_bytes, limit):
        for patch in patches:
            truncate_payloads(patch, limit)
    prices = price_table(ctx)
    now = ctx.clock()

    def merge_fn(
        existing: Mapping[str, Any] | None, patch: RunPatch, project_id: str
    ) -> dict[str, Any]:
        return merge(existing, patch, project_id=project_id, now=now, prices=prices)

    def write(conn: Connection) -> int:
        ids = run_writes.ensure_projects(conn, who.workspace_id, names, now)
        items = [(ids[name], patch) for name, patch in zip(names, patches, strict=True)]
        return run_writes.upsert_runs(conn, who.workspace_id, items, merge_fn)

    for attempt in range(_RETRIES):
        try:
            written = ctx.db.write(write)
            ctx.telemetry.ingested(written)
            payload_compression.after_ingest(ctx, written)
            return written
        except (run_writes.InsertRace, sa.exc.DBAPIError) as exc:
            reason = _collision(exc)
            if reason is None:
                raise
        log.info("run batch retried (attempt %d): %s", attempt + 1, reason)
        time.sleep(random.uniform(0, 0.02 * (attempt + 1)))  # de-synchronise the retries
    raise Overloaded("concurrent writes to the same runs kept colliding; retry shortly")


def _collision(exc: Exception) -> str | None:
    """Why a batch write lost to a concurrent one (the batch is idempotent: retry it whole), or
    None for any other failure."""
    if isinstance(exc, run_writes.InsertRace):
        return str(exc)
    sqlstate = str(getattr(getattr(exc, "orig", None), "sqlstate", None))
    return sqlstate if sqlstate in _RETRYABLE_SQLSTATES else None


def _may_hold_oversized(body_bytes: int | None, limit: int) -> bool:
    """Whether a field may be over the payload limit: a smaller body cannot hold a larger one."""
    return body_bytes is None or body_bytes > limit


@dataclass(frozen=True)
class NewRuns:
    """A request's runs merged and encoded ahead, as if none of them were stored yet (in an
    ingest worker process): writing them only fills in workspace, project, seq and time."""

    projects: list[str | None]
    """Each run's own project name (from its patch), before the header and the default."""
    encoded: list[list[Any]]
    """Each run's INSERT parameters (``run_writes.encode_new_run``)."""


def prepare_new_runs(
    patches: Sequence[RunPatch],
    *,
    max_payload_bytes: int,
    prices: PriceTable,
    body_bytes: int | None = None,
) -> NewRuns:
    """What ``write_patches`` would insert for these patches if none of their runs existed:
    the same truncation, merge and encoding. Pure (no database, no clock)."""
    projects: list[str | None] = []
    encoded: list[list[Any]] = []
    check = _may_hold_oversized(body_bytes, max_payload_bytes)
    for patch in patches:
        if check:
            truncate_payloads(patch, max_payload_bytes)
        row = merge(None, patch, project_id="", now=0, prices=prices)
        projects.append(patch.project)
        encoded.append(run_writes.encode_new_run(patch.id, row))
    return NewRuns(projects, encoded)


def write_new_runs(
    ctx: ServiceContext,
    who: Principal,
    runs: NewRuns,
    *,
    default_project: str,
    override_project: str | None = None,
) -> bool:
    """Insert runs from ``prepare_new_runs`` in one transaction, each in its own project, else
    ``default_project`` (``override_project``, if given, wins over both). False, with no run
    written, when one of them is stored already (a retried request) or another writer raced
    for it: then their patches must go through ``write_patches``, which merges."""
    if not runs.encoded:
        return True
    names = [project_name(override_project, own, default_project) for own in runs.projects]
    now = ctx.clock()

    def write(conn: Connection) -> bool:
        ids = run_writes.ensure_projects(conn, who.workspace_id, names, now)
        project_ids = [ids[name] for name in names]
        return run_writes.insert_new_runs(conn, who.workspace_id, project_ids, runs.encoded, now)

    try:
        inserted = ctx.db.write(write)
    except (run_writes.InsertRace, sa.exc.DBAPIError) as exc:
        if _collision(exc) is None:
            raise
        return False
    if inserted:
        ctx.telemetry.ingested(len(runs.encoded))
        payload_compression.after_ingest(ctx, len(runs.encoded))
    return inserted
