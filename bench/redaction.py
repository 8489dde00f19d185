"""PII redaction benchmark: ingest CPU per span with the built-in detectors on and off.

Load: OpenInference-style LLM spans of ~3 KB (OTLP protobuf, 100 spans a request) and
LangSmith-style runs (``/runs/batch`` items, 100 a request) whose texts read like a support
agent's: order numbers, dates, amounts and versions in most sentences, and in some spans an
email address (20%), a phone number (10%), an IBAN (3%) or a card number (3%). The same process
ingests the same load into two workspaces of one SQLite database, one with redaction off and
one with every built-in on, in the order off, on, on, off per round, through the services the
HTTP routes call (``otlp.ingest_traces``, ``langsmith.runs.ingest_runs``): decoding, mapping,
redaction, merge, encoding and the write with its commit, without HTTP. CPU is the process's
(``time.process_time``: every thread, the SQLite writer's included). It also times redaction
alone on the decoded runs.

    python bench/redaction.py                      # 3 rounds; 2,500 spans per mode, load, round
    python bench/redaction.py --spans 2000 --rounds 2

Prints a table and writes bench/results/redaction-<time>.json.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import results_file  # noqa: E402

from goldloop.domain.otel.decode import PROTOBUF  # noqa: E402
from goldloop.domain.redaction import Counts, Redactor, parse_config  # noqa: E402
from goldloop.domain.run_items import parse_batch  # noqa: E402
from goldloop.services import auth, otlp, redaction  # noqa: E402
from goldloop.services.context import Principal, ServiceContext  # noqa: E402
from goldloop.services.langsmith import runs as ls_runs  # noqa: E402
from goldloop.services.langsmith.runs import RunOp  # noqa: E402
from goldloop.settings import load_settings  # noqa: E402
from goldloop.store import migrate  # noqa: E402
from goldloop.store.database import Database  # noqa: E402
from otlp_builders import request, span  # noqa: E402

SPAN_BYTES = 3000
PER_REQUEST = 100
SENTENCES = [
    "The customer asked about order {order} placed on {date} for {amount} EUR.",
    "I checked the parcel status: shipped on {date}, tracking {track}, due in {n} days.",
    "Refund policy v{ver} allows returns within {n} days of delivery for most items.",
    "Our agent looked up invoice INV-{order} and found {n} line items totalling {amount}.",
    "The booking for {n} guests on {date} at {time} is confirmed, reference {track}.",
    "Weather in the destination city will be {n} degrees with light rain on {date}.",
    "Escalated to tier {n} support because the payment of {amount} failed twice.",
    "The user wants to change the delivery address and asked for a callback tomorrow.",
]
PII = {
    "email": (0.20, "Contact me at {name}.{last}@example-mail.com please."),
    "phone": (0.10, "You can reach me on +44 20 7946 {n4} after six."),
    "iban": (0.03, "Refund to my account DE89 3704 0044 0532 0130 00 please."),
    "card": (0.03, "I paid with card 4111 1111 1111 1111 yesterday."),
}


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        order=rng.randint(10_000, 999_999),
        date=f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        amount=f"{rng.randint(5, 900)}.{rng.randint(0, 99):02d}",
        track=f"ZX{rng.randint(10**8, 10**9)}",
        n=rng.randint(2, 40),
        ver=f"{rng.randint(1, 5)}.{rng.randint(0, 9)}",
        time=f"{rng.randint(8, 21)}:{rng.choice(['00', '15', '30', '45'])}",
        name=rng.choice(["jane", "omar", "li", "ana"]),
        last=rng.choice(["doe", "smith", "garcia", "chen"]),
        n4=rng.randint(1000, 9999),
    )


def _text(rng: random.Random, size: int) -> str:
    parts: list[str] = []
    n = 0
    for _name, (share, template) in PII.items():
        if rng.random() < share:
            parts.append(_fill(rng, template))
    while n < size:
        sentence = _fill(rng, rng.choice(SENTENCES))
        parts.insert(rng.randrange(len(parts) + 1), sentence)
        n += len(sentence) + 1
    return " ".join(parts)


def otlp_bodies(rng: random.Random, spans: int) -> list[bytes]:
    """OpenInference LLM spans, PER_REQUEST to a request, each ~SPAN_BYTES of text."""
    bodies = []
    for start in range(0, spans, PER_REQUEST):
        batch = []
        for i in range(start, min(spans, start + PER_REQUEST)):
            trace = uuid.UUID(int=rng.getrandbits(128)).hex
            attrs = {
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o-mini",
                "input.value": _text(rng, SPAN_BYTES // 3),
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": "You are a helpful support agent.",
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": _text(rng, SPAN_BYTES // 3),
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": _text(rng, SPAN_BYTES // 3),
                "llm.token_count.prompt": 400 + i % 50,
                "llm.token_count.completion": 80 + i % 20,
                "session.id": f"s-{i % 200}",
                "user.id": f"u-{i % 50}",
                "metadata": '{"channel": "web", "release": "2026.12.1"}',
            }
            batch.append(span(trace, f"{rng.getrandbits(64) | 1:016x}", None, "llm", attrs))
        bodies.append(request(batch).SerializeToString())
    return bodies


def langsmith_batches(rng: random.Random, spans: int) -> list[list[dict[str, Any]]]:
    batches = []
    for start in range(0, spans, PER_REQUEST):
        batch = []
        for _ in range(start, min(spans, start + PER_REQUEST)):
            run_id = str(uuid.UUID(int=rng.getrandbits(128)))
            batch.append(
                {
                    "id": run_id,
                    "trace_id": run_id,
                    "dotted_order": f"20261207T100000000000Z{run_id}",
                    "session_name": "support",
                    "name": "ChatOpenAI",
                    "run_type": "llm",
                    "start_time": "2026-12-07T10:00:00+00:00",
                    "end_time": "2026-12-07T10:00:01+00:00",
                    "inputs": {
                        "messages": [
                            {"role": "system", "content": "You are a helpful support agent."},
                            {"role": "user", "content": _text(rng, SPAN_BYTES // 2)},
                        ]
                    },
                    "outputs": {"generations": [{"text": _text(rng, SPAN_BYTES // 2)}]},
                    "extra": {"metadata": {"ls_model_name": "gpt-4o-mini", "user": "u-1"}},
                }
            )
        batches.append(batch)
    return batches


def _cpu(fn: Any) -> float:
    started = time.process_time()
    fn()
    return time.process_time() - started


def _redaction_alone(redactor: Redactor, patches: list[Any], counts: Counts) -> float:
    """CPU µs per run of redacting the runs' redacted columns and ``extra``, 20 times over."""
    reps = 20
    started = time.process_time()
    for _ in range(reps):
        for patch in patches:
            for column in redaction.RUN_FIELDS:
                if column in patch.fields:
                    redactor.redact(patch.fields[column], counts)
            redactor.redact(patch.extra, counts)
    return (time.process_time() - started) / (reps * len(patches)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--spans", type=int, default=5000, help="Spans per mode and round, half for each load."
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(25)

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings({"data_dir": Path(tmp), "ingest_processes": 0}, environ={})
        db = Database(settings.effective_database_url)
        migrate.upgrade(db.engine)
        db.start()
        ctx = ServiceContext(db=db, settings=settings)
        who: dict[str, Principal] = {}
        for mode in ("off", "on"):
            ws = auth.create_workspace(ctx, f"bench-{mode}")
            key = auth.create_key(ctx, ws.id, "bench", role="admin")
            who[mode] = auth.authenticate(ctx, key.secret)
        redaction.set_config(ctx, who["on"], {"builtins": "all"})

        cpu: dict[str, dict[str, list[float]]] = {
            load: {"off": [], "on": []} for load in ("otlp", "langsmith")
        }
        for r in range(args.rounds):
            for mode in ("off", "on", "on", "off"):
                bodies = otlp_bodies(rng, args.spans // 2)
                secs = _cpu(
                    lambda b=bodies, m=mode: [
                        otlp.ingest_traces(ctx, who[m], body, PROTOBUF) for body in b
                    ]
                )
                cpu["otlp"][mode].append(secs / (args.spans // 2) * 1e6)
                batches = langsmith_batches(rng, args.spans // 2)
                secs = _cpu(
                    lambda b=batches, m=mode: [
                        ls_runs.ingest_runs(ctx, who[m], [RunOp(run, True) for run in batch])
                        for batch in b
                    ]
                )
                cpu["langsmith"][mode].append(secs / (args.spans // 2) * 1e6)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

        # redaction alone, on the decoded runs of one request of each load
        redactor = Redactor(parse_config({"builtins": "all"}))
        patches, _ = otlp.decode_and_map(b"".join(otlp_bodies(rng, PER_REQUEST)[:1]), PROTOBUF)
        counts = Counts()
        alone = _redaction_alone(redactor, patches, counts)
        ls_patches = parse_batch(langsmith_batches(rng, PER_REQUEST)[0])
        ls_alone = _redaction_alone(redactor, ls_patches, counts)
        db.close()

    rows = {}
    for load, modes in cpu.items():
        off, on = statistics.median(modes["off"]), statistics.median(modes["on"])
        rows[load] = {
            "off_us_per_span": round(off, 1),
            "on_us_per_span": round(on, 1),
            "extra_percent": round((on / off - 1) * 100, 1),
            "off_samples": [round(x, 1) for x in modes["off"]],
            "on_samples": [round(x, 1) for x in modes["on"]],
        }
    print(f"{'load':10} {'off µs/span':>12} {'on µs/span':>12} {'extra':>8}")
    for load, row in rows.items():
        print(
            f"{load:10} {row['off_us_per_span']:>12} {row['on_us_per_span']:>12} "
            f"{row['extra_percent']:>7}%"
        )
    print(f"redaction alone (every built-in), OTLP spans: {alone:.1f} µs per span")
    print(f"redaction alone (every built-in), LangSmith runs: {ls_alone:.1f} µs per run")
    results_file.write(
        "redaction",
        {
            "spans_per_mode_and_round": args.spans // 2,
            "rounds": args.rounds,
            "span_bytes": SPAN_BYTES,
            "loads": rows,
            "redaction_alone_us_per_span": round(alone, 1),
            "redaction_alone_us_per_langsmith_run": round(ls_alone, 1),
            "redacted": dict(counts.by_detector),
        },
    )


if __name__ == "__main__":
    main()
