"""A short run of bench/fuzz_otlp_wire.py: seeded mutations of valid OTLP bodies through the C
decoder and the generated protobuf classes, which must agree on every one (the longer runs, and
the one under AddressSanitizer, are in docs/security.md)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from goldloop.domain.otel import decode as otel_decode

BENCH = Path(__file__).resolve().parents[1] / "bench" / "fuzz_otlp_wire.py"


def _fuzzer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_otlp_wire", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


needs_c = pytest.mark.skipif(
    otel_decode.c_decode_trace_request is None, reason="goldloop._otlp_wire was not built"
)


@needs_c
def test_seeded_mutations_decode_the_same_in_c_and_in_the_generated_classes() -> None:
    fuzz = _fuzzer()
    report = fuzz.fuzz(fuzz.load_c_decoder(None), count=4000, seconds=120.0, seed=22)
    assert report.divergences == {}
    assert report.bodies == 4000  # not cut short by the time bound
    assert report.accepted > 1000  # the mutations reach deep into valid bodies ...
    assert report.rejected > 1000  # ... and break them


@needs_c
def test_the_fuzzer_finds_and_minimizes_a_divergence() -> None:
    """A decoder that differs on one kind of body (a name field given twice) is caught."""
    fuzz = _fuzzer()
    c_decode = fuzz.load_c_decoder(None)

    def off_by_one(body: bytes, span_type: type[otel_decode.OtelSpan]) -> object:
        spans, problems = c_decode(body, span_type)
        for s in spans:
            if s.name == "small":
                s.name = "wrong"
        return spans, problems

    report = fuzz.fuzz(off_by_one, count=300, seconds=60.0, seed=1)
    assert list(report.divergences) == ["different records"]
    small = report.divergences["different records"]
    assert b"small" in small
    assert len(small) < 60  # the seed it came from is ~60 bytes; minimized, fields are gone
