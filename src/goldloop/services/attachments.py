"""Attachments of runs and examples: blobs on disk, rows in the database, signed URLs to read them.

Writing: every upload of a request is checked first (name, size: ``max_attachment_bytes`` is a
413), then its bytes go to the blob store, then its rows are written in one transaction. A blob
written for a request that then fails is unreferenced and harmless (the same bytes sent again
reuse it). Reading: a workspace reaches a blob only through its own rows, by owner or by digest;
a signed URL (``presigned_url``) carries its own grant, checked by HMAC and expiry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from goldloop.domain import attachments as dom
from goldloop.domain.errors import InvalidInput, NotFound, PayloadTooLarge
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import attachments as store
from goldloop.store.attachments import AttachmentRow
from goldloop.store.blobs import BlobStore

SWEEP_IDLE_S = 300.0
"""A blob written or reused this recently is never swept: its row may be on its way."""
SWEEP_CHUNK = 500

RUN = "run"
EXAMPLE = "example"
example_owner = store.example_owner
SIGNED_PATH = "/attachments/"

_keys: dict[Path, bytes] = {}


@dataclass(frozen=True, slots=True)
class Upload:
    """One file sent for an owner: its name, the client's Content-Type and its bytes."""

    name: str
    content_type: str | None
    data: bytes


def blobs(ctx: ServiceContext) -> BlobStore:
    return BlobStore(ctx.settings.attachments_path)


def _key(ctx: ServiceContext) -> bytes:
    root = ctx.settings.attachments_path.resolve()
    if root not in _keys:
        _keys[root] = BlobStore(root).signing_key()
    return _keys[root]


def check(ctx: ServiceContext, owner_id: str, uploads: Iterable[Upload]) -> None:
    """Refuse a bad name (400) or an oversized file (413) before anything is written."""
    limit = ctx.settings.max_attachment_bytes
    for upload in uploads:
        try:
            dom.check_name(upload.name)
        except dom.AttachmentError as exc:
            raise InvalidInput(f"{owner_id}: {exc}", details={"attachment": upload.name}) from None
        if len(upload.data) > limit:
            raise PayloadTooLarge(
                f"attachment {upload.name!r} of {owner_id} is {len(upload.data)} bytes, more than "
                f"the limit of {limit} (setting max_attachment_bytes / "
                "GOLDLOOP_MAX_ATTACHMENT_BYTES)",
                details={"attachment": upload.name, "limit_bytes": limit},
            )


def _rows(
    ctx: ServiceContext, kind: str, owner_id: str, uploads: Sequence[Upload]
) -> list[AttachmentRow]:
    store_ = blobs(ctx)
    now = ctx.clock()
    return [
        AttachmentRow(
            owner_kind=kind,
            owner_id=owner_id,
            name=u.name,
            sha256=store_.put(u.data),
            size=len(u.data),
            mime_type=dom.clean_mime(u.content_type),
            created_at=now,
        )
        for u in uploads
    ]


def attach(
    ctx: ServiceContext, who: Principal, kind: str, by_owner: Mapping[str, Sequence[Upload]]
) -> int:
    """Store each owner's uploads (a name already held is replaced); returns how many."""
    for owner_id, uploads in by_owner.items():
        check(ctx, owner_id, uploads)
    rows = [r for owner_id, ups in by_owner.items() for r in _rows(ctx, kind, owner_id, ups)]
    if rows:
        ctx.db.write(lambda c: store.put(c, who.workspace_id, rows))
    return len(rows)


def replace_on_update(
    ctx: ServiceContext,
    who: Principal,
    owner: str,
    operations: Mapping[str, Any] | None,
    uploads: Sequence[Upload],
) -> None:
    """An example update: with ``operations`` (``{"retain": [names], "rename": {old: new}}``)
    every attachment neither retained nor renamed is removed; then ``uploads`` are added.
    ``owner`` is ``example_owner(dataset id, example id)``."""
    label = owner.split(":", 1)[-1]
    check(ctx, label, uploads)
    retain: list[str] = []
    rename: dict[str, str] = {}
    if operations is not None:
        raw_retain = operations.get("retain") or []
        raw_rename = operations.get("rename") or {}
        if not isinstance(raw_retain, list) or not all(isinstance(n, str) for n in raw_retain):
            raise InvalidInput(f"{label}: attachments_operations.retain must be names")
        if not isinstance(raw_rename, dict) or not all(
            isinstance(v, str) for v in raw_rename.values()
        ):
            raise InvalidInput(f"{label}: attachments_operations.rename must map names")
        retain, rename = raw_retain, raw_rename
        for new in rename.values():
            check(ctx, label, [Upload(new, None, b"")])
    fresh = _rows(ctx, EXAMPLE, owner, uploads)

    def write(conn: Any) -> None:
        held = {
            r.name: r
            for r in store.of_owners(conn, who.workspace_id, EXAMPLE, [owner]).get(owner, [])
        }
        if operations is not None:
            missing = [n for n in [*retain, *rename] if n not in held]
            if missing:
                raise InvalidInput(
                    f"{label}: no attachment named {missing[0]!r} to retain or rename",
                    details={"attachment": missing[0]},
                )
            store.remove(
                conn, who.workspace_id, EXAMPLE, owner, [n for n in held if n not in retain]
            )
            renamed = [
                AttachmentRow(
                    EXAMPLE,
                    owner,
                    new,
                    held[old].sha256,
                    held[old].size,
                    held[old].mime_type,
                    held[old].created_at,
                )
                for old, new in rename.items()
            ]
            store.put(conn, who.workspace_id, renamed)
        store.put(conn, who.workspace_id, fresh)

    ctx.db.write(write)


