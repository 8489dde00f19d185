"""Attachment URLs in LangSmith reads: ``s3_urls`` on runs, ``attachment_urls`` on examples.

The SDK downloads each ``presigned_url`` with a plain GET and no API key, so the URLs are signed
and short-lived (``attachment_url_ttl_s``) and absolute: ``public_url`` when set, else the address
this request came in on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request

from goldloop.services import attachments
from goldloop.services.context import Principal, ServiceContext


def base_url(request: Request, ctx: ServiceContext) -> str:
    return (ctx.settings.public_url or str(request.base_url)).rstrip("/")


def add_to_runs(
    request: Request, ctx: ServiceContext, who: Principal, runs: Sequence[dict[str, Any]]
) -> None:
    urls = attachments.urls_of(
        ctx, who, attachments.RUN, [str(r["id"]) for r in runs], base_url(request, ctx)
    )
    for run in runs:
        run["s3_urls"] = urls.get(str(run["id"]), {})


def add_to_examples(
    request: Request, ctx: ServiceContext, who: Principal, examples: Sequence[dict[str, Any]]
) -> None:
    owners = [attachments.example_owner(str(e["dataset_id"]), str(e["id"])) for e in examples]
    urls = attachments.urls_of(ctx, who, attachments.EXAMPLE, owners, base_url(request, ctx))
    for owner, example in zip(owners, examples, strict=True):
        example["attachment_urls"] = urls.get(owner) or None
