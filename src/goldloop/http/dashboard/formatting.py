"""Jinja filters that turn stored values into short, readable text (escaping stays Jinja's job)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from urllib.parse import quote

import jinja2
import orjson

from goldloop.http.dashboard.chat_view import as_chat
from goldloop.http.dashboard.json_view import render_json


def timestamp(us: int | None) -> str:
    """Microseconds since the epoch as ``2026-11-26 12:03:04`` (UTC)."""
    if us is None:
        return "—"
    try:
        return datetime.fromtimestamp(us / 1_000_000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):  # stored before ingest checked the range
        return f"{us} µs"


def duration_us(us: int | float | None) -> str:
    """A duration to the precision a reader uses: ``850 µs``, ``4.2 ms``, ``12 ms``, ``1.24 s``,
    ``2 m 05 s``, ``3 h 07 m``."""
    if us is None:
        return "—"
    if us == 0:
        return "0"
    if us < 1_000:
        return f"{us:.0f} µs"
    if us < 999_500:
        return f"{us / 1_000:.1f} ms" if us < 9_950 else f"{us / 1_000:.0f} ms"
    if us < 59_995_000:
        return f"{us / 1_000_000:.2f} s"
    seconds = round(us / 1_000_000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} m"
    return f"{minutes} m {secs:02d} s"


def duration_ms(ms: int | float | None) -> str:
    return "—" if ms is None else duration_us(ms * 1_000)


def number(n: int | float | None) -> str:
    if n is None:
        return "—"
    if isinstance(n, float) and not math.isfinite(n):
        return str(n)
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.2f}"
    return f"{int(n):,}"


def cost(x: float | None) -> str:
    if x is None:
        return "—"
    if x == 0:
        return "$0"
    return f"${x:,.4f}" if x < 1 else f"${x:,.2f}"


def percent(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def score(x: float | bool | None) -> str:
    """A score or a mean of scores: up to four significant digits (``0.6667``, ``12.5``)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, bool):
        return "true" if x else "false"
    return f"{x:.4g}"


def signed(x: float | None) -> str:
    """A difference, always with its sign (``+0.05``, ``-0.1333``)."""
    if x is None or math.isnan(x):
        return "—"
    return f"{x:+.4g}"


def p_value(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "—"
    return "< 0.0001" if p < 0.0001 else f"{p:.4f}" if p < 0.01 else f"{p:.3f}"


def path_segment(value: object) -> str:
    """Percent-encode one URL path segment (ids come from senders and may hold anything)."""
    return quote(str(value), safe="")


def error_parts(error: object) -> dict[str, str | None]:
    """A stored run error (an object with type/message/stacktrace, or a string) as parts."""
    if isinstance(error, dict):

        def text(key: str) -> str | None:
            value = error.get(key)
            return None if value is None else str(value)

        return {
            "type": text("type"),
            "message": text("message"),
            "stacktrace": text("stacktrace") or text("traceback"),
        }
    return {"type": None, "message": None if error is None else str(error), "stacktrace": None}


def error_summary(error: object) -> str:
    parts = error_parts(error)
    head = ": ".join(p for p in (parts["type"], parts["message"]) if p)
    return head or "error"


def pretty_json(value: object, limit: int = 20_000) -> str:
    """Indented JSON text (capped), for arguments a reader scans; plain text, Jinja escapes it."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit:,} more)"


def install(env: jinja2.Environment) -> None:
    env.filters.update(
        timestamp=timestamp,
        duration_us=duration_us,
        duration_ms=duration_ms,
        number=number,
        cost=cost,
        percent=percent,
        seg=path_segment,
        error_parts=error_parts,
        error_summary=error_summary,
        json_html=render_json,
        score=score,
        signed=signed,
        p_value=p_value,
        as_chat=as_chat,
        pretty_json=pretty_json,
    )
