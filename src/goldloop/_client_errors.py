"""``ApiError``: what every client method raises when the server answers 4xx/5xx."""

from __future__ import annotations

from typing import Any

import httpx


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
