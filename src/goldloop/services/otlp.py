"""OTLP/HTTP ingestion: decode, map each span (or GenAI log event) onto a run patch, write.

Spans that cannot be read or mapped are rejected one by one (reported as ``partial_success``);
the rest of the request is written and acknowledged only after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from goldloop.domain.otel.decode import decode_traces
from goldloop.domain.otel.logs import decode_logs, logs_to_patches
from goldloop.domain.otel.mapping import span_to_patch
from goldloop.domain.run_items import RunPatch, screen
from goldloop.domain.safe_values import OutOfRange
from goldloop.services import ingest, payload_compression, redaction
from goldloop.services.context import Principal, ServiceContext

log = logging.getLogger("goldloop.otlp")

_MAX_LISTED = 5


@dataclass(frozen=True)
class OtlpResult:
    accepted: int
    rejected: int
    message: str


def _message(problems: list[str]) -> str:
    shown = "; ".join(problems[:_MAX_LISTED])
    more = len(problems) - _MAX_LISTED
    return shown + (f" (and {more} more)" if more > 0 else "")


def _write(
    ctx: ServiceContext,
    who: Principal,
    patches: list[RunPatch],
    header_project: str | None,
    body_bytes: int,
) -> None:
    project = header_project.strip() if header_project and header_project.strip() else None
    if project is not None:
        for patch in patches:
            patch.project = project
    # body_bytes is not passed on: inputs mapped from attributes (e.g. flattened OpenInference
    # messages) can be larger as JSON than the protobuf body, so every field is checked.
    del body_bytes
    ingest.write_patches(ctx, who, patches, default_project=ingest.DEFAULT_PROJECT)


def decode_and_map(
    body: bytes, encoding: str, *, c_decoder: bool = True
) -> tuple[list[RunPatch], list[str]]:
    """The request's spans as run patches, and why any span was rejected. Pure: it runs in the
    server process or in an ingest worker process (``ingest_pool``). ``c_decoder``: see the
    ``otlp_c_decoder`` setting."""
    spans, problems = decode_traces(body, encoding, c_decoder=c_decoder)
    patches: list[RunPatch] = []
    for span in spans:
        try:
            patches.append(screen(span_to_patch(span)))
        except Exception as exc:  # one odd span must not sink the batch: reject it, say why
            log.warning("could not map span %s: %r", span.span_id, exc)
            problems.append(f"span {span.name!r} ({span.span_id}): {type(exc).__name__}: {exc}")
    return patches, problems


def ingest_traces(
    ctx: ServiceContext,
    who: Principal,
    body: bytes,
    encoding: str,
    *,
    header_project: str | None = None,
) -> OtlpResult:
    """Project: header, else the resource's ``service.name``, else ``default``."""
    pool = ctx.ingest_pool
    if pool is not None and redaction.active(ctx, who.workspace_id):
        pool = None  # the workers encode runs as stored: redaction runs here, in write_patches
    dictionary = payload_compression.worker_dictionary(ctx) if pool is not None else None
    decoded = pool.decode(body, encoding, dictionary) if pool is not None else None
    patches: list[RunPatch] | None = None
    if decoded is not None:
        found, problems = decoded
        if not isinstance(found, ingest.NewRuns):
            patches = found
        elif ingest.write_new_runs(
            ctx, who, found, default_project=ingest.DEFAULT_PROJECT, override_project=header_project
        ):
            return OtlpResult(len(found.encoded), len(problems), _message(problems))
        # else some are stored already (a retried request): decode again here, and merge
    if patches is None:
        patches, problems = decode_and_map(body, encoding, c_decoder=ctx.settings.otlp_c_decoder)
    _write(ctx, who, patches, header_project, len(body))
    return OtlpResult(len(patches), len(problems), _message(problems))


def ingest_logs(
    ctx: ServiceContext,
    who: Principal,
    body: bytes,
    encoding: str,
    *,
    header_project: str | None = None,
) -> OtlpResult:
    """GenAI content events sent as logs, attached to their spans' runs."""
    records, problems = decode_logs(body, encoding)
    mapped, rejected, reasons = logs_to_patches(records)
    patches: list[RunPatch] = []
    for patch in mapped:
        try:
            patches.append(screen(patch))
        except OutOfRange as bad:
            rejected += 1
            reasons.append(f"log records of span {patch.id}: {bad}")
    _write(ctx, who, patches, header_project, len(body))
    return OtlpResult(
        len(records) - rejected, rejected + len(problems), _message(problems + reasons)
    )
