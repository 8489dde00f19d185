from __future__ import annotations

from goldloop.domain.sampling import is_sampled, sample_point


def test_sampling_is_deterministic_and_close_to_the_rate() -> None:
    traces = [f"{i:032x}" for i in range(20_000)]
    picked = [t for t in traces if is_sampled("rule-a", t, 0.2)]
    assert picked == [t for t in traces if is_sampled("rule-a", t, 0.2)]
    assert 0.19 < len(picked) / len(traces) < 0.21


def test_rules_sample_independently_and_edges_hold() -> None:
    traces = [f"t{i}" for i in range(5_000)]
    a = {t for t in traces if is_sampled("rule-a", t, 0.5)}
    b = {t for t in traces if is_sampled("rule-b", t, 0.5)}
    overlap = len(a & b) / len(traces)
    assert 0.22 < overlap < 0.28  # independent halves overlap on about a quarter
    assert all(is_sampled("r", t, 1.0) for t in traces[:100])
    assert not any(is_sampled("r", t, 0.0) for t in traces[:100])
    assert all(0.0 <= sample_point("r", t) < 1.0 for t in traces)
