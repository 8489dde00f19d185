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
the exporter's and the server's, without drops. The time it waited is returned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
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


def send_with_sdk_defaults(
    base: str, headers: dict[str, str], traces: Sequence[Sequence[Any]]
) -> float:
    """Create and export ``traces`` with the stock SDK at its defaults (see the module's
    docstring); returns the seconds the generator waited for room in the queue."""
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

    class Counting(SpanExporter):
        """The stock exporter, counting the spans it was handed."""

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            result = SpanExportResult.FAILURE
            try:
                result = stock.export(spans)
                return result
            finally:
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
    ended, waited = 0, 0.0
    for spans in traces:
        limit = capacity - len(spans)  # the spans not handed to the exporter, and this trace
        with room:
            if ended - exported[0] > limit:
                t = time.perf_counter()
                while ended - exported[0] > limit:
                    room.wait()
                waited += time.perf_counter() - t
        # protobuf span kinds start at 1, the SDK's at 0
        ingest.emit_trace(tracer, spans, lambda s: trace.SpanKind(max(s.kind, 1) - 1))
        ended += len(spans)
    ok = provider.force_flush(600_000)
    provider.shutdown()
    if not ok:
        raise SystemExit("the SDK exporter did not flush")
    if exported[0] != ended or failed[0]:
        raise SystemExit(f"the SDK exported {exported[0]} of {ended} spans, {failed[0]} failed")
    return waited
