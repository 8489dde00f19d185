"""The time range of the overview and the runs list: a preset (``range=24h``) or a custom
``from``/``to`` pair (ISO-8601, naive means UTC, as a ``datetime-local`` input sends it; or
integer microseconds). Custom bounds win over a preset; a bad bound is a message on the page,
not an error page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from goldloop.domain.errors import InvalidInput
from goldloop.services import run_queries

HOUR = 3_600_000_000
DAY = 24 * HOUR
PRESETS: dict[str, tuple[str, int]] = {
    "15m": ("Last 15 minutes", HOUR // 4),
    "1h": ("Last hour", HOUR),
    "6h": ("Last 6 hours", 6 * HOUR),
    "24h": ("Last 24 hours", DAY),
    "7d": ("Last 7 days", 7 * DAY),
    "30d": ("Last 30 days", 30 * DAY),
}
# Chart buckets, smallest first: the overview takes the smallest one that gives at most
# MAX_BUCKETS buckets over the range.
BUCKETS = (
    ("1m", 60_000_000),
    ("2m", 120_000_000),
    ("5m", 300_000_000),
    ("10m", 600_000_000),
    ("30m", 1_800_000_000),
    ("1h", HOUR),
    ("2h", 2 * HOUR),
    ("6h", 6 * HOUR),
    ("12h", 12 * HOUR),
    ("1d", DAY),
    ("2d", 2 * DAY),
    ("7d", 7 * DAY),
    ("30d", 30 * DAY),
)
MAX_BUCKETS = 48
# The widest custom range (about ten years): the charts would have nothing left to show.
MAX_SPAN = 3660 * DAY


@dataclass(frozen=True)
class TimeRange:
    key: str | None  # a preset's key, "custom", or None (no range: all time)
    start: int | None
    end: int | None
    label: str
    problem: str | None = None

    def params(self) -> dict[str, Any]:
        """The URL parameters that give this range back."""
        if self.key == "custom":
            return {"from": input_value(self.start), "to": input_value(self.end)}
        return {"range": self.key}


def input_value(us: int | None) -> str | None:
    """``us`` as a ``datetime-local`` input's value (UTC, to the second)."""
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _parse(text: str | None, field: str) -> int | None:
    if text is None or not text.strip():
        return None
    return run_queries.parse_time(text, field)


def choose(
    now: int,
    range_key: str | None,
    start_text: str | None,
    end_text: str | None,
    *,
    default: str | None,
) -> TimeRange:
    """The range the parameters ask for; ``default`` (a preset key, or None for all time) when
    they ask for none or for one that is not valid (then with a ``problem`` to show)."""
    problem = None
    try:
        start = _parse(start_text, "from")
        end = _parse(end_text, "to")
        if start is not None or end is not None:
            if start is not None and end is not None and end <= start:
                raise InvalidInput("the end of the range must be after its start")
            lo = start if start is not None else (end or now) - DAY
            hi = end if end is not None else now
            if hi - lo > MAX_SPAN:
                raise InvalidInput("the range may span at most ten years")
            return TimeRange("custom", lo, hi, "Custom range")
    except InvalidInput as exc:
        problem = exc.message
    if range_key in PRESETS:
        label, length = PRESETS[range_key]
        return TimeRange(range_key, now - length, now, label, problem)
    if range_key and range_key != "all" and problem is None:
        problem = f"unknown range {range_key!r}; use one of {', '.join(PRESETS)}"
    if default is None:
        return TimeRange(None, None, None, "All time", problem)
    label, length = PRESETS[default]
    return TimeRange(default, now - length, now, label, problem)


def hour_bucket_for(span_us: int) -> str:
    """The smallest whole-hour chart bucket that gives at most MAX_BUCKETS buckets: buckets made
    of whole hours read hourly rollups (``services.rollup_reads``)."""
    for name, size in BUCKETS:
        if size % HOUR == 0 and -(-span_us // size) <= MAX_BUCKETS:
            return name
    return BUCKETS[-1][0]


def bucket_for(span_us: int) -> str:
    """The chart bucket for a range of ``span_us``."""
    for name, size in BUCKETS:
        if -(-span_us // size) <= MAX_BUCKETS:
            return name
    return BUCKETS[-1][0]
