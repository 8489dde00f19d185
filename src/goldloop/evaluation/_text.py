"""Text built-ins: exact match, contains, regex, string distance."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from goldloop.evaluation._distance import levenshtein_similarity
from goldloop.evaluation._protocol import Evaluator
from goldloop.evaluation._registry import register_evaluator
from goldloop.evaluation._select import (
    MISSING,
    Normaliser,
    output_value,
    reference_value,
    to_text,
)
from goldloop.evaluation._types import EvaluationResult, ExampleData, RunData

__all__ = ["Contains", "ExactMatch", "RegexMatch", "StringDistance"]


def _missing_output(ev: Evaluator, key: str, field: str | None) -> list[EvaluationResult]:
    return [ev.result(key, score=0.0, comment=f"the outputs have no field {field!r}")]


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@register_evaluator("exact_match")
class ExactMatch(Evaluator):
    """Score 1 when the output equals the reference (or ``expected``) after normalisation."""

    name = "exact_match"
    version = "1"

    def __init__(
        self,
        *,
        key: str = "exact_match",
        field: str | None = None,
        reference_field: str | None = None,
        expected: Any = None,
        case_sensitive: bool = True,
        strip: bool = True,
        collapse_whitespace: bool = False,
        ignore_punctuation: bool = False,
    ) -> None:
        self.key, self.field, self.reference_field = key, field, reference_field
        self.expected = MISSING if expected is None else expected
        self.normalise = Normaliser(
            case_sensitive=case_sensitive,
            strip=strip,
            collapse_whitespace=collapse_whitespace,
            ignore_punctuation=ignore_punctuation,
        )

    def evaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
        want = reference_value(example, self.reference_field, self.expected, evaluator=self.name)
        got = output_value(run, self.field)
        if got is MISSING:
            return _missing_output(self, self.key, self.field)
        if not isinstance(got, str) and not isinstance(want, str):
            equal = got == want  # structured values compare as values
        else:
            equal = self.normalise(got) == self.normalise(want)
        comment = (
            None if equal else f"expected {_clip(to_text(want))!r}, got {_clip(to_text(got))!r}"
        )
        return [self.result(self.key, score=1.0 if equal else 0.0, comment=comment)]


@register_evaluator("contains")
class Contains(Evaluator):
    """Score 1 when the output contains the given substrings (``mode`` any or all); with
    ``negate`` it must contain none of them. Without ``substrings`` the reference is used."""

    name = "contains"
    version = "1"

    def __init__(
        self,
        *,
        substrings: str | Sequence[str] | None = None,
        key: str = "contains",
        field: str | None = None,
        reference_field: str | None = None,
        mode: str = "all",
        negate: bool = False,
        case_sensitive: bool = True,
        collapse_whitespace: bool = False,
    ) -> None:
        if mode not in ("any", "all"):
            raise ValueError("mode must be 'any' or 'all'")
        if isinstance(substrings, str):
            substrings = [substrings]
        self.substrings = list(substrings) if substrings is not None else None
        self.key, self.field, self.reference_field = key, field, reference_field
        self.mode, self.negate = mode, negate
        self.normalise = Normaliser(
            case_sensitive=case_sensitive, strip=False, collapse_whitespace=collapse_whitespace
        )

    def evaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
        needles: list[Any]
        if self.substrings is not None:
            needles = list(self.substrings)
        else:
            ref = reference_value(example, self.reference_field, evaluator=self.name)
            needles = list(ref) if isinstance(ref, list | tuple) else [ref]
        got = output_value(run, self.field)
        if got is MISSING:
            return _missing_output(self, self.key, self.field)
        hay = self.normalise(got)
        found = [n for n in needles if self.normalise(n) in hay]
        missing = [n for n in needles if n not in found]
        if self.negate:
            ok = not found
            comment = None if ok else f"contains forbidden {found!r}"
        else:
            ok = bool(found) if self.mode == "any" else not missing
            comment = None if ok else f"missing {missing!r}"
        return [self.result(self.key, score=1.0 if ok else 0.0, comment=comment)]


_FLAGS = {"ignore_case": re.IGNORECASE, "multiline": re.MULTILINE, "dotall": re.DOTALL}


@register_evaluator("regex")
class RegexMatch(Evaluator):
    """Score 1 when ``pattern`` matches the output (``search`` anywhere, or ``fullmatch``);
    ``negate`` inverts it (e.g. "never mentions a card number")."""

    name = "regex"
    version = "1"

    def __init__(
        self,
        *,
        pattern: str,
        key: str = "regex",
        field: str | None = None,
        match: str = "search",
        negate: bool = False,
        flags: Sequence[str] = (),
    ) -> None:
        if match not in ("search", "fullmatch"):
            raise ValueError("match must be 'search' or 'fullmatch'")
        bits = 0
        for flag in flags:
            if flag not in _FLAGS:
                raise ValueError(f"unknown regex flag {flag!r}; use {sorted(_FLAGS)}")
            bits |= _FLAGS[flag]
        try:
            self.pattern = re.compile(pattern, bits)
        except re.error as exc:
            raise ValueError(f"invalid pattern: {exc}") from None
        self.key, self.field, self.match, self.negate = key, field, match, negate

    def evaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
        got = output_value(run, self.field)
        if got is MISSING:
            return _missing_output(self, self.key, self.field)
        text = to_text(got)
        found = (self.pattern.search if self.match == "search" else self.pattern.fullmatch)(text)
        ok = (found is None) if self.negate else (found is not None)
        comment = None
        if not ok:
            comment = (
                f"matched {_clip(found.group(0))!r}"
                if found is not None
                else f"no match for /{self.pattern.pattern}/"
            )
        return [self.result(self.key, score=1.0 if ok else 0.0, comment=comment)]


@register_evaluator("string_distance")
class StringDistance(Evaluator):
    """Normalised Levenshtein similarity (1 = equal, 0 = nothing in common) to the reference.
    With ``min_similarity`` the score is 1/0 (pass/fail) and the similarity goes in ``value``."""

    name = "string_distance"
    version = "1"

    def __init__(
        self,
        *,
        key: str = "string_similarity",
        field: str | None = None,
        reference_field: str | None = None,
        expected: str | None = None,
        min_similarity: float | None = None,
        case_sensitive: bool = True,
        collapse_whitespace: bool = True,
    ) -> None:
        if min_similarity is not None and not 0 <= min_similarity <= 1:
            raise ValueError("min_similarity must be between 0 and 1")
        self.key, self.field, self.reference_field = key, field, reference_field
        self.expected = MISSING if expected is None else expected
        self.min_similarity = min_similarity
        self.normalise = Normaliser(
            case_sensitive=case_sensitive, collapse_whitespace=collapse_whitespace
        )

    def evaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
        want = reference_value(example, self.reference_field, self.expected, evaluator=self.name)
        got = output_value(run, self.field)
        if got is MISSING:
            return _missing_output(self, self.key, self.field)
        sim = levenshtein_similarity(self.normalise(got), self.normalise(want))
        if self.min_similarity is None:
            return [self.result(self.key, score=sim)]
        ok = sim >= self.min_similarity
        comment = None if ok else f"similarity {sim:.3f} < {self.min_similarity}"
        return [self.result(self.key, score=1.0 if ok else 0.0, value=sim, comment=comment)]
