"""Reading LangSmith request bodies: JSON, and zstd-compressed multipart without a content size."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from goldloop.domain.body_encoding import decode_body
from goldloop.domain.errors import InvalidInput
from goldloop.domain.zstd_body import decode_zstd


async def raw_body(request: Request, limit: int) -> bytes:
    body = await request.body()
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding == "zstd":
        return decode_zstd(body, limit)
    return decode_body(body, encoding, limit)  # gzip, deflate or none


async def json_body(request: Request, limit: int) -> Any:
    body = await raw_body(request, limit)
    if not body.strip():
        raise InvalidInput("the request body is empty; expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None


async def json_object(request: Request, limit: int, what: str = "a JSON object") -> dict[str, Any]:
    """The body as a JSON object; anything else is a 400 saying what was expected."""
    body = await json_body(request, limit)
    if not isinstance(body, dict):
        raise InvalidInput(f"the body must be {what}")
    return body
