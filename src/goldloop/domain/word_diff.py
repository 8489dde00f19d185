"""A word diff of two texts: which words stayed, which went and which came, in order.

Texts are split into words, runs of whitespace and single punctuation marks, so a change of one
word in a sentence (or one value in pretty-printed JSON) marks that word, not the whole line.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

MAX_TOKENS = 20_000  # beyond this, the texts are shown as one removal and one addition

_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")

Kind = Literal["same", "removed", "added"]


@dataclass(frozen=True, slots=True)
class Segment:
    kind: Kind
    text: str


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def word_diff(old: str, new: str) -> list[Segment]:
    """Segments that spell ``old`` when the added ones are left out and ``new`` when the removed
    ones are; neighbours of the same kind are merged."""
    a, b = tokens(old), tokens(new)
    if len(a) + len(b) > MAX_TOKENS:
        return _merged([Segment("removed", old), Segment("added", new)])
    out: list[Segment] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.append(Segment("same", "".join(a[i1:i2])))
            continue
        if op in ("delete", "replace"):
            out.append(Segment("removed", "".join(a[i1:i2])))
        if op in ("insert", "replace"):
            out.append(Segment("added", "".join(b[j1:j2])))
    return _merged(out)


def _merged(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for seg in segments:
        if not seg.text:
            continue
        if out and out[-1].kind == seg.kind:
            out[-1] = Segment(seg.kind, out[-1].text + seg.text)
        else:
            out.append(seg)
    return out
