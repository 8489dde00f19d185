"""Whether two experiments can be compared key by key, and the comparison of all their keys.

Pairing by example id is only honest when both experiments were judged against the same
reference and by the same judge. A key is *not comparable* (and no verdict is given on it) when

* some paired examples' reference outputs differ between the two dataset versions (edited
  answers would otherwise read as regressions or improvements of the agent), or
* the key's judge differs: another judge model or another prompt (its hash).

``changed="unchanged-only"`` compares such a key on the examples whose references did not change
instead, and ``judge_change="allow"`` compares across judges; both say so in the verdict line.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from goldloop.domain.comparison import Attempt, ErrorPolicy, KeyComparison, compare_key

__all__ = [
    "CLUSTER_FIELDS",
    "ChangedPolicy",
    "JudgePolicy",
    "ScoreKeys",
    "Side",
    "cluster_of",
    "compare_sides",
    "reference_fingerprint",
]

CLUSTER_FIELDS = ("cluster", "session_id", "thread_id", "conversation_id")
"""Example metadata that puts examples in one cluster, in the order looked up."""

ChangedPolicy = Literal["refuse", "unchanged-only"]
JudgePolicy = Literal["refuse", "allow"]


def reference_fingerprint(outputs: Any) -> str:
    """A short, stable hash of reference outputs (canonical JSON: sorted keys)."""
    raw = orjson.dumps(outputs, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class ScoreKeys:
    """Which keys an experiment scored, and which evaluators produce each. An evaluator that
    raised cannot say which keys it would have given, so its error is stored under its own
    name; that error belongs to the keys the same evaluator gave on other examples."""

    keys: tuple[str, ...]
    producers: Mapping[str, frozenset[str]]

    @classmethod
    def of(cls, results: Sequence[tuple[str, str | None, bool]]) -> ScoreKeys:
        """From ``(key, evaluator name, errored)`` of every result, in order."""
        producers: dict[str, set[str]] = {}
        seen: dict[str, bool] = {}  # key -> only errors so far
        for key, evaluator, errored in results:
            seen[key] = seen.get(key, True) and errored
            if not errored and evaluator:
                producers.setdefault(key, set()).add(evaluator)
        named = {ev for evs in producers.values() for ev in evs}
        keys = tuple(k for k, only_errors in seen.items() if not (only_errors and k in named))
        return cls(keys, {k: frozenset(v | {k}) for k, v in producers.items()})

    def producers_of(self, key: str) -> frozenset[str]:
        return self.producers.get(key, frozenset({key}))


def cluster_of(
    metadata: Mapping[str, Any] | None,
    lineage: Mapping[str, Any] | None,
    cluster_field: str | None = None,
) -> str | None:
    """The cluster an example belongs to: its metadata ``cluster_field`` when the dataset
    declares one, else the first of ``CLUSTER_FIELDS`` it has, else the trace it was taken
    from (examples added from one production trace are one conversation). None: on its own."""
    meta = metadata or {}
    for name in (cluster_field,) if cluster_field else CLUSTER_FIELDS:
        value = meta.get(name)
        if value is not None and value != "":
            return f"{name}={value}"
    trace = (lineage or {}).get("trace_id")
    return f"trace={trace}" if trace else None


@dataclass(frozen=True)
class Side:
    """One experiment as a comparison needs it."""

    name: str
    dataset_version: int | None
    attempts: Mapping[str, Mapping[str, Sequence[Attempt]]]
    """``{key: {example: [attempt per repetition]}}``."""
    references: Mapping[str, str | None] = field(default_factory=dict)
    """``{example: reference fingerprint}`` (None or absent: not recorded)."""
    judges: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """``{key: {"model=... prompt=...", ...}}`` for keys scored by a judge."""
    clusters: Mapping[str, str] = field(default_factory=dict)
    """``{example: cluster}`` for examples that share a conversation, session or trace."""


def _changed(a: Side, b: Side, examples: set[str]) -> tuple[list[str], list[str]]:
    """(examples whose reference changed, examples whose reference cannot be checked)."""
    if a.dataset_version is not None and a.dataset_version == b.dataset_version:
        return [], []
    changed, unknown = [], []
    for ex in sorted(examples):
        ra, rb = a.references.get(ex), b.references.get(ex)
        if ra is None or rb is None:
            if a.dataset_version != b.dataset_version:
                unknown.append(ex)
        elif ra != rb:
            changed.append(ex)
    return changed, unknown


def _names(examples: Sequence[str], limit: int = 12) -> str:
    more = len(examples) - limit
    return ", ".join(examples[:limit]) + (f" and {more} more" if more > 0 else "")


def _versions(a: Side, b: Side) -> str:
    va = "?" if a.dataset_version is None else a.dataset_version
    vb = "?" if b.dataset_version is None else b.dataset_version
    return f"dataset versions {va} (baseline) and {vb} (candidate)"


def compare_sides(
    a: Side,
    b: Side,
    *,
    keys: Sequence[str] | None = None,
    lower_is_better: Sequence[str] = (),
    alpha: float = 0.05,
    confidence: float = 0.95,
    errors: ErrorPolicy = "fail",
    changed: ChangedPolicy = "refuse",
    judge_change: JudgePolicy = "refuse",
) -> list[KeyComparison]:
    """Compare ``b`` (candidate) with ``a`` (baseline) on every key both have (or ``keys``);
    keys that cannot be compared come back with ``comparable=False`` and the reason."""
    wanted = keys if keys is not None else [k for k in a.attempts if k in b.attempts]
    clusters = {**a.clusters, **b.clusters}
    out: list[KeyComparison] = []
    for key in wanted:
        att_a, att_b = a.attempts.get(key, {}), b.attempts.get(key, {})
        shared = set(att_a) & set(att_b)
        changed_ex, unknown = _changed(a, b, shared)
        refusal: str | None = None
        restricted: str | None = None
        if changed_ex or unknown:
            if changed == "unchanged-only":
                drop = set(changed_ex) | set(unknown)
                kept = len(shared - drop)
                att_a = {ex: v for ex, v in att_a.items() if ex not in drop}
                att_b = {ex: v for ex, v in att_b.items() if ex not in drop}
                restricted = (
                    f"compared on the {kept} of {len(shared)} examples whose references are "
                    f"unchanged between {_versions(a, b)} (--only-unchanged)"
                )
            elif changed_ex:
                refusal = (
                    f"the references of {len(changed_ex)} paired example(s) differ between "
                    f"{_versions(a, b)}: {_names(changed_ex)}; run the baseline again on the "
                    "candidate's version, or compare on the unchanged examples only "
                    "(--only-unchanged)"
                )
            else:
                refusal = (
                    f"{_versions(a, b)} differ and the references of {len(unknown)} "
                    f"example(s) were not recorded, so edits cannot be ruled out: "
                    f"{_names(unknown)}; run the baseline again on the candidate's version, "
                    "or --only-unchanged"
                )
        ja, jb = a.judges.get(key, frozenset()), b.judges.get(key, frozenset())
        if ja != jb and judge_change == "refuse" and refusal is None:
            refusal = (
                f"the judge differs: baseline {', '.join(sorted(ja)) or 'no judge'} vs "
                f"candidate {', '.join(sorted(jb)) or 'no judge'} (a judge change moves "
                "scores on its own; --allow-judge-change compares anyway)"
            )
        elif ja != jb and judge_change == "allow":
            note = "judge changed, compared anyway (--allow-judge-change)"
            restricted = f"{restricted}; {note}" if restricted else note
        cmp = compare_key(
            key,
            att_a,
            att_b,
            higher_is_better=key not in lower_is_better,
            confidence=confidence,
            alpha=alpha,
            errors=errors,
            clusters=clusters,
        )
        out.append(
            dataclasses.replace(
                cmp,
                comparable=refusal is None,
                refusal=refusal,
                changed_examples=tuple(changed_ex),
                restricted=restricted,
                judges_a=tuple(sorted(ja)),
                judges_b=tuple(sorted(jb)),
            )
        )
    return out
