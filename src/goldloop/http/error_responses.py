"""The error answers each operation can give, published in the OpenAPI schema.

FastAPI lists ``422`` on every operation with parameters, but :mod:`goldloop.http.errors` answers
invalid input with ``400`` and never sends 422. This replaces it with the statuses the server
does send (see ``STATUS`` there), each with the one error body (``Error``), derived from what the
route is:

- every operation: ``429`` (too many connections from one address without a key);
- with parameters or a body: ``400`` (``invalid_input``, ``invalid_json``…);
- with a body: ``413`` (larger than ``max_request_bytes``), ``415`` (content type or encoding);
- behind an API key: ``401``, and ``503`` with ``Retry-After`` (bounded queues full);
- behind an admin key: ``403``;
- behind an API key with parameters or a body: ``404`` (what they name may not exist);
- creating or changing something that has a unique name or a state: ``409``.

OTLP receivers answer their own errors as the OTLP spec says: a ``Status`` message (``code``,
``message``) in the request's encoding, JSON or protobuf. Also the two ways to present a key
(``x-api-key`` or ``Authorization: Bearer``) as security schemes, so clients and the
interactive page can send one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant

from goldloop.http.deps import get_admin, get_principal

__all__ = ["ERROR_SCHEMA", "error_statuses", "install", "publish"]

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "description": "Every 4xx and 5xx answer: what was wrong and where.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable, machine-readable: `invalid_input`, `not_found`…",
                },
                "message": {"type": "string", "description": "For people: what and where."},
                "details": {
                    "description": "Where, when known: the field, the position, the items.",
                },
            },
        }
    },
}

OTLP_STATUS_SCHEMA: dict[str, Any] = {
    "title": "OtlpStatus",
    "type": "object",
    "description": "An OTLP receiver's error (google.rpc.Status), in the request's encoding.",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "integer", "description": "gRPC code: 3 invalid, 8 too large, 14 busy"},
        "message": {"type": "string"},
        "details": {"type": "array"},
    },
}

_DESCRIPTIONS = {
    400: "Invalid input: the message and `details` say which field and why",
    401: "No API key, or an unknown or revoked one",
    403: "The key is valid but not an admin key",
    404: "No such object in this workspace",
    409: "Conflicts with the current state (a name already taken, a state that does not allow it)",
    413: "The body (after decompression) is larger than `max_request_bytes`",
    415: "A content type or content encoding this operation does not read",
    429: "Too many connections without an API key from this address; retry after `Retry-After`",
    503: "The server is at its bounded capacity; retry after `Retry-After` seconds",
}
_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}},
}
_AUTHENTICATE = {
    "WWW-Authenticate": {"description": "How to authenticate", "schema": {"type": "string"}},
}
_OTLP_STATUSES = {400, 404, 413, 415, 503}  # answered by the receiver itself, not the middleware
# Route modules whose writes can conflict (see the `Conflict` raised by their services).
_CONFLICTING = {
    "projects",
    "datasets",
    "examples",
    "feedback",
    "alerts",
    "experiments",
    "canaries",
    "annotation_queues",
    "pairwise_reviews",
}
SECURITY_SCHEMES: dict[str, Any] = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "Bearer": {"type": "http", "scheme": "bearer", "description": "the API key as a bearer token"},
}


def _calls(dependant: Dependant) -> Iterable[Callable[..., Any]]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


def error_statuses(route: Any, method: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses ``route`` (an API route, or its context in an included router) can
    answer for ``method`` (its schema ``operation``)."""
    calls = set(_calls(route.dependant))
    admin = get_admin in calls
    authenticated = admin or get_principal in calls
    has_body = "requestBody" in operation
    statuses = {429}
    if operation.get("parameters") or has_body:
        statuses.add(400)
    if has_body:
        statuses |= {413, 415}
    if authenticated:
        statuses |= {401, 503}
    if admin:
        statuses.add(403)
    if "{" in str(route.path_format) or (authenticated and 400 in statuses):
        statuses.add(404)
    module = str(route.endpoint.__module__).rsplit(".", 1)[-1]
    if module in _CONFLICTING and method in ("post", "put", "patch"):
        statuses.add(409)
    return sorted(statuses)


def _response(status: int, *, otlp: bool) -> dict[str, Any]:
    content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
    }
    if otlp and status in _OTLP_STATUSES:
        content = {
            "application/json": {"schema": {"$ref": "#/components/schemas/OtlpStatus"}},
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
        }
    out: dict[str, Any] = {"description": _DESCRIPTIONS[status], "content": content}
    if status in (429, 503):
        out["headers"] = _RETRY_AFTER
    elif status == 401:
        out["headers"] = _AUTHENTICATE
    return out


def publish(schema: dict[str, Any], routes: list[Any]) -> None:
    """Rewrite ``schema`` in place: the real error answers of every operation of ``routes``."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["OtlpStatus"] = OTLP_STATUS_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = SECURITY_SCHEMES
    for route in routing.iter_route_contexts(routes):  # as FastAPI's own get_openapi() does
        if not getattr(route, "include_in_schema", False) or route.endpoint is None:
            continue
        if getattr(route, "dependant", None) is None:
            continue
        for method in sorted(m.lower() for m in route.methods or ()):
            operation = schema.get("paths", {}).get(route.path_format, {}).get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            statuses = error_statuses(route, method, operation)
            otlp = str(route.endpoint.__module__).endswith(".otlp")
            for status in statuses:
                responses.setdefault(str(status), _response(status, otlp=otlp))
            if 401 in statuses:
                operation["security"] = [{"ApiKey": []}, {"Bearer": []}]


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` publish the real error answers (computed once, when first asked)."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            publish(base(), app.routes)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
