"""Attachments as the dashboard shows them: images and audio inline, everything else a link.

The links are the same short-lived signed URLs the API gives out, relative to this origin, so the
page's Content-Security-Policy (``img-src 'self'``, media from ``'self'``) allows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from goldloop.domain import attachments as dom
from goldloop.services import attachments
from goldloop.services.context import Principal, ServiceContext


def files(
    ctx: ServiceContext, who: Principal, kind: str, owner_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """Each owner's attachments, ready for ``_attachments.html``."""
    found = attachments.of_owners(ctx, who, kind, owner_ids)
    return {
        owner: [
            {
                "name": row.name,
                "mime": row.mime_type,
                "size": row.size,
                "url": attachments.signed_url(ctx, "", row),
                "shown": "image"
                if dom.is_image(row.mime_type)
                else "audio"
                if dom.is_audio(row.mime_type)
                else "video"
                if dom.is_video(row.mime_type)
                else "link",
            }
            for row in rows
        ]
        for owner, rows in found.items()
    }


def example_files(
    ctx: ServiceContext, who: Principal, dataset_id: str, example_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """The attachments of a dataset's examples, by example id."""
    owners = {attachments.example_owner(dataset_id, i): i for i in example_ids}
    found = files(ctx, who, attachments.EXAMPLE, list(owners))
    return {owners[owner]: shown for owner, shown in found.items()}
