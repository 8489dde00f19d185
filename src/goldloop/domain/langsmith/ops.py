"""The parts of a LangSmith ``/runs/multipart`` body -> ordered run and feedback operations.

Part names: ``post.<id>`` / ``patch.<id>`` (the run without its large fields), then sub-parts
``post.<id>.inputs`` (``.outputs``, ``.events``, ``.extra``, ``.error``, ``.serialized``) holding
one field each, ``feedback.<id>``, and ``attachment.<id>.<name>`` (raw bytes). A body may hold a
run's post and later its patch (the zstd path sends them as they happen): operations keep body
order, and a sub-part belongs to the latest operation of its kind for that run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from goldloop.domain.multipart import Part

RUN_FIELDS = frozenset({"inputs", "outputs", "events", "extra", "error", "serialized"})


class OpsError(ValueError):
    """A part that cannot be used; the message names it."""


@dataclass
class Operation:
    kind: str  # "post" | "patch" | "feedback"
    id: str
    body: dict[str, Any] = field(default_factory=dict)
    has_main: bool = False  # the ``post.<id>`` part itself has been read


@dataclass
class Batch:
    operations: list[Operation] = field(default_factory=list)
    # (run id, the file: Part.name is the attachment's name), in body order
    attachments: list[tuple[str, Part]] = field(default_factory=list)


def _json(part: Part) -> Any:
    try:
        return orjson.loads(part.data)
    except orjson.JSONDecodeError as exc:
        raise OpsError(f"part {part.name!r}: not valid JSON ({exc})") from None


def assemble(parts: list[Part]) -> Batch:
    batch = Batch()
    latest: dict[tuple[str, str], Operation] = {}

    def new_op(kind: str, run_id: str) -> Operation:
        op = Operation(kind, run_id, {"id": run_id})
        latest[(kind, run_id)] = op
        batch.operations.append(op)
        return op

    def op_for(kind: str, run_id: str) -> Operation:
        found = latest.get((kind, run_id))
        return found if found is not None else new_op(kind, run_id)

    for part in parts:
        kind, _, rest = part.name.partition(".")
        if kind == "attachment":
            run_id, dot, name = rest.partition(".")
            if not run_id or not dot:
                raise OpsError(f"part {part.name!r}: expected attachment.<run id>.<name>")
            batch.attachments.append((run_id, Part(name, part.content_type, part.data)))
            continue
        if kind not in ("post", "patch", "feedback") or not rest:
            raise OpsError(f"part {part.name!r}: unknown part name")
        if kind == "feedback":
            value = _json(part)
            if not isinstance(value, dict):
                raise OpsError(f"part {part.name!r}: feedback must be a JSON object")
            batch.operations.append(Operation("feedback", rest, value))
            continue
        run_id, dot, sub = rest.partition(".")
        if not dot:
            value = _json(part)
            if not isinstance(value, dict):
                raise OpsError(f"part {part.name!r}: a run must be a JSON object")
            # A repeated post/patch of a run starts a new operation (the zstd path sends the
            # post and patch of a run in one body); sub-parts read before it are kept.
            found = latest.get((kind, run_id))
            op = found if found is not None and not found.has_main else new_op(kind, run_id)
            op.body = {**value, **op.body, "id": run_id}
            op.has_main = True
        elif sub in RUN_FIELDS:
            op_for(kind, run_id).body[sub] = _json(part)
        else:
            raise OpsError(f"part {part.name!r}: unknown run field {sub!r}")
    return batch
