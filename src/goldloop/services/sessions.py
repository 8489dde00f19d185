"""Dashboard sessions: sign in with an API key, look a session up, sign out.

The browser holds a random 256-bit session token in an HttpOnly cookie; the database holds only
its SHA-256. Each session has its own random CSRF (synchronizer) token that every state-changing
form must echo back. A session acts exactly as its API key: same workspace, same role, and it
ends when the key is revoked.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from goldloop.services import auth
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import sessions as store


@dataclass(frozen=True)
class Session:
    principal: Principal
    workspace_name: str
    key_name: str
    csrf_token: str
    expires_at: int


@dataclass(frozen=True)
class NewSession:
    token: str  # goes into the cookie; never stored
    session: Session


def _session(row: store.SessionRow) -> Session:
    return Session(
        principal=Principal(workspace_id=row.workspace_id, key_id=row.key_id, role=row.role),
        workspace_name=row.workspace_name,
        key_name=row.key_name,
        csrf_token=row.csrf_token,
        expires_at=row.expires_at,
    )


def sign_in(ctx: ServiceContext, api_key: str) -> NewSession:
    """Validate the key (raises ``Unauthenticated``) and open a session for it."""
    who = auth.authenticate(ctx, api_key)
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = ctx.clock()
    expires = now + ctx.settings.dashboard_session_ttl_s * 1_000_000
    token_hash = auth.hash_key(token)

    def write(conn: Connection) -> None:
        store.delete_expired(conn, now)
        store.insert(
            conn,
            token_hash=token_hash,
            workspace_id=who.workspace_id,
            key_id=who.key_id,
            csrf_token=csrf,
            created_at=now,
            expires_at=expires,
        )

    ctx.db.write(write)
    found = lookup(ctx, token)
    assert found is not None
    return NewSession(token=token, session=found)


def lookup(ctx: ServiceContext, token: str | None) -> Session | None:
    """The live session for this cookie value, or None (absent, unknown, expired, revoked)."""
    if not token or len(token) > 200:
        return None
    row = ctx.db.read(lambda c: store.find_live(c, auth.hash_key(token), ctx.clock()))
    return _session(row) if row else None


def sign_out(ctx: ServiceContext, token: str | None) -> None:
    if token:
        ctx.db.write(lambda c: store.delete(c, auth.hash_key(token)))


def csrf_ok(session: Session, presented: str | None) -> bool:
    """Constant-time comparison of the form's token with the session's."""
    return bool(presented) and hmac.compare_digest(
        session.csrf_token.encode(), (presented or "").encode()
    )
