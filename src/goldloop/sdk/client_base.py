"""What the API client's parts share: ``ApiError`` (raised on every 4xx/5xx answer), the
plumbing the method mixins call (``ClientPlumbing``, implemented by ``goldloop.client.Client``),
and small helpers.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

Doc = dict[str, Any]


def retry_after_s(resp: httpx.Response | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (a number or an HTTP date), or None."""
    if resp is None:
        return None
    raw = resp.headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def segment(value: str) -> str:
    """``value`` quoted as one URL path segment."""
    return quote(value, safe="")


class ClientPlumbing:
    """The HTTP calls the method mixins (``_client_runs``, ``_client_automation``,
    ``_client_experiments``) build on; ``goldloop.client.Client`` implements them."""

    if TYPE_CHECKING:
        endpoint: str
        _http: httpx.Client

        def _request(
            self,
            method: str,
            path: str,
            *,
            json: Any = ...,
            params: Mapping[str, Any] | None = None,
            content: bytes | None = None,
            headers: Mapping[str, str] | None = None,
        ) -> httpx.Response: ...

        def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

        def _obj(self, method: str, path: str, **kwargs: Any) -> Doc: ...

        def _pages(self, path: str, params: Mapping[str, Any]) -> Iterator[Doc]: ...


class ApiError(Exception):
    """The server answered with an error: ``status``, ``code``, ``message``, ``details``."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def error_of(response: httpx.Response) -> ApiError:
    """The ``ApiError`` of an error answer (its body read): the server's ``{"error": {...}}``,
    or the start of the text when the answer is not Goldloop's JSON (a proxy's, say)."""
    try:
        error = response.json()["error"]
        return ApiError(response.status_code, error["code"], error["message"], error.get("details"))
    except (ValueError, KeyError, TypeError):
        return ApiError(response.status_code, "error", response.text[:500])
