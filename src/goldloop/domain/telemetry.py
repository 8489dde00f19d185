"""The server process's own counters, and the Prometheus text format they are exposed in.

``Telemetry`` is one per server process (it lives on the ``ServiceContext``): requests counted
and timed by route template (never the raw path, so the number of series stays bounded by the
number of routes), runs ingested, and ingestion requests refused by reason. Thread-safe; pure
(no I/O): the HTTP layer feeds it, ``services.server_health`` reads a snapshot.

``Exposition`` writes the text format (version 0.0.4): one ``# HELP``/``# TYPE`` header per
family, label values escaped.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the request duration histogram."""

UNMATCHED_ROUTE = "(unmatched)"
"""The route label of a request no route matched (a 404, or one refused before routing)."""

REJECTION_REASONS = {
    400: "invalid",
    401: "unauthenticated",
    403: "forbidden",
    408: "timeout",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    503: "overloaded",
}


def rejection_reason(status: int) -> str:
    """Why an ingestion request with this status was refused (``other`` for the rest)."""
    return REJECTION_REASONS.get(status, "server_error" if status >= 500 else "other")


@dataclass
class _Timing:
    count: int = 0
    total_s: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS_S))


@dataclass(frozen=True)
class TelemetrySnapshot:
    requests: dict[tuple[str, str, str], int]
    """(method, route, status) -> requests."""
    durations: dict[tuple[str, str], tuple[int, float, tuple[int, ...]]]
    """(method, route) -> (count, sum of seconds, cumulative count per bucket)."""
    ingested_runs: int
    ingest_rejections: dict[str, int]
    redactions: dict[str, int] = field(default_factory=dict)
    """Values redacted at ingest, by detector (or custom rule name)."""


class Telemetry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str, str]] = Counter()
        self._timings: dict[tuple[str, str], _Timing] = {}
        self._ingested_runs = 0
        self._rejections: Counter[str] = Counter()
        self._redactions: Counter[str] = Counter()

    def request(self, method: str, route: str, status: int, duration_s: float) -> None:
        with self._lock:
            self._requests[(method, route, str(status))] += 1
            timing = self._timings.setdefault((method, route), _Timing())
            timing.count += 1
            timing.total_s += duration_s
            for i, bound in enumerate(DURATION_BUCKETS_S):
                if duration_s <= bound:
                    timing.buckets[i] += 1

    def ingested(self, runs: int) -> None:
        with self._lock:
            self._ingested_runs += runs

    def ingest_rejected(self, reason: str) -> None:
        with self._lock:
            self._rejections[reason] += 1

    def redacted(self, by_detector: Mapping[str, int]) -> None:
        with self._lock:
            self._redactions.update(by_detector)

    def snapshot(self) -> TelemetrySnapshot:
        with self._lock:
            return TelemetrySnapshot(
                requests=dict(self._requests),
                durations={
                    k: (t.count, t.total_s, tuple(t.buckets)) for k, t in self._timings.items()
                },
                ingested_runs=self._ingested_runs,
                ingest_rejections=dict(self._rejections),
                redactions=dict(self._redactions),
            )


def label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


class Exposition:
    """Builds a Prometheus text exposition family by family."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self._lines.append(f"# HELP {name} {help_text}")
        self._lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        if labels:
            inner = ",".join(f'{k}="{label_value(v)}"' for k, v in labels.items())
            self._lines.append(f"{name}{{{inner}}} {_number(value)}")
        else:
            self._lines.append(f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"
