"""The LangSmith-compatible REST API (see docs/langsmith.md and ref langsmith-wire.md).

Mounted twice, under ``/langsmith`` and ``/langsmith/api/v1``, because the SDK appends paths to
whatever endpoint it is given. Every route but ``/info`` needs a Goldloop API key in
``x-api-key``. The routes stay out of Goldloop's OpenAPI document.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from goldloop.http.deps import get_principal
from goldloop.http.langsmith import (
    annotation_queues,
    datasets,
    example_uploads,
    examples,
    feedback,
    feedback_configs,
    info,
    run_reads,
    runs,
    sessions,
    threads,
)

PREFIXES = ("/langsmith", "/langsmith/api/v1")
# The SDK's generated (v2) resources: ``/api/v2/...`` beside the endpoint, see ``threads``.
V2_PREFIX = "/langsmith"


def router() -> APIRouter:
    api = APIRouter(include_in_schema=False)
    api.include_router(info.router)
    authed = APIRouter(dependencies=[Depends(get_principal)])
    authed.include_router(runs.router)
    authed.include_router(run_reads.router)
    authed.include_router(sessions.router)
    authed.include_router(feedback.router)
    authed.include_router(feedback_configs.router)
    authed.include_router(annotation_queues.router)
    authed.include_router(datasets.router)
    authed.include_router(examples.router)
    authed.include_router(example_uploads.router)
    api.include_router(authed)
    return api


def v2_router() -> APIRouter:
    """The ``/api/v2/...`` routes the SDK's generated resources call, mounted at ``V2_PREFIX``."""
    api = APIRouter(include_in_schema=False, dependencies=[Depends(get_principal)])
    api.include_router(threads.router)
    return api
