"""Reading a judge's answer: JSON first, then a tolerant fallback for models that wrap, prefix
or ignore the requested format."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

__all__ = ["JudgeParseError", "parse_choice", "parse_score"]

_REASON_KEYS = ("reasoning", "reason", "explanation", "rationale", "justification", "comment")
_SCORE_KEYS = ("score", "rating", "grade", "verdict", "result")
_CHOICE_KEYS = ("winner", "preference", "choice", "better", "verdict")


class JudgeParseError(ValueError):
    """The answer carries no usable score."""


def _json_objects(text: str) -> Iterator[Mapping[str, Any]]:
    """Every parseable JSON object in the text: the whole text, then each balanced {...}."""
    stripped = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", stripped, flags=re.S | re.I)
    candidates = [stripped] + ([fence.group(1)] if fence else [])
    for candidate in candidates:
        try:
            value = orjson.loads(candidate)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, Mapping):
            yield value
    depth, start, in_str, escaped = 0, -1, False, False
    for i, ch in enumerate(stripped):
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"' and depth > 0:
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                try:
                    value = orjson.loads(stripped[start : i + 1])
                except orjson.JSONDecodeError:
                    continue
                if isinstance(value, Mapping):
                    yield value


def _lower_keys(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in obj.items()}


def _reason(obj: Mapping[str, Any]) -> str | None:
    for key in _REASON_KEYS:
        if isinstance(obj.get(key), str) and obj[key].strip():
            return str(obj[key]).strip()
    return None


_NUMBER = r"(-?\d+(?:\.\d+)?)"
_SCORE_LINE = re.compile(
    rf"\b(?:score|rating|grade)\b\s*(?:is|of|=|:)?\s*\**\s*{_NUMBER}\s*(?:/\s*\d+)?", re.I
)
_BARE_FRACTION = re.compile(rf"{_NUMBER}\s*/\s*\d+")
_VERDICT_LINE = re.compile(
    r"^\W*(?:(?:final\s+)?(?:verdict|answer|result|grade|score)\s*[:=\-]?\s*)?\W*"
    r"(pass|passed|fail|failed|yes|no|correct|incorrect|true|false)\W*$",
    re.I,
)
_PASS_WORDS = {"pass", "passed", "yes", "correct", "true"}


def _as_score(value: Any, binary: bool) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text.split("/")[0])
        except ValueError:
            pass
        if binary:
            lowered = text.lower()
            if lowered in ("pass", "passed", "yes", "true", "correct", "y"):
                return 1.0
            if lowered in ("fail", "failed", "no", "false", "incorrect", "wrong", "n"):
                return 0.0
    return None


def parse_score(text: str, *, binary: bool) -> tuple[float, str | None]:
    """(score as written by the judge, reason). Tries JSON objects (``score``/``rating``/...
    with ``reasoning``/``reason``/...), then ``Score: 4``-style lines, then ``4/5``, then (for
    binary scales) a lone PASS/FAIL-style word. Raises :class:`JudgeParseError`."""
    for obj in _json_objects(text):
        low = _lower_keys(obj)
        for key in _SCORE_KEYS:
            if key in low:
                score = _as_score(low[key], binary)
                if score is not None:
                    return score, _reason(low)
    match = _SCORE_LINE.search(text) or _BARE_FRACTION.search(text)
    if match:
        return float(match.group(1)), _free_reason(text)
    if binary:
        # a verdict alone on the last or the first line ("...\nVerdict: PASS")
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        for line in (lines[-1], lines[0]) if lines else ():
            verdict = _VERDICT_LINE.match(line.strip())
            if verdict:
                passed = verdict.group(1).lower() in _PASS_WORDS
                return (1.0 if passed else 0.0), _free_reason(text)
    raise JudgeParseError(f"no score in the judge's answer: {text.strip()[:120]!r}")


def _free_reason(text: str) -> str | None:
    text = text.strip()
    return text[:2000] if text else None


def parse_choice(text: str) -> tuple[str, str | None]:
    """A pairwise verdict: ``"A"``, ``"B"`` or ``"tie"`` and the reason."""
    for obj in _json_objects(text):
        low = _lower_keys(obj)
        for key in _CHOICE_KEYS:
            choice = _choice(low.get(key))
            if choice is not None:
                return choice, _reason(low)
    match = re.search(
        r"\b(?:winner|preference|better|choice)\b\s*(?:is|:|=)?\s*\**\s*\[?\s*(A|B|tie)\b",
        text,
        re.I,
    )
    if match:
        return _choice(match.group(1)) or "tie", _free_reason(text)
    stripped = text.strip().strip(".*[]\"'").strip()
    choice = _choice(stripped)
    if choice is not None:
        return choice, None
    raise JudgeParseError(f"no A/B/tie verdict in the judge's answer: {text.strip()[:120]!r}")


def _choice(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    v = value.strip().strip(".*[]\"'").strip().lower()
    if v in ("a", "response a", "assistant a", "output a"):
        return "A"
    if v in ("b", "response b", "assistant b", "output b"):
        return "B"
    if v in ("tie", "draw", "equal", "c", "both", "neither"):
        return "tie"
    return None
