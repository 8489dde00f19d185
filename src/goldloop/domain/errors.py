"""One exception tree for the server. Domain errors carry no HTTP codes: ``goldloop.http.errors``
maps each class to a status and the JSON error body."""

from __future__ import annotations

from typing import Any


class GoldloopError(Exception):
    """Base of every error Goldloop raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(GoldloopError):
    """The caller sent something that cannot be used; ``details`` says where."""

    code = "invalid_input"


class Unprocessable(InvalidInput):
    """Well-formed input with a value the protocol does not allow (e.g. a LangSmith run type
    outside LangSmith's set): a client must not retry it unchanged."""

    code = "unprocessable"


class NotFound(GoldloopError):
    """The object does not exist, or belongs to another workspace (indistinguishable on purpose)."""

    code = "not_found"


class Conflict(GoldloopError):
    """The request conflicts with the current state (e.g. a name already taken)."""

    code = "conflict"


class Unauthenticated(GoldloopError):
    """No API key, or one that is unknown or revoked."""

    code = "unauthenticated"


class Forbidden(GoldloopError):
    """The key is valid but may not do this."""

    code = "forbidden"


class PayloadTooLarge(GoldloopError):
    """A request body (after decompression) is larger than the configured limit."""

    code = "payload_too_large"


class UnsupportedMediaType(GoldloopError):
    """The request's Content-Type or Content-Encoding is not one this endpoint reads."""

    code = "unsupported_media_type"


class Overloaded(GoldloopError):
    """The server is at its bounded capacity; the caller should retry after ``retry_after`` s."""

    code = "overloaded"

    def __init__(self, message: str, *, retry_after: float = 1.0, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class OutboundRefused(InvalidInput):
    """An outgoing URL (channel, rule webhook, judge) is not allowed by
    ``outbound_allowed_hosts``; the message names the host and the setting."""

    code = "outbound_refused"
