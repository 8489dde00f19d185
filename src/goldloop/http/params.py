"""Parsing of query parameters shared by several routers."""

from __future__ import annotations

from goldloop.domain.clock import from_iso
from goldloop.domain.errors import InvalidInput


def parse_time(field: str, text: str | None) -> int | None:
    """A time given as integer microseconds since the epoch or as ISO-8601."""
    if text is None or not text.strip():
        return None
    raw = text.strip()
    if raw.lstrip("-").isdigit():
        return int(raw)
    try:
        return from_iso(raw)
    except ValueError:
        raise InvalidInput(
            f"{field} {text!r} is not a time: give ISO-8601 (2026-01-31T12:00:00Z) "
            "or microseconds since the epoch",
            details={"field": field},
        ) from None
