"""The loads of ``bench/peer_phoenix.py`` and its OpenTelemetry SDK sender with stock defaults.

Loads (five-span traces, the spans as OTLP protobuf ``Span`` messages):

- ``genai``: the OTel GenAI semantic-conventions load of ``bench/ingest.py`` (``build_traces``);
- ``openinference``: the OpenInference load of ``bench/otel_storage.py``
  (``openinference_traces``: a chain, two LLM calls with ``llm.input_messages.*``,
  ``llm.output_messages.*``, ``input.value``, ``output.value`` and ``llm.token_count.*``, a tool
  and a retriever), moved to the last hour and given the GenAI load's span durations (that
  builder leaves the children's end at a fixed instant, which only its byte counts ignore).

``send_with_sdk_defaults`` sends a load through the unmodified OpenTelemetry SDK: a
``TracerProvider`` with one ``BatchSpanProcessor`` at its defaults (queue 2,048, batches of 512,
5 s schedule) and the stock OTLP/HTTP protobuf exporter. An application that ends spans faster
than the exporter drains them loses spans at these defaults; this load generator instead waits
before ending a trace that would not fit in the queue (it counts what the exporter has sent, via
a wrapper around the stock exporter that only counts), so every span arrives and the figure is
the exporter's and the server's, without drops. It returns the time it waited and how long
each export took: the whole ``export`` call (the SDK encoding the batch, then the request) and
the request alone (timed around the exporter's HTTP client, a wrapper that only measures).

``python bench/peer_loads.py sink --port N`` serves an instant sink on 127.0.0.1: it reads each
``POST /v1/traces`` body and answers 200 with an empty ExportTraceServiceResponse at once, then
counts the request's spans (a walk of the protobuf framing, after the answer is sent) for
``GET /count``. Through it the stock exporter runs at its own ceiling: no server is faster.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import ingest

Builder = Callable[[int, int, int], list[list[Any]]]

MS = 1_000_000
# the children's durations of bench/ingest.py's load (LLM, tool, LLM, retriever), in ms
CHILD_MS = (29, 9, 39, 8)


def openinference(n_traces: int, span_bytes: int, seed: int = 3) -> list[list[Any]]:
    """``otel_storage.openinference_traces`` in the last hour, with GenAI-like durations."""
    from otel_storage import openinference_traces

    traces = openinference_traces(n_traces, span_bytes, seed)
    shift = time.time_ns() - 3_600 * 1_000_000_000 - traces[0][0].start_time_unix_nano
    for spans in traces:
        root = spans[0]
        root.start_time_unix_nano += shift
        root.end_time_unix_nano += shift
        for child, ms in zip(spans[1:], CHILD_MS, strict=True):
            child.start_time_unix_nano += shift
            child.end_time_unix_nano = child.start_time_unix_nano + ms * MS
    return traces


def genai(n_traces: int, span_bytes: int, seed: int = 1) -> list[list[Any]]:
    return ingest.build_traces(n_traces, span_bytes, seed)


LOADS: dict[str, Builder] = {"genai": genai, "openinference": openinference}
SPAN_BYTES = {"genai": 3450, "openinference": 3000}
"""``--span-bytes`` by load: ~3 KB (GenAI) and ~3.4 KB (OpenInference) per protobuf span."""


@dataclass
class SdkRun:
    """What the generator saw: seconds it waited for room in the queue, and per export call
    (one batch) its spans, the seconds ``export`` took, and of them the request's (None when
    the exporter's HTTP client could not be timed)."""

    waited: float = 0.0
    exports: list[tuple[int, float, float | None]] = field(default_factory=list)

    def latency(self) -> dict[str, Any]:
        """p50/p95 (ms) of the whole export call, of its request and of the rest (encoding),
        with the batches' mean size and the seconds all exports took together."""
        if not self.exports:
            return {}

        def pct(values: list[float]) -> dict[str, float]:
            ordered = sorted(values)
            return {
                "p50_ms": round(statistics.median(ordered) * 1000, 1),
                "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
                "mean_ms": round(statistics.fmean(ordered) * 1000, 1),
            }

        out: dict[str, Any] = {
            "batches": len(self.exports),
            "spans_per_batch": round(sum(n for n, _, _ in self.exports) / len(self.exports), 1),
            "export_seconds_total": round(sum(t for _, t, _ in self.exports), 3),
            "export": pct([t for _, t, _ in self.exports]),
        }
        timed = [(t, r) for _, t, r in self.exports if r is not None]
        if timed:
            out["request"] = pct([r for _, r in timed])
            out["encode_and_rest"] = pct([t - r for t, r in timed])
            out["request_seconds_total"] = round(sum(r for _, r in timed), 3)
        return out


