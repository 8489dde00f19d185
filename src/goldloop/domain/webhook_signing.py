"""Signatures of Goldloop's webhook requests (pure; shared by the server and the SDK).

Each request carries ``Goldloop-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256, keyed with the signing secret, of ``"<t>."`` followed by the exact body bytes. The
timestamp is signed too, so a captured request cannot be replayed later than the receiver's
tolerance. Several ``v1=`` entries may appear; one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

__all__ = [
    "SIGNATURE_HEADER",
    "WebhookSignatureError",
    "new_secret",
    "sign",
    "signature_header",
    "verify",
]

SIGNATURE_HEADER = "Goldloop-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105  # a marker, not a secret


class WebhookSignatureError(ValueError):
    """The request's signature is missing, malformed, too old or does not match."""


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 256 random bits."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Goldloop-Signature`` header value for ``body`` sent now (or at ``timestamp``)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={sign(secret, t, body)}"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, val in headers.items():
        if key.lower() == wanted:
            return val
    return None


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> int:
    """Check a webhook request from Goldloop; returns its signed timestamp.

    ``headers``: the request's headers (any mapping; the name is matched case-insensitively);
    ``body``: the raw body exactly as received (before any JSON parsing); ``tolerance_s``: how
    far the signed time may be from now. Raises :class:`WebhookSignatureError` when the header
    is missing or malformed, the timestamp is outside the tolerance, or no signature matches.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    value = _header(headers, SIGNATURE_HEADER)
    if not value:
        raise WebhookSignatureError(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in value.split(","):
        key, _, val = part.strip().partition("=")
        if key == "t" and val.isdigit():
            timestamp = int(val)
        elif key == "v1" and val:
            candidates.append(val)
    if timestamp is None or not candidates:
        raise WebhookSignatureError(f"malformed {SIGNATURE_HEADER} header")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookSignatureError(
            f"signed {abs(current - timestamp):.0f} s away from now; tolerance {tolerance_s:g} s"
        )
    expected = sign(secret, timestamp, raw)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise WebhookSignatureError("signature does not match")
    return timestamp
