"""The Run record the SDK builds for each traced call, its ids, and value snapshots.

Snapshots: inputs are captured when a run starts and outputs when it ends, as a *snapshot*:
dicts, lists, tuples and sets are copied (recursively), immutable leaves (str, int, float,
bool, None, datetime, UUID, enum members) are shared, pydantic models and dataclasses are
converted to plain dicts at that moment, and anything else becomes its ``repr``. So the
traced function or its caller can mutate its objects afterwards without changing what is sent,
while the costly part, JSON encoding, happens later in the exporter's thread.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import random
import time
import uuid
from typing import Any

from goldloop._kinds import KINDS as RUN_KINDS

_randbits = random.getrandbits  # the module reseeds itself in a forked child
_V4_CLEAR = ~((0xF << 76) | (0x3 << 62))
_V4_SET = (0x4 << 76) | (0x2 << 62)

KINDS = frozenset(RUN_KINDS)

MAX_DEPTH = 24
MAX_REPR = 2000
_SHARED = (str, int, float, bool, type(None), _dt.datetime, _dt.date, _dt.time, uuid.UUID)


def new_run_id() -> str:
    """A random (version 4) UUID as a string; about four times cheaper than ``uuid.uuid4()``."""
    h = "%032x" % ((_randbits(128) & _V4_CLEAR) | _V4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_trace_id() -> str:
    """32 lowercase hex digits: a valid W3C trace-id, so traceparent carries it unchanged."""
    return "%032x" % (_randbits(128) | 1)


_time_ns = time.time_ns


def now_us() -> int:
    return _time_ns() // 1000


LEAVES = frozenset({str, int, float, bool, type(None)})  # shared as they are, never copied


def snapshot(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` that later mutation of the original cannot change (see module doc)."""
    t = type(value)
    if t in LEAVES:
        return value
    if depth >= MAX_DEPTH:
        return _short_repr(value)
    depth += 1
    # leaves are tested inline: a call per string or number is most of a snapshot's cost
    if t is dict:
        return {
            (k if type(k) is str else str(k)): v if type(v) in LEAVES else snapshot(v, depth)
            for k, v in value.items()
        }
    if t is list or t is tuple:
        return [v if type(v) in LEAVES else snapshot(v, depth) for v in value]
    return _snapshot_other(value, depth - 1)


