"""Attachments as data: their names, their media types, how they are served, and signed URLs.

Nothing here touches disk or the database. Names are checked (they reach a Content-Disposition
header and the dashboard, never a file path: blobs are stored by digest). A media type is whatever
the client said, reduced to ``type/subtype``; what a blob is *served* as is decided here, from a
short list of types a browser shows without running anything (raster images, audio, video). The
rest is served as a download (``application/octet-stream``, except PDF and plain text, which keep
their type but are never shown inline).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import quote

import orjson

MAX_NAME = 200
OCTET = "application/octet-stream"
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,99}")
_INLINE_IMAGES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"}
)
_DOWNLOAD_KEEPS_TYPE = frozenset({"application/pdf", "text/plain", "text/csv", "application/json"})
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


class AttachmentError(ValueError):
    """An attachment that cannot be stored; the message names it and says why."""


def check_name(name: str) -> str:
    """The attachment name, or ``AttachmentError``: 1-200 characters, no slash, backslash or
    control character, not ``.`` or ``..``."""
    if not name or not name.strip():
        raise AttachmentError("an attachment name is empty")
    if len(name) > MAX_NAME:
        raise AttachmentError(f"attachment name {name[:40]!r}... is longer than {MAX_NAME}")
    if _UNSAFE_NAME.search(name) or name in (".", ".."):
        raise AttachmentError(
            f"attachment name {name!r} is not allowed: no '/', '\\', control characters, "
            "'.' or '..'"
        )
    return name


def clean_mime(content_type: str | None) -> str:
    """``type/subtype`` of a part's Content-Type (parameters such as ``length=`` dropped), or
    ``application/octet-stream`` when it is missing or malformed."""
    if not content_type:
        return OCTET
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind if _MIME.fullmatch(kind) else OCTET


def is_image(mime: str) -> bool:
    return mime in _INLINE_IMAGES


def is_audio(mime: str) -> bool:
    return mime.startswith("audio/")


def is_video(mime: str) -> bool:
    return mime.startswith("video/")


@dataclass(frozen=True, slots=True)
class Served:
    content_type: str
    disposition: str  # the whole Content-Disposition header value


def served(mime: str, name: str) -> Served:
    """How to send a blob back: a type a browser cannot execute, inline only when it is media."""
    inline = is_image(mime) or is_audio(mime) or is_video(mime)
    if inline:
        kind = mime
    elif mime in _DOWNLOAD_KEEPS_TYPE:
        kind = mime + ("; charset=utf-8" if mime.startswith("text/") else "")
    else:
        kind = OCTET
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:MAX_NAME] or "attachment"
    disposition = (
        f'{"inline" if inline else "attachment"}; filename="{ascii_name}"; '
        f"filename*=UTF-8''{quote(name, safe='')}"
    )
    return Served(kind, disposition)


# --- signed URLs: what the LangSmith SDK and the dashboard fetch without an API key ---


@dataclass(frozen=True, slots=True)
class Grant:
    """What a signed URL lets its holder read: one blob, as one name and type, until ``expires``
    (seconds since the epoch)."""

    digest: str
    mime: str
    name: str
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, grant: Grant) -> str:
    payload = orjson.dumps([grant.digest, grant.mime, grant.name, grant.expires])
    mac = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def verify(key: bytes, token: str, now_s: int) -> Grant | None:
    """The grant of a token signed with ``key`` and not expired at ``now_s``; else None."""
    payload_text, dot, mac_text = token.partition(".")
    if not dot or len(token) > 2048:
        return None
    try:
        payload = _unb64(payload_text)
        mac = _unb64(mac_text)
    except ValueError:
        return None
    if _b64(payload) != payload_text or _b64(mac) != mac_text:
        return None  # one token per grant: no second spelling of the same bytes
    if not hmac.compare_digest(mac, hmac.new(key, payload, hashlib.sha256).digest()):
        return None
    try:
        digest, mime, name, expires = orjson.loads(payload)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    if not isinstance(expires, int) or expires < now_s:
        return None
    return Grant(str(digest), str(mime), str(name), expires)