def copy_from_run(
    ctx: ServiceContext, who: Principal, run_id: str, owner: str, names: Sequence[str] | None
) -> None:
    """Give an example (``owner``: ``example_owner(...)``) the attachments of its source run
    (all, or only ``names``)."""

    def write(conn: Any) -> None:
        held = store.of_owners(conn, who.workspace_id, RUN, [run_id]).get(run_id, [])
        wanted = [r for r in held if names is None or r.name in names]
        store.put(
            conn,
            who.workspace_id,
            [
                AttachmentRow(EXAMPLE, owner, r.name, r.sha256, r.size, r.mime_type, r.created_at)
                for r in wanted
            ],
        )

    ctx.db.write(write)


def of_owners(
    ctx: ServiceContext, who: Principal, kind: str, owner_ids: Sequence[str]
) -> dict[str, list[AttachmentRow]]:
    if not owner_ids:
        return {}
    return ctx.db.read(lambda c: store.of_owners(c, who.workspace_id, kind, owner_ids))


def signed_url(ctx: ServiceContext, base_url: str, row: AttachmentRow) -> str:
    expires = ctx.clock() // 1_000_000 + ctx.settings.attachment_url_ttl_s
    token = dom.sign(_key(ctx), dom.Grant(row.sha256, row.mime_type, row.name, expires))
    return f"{base_url.rstrip('/')}{SIGNED_PATH}{token}"


def url_map(ctx: ServiceContext, base_url: str, rows: Sequence[AttachmentRow]) -> dict[str, Any]:
    """LangSmith's ``s3_urls`` / ``attachment_urls``: ``{"attachment.<name>": {...}}``."""
    return {
        f"attachment.{r.name}": {
            "presigned_url": signed_url(ctx, base_url, r),
            "mime_type": r.mime_type,
            "size": r.size,
        }
        for r in rows
    }


def urls_of(
    ctx: ServiceContext, who: Principal, kind: str, owner_ids: Sequence[str], base_url: str
) -> dict[str, dict[str, Any]]:
    """Each owner's ``url_map`` (owners without attachments absent)."""
    found = of_owners(ctx, who, kind, owner_ids)
    return {owner: url_map(ctx, base_url, rows) for owner, rows in found.items()}


@dataclass(frozen=True, slots=True)
class Blob:
    path: Path
    served: dom.Served


def _on_disk(ctx: ServiceContext, digest: str, mime: str, name: str) -> Blob:
    path = blobs(ctx).path_of(digest)
    if not path.is_file():
        raise NotFound("the attachment's file is missing from the blob store")
    return Blob(path, dom.served(mime, name))


def open_signed(ctx: ServiceContext, token: str) -> Blob:
    """The blob a signed URL grants; NotFound for a bad, forged or expired token."""
    grant = dom.verify(_key(ctx), token, ctx.clock() // 1_000_000)
    if grant is None or not BlobStore.is_digest(grant.digest):
        raise NotFound("no such attachment, or its link has expired (ask for a fresh URL)")
    return _on_disk(ctx, grant.digest, grant.mime, grant.name)


def open_by_digest(ctx: ServiceContext, who: Principal, digest: str) -> Blob:
    """A blob by its SHA-256, only if one of the caller's workspace's attachments is it."""
    if not BlobStore.is_digest(digest):
        raise NotFound(f"no attachment with digest {digest[:80]!r}")
    row = ctx.db.read(lambda c: store.by_digest(c, who.workspace_id, digest))
    if row is None:
        raise NotFound(f"no attachment with digest {digest!r}")
    return _on_disk(ctx, digest, row.mime_type, row.name)


def usage(ctx: ServiceContext, who: Principal) -> dict[str, int]:
    rows, count, size = ctx.db.read(lambda c: store.usage(c, who.workspace_id))
    return {"attachments": rows, "blobs": count, "bytes": size}


def _settle(ctx: ServiceContext, digests: list[str], idle_s: float) -> tuple[int, list[str]]:
    """Delete the files of ``digests`` no row names (if idle); returns (deleted, settled)."""
    store_ = blobs(ctx)
    named = ctx.db.read(lambda c: store.referenced(c, digests))
    deleted = 0
    settled = []
    for digest in digests:
        if digest in named:
            settled.append(digest)  # named again: not an orphan any more
        elif store_.remove_if_idle(digest, idle_s):
            deleted += 1
            settled.append(digest)
        elif not store_.exists(digest):
            settled.append(digest)
    return deleted, settled


def sweep(ctx: ServiceContext, idle_s: float = SWEEP_IDLE_S) -> int:
    """Delete the files of the blobs that lost their rows (``attachment_orphans``) and that no
    row of any workspace names any more, except those used in the last ``idle_s`` seconds (they
    stay candidates for the next sweep). Returns how many files went."""
    removed = 0
    after = ""
    while page := ctx.db.read(partial(store.orphan_page, after=after, limit=SWEEP_CHUNK)):
        deleted, settled = _settle(ctx, page, idle_s)
        if settled:
            ctx.db.write(partial(store.drop_orphans, digests=settled))
        removed += deleted
        after = page[-1]
    return removed


def sweep_all(ctx: ServiceContext, idle_s: float = SWEEP_IDLE_S) -> int:
    """Like ``sweep``, over every file of the blob store (for files that lost their rows before
    candidates were recorded, or by an operator's hand). Reads the whole directory."""
    store_ = blobs(ctx)
    removed = 0
    pending: list[str] = []
    for digest in store_.stored():
        pending.append(digest)
        if len(pending) >= SWEEP_CHUNK:
            removed += _settle(ctx, pending, idle_s)[0]
            pending = []
    if pending:
        removed += _settle(ctx, pending, idle_s)[0]
    return removed
