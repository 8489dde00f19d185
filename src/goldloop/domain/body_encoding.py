"""Request bodies: Content-Encoding (gzip, deflate) with a cap on the decompressed size."""

from __future__ import annotations

import zlib

from goldloop.domain.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

ENCODINGS = ("gzip", "deflate", "identity", "")


def decode_body(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body after undoing ``content_encoding``; never more than ``limit`` bytes.

    ``deflate`` is accepted zlib-wrapped (what HTTP means by it) or raw. A decompression bomb stops
    at ``limit + 1`` bytes and raises ``PayloadTooLarge`` without inflating the rest.
    """
    encoding = (content_encoding or "").strip().lower()
    if encoding not in ENCODINGS:
        raise UnsupportedMediaType(
            f"Content-Encoding {content_encoding!r} is not supported; use gzip, deflate or none",
            details={"field": "Content-Encoding"},
        )
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise _too_large(limit)
        return body
    # wbits 47 = 32 + 15: auto-detect a gzip or zlib header; -15 = raw deflate (fallback).
    for wbits in (47, -15):
        inflater = zlib.decompressobj(wbits=wbits)
        try:
            out = inflater.decompress(body, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit or inflater.unconsumed_tail:
            raise _too_large(limit)
        return out
    raise InvalidInput(
        f"the body is not valid {encoding} data", details={"field": "Content-Encoding"}
    )


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body is larger than the limit of {limit} bytes after decompression "
        "(setting max_request_bytes / GOLDLOOP_MAX_REQUEST_BYTES); send smaller batches",
        details={"limit_bytes": limit},
    )
