"""Deterministic sampling: the same (rule, trace) is always in or always out.

A rule that samples 20% of traffic must pick the same traces when a worker restarts or a
backfill replays a time range, so the decision is a pure function of the rule id and the trace
id, not of a random generator. Hashing the rule id in makes rules sample independently.
"""

from __future__ import annotations

import hashlib

_SCALE = float(1 << 64)


def sample_point(rule_id: str, trace_id: str) -> float:
    """A number in [0, 1) uniformly spread over trace ids, fixed for each (rule, trace)."""
    digest = hashlib.blake2b(f"{rule_id}\x00{trace_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def is_sampled(rule_id: str, trace_id: str, rate: float) -> bool:
    """True when this trace falls in the rule's sample; ``rate`` is a fraction in [0, 1]."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return sample_point(rule_id, trace_id) < rate
