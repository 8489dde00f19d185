"""OTLP/gRPC receiver: ``TraceService/Export`` on its own port (settings ``otlp_grpc`` and
``otlp_grpc_port``; 4317 is the OpenTelemetry Collector's), beside OTLP/HTTP on the main port.

The same call as ``POST /v1/traces`` with a protobuf body: the same API key (metadata
``x-api-key`` or ``authorization: Bearer``), the same project selection (``x-goldloop-project``,
else the resource's ``service.name``), the same mapping, and OK only once the write is durable.
No generated stubs: a generic handler takes the request message's bytes as they came.

A call goes through these steps, each before the next:

1. the API key, from the metadata: a missing or bad one gets UNAUTHENTICATED, and the message is
   never read, let alone decoded;
2. a slot: at most ``ingest_max_inflight`` calls are past this step at once; beyond it,
   RESOURCE_EXHAUSTED with a RetryInfo of 1 s (every stock exporter waits and retries);
3. the message: gRPC itself refuses one larger than ``max_request_bytes`` (after
   decompression) with RESOURCE_EXHAUSTED;
4. decode, map, write, then OK: an empty ExportTraceServiceResponse (zero bytes), or
   ``partial_success`` counting and naming rejected spans. Bytes that are no
   ExportTraceServiceRequest get INVALID_ARGUMENT; a full database write queue gets
   RESOURCE_EXHAUSTED with RetryInfo.

Every call has a deadline: the client's own, and at most ``otlp_grpc_deadline_s`` from its start;
a reaper thread cancels a call past it (the client sees CANCELLED, which exporters retry).

Plain text only: TLS is terminated by a proxy in front of Goldloop (docs/self-hosting.md).
A background part with the usual contract: ``start()``, ``stop(timeout)``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from goldloop.domain import errors as e
from goldloop.domain.otel.decode import PROTOBUF
from goldloop.http.deps import key_from
from goldloop.http.routes.ingest_runs import PROJECT_HEADER
from goldloop.http.routes.otlp import encode_result, proto_field
from goldloop.services import auth, otlp
from goldloop.services.context import ServiceContext

log = logging.getLogger("goldloop.otlp")

EXPORT_TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"
SPARE_THREADS = 4
"""Threads beyond ``ingest_max_inflight``: they answer RESOURCE_EXHAUSTED while every slot is
busy, instead of leaving new calls queued behind the busy ones."""
BACKLOG = 64
"""Calls waiting for a thread; beyond them gRPC answers RESOURCE_EXHAUSTED itself."""


class _Refused(Exception):
    def __init__(
        self, code: Any, message: str, reason: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.reason, self.retry_after = code, message, reason, retry_after


_CODES: tuple[tuple[type[e.GoldloopError], Any, str], ...] = (
    (e.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED, "unauthenticated"),
    (e.Forbidden, grpc.StatusCode.PERMISSION_DENIED, "forbidden"),
    (e.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT, "invalid"),
    (e.PayloadTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED, "too_large"),
    (e.Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED, "overloaded"),
)


def refusal(exc: e.GoldloopError) -> _Refused:
    """The gRPC status for a domain error: the same meaning as its HTTP status."""
    retry_after = exc.retry_after if isinstance(exc, e.Overloaded) else None
    for cls, code, reason in _CODES:
        if isinstance(exc, cls):
            return _Refused(code, exc.message, reason, retry_after)
    return _Refused(grpc.StatusCode.INTERNAL, exc.message, "server_error")


def retry_trailers(code: Any, message: str, seconds: float) -> tuple[tuple[str, bytes], ...]:
    """RetryInfo{retry_delay} twice: as ``google.rpc.retryinfo-bin`` (read by the Python
    exporter) and inside the google.rpc.Status of ``grpc-status-details-bin`` (read by the Go
    and Java exporters and the Collector)."""
    whole = int(seconds)
    nanos = round((seconds - whole) * 1e9)
    duration = proto_field(1, whole) + (proto_field(2, nanos) if nanos else b"")
    retry_info = proto_field(1, duration)
    details = proto_field(1, RETRY_INFO_TYPE.encode()) + proto_field(2, retry_info)
    status = (
        proto_field(1, code.value[0]) + proto_field(2, message.encode()) + proto_field(3, details)
    )
    return (("google.rpc.retryinfo-bin", retry_info), ("grpc-status-details-bin", status))


class OtlpGrpcReceiver:
    def __init__(self, ctx: ServiceContext, host: str, port: int) -> None:
        settings = ctx.settings
        self.ctx = ctx
        self.max_inflight = settings.ingest_max_inflight
        self.deadline_s = settings.otlp_grpc_deadline_s
        self.inflight = 0
        self.refused: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._calls: dict[int, tuple[float, Any]] = {}  # id(context) -> (deadline, context)
        self._stopping = threading.Event()
        self._reaper: threading.Thread | None = None
        threads = self.max_inflight + SPARE_THREADS
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="goldloop-otlp-grpc")
        handler = grpc.method_handlers_generic_handler(
            EXPORT_TRACES.split("/")[1],
            {"Export": grpc.stream_unary_rpc_method_handler(self.export)},
        )
        self._server = grpc.server(
            self._executor,
            handlers=[handler],
            options=[
                ("grpc.max_receive_message_length", settings.max_request_bytes),
                # one server per port: never share it with another process (SO_REUSEPORT would
                # let a second server start on a taken port and take half of its calls)
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=threads + BACKLOG,
        )
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            bound = self._server.add_insecure_port(address)
        except RuntimeError:
            bound = 0
        if not bound:
            self._executor.shutdown(wait=False)
            raise OSError(
                f"OTLP/gRPC: cannot listen on {address} (setting otlp_grpc_port): "
                "is the port in use (an OpenTelemetry Collector, another Goldloop)?"
            )
        self.host = host
        self.port = int(bound)

    def start(self) -> None:
        self._server.start()
        self._reaper = threading.Thread(
            target=self._reap, name="goldloop-otlp-grpc-deadline", daemon=True
        )
        self._reaper.start()
        log.info("OTLP/gRPC receiver on %s:%d", self.host, self.port)

    def stop(self, timeout: float = 5.0) -> None:
        """Refuse new calls (UNAVAILABLE: exporters retry), let those in progress finish their
        writes for up to ``timeout`` seconds, then cancel the rest."""
        self._server.stop(grace=timeout).wait(timeout + 1)
        self._stopping.set()
        if self._reaper is not None:
            self._reaper.join(timeout)
            self._reaper = None
        self._executor.shutdown(wait=False, cancel_futures=True)

    def export(self, requests: Iterator[bytes], context: Any) -> bytes:
        """One ``TraceService/Export`` call; the message is read only once the key is good and
        a slot is free."""
        try:
            return self._export(requests, context)
        except _Refused as exc:
            refused = exc
        except grpc.RpcError:
            raise  # the call was cancelled (its deadline, the client): no one to answer
        except Exception:  # a bug, or the database away: INTERNAL, never a dead thread
            log.exception("OTLP/gRPC: could not store an Export call")
            message = "the server could not store the spans: see its log"
            refused = _Refused(grpc.StatusCode.INTERNAL, message, "server_error")
        with self._lock:
            self.refused[refused.reason] += 1
        self.ctx.telemetry.ingest_rejected(refused.reason)
        if refused.retry_after is not None:
            trailers = retry_trailers(refused.code, refused.message, refused.retry_after)
            context.set_trailing_metadata(trailers)
        context.abort(refused.code, refused.message)
        raise refused  # not reached: abort raises

    def _export(self, requests: Iterator[bytes], context: Any) -> bytes:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        try:
            key = key_from(metadata.get("x-api-key"), metadata.get("authorization", ""))
            who = auth.authenticate(self.ctx, key)
        except e.GoldloopError as exc:
            raise refusal(exc) from None
        call = id(context)
        with self._lock:
            if self.inflight >= self.max_inflight:
                busy = (
                    f"{self.inflight} ingestion calls are already in progress "
                    "(setting ingest_max_inflight); retry shortly"
                )
                raise _Refused(grpc.StatusCode.RESOURCE_EXHAUSTED, busy, "overloaded", 1.0)
            self.inflight += 1
            self._calls[call] = (time.monotonic() + self.deadline_s, context)
        try:
            body = next(requests, None)  # a cancelled call raises grpc.RpcError here
            if body is None:
                raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, "no request message", "invalid")
            result = otlp.ingest_traces(
                self.ctx, who, body, PROTOBUF, header_project=metadata.get(PROJECT_HEADER)
            )
        except e.GoldloopError as exc:
            raise refusal(exc) from None
        finally:
            with self._lock:
                self.inflight -= 1
                self._calls.pop(call, None)
        return encode_result(result, PROTOBUF, logs=False)

    def _reap(self) -> None:
        """Cancel the calls past their deadline (a client that never finishes its message)."""
        every = min(1.0, self.deadline_s / 4)
        while not self._stopping.wait(every):
            now = time.monotonic()
            with self._lock:
                late = [call for call, (deadline, _) in self._calls.items() if deadline <= now]
                contexts = [self._calls.pop(call)[1] for call in late]
                self.refused["timeout"] += len(contexts)
            for context in contexts:
                self.ctx.telemetry.ingest_rejected("timeout")
                context.cancel()
