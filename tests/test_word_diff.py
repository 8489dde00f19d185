"""The word diff behind the dataset diff page."""

from __future__ import annotations

from goldloop.domain import word_diff
from goldloop.domain.word_diff import Segment


def _sides(segments: list[Segment]) -> tuple[str, str]:
    old = "".join(s.text for s in segments if s.kind != "added")
    new = "".join(s.text for s in segments if s.kind != "removed")
    return old, new


def test_one_changed_word_is_marked_alone() -> None:
    got = word_diff.word_diff("the answer is 42.", "the answer is 43.")
    assert got == [
        Segment("same", "the answer is "),
        Segment("removed", "42"),
        Segment("added", "43"),
        Segment("same", "."),
    ]


def test_both_texts_are_spelled_back_exactly() -> None:
    old = '{\n  "q": "How do I reset my password?",\n  "lang": "en"\n}'
    new = '{\n  "q": "How can I reset the password?",\n  "lang": "en",\n  "tier": 2\n}'
    got = word_diff.word_diff(old, new)
    assert _sides(got) == (old, new)
    assert Segment("added", "can") in got or any(s.kind == "added" and "can" in s.text for s in got)
    assert not any(s.kind != "same" and "lang" in s.text for s in got)


def test_insertions_deletions_and_equal_texts() -> None:
    assert word_diff.word_diff("a b", "a b") == [Segment("same", "a b")]
    assert word_diff.word_diff("", "new") == [Segment("added", "new")]
    assert word_diff.word_diff("old", "") == [Segment("removed", "old")]
    assert word_diff.word_diff("", "") == []


def test_huge_texts_fall_back_to_whole_removal_and_addition() -> None:
    old = "x " * word_diff.MAX_TOKENS
    got = word_diff.word_diff(old, "y")
    assert got == [Segment("removed", old), Segment("added", "y")]
