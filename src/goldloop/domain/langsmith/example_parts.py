"""The parts of a LangSmith multipart examples body -> one upload per example, in body order.

Part names (what the SDK's ``create_examples``, ``update_examples`` and
``upload_examples_multipart`` send): ``<id>`` (a JSON object with the example's other fields:
``metadata``, ``split``, ``source_run_id``, ``use_source_run_io``, ``use_source_run_attachments``,
``dataset_id`` on the upsert endpoint), ``<id>.inputs`` and ``<id>.outputs`` (JSON),
``<id>.attachment.<name>`` (raw bytes, the part's Content-Type is the file's) and
``<id>.attachments_operations`` (JSON: ``{"retain": [...], "rename": {...}}``, updates only).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from goldloop.domain.multipart import Part

JSON_FIELDS = ("inputs", "outputs", "attachments_operations")


class PartsError(ValueError):
    """A part that cannot be used; the message names it."""


@dataclass
class ExampleUpload:
    id: str
    body: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)  # inputs / outputs / operations sent
    attachments: list[Part] = field(default_factory=list)  # Part.name is the attachment name


def _json(part: Part) -> Any:
    try:
        return orjson.loads(part.data)
    except orjson.JSONDecodeError as exc:
        raise PartsError(f"part {part.name!r}: not valid JSON ({exc})") from None


def assemble(parts: list[Part]) -> list[ExampleUpload]:
    uploads: dict[str, ExampleUpload] = {}
    for part in parts:
        raw_id, dot, rest = part.name.partition(".")
        try:
            example_id = str(uuid.UUID(raw_id))
        except ValueError:
            raise PartsError(
                f"part {part.name[:120]!r}: a part name starts with the example's UUID"
            ) from None
        upload = uploads.setdefault(example_id, ExampleUpload(example_id))
        if not dot:
            value = _json(part)
            if not isinstance(value, dict):
                raise PartsError(f"part {part.name!r}: an example must be a JSON object")
            upload.body.update(value)
        elif rest in JSON_FIELDS:
            value = _json(part)
            if rest != "outputs" and value is not None and not isinstance(value, dict):
                raise PartsError(f"part {part.name!r}: {rest} must be a JSON object")
            upload.fields[rest] = value
        elif rest.startswith("attachment."):
            name = rest[len("attachment.") :]
            upload.attachments.append(Part(name, part.content_type, part.data))
        else:
            raise PartsError(f"part {part.name[:120]!r}: unknown example field {rest[:60]!r}")
    return list(uploads.values())
