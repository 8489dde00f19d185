"""The one place that maps errors to HTTP: status codes and the JSON error body.

Every 4xx/5xx answer has the same shape::

    {"error": {"code": "not_found", "message": "no project with id 'x'", "details": null}}
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from goldloop.domain import errors as e

log = logging.getLogger("goldloop.http")

STATUS: dict[type[e.GoldloopError], int] = {
    e.InvalidInput: 400,
    e.Unprocessable: 422,
    e.Unauthenticated: 401,
    e.Forbidden: 403,
    e.NotFound: 404,
    e.Conflict: 409,
    e.PayloadTooLarge: 413,
    e.UnsupportedMediaType: 415,
    e.Overloaded: 503,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    503: "overloaded",
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def status_for(exc: e.GoldloopError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def goldloop_error_response(exc: e.GoldloopError) -> JSONResponse:
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, e.Overloaded):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, e.Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="goldloop"'
    return error_response(status, exc.code, exc.message, exc.details, headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[0] if loc else "request")


async def _on_goldloop_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.GoldloopError)
    return goldloop_error_response(exc)


async def _on_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            return error_response(
                400,
                "invalid_json",
                f"request body is not valid JSON: {ctx.get('error', 'parse error')}",
                {"position": err.get("loc", [None, None])[-1]},
            )
        problems.append({"field": _location(tuple(err.get("loc", ()))), "problem": err.get("msg")})
    summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
    return error_response(400, "invalid_input", f"invalid request: {summary}", problems)


async def _on_http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = "no such route; the API lives under /api/v1 (see /api/v1/openapi.json)"
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "internal server error; the server log has details")


def install(app: FastAPI) -> None:
    from goldloop.http import error_responses  # the same answers, published in the schema

    error_responses.install(app)
    app.add_exception_handler(e.GoldloopError, _on_goldloop_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
