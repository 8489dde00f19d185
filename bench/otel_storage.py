"""Bytes stored per span for OpenTelemetry loads: what the mapping keeps of what was sent.

Builds seeded five-span traces in two conventions and maps them exactly as ingest does
(``decode_and_map`` on the protobuf body), then measures the JSON that goes into a run's payload
columns (``inputs``, ``outputs``, ``extra``), per span and per kind:

- ``openinference``: what OpenInference instrumentations write (a chain, two LLM calls with the
  messages flattened into ``llm.input_messages.*`` and the request again in ``input.value``, a
  tool and a retriever);
- ``genai``: the OTel GenAI semantic conventions load of ``bench/ingest.py``.

Each load is mapped as ingest does now, and with message text referenced from the attributes
turned off (``dedupe.MIN_REFERENCED`` out of reach), in turn, three times: the saving is a ratio
measured on the same spans, and the CPU of decoding, mapping and encoding the payload as the
store does (one process, the least of the three rounds) shows what the references cost. The
sent size is the protobuf body per span.

Usage:
    python bench/otel_storage.py [--traces 400] [--span-bytes 3000]

Results go to bench/results/otel-storage-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import results_file
from ingest import _text, build_traces

from goldloop.domain.otel import dedupe
from goldloop.services.otlp import decode_and_map
from otlp_builders import request, span

PROTOBUF = "application/x-protobuf"


def openinference_traces(n_traces: int, span_bytes: int, seed: int = 3) -> list[list[Any]]:
    """Five-span OpenInference traces, each span carrying about ``span_bytes`` of content."""
    rng = random.Random(seed)
    body = max(200, span_bytes - 900)
    traces = []
    ms = 1_000_000
    for t in range(n_traces):
        trace = uuid.UUID(int=rng.getrandbits(128)).hex
        ids = [f"{rng.getrandbits(64) | 1:016x}" for _ in range(5)]
        start = 1_764_000_000_000_000_000 + t * 10 * ms
        common = {"session.id": f"s-{t % 200}", "user.id": f"u-{t % 50}"}
        question = _text(rng, body // 3)

        def llm(
            i: int, question: str = question, common: dict[str, Any] = common
        ) -> dict[str, Any]:
            system = _text(rng, body // 3)
            answer = _text(rng, body // 3)
            invocation = {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": question},
                ],
                "temperature": 0.2,
            }
            return {
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o-mini",
                "llm.provider": "openai",
                "llm.invocation_parameters": json.dumps({"temperature": 0.2}),
                "llm.token_count.prompt": 400 + i,
                "llm.token_count.completion": 60 + i,
                "input.value": json.dumps(invocation),
                "input.mime_type": "application/json",
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": system,
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": question,
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": answer,
                "output.value": answer,
                "output.mime_type": "text/plain",
                **common,
            }

        chain = {
            "openinference.span.kind": "CHAIN",
            "input.value": question,
            "output.value": _text(rng, body // 3),
            **common,
        }
        tool = {
            "openinference.span.kind": "TOOL",
            "tool.name": "lookup_order",
            "input.value": json.dumps({"q": _text(rng, body // 2)}),
            "input.mime_type": "application/json",
            "output.value": json.dumps({"r": _text(rng, body // 2)}),
            "output.mime_type": "application/json",
            **common,
        }
        docs: dict[str, Any] = {}
        for d in range(3):
            docs[f"retrieval.documents.{d}.document.id"] = f"d{d}"
            docs[f"retrieval.documents.{d}.document.content"] = _text(rng, body // 3)
        retriever = {
            "openinference.span.kind": "RETRIEVER",
            "input.value": _text(rng, 100),
            **docs,
            **common,
        }
        traces.append(
            [
                span(trace, ids[0], None, "agent", chain, start=start, end=start + 90 * ms),
                span(trace, ids[1], ids[0], "ChatCompletion", llm(1), start=start + ms, kind=3),
                span(trace, ids[2], ids[0], "lookup_order", tool, start=start + 31 * ms),
                span(trace, ids[3], ids[0], "ChatCompletion", llm(2), start=start + 41 * ms),
                span(trace, ids[4], ids[0], "retrieve", retriever, start=start + 71 * ms),
            ]
        )
    return traces


def measure(traces: list[list[Any]]) -> dict[str, Any]:
    """Sent and stored bytes per span, overall and by run kind."""
    sent = 0
    stored: dict[str, list[int]] = defaultdict(list)
    bodies = [request(trace).SerializeToString() for trace in traces]
    mapped = []
    cpu = time.process_time()
    for body in bodies:
        patches, problems = decode_and_map(body, PROTOBUF)
        for patch in patches:  # and encoded, as the store writes the payload columns
            orjson.dumps([patch.fields.get("inputs"), patch.fields.get("outputs"), patch.extra])
        mapped.append((patches, problems))
    cpu = time.process_time() - cpu
    for body, (patches, problems) in zip(bodies, mapped, strict=True):
        sent += len(body)
        assert not problems, problems
        for patch in patches:
            size = sum(
                len(orjson.dumps(value))
                for value in (
                    patch.fields.get("inputs"),
                    patch.fields.get("outputs"),
                    patch.extra,
                )
            )
            stored[str(patch.fields.get("kind"))].append(size)
    spans = sum(len(v) for v in stored.values())
    return {
        "spans": spans,
        "sent_bytes_per_span": round(sent / spans),
        "stored_bytes_per_span": round(sum(sum(v) for v in stored.values()) / spans),
        "stored_bytes_per_span_by_kind": {k: round(sum(v) / len(v)) for k, v in stored.items()},
        "cpu_us_per_span": round(cpu / spans * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=400)
    parser.add_argument("--span-bytes", type=int, default=3000)
    args = parser.parse_args()
    loads = {
        "openinference": openinference_traces(args.traces, args.span_bytes),
        "genai": build_traces(args.traces, args.span_bytes),
    }
    results: dict[str, Any] = {"traces": args.traces, "span_bytes": args.span_bytes}
    on = dedupe.MIN_REFERENCED
    for name, traces in loads.items():
        measure(traces)  # warm-up: imports, caches
        # Off and on in turn, three times (a shared machine is noisy): the least CPU of each.
        rounds: dict[int, list[dict[str, Any]]] = {10**9: [], on: []}
        for _ in range(3):
            for threshold, seen in rounds.items():
                dedupe.MIN_REFERENCED = threshold  # 10**9: references off, attributes as sent
                seen.append(measure(traces))
        dedupe.MIN_REFERENCED = on
        before, after = (min(seen, key=lambda m: m["cpu_us_per_span"]) for seen in rounds.values())
        ratio = after["stored_bytes_per_span"] / before["stored_bytes_per_span"]
        results[name] = {"references_off": before, "now": after, "ratio": round(ratio, 3)}
        print(
            f"{name:14} sent {after['sent_bytes_per_span']:>6} B/span   stored: "
            f"{before['stored_bytes_per_span']:>6} B/span without references, "
            f"{after['stored_bytes_per_span']:>6} now ({ratio:.2f}x); decode+map+encode CPU "
            f"{before['cpu_us_per_span']} -> "
            f"{after['cpu_us_per_span']} us/span"
        )
        for kind, size in sorted(after["stored_bytes_per_span_by_kind"].items()):
            was = before["stored_bytes_per_span_by_kind"][kind]
            print(f"  {kind:12} {was:>6} -> {size:>6} B")
    results_file.write("otel-storage", results)


if __name__ == "__main__":
    main()
