"""Query strings as the LangSmith SDK writes them: repeated keys for lists, ``True``/``False``
for booleans, ``str(datetime)`` with a space for times, enum reprs for feedback sources."""

from __future__ import annotations

from fastapi import Request

from goldloop.domain.errors import InvalidInput

MAX_LIMIT = 100


def many(request: Request, name: str) -> list[str]:
    return [v for v in request.query_params.getlist(name) if v != ""]


def one(request: Request, name: str) -> str | None:
    values = many(request, name)
    return values[0] if values else None


def flag(request: Request, name: str) -> bool | None:
    value = one(request, name)
    if value is None:
        return None
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidInput(f"query parameter {name!r} must be true or false", details={"field": name})


def number(request: Request, name: str, default: int, *, maximum: int | None = None) -> int:
    value = one(request, name)
    if value is None:
        return default
    if not value.isdigit():
        raise InvalidInput(
            f"query parameter {name!r} must be a whole number", details={"field": name}
        )
    result = int(value)
    return min(result, maximum) if maximum is not None else result


def page(request: Request) -> tuple[int, int]:
    """(offset, limit) with the limit capped at 100, as the SDK expects to be honoured."""
    return number(request, "offset", 0), max(
        1, number(request, "limit", MAX_LIMIT, maximum=MAX_LIMIT)
    )
