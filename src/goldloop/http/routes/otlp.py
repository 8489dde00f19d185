"""OTLP/HTTP receiver: ``POST /v1/traces`` and ``POST /v1/logs`` (protobuf or JSON).

At the standard paths, so an OpenTelemetry exporter pointed at the server (``OTEL_EXPORTER_
OTLP_ENDPOINT=http://host:8700``) works unchanged. Authentication is the usual API key, sent by
exporters as a static header (``OTEL_EXPORTER_OTLP_HEADERS=x-api-key=...`` or
``Authorization=Bearer ...``). Answers use the request's encoding: an Export*ServiceResponse on
success (``partial_success`` naming rejected spans), a ``google.rpc.Status`` on errors; 503 with
``Retry-After`` under overload (every OTLP exporter retries 503).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from goldloop.domain import errors as e
from goldloop.domain.body_encoding import decode_body
from goldloop.domain.otel.decode import JSON, PROTOBUF, media_type
from goldloop.http.deps import Ctx, Who, get_principal
from goldloop.http.errors import status_for
from goldloop.http.routes.ingest_runs import PROJECT_HEADER
from goldloop.services import otlp
from goldloop.services.otlp import OtlpResult

router = APIRouter(tags=["otlp"], dependencies=[Depends(get_principal)])

_PROTO_BODY = {
    "requestBody": {
        "required": True,
        "content": {PROTOBUF: {"schema": {"type": "string", "format": "binary"}}, JSON: {}},
    }
}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def proto_field(number: int, payload: bytes | int) -> bytes:
    """One protobuf field: a varint for an int, length-delimited for bytes."""
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_result(result: OtlpResult, encoding: str, *, logs: bool) -> bytes:
    """Export{Trace,Logs}ServiceResponse: empty unless something was rejected."""
    if not result.rejected and not result.message:
        return b"{}" if encoding == JSON else b""
    count_key = "rejectedLogRecords" if logs else "rejectedSpans"
    if encoding == JSON:
        partial = {count_key: str(result.rejected), "errorMessage": result.message}
        return orjson.dumps({"partialSuccess": partial})
    # ExportPartialSuccess {int64 rejected = 1; string error_message = 2} in field 1
    inner = proto_field(1, result.rejected) + proto_field(2, result.message.encode())
    return proto_field(1, inner)


def status_body(code: int, message: str, encoding: str) -> bytes:
    """google.rpc.Status {int32 code = 1; string message = 2}."""
    if encoding == JSON:
        return orjson.dumps({"code": code, "message": message})
    return proto_field(1, code) + proto_field(2, message.encode())


def _error_response(exc: e.GoldloopError, encoding: str) -> Response:
    status = status_for(exc)
    headers = {}
    if isinstance(exc, e.Overloaded):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    # gRPC codes in the Status body: INVALID_ARGUMENT 3, RESOURCE_EXHAUSTED 8, UNAVAILABLE 14
    grpc = {400: 3, 413: 8, 415: 3, 503: 14}.get(status, 2)
    return Response(
        status_body(grpc, exc.message, encoding),
        status_code=status,
        media_type=encoding,
        headers=headers,
    )


async def _receive(
    request: Request,
    ctx: Any,
    who: Any,
    ingest_fn: Callable[..., OtlpResult],
    *,
    logs: bool,
) -> Response:
    content_type = request.headers.get("content-type")
    try:
        encoding = media_type(content_type)
    except e.UnsupportedMediaType as exc:
        return _error_response(exc, JSON)
    try:
        body = decode_body(
            await request.body(),
            request.headers.get("content-encoding"),
            ctx.settings.max_request_bytes,
        )
        result = await run_in_threadpool(
            ingest_fn,
            ctx,
            who,
            body,
            encoding,
            header_project=request.headers.get(PROJECT_HEADER),
        )
    except e.GoldloopError as exc:
        return _error_response(exc, encoding)
    return Response(encode_result(result, encoding, logs=logs), media_type=encoding)


@router.post("/v1/traces", openapi_extra=_PROTO_BODY, summary="OTLP/HTTP trace export")
async def otlp_traces(request: Request, ctx: Ctx, who: Who) -> Response:
    return await _receive(request, ctx, who, otlp.ingest_traces, logs=False)


@router.post("/v1/logs", openapi_extra=_PROTO_BODY, summary="OTLP/HTTP logs (GenAI events)")
async def otlp_logs(request: Request, ctx: Ctx, who: Who) -> Response:
    return await _receive(request, ctx, who, otlp.ingest_logs, logs=True)
