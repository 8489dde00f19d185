"""The workspace export format (docs/export.md): its files, manifest and line rules (pure).

An export is a directory: ``manifest.json``, one JSON Lines file per kind of object (one JSON
object per line, UTF-8, ``\\n``-terminated), ``traces.otlp.jsonl`` (the runs again, as OTLP/JSON
requests, for other tools) and ``attachments/<sha256>`` (the attached files, named by the SHA-256
of their bytes). Import reads ``runs.jsonl``, never the OTLP file: the OTLP form carries the runs'
content, not Goldloop's bookkeeping (``created_at``, ``updated_at``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from goldloop.domain.errors import InvalidInput

FORMAT = "goldloop-workspace-export"
SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
OTLP_FILE = "traces.otlp.jsonl"
ATTACHMENTS_DIR = "attachments"
SECRET_REMOVED = "<secret removed by export>"  # noqa: S105 (a marker, not a secret)
"""Stands where a secret was (a channel's routing or signing key, a rule's signing key)."""

# Import order: an object comes after whatever it points at.
FILES = (
    "projects.jsonl",
    "runs.jsonl",
    "feedback.jsonl",
    "feedback_history.jsonl",
    "feedback_keys.jsonl",
    "datasets.jsonl",
    "dataset_versions.jsonl",
    "dataset_tags.jsonl",
    "dataset_examples.jsonl",
    "experiment_tags.jsonl",
    "attachments.jsonl",
    "retention_policies.jsonl",
    "redaction_configs.jsonl",
    "annotation_queues.jsonl",
    "annotation_queue_items.jsonl",
    "annotation_queue_reviews.jsonl",
    "pairwise_queues.jsonl",
    "pairwise_items.jsonl",
    "channels.jsonl",
    "alert_rules.jsonl",
    "alert_events.jsonl",
    "rules.jsonl",
    "canary_sets.jsonl",
    "canary_items.jsonl",
    "canary_runs.jsonl",
    "audit_log.jsonl",
)


class ExportFormatError(InvalidInput):
    """An export that cannot be read: which file (and line) and what is wrong with it."""


def kind_of(file: str) -> str:
    """``runs.jsonl`` -> ``runs``."""
    return file.removesuffix(".jsonl")


def encode_line(row: Mapping[str, Any]) -> bytes:
    return orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS) + b"\n"


def parse_line(file: str, number: int, raw: bytes) -> dict[str, Any]:
    """One line of a JSON Lines file as an object; ``ExportFormatError`` naming file and line."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ExportFormatError(f"{file} line {number}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ExportFormatError(f"{file} line {number}: expected a JSON object")
    return value


def check_fields(
    file: str,
    number: int,
    row: Mapping[str, Any],
    allowed: frozenset[str],
    required: frozenset[str],
) -> None:
    """Every field known, every required field present (and not null)."""
    unknown = sorted(set(row) - allowed)
    if unknown:
        raise ExportFormatError(f"{file} line {number}: unknown field {unknown[0]!r}")
    missing = sorted(k for k in required if row.get(k) is None)
    if missing:
        raise ExportFormatError(f"{file} line {number}: field {missing[0]!r} is missing")


@dataclass(frozen=True)
class FileEntry:
    rows: int
    bytes: int
    sha256: str


def manifest(
    *,
    version: str,
    created_at: str,
    workspace: Mapping[str, str],
    selection: Mapping[str, list[str]] | None,
    files: Mapping[str, FileEntry],
    attachments: Mapping[str, int],
    notes: list[str],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "goldloop_version": version,
        "created_at": created_at,
        "workspace": dict(workspace),
        "selection": dict(selection) if selection is not None else None,
        "files": {
            name: {"rows": e.rows, "bytes": e.bytes, "sha256": e.sha256}
            for name, e in files.items()
        },
        "attachments": dict(attachments),
        "notes": notes,
    }


def read_manifest(raw: bytes) -> dict[str, Any]:
    """The manifest, checked: our format, a schema version this release reads, every file
    named with its sha256 and row count."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ExportFormatError(f"{MANIFEST}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ExportFormatError(f"{MANIFEST}: not a Goldloop workspace export (format {FORMAT!r})")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ExportFormatError(
            f"{MANIFEST}: schema version {version!r} is not one this release reads "
            f"(it reads version {SCHEMA_VERSION}); use the Goldloop release that wrote it "
            f"({doc.get('goldloop_version')!r}) or a newer one"
        )
    files = doc.get("files")
    if not isinstance(files, dict):
        raise ExportFormatError(f"{MANIFEST}: 'files' is missing")
    for name, entry in files.items():
        if name not in FILES and name != OTLP_FILE:
            raise ExportFormatError(f"{MANIFEST}: unknown file {name!r}")
        ok = (
            isinstance(entry, dict)
            and isinstance(entry.get("rows"), int)
            and isinstance(entry.get("sha256"), str)
        )
        if not ok:
            raise ExportFormatError(f"{MANIFEST}: file {name!r} needs 'rows' and 'sha256'")
    ws = doc.get("workspace")
    if not isinstance(ws, dict) or not isinstance(ws.get("name"), str):
        raise ExportFormatError(f"{MANIFEST}: 'workspace' needs a 'name'")
    return doc


class HashingCounter:
    """SHA-256, byte and row count of the lines written to (or read from) one file."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.rows = 0
        self.bytes = 0

    def add(self, line: bytes, rows: int = 1) -> None:
        self._sha.update(line)
        self.rows += rows
        self.bytes += len(line)

    def entry(self) -> FileEntry:
        return FileEntry(rows=self.rows, bytes=self.bytes, sha256=self._sha.hexdigest())