def _snapshot_other(value: Any, depth: int) -> Any:
    if isinstance(value, enum.Enum):
        return snapshot(value.value, depth + 1)
    if isinstance(value, _SHARED):
        return value
    if isinstance(value, dict):
        return {str(k): snapshot(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [snapshot(v, depth + 1) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        try:
            return snapshot(dump(mode="json"), depth + 1)
        except Exception:
            return _short_repr(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: snapshot(getattr(value, f.name, None), depth + 1)
            for f in dataclasses.fields(value)
        }
    return _short_repr(value)


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<unrepresentable {type(value).__name__}>"
    return text if len(text) <= MAX_REPR else text[:MAX_REPR] + "…"


class _RunDefaults:
    """Class-level defaults of the fields most runs never set (cheaper than setting them all)."""

    __slots__ = ()

    end_time: int | None = None
    outputs: dict[str, Any] | None = None
    output_set: bool = False
    error: dict[str, str] | None = None
    extra_tags: list[str] | None = None
    model: str | None = None
    provider: str | None = None
    usage: dict[str, int] | None = None
    events: list[dict[str, Any]] | None = None
    start_sent: bool = False
    recording: bool = True
    reference_example_id: str | None = None


class Run(_RunDefaults):
    """One traced unit of work. Get the current one with ``goldloop.get_current_run()``.

    Ids are assigned when the run starts, so ``run.id`` and ``run.trace_id`` can be handed to
    feedback or logs before the traced function returns (the id's text form is made on first
    use). Setters replace values instead of mutating them, so the exporter thread always reads a
    consistent value.
    """

    # Fields every run sets are slots; the rest live in __dict__ only once set.
    __slots__ = (
        "__dict__",
        "_id",
        "_id_bits",
        "_trace_id",
        "inputs",
        "kind",
        "metadata",
        "name",
        "parent_id",
        "project",
        "session_id",
        "start_time",
        "tags",
        "user_id",
    )

    def __init__(
        self,
        name: str,
        kind: str,
        trace_id: str | None,
        parent_id: str | None,
        inputs: dict[str, Any] | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        session_id: str | None,
        user_id: str | None,
        project: str | None,
        recording: bool = True,
    ) -> None:
        self._id_bits = _randbits(128)
        self._id: str | None = None
        self._trace_id = trace_id
        self.parent_id = parent_id
        self.name = name
        self.kind = kind
        self.start_time = _time_ns() // 1000
        self.inputs = inputs
        self.tags = tags
        self.metadata = metadata
        self.session_id = session_id
        self.user_id = user_id
        self.project = project
        if not recording:
            self.recording = False

    @property
    def id(self) -> str:
        """The run id: a random (version 4) UUID string."""
        text = self._id
        if text is None:
            h = "%032x" % ((self._id_bits & _V4_CLEAR) | _V4_SET)
            text = self._id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        return text

    @property
    def trace_id(self) -> str:
        """32 lowercase hex digits. A run started with no trace (a root) takes its own random
        bits, formatted on first use: a trace's id is its root run's, as in LangSmith."""
        text = self._trace_id
        if text is None:
            text = self._trace_id = "%032x" % (self._id_bits | 1)
        return text

    def __repr__(self) -> str:
        return f"<Run {self.name!r} kind={self.kind} id={self.id} trace_id={self.trace_id}>"

    @property
    def ended(self) -> bool:
        return self.end_time is not None

    def add_metadata(self, **values: Any) -> None:
        """Merge key/values into this run's metadata (snapshotted now)."""
        self.metadata = {**(self.metadata or {}), **snapshot(values)}

    def add_tags(self, *tags: str) -> None:
        self.extra_tags = [*(self.extra_tags or []), *map(str, tags)]

    def set_output(self, value: Any) -> None:
        """Record this value as the output (it wins over the function's return value)."""
        self.outputs = as_outputs(value)
        self.output_set = True

    def set_inputs(self, value: Any) -> None:
        self.inputs = as_inputs(value)

    def set_model(self, model: str | None, provider: str | None = None) -> None:
        self.model = model
        if provider is not None:
            self.provider = provider

    def set_usage(self, **tokens: int | None) -> None:
        """Token counts: input_tokens, output_tokens, total_tokens, cache_read_tokens, …"""
        usage = {k: int(v) for k, v in tokens.items() if v is not None}
        if "total_tokens" not in usage and ("input_tokens" in usage or "output_tokens" in usage):
            usage["total_tokens"] = usage.get("input_tokens", 0) + usage.get("output_tokens", 0)
        self.usage = usage

    def add_event(self, name: str, **attributes: Any) -> None:
        event = {"name": name, "time": now_us(), "attributes": snapshot(attributes)}
        self.events = [*(self.events or []), event]

    def to_item(self, *, start_only: bool = False) -> dict[str, Any]:
        """The wire item for ``POST /api/v1/runs/batch`` (absent/None means "unchanged")."""
        tags = self.tags
        if self.extra_tags:
            tags = [*(tags or []), *self.extra_tags]
        if start_only:
            return {
                "id": self.id,
                "trace_id": self.trace_id,
                "parent_id": self.parent_id,
                "name": self.name,
                "kind": self.kind,
                "start_time": self.start_time,
                "inputs": self.inputs,
                "tags": tags,
                "metadata": self.metadata,
                "session_id": self.session_id,
                "user_id": self.user_id,
                "project": self.project,
            }
        end_time = self.end_time
        item = {
            "id": self.id,
            "trace_id": self.trace_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "kind": self.kind,
            "start_time": self.start_time,
            "inputs": self.inputs,
            "tags": tags,
            "metadata": self.metadata,
            "session_id": self.session_id,
            "user_id": self.user_id,
            "project": self.project,
            "end_time": end_time,
            "outputs": self.outputs,
            "error": self.error,
            "status": None if end_time is None else ("error" if self.error else "success"),
            "model": self.model,
            "provider": self.provider,
            "usage": self.usage,
            "events": self.events,
        }
        if self.reference_example_id is not None:  # experiments only: keep other items small
            item["reference_example_id"] = self.reference_example_id
        return item


def as_outputs(value: Any) -> dict[str, Any]:
    """A function's result as the run's outputs: a dict stays a dict, anything else is wrapped."""
    snap = snapshot(value)
    return snap if type(snap) is dict else {"output": snap}


def as_inputs(value: Any) -> dict[str, Any]:
    snap = snapshot(value)
    return snap if type(snap) is dict else {"input": snap}
