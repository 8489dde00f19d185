"""Workspaces and API keys: creation, authentication, the first-start bootstrap."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Connection

from goldloop.domain.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from goldloop.services import audit
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import tenancy
from goldloop.store.tenancy import ApiKeyRow, WorkspaceRow

log = logging.getLogger("goldloop.auth")

KEY_PREFIX = "gl_"
ROLES = ("admin", "member")
DEFAULT_WORKSPACE = "default"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    """A freshly created key: the only moment its secret exists outside the caller's hands."""

    secret: str
    record: ApiKeyRow


def authenticate(ctx: ServiceContext, presented: str | None) -> Principal:
    if not presented:
        raise Unauthenticated(
            "missing API key: send it in the x-api-key header or as 'Authorization: Bearer <key>'"
        )
    row = ctx.db.read(lambda c: tenancy.find_active_key(c, hash_key(presented.strip())))
    if row is None:
        raise Unauthenticated("unknown or revoked API key")
    return Principal(workspace_id=row.workspace_id, key_id=row.id, role=row.role)


def create_workspace(ctx: ServiceContext, name: str) -> WorkspaceRow:
    name = name.strip()
    if not name:
        raise InvalidInput("workspace name must not be empty")
    ws = WorkspaceRow(id=str(uuid.uuid4()), name=name, created_at=ctx.clock())

    def write(conn: Connection) -> None:
        if tenancy.get_workspace_by_name(conn, name) is not None:
            raise Conflict(f"workspace {name!r} already exists")
        tenancy.insert_workspace(conn, ws)

    ctx.db.write(write)
    return ws


def create_key(ctx: ServiceContext, workspace_id: str, name: str, role: str = "member") -> NewKey:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKeyRow(
        id=str(uuid.uuid4()),
        workspace_id=workspace_id,
        name=name or "unnamed",
        prefix=secret[:10],
        role=role,
        created_at=ctx.clock(),
        revoked_at=None,
    )
    ctx.db.write(lambda c: tenancy.insert_api_key(c, record, hash_key(secret)))
    audit.record(
        ctx,
        None,
        "api_key.created",
        workspace_id=workspace_id,
        target_type="api_key",
        target_id=record.id,
        details={"name": record.name, "role": role, "prefix": record.prefix},
    )
    return NewKey(secret=secret, record=record)


def workspace_by_name(ctx: ServiceContext, name: str) -> WorkspaceRow:
    ws = ctx.db.read(lambda c: tenancy.get_workspace_by_name(c, name))
    if ws is None:
        raise NotFound(f"no workspace named {name!r}")
    return ws


def list_keys(ctx: ServiceContext, workspace_id: str | None = None) -> list[ApiKeyRow]:
    return ctx.db.read(lambda c: tenancy.list_api_keys(c, workspace_id))


def revoke_key(ctx: ServiceContext, key_id: str) -> None:
    key = next((k for k in list_keys(ctx) if k.id == key_id), None)
    if key is None or not ctx.db.write(lambda c: tenancy.revoke_api_key(c, key_id, ctx.clock())):
        raise NotFound(f"no active API key with id {key_id!r}")
    audit.record(
        ctx,
        None,
        "api_key.revoked",
        workspace_id=key.workspace_id,
        target_type="api_key",
        target_id=key_id,
        details={"name": key.name, "role": key.role, "prefix": key.prefix},
    )


def bootstrap(ctx: ServiceContext) -> NewKey | None:
    """On an empty instance: create the default workspace and an admin key, and write the key to
    DATA_DIR/admin-key with mode 0600. Returns the key (to print once), or None if not empty."""
    if ctx.db.read(tenancy.count_workspaces) > 0:
        return None
    try:
        ws = create_workspace(ctx, DEFAULT_WORKSPACE)
    except Exception:
        if ctx.db.read(tenancy.count_workspaces) > 0:
            return None  # another server bootstrapped the same database at the same moment
        raise
    key = create_key(ctx, ws.id, "bootstrap admin", role="admin")
    write_secret_file(ctx.settings.admin_key_path, key.secret)
    return key


def write_secret_file(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created with 0600 from the start, so the key is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    os.chmod(path, 0o600)
