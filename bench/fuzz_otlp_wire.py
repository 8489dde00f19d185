"""Differential fuzz of the C OTLP decoder (goldloop._otlp_wire) against the generated protobuf
classes, the reference (``otel_decode.pb_traces_generated``).

Valid ExportTraceServiceRequest bodies are mutated, structurally (the body parsed into a tree of
fields: tags and lengths written in more bytes than needed, unknown fields of every wire type
and field number 0, deep nests of unknown groups, arrays and key-value lists, fields renumbered,
retyped, deleted, duplicated, spliced from another body, extreme varints, invalid UTF-8) and
then byte by byte (bit flips, byte edits, truncation, deletions, insertions), and each body goes
through both decoders. The two must give the same verdict and, when they accept, the same
records. Each divergence is minimized (fields, then bytes, removed while it persists) and
printed as a reproducer; the exit status is 1 if there was any.

    PYTHONPATH=src python bench/fuzz_otlp_wire.py --count 200000 --seconds 600 --seed 1

Under AddressSanitizer and UBSan (docs/security.md), with the extension built aside, so the
installed one is left alone (in a shell of its own: LD_PRELOAD stays set); memory errors, then
leaks, which need full allocation stacks and so run ~10x slower:

    python bench/fuzz_otlp_wire.py --build-sanitized /tmp/asan
    export LD_PRELOAD=$(gcc -print-file-name=libasan.so) PYTHONMALLOC=malloc
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    ASAN_OPTIONS=detect_leaks=0 \\
      python bench/fuzz_otlp_wire.py --extension /tmp/asan --count 30000 --seconds 900
    ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0 \\
      LSAN_OPTIONS=suppressions=/tmp/asan/lsan.supp \\
      python bench/fuzz_otlp_wire.py --extension /tmp/asan --count 1000 --seconds 600
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import random
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "goldloop" / "_otlp_wire.c"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # otlp_builders: the tests' OTLP request builders

from goldloop.domain.errors import InvalidInput  # noqa: E402
from goldloop.domain.otel.decode import OtelSpan, pb_traces_generated  # noqa: E402

Decoder = Callable[[bytes, type[OtelSpan]], tuple[list[OtelSpan], list[str]]]

# ---- the wire format as a tree ----------------------------------------------------------------


def varint(n: int, size: int = 0) -> bytes:
    """n as a varint, padded with continuation bytes to at least `size` bytes."""
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append(n & 0x7F | (0x80 if n >> 7 else 0))
        n >>= 7
        if not n:
            break
    while len(out) < size:
        out[-1] |= 0x80
        out.append(0)
    return bytes(out)


@dataclass
class Field:
    number: int
    wire: int
    value: Any  # int (wire 0), bytes (1, 2, 5, or anything unparsed), list[Field] (2 and 3)
    tag_size: int = 0  # bytes the tag is written in (0: as few as needed)
    len_size: int = 0  # likewise the length of a wire-2 field, or a wire-0 value

    @property
    def sizes(self) -> tuple[int, int]:
        return self.tag_size, self.len_size


def _read_varint(buf: bytes, at: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if at >= len(buf) or shift >= 70:
            raise ValueError
        b = buf[at]
        at += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result & ((1 << 64) - 1), at


def parse(buf: bytes, depth: int = 0, end_group: int | None = None) -> tuple[list[Field], int]:
    """The fields of a message (or, with end_group, of a group) and where they end."""
    fields: list[Field] = []
    at = 0
    while at < len(buf):
        start = at
        tag, at = _read_varint(buf, at)
        number, wire = tag >> 3, tag & 7
        tag_size = at - start
        if wire == 4:
            if number != end_group:
                raise ValueError
            return fields, at
        if number == 0 and end_group is None:
            raise ValueError
        if wire == 0:
            start = at
            value, at = _read_varint(buf, at)
            fields.append(Field(number, 0, value, tag_size, at - start))
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if at + size > len(buf):
                raise ValueError
            fields.append(Field(number, wire, buf[at : at + size], tag_size))
            at += size
        elif wire == 2:
            start = at
            n, at = _read_varint(buf, at)
            len_size, payload = at - start, buf[at : at + n]
            if len(payload) < n:
                raise ValueError
            at += n
            inner: Any = payload
            if payload and depth < 150:
                with contextlib.suppress(ValueError):
                    inner, _ = parse(payload, depth + 1)
            fields.append(Field(number, 2, inner, tag_size, len_size))
        elif wire == 3:
            if depth >= 150:
                raise ValueError
            children, used = parse(buf[at:], depth + 1, number)
            at += used
            fields.append(Field(number, 3, children, tag_size))
        else:
            raise ValueError
    if end_group is not None:
        raise ValueError
    return fields, at


def serialize(fields: list[Field]) -> bytes:
    out = bytearray()
    for f in fields:
        out += varint(f.number << 3 | f.wire, f.tag_size)
        if f.wire == 2:
            v = f.value
            payload = serialize(v) if isinstance(v, list) else bytes(v) if v else b""
            out += varint(len(payload), f.len_size) + payload
        elif f.wire == 3:
            out += serialize(f.value if isinstance(f.value, list) else [])
            out += varint(f.number << 3 | 4)
        elif f.wire == 0 and isinstance(f.value, int):
            out += varint(f.value, f.len_size)
        else:
            out += f.value if isinstance(f.value, bytes) else b""
    return bytes(out)


def clone(fields: list[Field]) -> list[Field]:
    return [
        Field(f.number, f.wire, clone(f.value) if isinstance(f.value, list) else f.value, *f.sizes)
        for f in fields
    ]


def all_lists(fields: list[Field]) -> list[list[Field]]:
    """Every field list in the tree (the message and every parsed submessage and group)."""
    out = [fields]
    for f in fields:
        if isinstance(f.value, list):
            out += all_lists(f.value)
    return out


# ---- seeds: valid requests ---------------------------------------------------------------------


def seeds() -> list[bytes]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    from otlp_builders import any_value

    def kvs(attrs: dict[str, Any]) -> list[KeyValue]:
        return [
            KeyValue(key=k, value=AnyValue() if v is None else any_value(v))
            for k, v in attrs.items()
        ]

    attrs = {
        "gen_ai.operation.name": "chat",
        "text": "refund ✓ 退款",
        "n": -42,
        "big": 2**63 - 1,
        "ratio": 0.25,
        "yes": True,
        "raw": b"\xff\x00",
        "none": None,
        "list": ["a", 1, [2.5, {"deep": [True]}]],
        "map": {"k": "v", "m": {"x": []}},
    }
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(kvs({"service.name": "svc", "host": "h"}))
    ref = rs.resource.entity_refs.add(type="service", schema_url="s")
    ref.id_keys.append("service.name")
    rs.schema_url = "https://opentelemetry.io/schemas/1.30.0"
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "scope", "1.0"
    ss.scope.attributes.extend(kvs({"scope.attr": 1}))
    for n in range(3):
        s = ss.spans.add(
            trace_id=bytes(range(1, 17)),
            span_id=bytes([n + 1] * 8),
            parent_span_id=b"" if n == 0 else bytes([1] * 8),
            name=f"span {n}",
            kind=n + 1,
            start_time_unix_nano=1_764_150_816_534_505_000 + n,
            end_time_unix_nano=1_764_150_816_634_505_000,
            trace_state="k=v",
            flags=0x301,
            dropped_attributes_count=n,
        )
        s.attributes.extend(kvs(attrs if n != 1 else {"only": "one"}))
        s.status.code, s.status.message = 2, "boom"
        ev = s.events.add(name="exception", time_unix_nano=5)
        ev.attributes.extend(kvs({"exception.type": "ValueError"}))
        link = s.links.add(trace_id=bytes(range(16)), span_id=bytes(8), trace_state="x")
        link.attributes.extend(kvs({"link": [1]}))
    req.resource_spans.add().scope_spans.add().spans.add(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="bare"
    )
    small = ExportTraceServiceRequest()
    small.resource_spans.add().scope_spans.add().spans.add(
        trace_id=b"\x0a" * 16, span_id=b"\x0b" * 8, name="small"
    ).attributes.extend(kvs({"a": "b"}))
    return [req.SerializeToString(), small.SerializeToString()]


# ---- mutations ---------------------------------------------------------------------------------

NUMBERS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 90, 2**29 - 1]
VARINTS = [0, 1, 127, 128, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63, 2**64 - 1]
SIZES = [1, 2, 4, 5, 5, 6, 6, 9, 10, 10, 11]


def _random_value(rng: random.Random, wire: int, depth: int = 0) -> Any:
    if wire == 0:
        return rng.choice(VARINTS)
    if wire == 1:
        return rng.randbytes(8)
    if wire == 5:
        return rng.randbytes(4)
    if wire == 3:
        return (
            [_random_field(rng, depth + 1) for _ in range(rng.randint(0, 2))] if depth < 3 else []
        )
    return rng.choice([b"", b"\xff", b"\xc3", "✓".encode(), rng.randbytes(rng.randint(1, 6))])


def _random_field(rng: random.Random, depth: int = 0) -> Field:
    wire = rng.choice([0, 0, 1, 2, 2, 3, 5, 4, 6, 7])
    number = rng.choice(NUMBERS) if rng.random() < 0.9 else rng.randrange(1 << 29)
    return Field(number, wire, _random_value(rng, wire, depth))


def _nest(rng: random.Random, inner: list[Field]) -> list[Field]:
    """A deep nest around `inner`: unknown groups, or AnyValue arrays or key-value lists."""
    kind = rng.choice(["groups", "arrays", "kvlists"])
    depth = rng.choice([1, 2, rng.randint(25, 50), rng.randint(85, 102)])
    out = inner
    for _ in range(depth):
        if kind == "groups":
            out = [Field(rng.choice([94, 94, 0, 5]), 3, out)]
        elif kind == "arrays":
            out = [Field(5, 2, [Field(1, 2, out)])]
        else:
            out = [Field(6, 2, [Field(1, 2, [Field(1, 2, b"k"), Field(2, 2, out)])])]
    return out


def mutate_tree(rng: random.Random, fields: list[Field], donors: list[list[Field]]) -> None:
    target = rng.choice(all_lists(fields))
    op = rng.randrange(11)
    if not target or op == 0:  # an unknown field (any number, any wire type)
        target.insert(rng.randint(0, len(target)), _random_field(rng))
        return
    at = rng.randrange(len(target))
    f = target[at]
    if op == 1:  # a tag, length or varint in more bytes than needed
        if f.wire in (0, 2) and rng.random() < 0.5:
            f.len_size = rng.choice(SIZES)
        else:
            f.tag_size = rng.choice(SIZES)
    elif op == 2:
        target.insert(at, Field(rng.choice(NUMBERS), 3, _nest(rng, [])))
    elif op == 3 and f.wire == 2:
        inner = f.value if isinstance(f.value, list) else [Field(1, 2, f.value)]
        f.value = _nest(rng, inner)
    elif op == 4:
        f.number = rng.choice(NUMBERS)
    elif op == 5:
        f.wire = rng.choice([0, 1, 2, 3, 5])
        f.value = _random_value(rng, f.wire)
    elif op == 6:
        del target[at]
    elif op == 7:
        target.insert(rng.randint(0, len(target)), clone([f])[0])
    elif op == 8 and f.wire == 2:  # splice a submessage from this body or another
        fields = [g for x in all_lists(rng.choice(donors)) for g in x if g.wire == 2]
        donor = rng.choice(fields or [f]).value
        f.value = clone(donor) if isinstance(donor, list) else donor
    elif op == 9:
        f.value = _random_value(rng, f.wire)
    else:  # a field of a number the message may know, with a random value
        wire = rng.choice([0, 2])
        target.insert(at, Field(rng.choice(NUMBERS[:18]), wire, _random_value(rng, wire)))


def mutate_bytes(rng: random.Random, body: bytearray, donors: list[bytes]) -> None:
    if not body:
        body += rng.randbytes(rng.randint(1, 8))
        return
    at = rng.randrange(len(body))
    op = rng.random()
    if op < 0.3:
        body[at] ^= 1 << rng.randrange(8)
    elif op < 0.5:
        body[at] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFF, rng.randrange(256)])
    elif op < 0.6:
        del body[at:]
    elif op < 0.75:
        del body[at : at + rng.randint(1, 8)]
    elif op < 0.9:
        body[at:at] = rng.randbytes(rng.randint(1, 4))
    else:  # splice bytes of another body
        donor = rng.choice(donors)
        start = rng.randrange(len(donor))
        body[at:at] = donor[start : start + rng.randint(1, 32)]


def mutant(rng: random.Random, seed_trees: list[list[Field]], seed_bodies: list[bytes]) -> bytes:
    tree = clone(rng.choice(seed_trees))
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        mutate_tree(rng, tree, seed_trees)
    body = bytearray(serialize(tree))
    for _ in range(rng.choice([0, 0, 1, 2])):
        mutate_bytes(rng, body, seed_bodies)
    return bytes(body)


# ---- the comparison ----------------------------------------------------------------------------


def load_c_decoder(directory: str | None) -> Decoder:
    if directory is None:
        from goldloop._otlp_wire import decode_trace_request

        return decode_trace_request
    [path] = Path(directory).glob("_otlp_wire*.so")
    spec = importlib.util.spec_from_file_location("goldloop._otlp_wire", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    decoder: Decoder = module.decode_trace_request
    return decoder


def outcome(decode: Callable[[bytes], Any], body: bytes) -> Any:
    try:
        return decode(body)
    except (InvalidInput, ValueError):
        return "invalid"
    except Exception as exc:  # any other exception is a finding of its own
        return f"raised {type(exc).__name__}"


def compare(c_decode: Decoder, body: bytes) -> tuple[str | None, bool]:
    """What kind of difference there is between the two decoders' outcomes (None: none), and
    whether the reference accepts the body."""
    ours = outcome(lambda b: c_decode(b, OtelSpan), body)
    ref = outcome(pb_traces_generated, body)
    if ours == ref or repr(ours) == repr(ref):  # repr: a NaN is not equal to itself
        return None, not isinstance(ref, str)
    return _kind(ours, ref), not isinstance(ref, str)


def divergence(c_decode: Decoder, body: bytes) -> str | None:
    return compare(c_decode, body)[0]


def _same_kind(c_decode: Decoder, kind: str, body: bytes) -> bool:
    return divergence(c_decode, body) == kind


def _kind(ours: Any, ref: Any) -> str:
    if isinstance(ours, str) and isinstance(ref, str):
        return f"C {ours}, reference {ref}"
    if isinstance(ours, str):
        return f"C {ours}, reference accepts"
    if isinstance(ref, str):
        return f"C accepts, reference {ref}"
    return "different records"


def minimize(body: bytes, still: Callable[[bytes], bool], seconds: float = 20.0) -> bytes:
    """A smaller body for which `still` holds: fields removed, then chunks of bytes."""
    deadline = time.monotonic() + seconds
    try:
        tree, _ = parse(body)
    except ValueError:
        tree = None
    changed = tree is not None
    while changed and tree is not None and time.monotonic() < deadline:
        changed = False
        for fields in all_lists(tree):
            for k in range(len(fields) - 1, -1, -1):
                removed = fields.pop(k)
                if still(serialize(tree)):
                    changed = True
                    continue
                fields.insert(k, removed)
    if tree is not None and still(serialize(tree)):
        body = serialize(tree)
    chunk = max(1, len(body) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        at, shrunk = 0, False
        while at < len(body):
            candidate = body[:at] + body[at + chunk :]
            if still(candidate):
                body, shrunk = candidate, True
            else:
                at += chunk
        if not shrunk:
            chunk //= 2
    return body


@dataclass
class Report:
    bodies: int = 0
    accepted: int = 0
    rejected: int = 0
    seconds: float = 0.0
    divergences: dict[str, bytes] = field(default_factory=dict)  # kind -> minimized body
    diverging: dict[str, int] = field(default_factory=dict)  # kind -> bodies


def fuzz(
    c_decode: Decoder,
    *,
    count: int,
    seconds: float,
    seed: int,
    log: Callable[[str], None] = lambda _: None,
) -> Report:
    rng = random.Random(seed)
    seed_bodies = seeds()
    seed_trees = [parse(b)[0] for b in seed_bodies]
    report = Report()
    start = time.monotonic()
    while report.bodies < count and time.monotonic() - start < seconds:
        if report.bodies and report.bodies % 20_000 == 0:
            log(f"{report.bodies} bodies, {time.monotonic() - start:.0f} s")
        body = mutant(rng, seed_trees, seed_bodies)
        report.bodies += 1
        kind, accepted = compare(c_decode, body)
        if kind is None:
            report.accepted += accepted
            report.rejected += not accepted
            continue
        report.diverging[kind] = report.diverging.get(kind, 0) + 1
        if kind not in report.divergences:  # the first body of each kind, minimized
            small = minimize(body, functools.partial(_same_kind, c_decode, kind))
            report.divergences[kind] = small
            log(f"DIVERGENCE {kind}: {small.hex()}  {small!r}")
    report.seconds = time.monotonic() - start
    return report


def build_sanitized(directory: str) -> None:
    """The extension built with AddressSanitizer and UBSan into `directory`."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"_otlp_wire{sysconfig.get_config_var('EXT_SUFFIX')}"
    flags = "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
    command = [
        "gcc",
        "-shared",
        "-fPIC",
        "-O1",
        "-g",
        *flags.split(),
        "-Wall",
        "-Wextra",
        f"-I{sysconfig.get_paths()['include']}",
        str(SOURCE),
        "-o",
        str(target),
    ]
    print(" ".join(command))
    subprocess.run(command, check=True)
    # LeakSanitizer's only finding outside this module: strings of orjson's module init, once
    # per process (with fast_unwind_on_malloc=0: the fast unwinder stops inside libpython)
    (out / "lsan.supp").write_text("leak:orjson\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="bodies at most")
    parser.add_argument("--seconds", type=float, default=300.0, help="time at most")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--extension", help="a directory with a built _otlp_wire*.so to test")
    parser.add_argument("--build-sanitized", metavar="DIR", help="build with ASan+UBSan, exit")
    args = parser.parse_args()
    if args.build_sanitized:
        build_sanitized(args.build_sanitized)
        return 0
    c_decode = load_c_decoder(args.extension)
    report = fuzz(
        c_decode,
        count=args.count,
        seconds=args.seconds,
        seed=args.seed,
        log=lambda line: print(line, flush=True),
    )
    print(
        f"{report.bodies} bodies in {report.seconds:.1f} s "
        f"({report.bodies / max(report.seconds, 1e-9):,.0f}/s): "
        f"{report.accepted} accepted and {report.rejected} rejected by both, "
        f"{len(report.divergences)} kinds of divergence"
    )
    for kind, body in report.divergences.items():
        print(f"  {kind} ({report.diverging[kind]} bodies): bytes.fromhex({body.hex()!r})")
    return 1 if report.divergences else 0


if __name__ == "__main__":
    sys.exit(main())
