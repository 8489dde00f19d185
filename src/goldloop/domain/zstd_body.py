"""zstd request bodies, as the LangSmith SDK sends them: streaming frames without a content size."""

from __future__ import annotations

import io

import zstandard

from goldloop.domain.errors import InvalidInput, PayloadTooLarge


def decode_zstd(data: bytes, limit: int) -> bytes:
    """Decompress with a streaming reader (one-shot decoders need the content size the SDK's
    frames lack), stopping at ``limit + 1`` bytes so a decompression bomb costs nothing."""
    decompressor = zstandard.ZstdDecompressor()
    out = b""
    try:
        with decompressor.stream_reader(io.BytesIO(data), read_across_frames=True) as reader:
            while len(out) <= limit:
                more = reader.read(limit + 1 - len(out))
                if not more:
                    break
                out += more
    except zstandard.ZstdError as exc:
        raise InvalidInput(
            f"the body is not valid zstd data: {exc}", details={"field": "Content-Encoding"}
        ) from None
    if len(out) > limit:
        raise PayloadTooLarge(
            f"request body is larger than the limit of {limit} bytes after decompression "
            "(setting max_request_bytes / GOLDLOOP_MAX_REQUEST_BYTES)",
            details={"limit_bytes": limit},
        )
    return out
