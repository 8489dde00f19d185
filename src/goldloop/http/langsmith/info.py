"""``GET /info``: tells the LangSmith SDK which ingestion path to use.

``batch_ingest_config`` must carry every key the SDK reads (a partial object makes its tracing
thread die silently), so it is always sent whole.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from goldloop._version import __version__
from goldloop.settings import Settings

router = APIRouter()

SIZE_LIMIT = 100
SIZE_LIMIT_BYTES = 20 * 1024 * 1024


def info_document(settings: Settings) -> dict[str, Any]:
    mode = settings.langsmith_ingest
    # The multipart examples endpoints (create/update/upsert with attachments): every SDK call
    # that switches on these flags is served (http/langsmith/example_uploads.py).
    flags: dict[str, Any] = {
        "dataset_examples_multipart_enabled": True,
        "examples_multipart_enabled": True,
    }
    if mode == "multipart-zstd":
        flags["zstd_compression_enabled"] = True
    return {
        # Goldloop's own version: below 0.8.10, so the SDK sends feedback with POST /feedback
        # (synchronous, errors visible) rather than inside the run queue.
        "version": __version__,
        "license_expiration_time": None,
        "batch_ingest_config": {
            "use_multipart_endpoint": mode != "batch",
            "size_limit": SIZE_LIMIT,
            "size_limit_bytes": min(SIZE_LIMIT_BYTES, settings.max_request_bytes),
            "scale_up_qsize_trigger": 200,
            "scale_up_nthreads_limit": 32,
            "scale_down_nempty_trigger": 4,
        },
        "instance_flags": flags,
    }


@router.get("/info")
def info(request: Request) -> dict[str, Any]:
    settings: Settings = request.app.state.ctx.settings
    return info_document(settings)