def send_with_sdk_defaults(
    base: str, headers: dict[str, str], traces: Sequence[Sequence[Any]]
) -> SdkRun:
    """Create and export ``traces`` with the stock SDK at its defaults (see the module's
    docstring); returns the generator's wait and each export's timing."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    stock = OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers=headers)
    room = threading.Condition()
    exported, failed = [0], [0]
    run = SdkRun()
    request_s: list[float | None] = [None]
    client = getattr(stock, "_client", None)  # SDK 1.45: the HTTP client after encoding
    if client is not None and hasattr(client, "export"):
        send_request = client.export

        def timed_request(data: bytes) -> Any:
            t = time.perf_counter()
            try:
                return send_request(data)
            finally:
                request_s[0] = time.perf_counter() - t

        client.export = timed_request

    class Counting(SpanExporter):
        """The stock exporter, counting the spans it was handed and timing each call."""

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            result = SpanExportResult.FAILURE
            request_s[0] = None
            t = time.perf_counter()
            try:
                result = stock.export(spans)
                return result
            finally:
                run.exports.append((len(spans), time.perf_counter() - t, request_s[0]))
                with room:
                    exported[0] += len(spans)
                    if result is not SpanExportResult.SUCCESS:
                        failed[0] += len(spans)
                    room.notify_all()

        def shutdown(self) -> None:
            stock.shutdown()

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return stock.force_flush(timeout_millis)

    processor = BatchSpanProcessor(Counting())  # the defaults: nothing passed
    capacity = BatchSpanProcessor._default_max_queue_size()
    provider = TracerProvider(resource=Resource.create({"service.name": "agent-svc"}))
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")
    ended = 0
    for spans in traces:
        limit = capacity - len(spans)  # the spans not handed to the exporter, and this trace
        with room:
            if ended - exported[0] > limit:
                t = time.perf_counter()
                while ended - exported[0] > limit:
                    room.wait()
                run.waited += time.perf_counter() - t
        # protobuf span kinds start at 1, the SDK's at 0
        ingest.emit_trace(tracer, spans, lambda s: trace.SpanKind(max(s.kind, 1) - 1))
        ended += len(spans)
    ok = provider.force_flush(600_000)
    provider.shutdown()
    if not ok:
        raise SystemExit("the SDK exporter did not flush")
    if exported[0] != ended or failed[0]:
        raise SystemExit(f"the SDK exported {exported[0]} of {ended} spans, {failed[0]} failed")
    return run


# --- the instant sink ---------------------------------------------------------------------------


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = buf[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _fields(buf: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(field number, start, end) of the length-delimited fields in ``buf[start:end]``."""
    out = []
    at = start
    while at < end:
        key, at = _varint(buf, at)
        wire = key & 7
        if wire == 2:
            size, at = _varint(buf, at)
            out.append((key >> 3, at, at + size))
            at += size
        elif wire == 0:
            _, at = _varint(buf, at)
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        else:
            raise ValueError(f"wire type {wire}")
    return out


def count_spans(body: bytes) -> int:
    """Spans in an ExportTraceServiceRequest, from its framing alone: resource_spans (1) ->
    scope_spans (2) -> spans (2)."""
    n = 0
    for number, a, b in _fields(body, 0, len(body)):
        if number != 1:
            continue
        for number2, c, d in _fields(body, a, b):
            if number2 == 2:
                n += sum(1 for number3, _, _ in _fields(body, c, d) if number3 == 2)
    return n


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the exporter's session expects
    spans = 0
    requests = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")  # an empty ExportTraceServiceResponse
        self.end_headers()
        self.wfile.flush()
        encoding = self.headers.get("content-encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        n = count_spans(body)  # after the answer: not part of the exporter's wait
        with _Sink.lock:
            _Sink.spans += n
            _Sink.requests += 1

    def do_GET(self) -> None:
        with _Sink.lock:
            answer = {"spans": _Sink.spans, "requests": _Sink.requests}
        out = json.dumps(answer).encode() if self.path == "/count" else b"ok"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_sink(port: int) -> None:
    """The instant sink on 127.0.0.1:``port`` until killed."""
    ThreadingHTTPServer(("127.0.0.1", port), _Sink).serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="bench helpers: the instant OTLP sink")
    parser.add_argument("command", choices=["sink"])
    parser.add_argument("--port", type=int, required=True)
    serve_sink(parser.parse_args().port)
