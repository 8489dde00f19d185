"""``goldloop import``: a workspace export (docs/export.md) loaded into a workspace, ids kept.

Two passes. The first reads every file without writing anything: each line must be a JSON
object with the fields of its file, each file must match the row count and SHA-256 the manifest
gives, every attached file must be there with the bytes its name says, and no id may be taken
already. Only then does the second pass write, ``BATCH`` rows per transaction, in the order of
``export_format.FILES`` (an object after what it points at). Memory stays flat: lines are read
one at a time.

Imported rules start at the head of the run and feedback logs (they acted on the imported
history at the source). Secrets were not exported: channels are imported with their cut URL and
no keys, which disables them (``alerts`` skips such a channel) until they are re-created; rules
whose actions carry a masked URL or credential are imported disabled.
"""

from __future__ import annotations

import contextlib
import hashlib
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from goldloop.domain import export_format as fmt
from goldloop.domain.errors import Conflict, InvalidInput, NotFound
from goldloop.domain.outbound import MASKED_PATH
from goldloop.domain.rules import masked_places
from goldloop.domain.webhook_signing import new_secret
from goldloop.services import attachments as attachment_service
from goldloop.services import audit, auth
from goldloop.services import rules as rule_service
from goldloop.services.context import ServiceContext
from goldloop.store import workspace_export as store
from goldloop.store.blobs import BlobStore
from goldloop.store.workspace_export import Row

BATCH = 1000
Progress = Callable[[str, int], None]
_GLOBAL_IDS = (
    "projects",
    "datasets",
    "channels",
    "rules",
    "alert_rules",
    "alert_events",
    "annotation_queues",
    "annotation_queue_items",
    "canary_sets",
    "canary_runs",
)
_NAMED = ("projects", "datasets", "channels", "annotation_queues")


def _no_progress(file: str, rows: int) -> None:
    pass


@dataclass
class ImportReport:
    workspace: str
    rows: dict[str, int] = field(default_factory=dict)
    attachments: int = 0
    disabled_channels: list[str] = field(default_factory=list)
    disabled_rules: list[str] = field(default_factory=list)


@contextlib.contextmanager
def opened(source: Path) -> Iterator[Path]:
    """The export directory: ``source`` itself, or a .tar.gz unpacked into a temporary one beside
    it (with the ``data`` filter: no links out, no absolute paths, no device files)."""
    if source.is_dir():
        yield source
        return
    if not source.is_file():
        raise NotFound(f"no export at {source}")
    # unpacked beside the archive: an export can be larger than the system's temporary space
    with tempfile.TemporaryDirectory(prefix=".goldloop-import-", dir=source.parent) as tmp:
        try:
            with tarfile.open(source, "r:*") as tar:
                tar.extractall(tmp, filter="data")
        except tarfile.TarError as exc:
            raise fmt.ExportFormatError(
                f"{source}: not a directory or a readable tar archive ({exc})"
            ) from None
        root = Path(tmp)
        inner = [p for p in root.iterdir() if p.is_dir()]
        if not (root / fmt.MANIFEST).exists() and len(inner) == 1:
            root = inner[0]
        yield root


def _lines(path: Path, file: str) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                raise fmt.ExportFormatError(f"{file} line {number}: the file ends mid-line")
            yield number, raw


def _rows(directory: Path, file: str) -> Iterator[tuple[int, Row]]:
    for number, raw in _lines(directory / file, file):
        yield number, fmt.parse_line(file, number, raw)


def _chunks(items: Iterator[tuple[int, Row]], size: int) -> Iterator[list[tuple[int, Row]]]:
    chunk: list[tuple[int, Row]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class _Checker:
    """The first pass: read everything, write nothing."""

    def __init__(
        self, ctx: ServiceContext, directory: Path, manifest: dict[str, Any], ws_id: str | None
    ) -> None:
        self.ctx, self.dir, self.manifest, self.ws_id = ctx, directory, manifest, ws_id

    def run(self, progress: Progress) -> None:
        files = self.manifest["files"]
        for file in (*fmt.FILES, fmt.OTLP_FILE):
            if file not in files:
                continue
            if not (self.dir / file).is_file():
                raise fmt.ExportFormatError(f"{file} is named in the manifest but missing")
            if file == fmt.OTLP_FILE:  # not read by import: only its checksum
                self._compare(file, _sha256_of(self.dir / file), files[file]["rows"])
                continue
            self._check_file(file, files[file], progress)

    def _compare(self, file: str, sha: str, rows: int | None) -> None:
        entry = self.manifest["files"][file]
        if rows is not None and rows != entry["rows"]:
            raise fmt.ExportFormatError(
                f"{file} has {rows} lines, the manifest says {entry['rows']} (truncated?)"
            )
        if sha != entry["sha256"]:
            raise fmt.ExportFormatError(
                f"{file} does not match its SHA-256 in the manifest (changed or damaged)"
            )

    def _check_file(self, file: str, entry: dict[str, Any], progress: Progress) -> None:
        kind = fmt.kind_of(file)
        spec = store.SPECS[kind]
        counter = fmt.HashingCounter()
        fields, required = spec.fields, spec.required
        ids: list[str] = []
        names: list[str] = []
        for number, raw in _lines(self.dir / file, file):
            counter.add(raw)
            row = fmt.parse_line(file, number, raw)
            fmt.check_fields(file, number, row, fields, required)
            if kind == "attachments":
                self._check_blob(file, number, row)
            if kind in _GLOBAL_IDS or (kind in ("runs", "feedback") and self.ws_id):
                ids.append(str(row["id"]))
            if kind in _NAMED and self.ws_id:
                names.append(str(row["name"]))
            if len(ids) >= BATCH or len(names) >= BATCH:
                self._taken(kind, ids, names)
                ids, names = [], []
            if number % BATCH == 0:
                progress(f"checking {file}", number)
        self._taken(kind, ids, names)
        self._compare(file, counter.entry().sha256, counter.rows)

    def _check_blob(self, file: str, number: int, row: Row) -> None:
        digest = str(row["sha256"])
        path = self.dir / fmt.ATTACHMENTS_DIR / digest
        if not BlobStore.is_digest(digest):
            raise fmt.ExportFormatError(f"{file} line {number}: 'sha256' is not a SHA-256 digest")
        if not path.is_file():
            return  # missing at the source too (the manifest counts those); the row is kept
        if _sha256_of(path) != digest:
            raise fmt.ExportFormatError(
                f"{fmt.ATTACHMENTS_DIR}/{digest} does not hold the bytes its name says"
            )

    def _taken(self, kind: str, ids: list[str], names: list[str]) -> None:
        if ids:
            found = self.ctx.db.read(
                partial(store.existing_ids, kind=kind, workspace_id=self.ws_id or "", ids=ids)
            )
            if found:
                raise Conflict(
                    f"{kind}: id {found[0]!r} exists on this server already; ids are kept on "
                    "import, so an export can be imported once per server"
                )
        if names and self.ws_id:
            found = self.ctx.db.read(
                partial(store.existing_names, kind=kind, workspace_id=self.ws_id, names=names)
            )
            if found:
                raise Conflict(f"{kind}: the workspace has one named {found[0]!r} already")


def _prepared(kind: str, row: Row, report: ImportReport) -> Row:
    if kind == "channels":
        # The URL stays cut (scheme://host/…): such a channel is skipped by alerts until it is
        # re-created with its URL and keys.
        row["secret"] = None if row.get("secret") == fmt.SECRET_REMOVED else row.get("secret")
        if row.get("signing_secret") == fmt.SECRET_REMOVED:
            row["signing_secret"] = None
        if str(row["url"]).endswith(MASKED_PATH):
            report.disabled_channels.append(str(row["name"]))
    elif kind == "rules":
        if row.get("signing_secret") in (None, fmt.SECRET_REMOVED):
            row["signing_secret"] = new_secret()
        if masked_places(row.get("actions")) and row.get("enabled"):
            row["enabled"] = False
            report.disabled_rules.append(str(row["name"]))
    return row


def import_workspace(
    ctx: ServiceContext,
    source: Path,
    *,
    workspace: str | None = None,
    merge: bool = False,
    progress: Progress = _no_progress,
) -> ImportReport:
    """Check, then load the export at ``source`` (a directory or a .tar.gz) into ``workspace``
    (default: the exported workspace's name; created when absent)."""
    with opened(source) as directory:
        manifest_path = directory / fmt.MANIFEST
        if not manifest_path.is_file():
            raise fmt.ExportFormatError(f"no {fmt.MANIFEST} in {source}")
        manifest = fmt.read_manifest(manifest_path.read_bytes())
        name = workspace or manifest["workspace"]["name"]
        try:
            ws_id: str | None = auth.workspace_by_name(ctx, name).id
        except NotFound:
            ws_id = None
        if ws_id is not None and not merge:
            held = ctx.db.read(partial(store.occupied, workspace_id=ws_id))
            if held:
                raise Conflict(
                    f"workspace {name!r} is not empty (it has {', '.join(held)}); import into an "
                    "empty or new workspace, or pass --merge to add to it"
                )
        _Checker(ctx, directory, manifest, ws_id).run(progress)
        if ws_id is None:
            ws_id = auth.create_workspace(ctx, name).id
        report = ImportReport(workspace=name)
        for file in fmt.FILES:
            if file in manifest["files"]:
                _load(ctx, directory, file, ws_id, report, progress)
    audit.record(
        ctx,
        None,
        "workspace.imported",
        workspace_id=ws_id,
        target_type="workspace",
        target_id=ws_id,
        details={"rows": report.rows, "from": manifest["workspace"]["name"]},
    )
    return report


def _load(
    ctx: ServiceContext,
    directory: Path,
    file: str,
    ws_id: str,
    report: ImportReport,
    progress: Progress,
) -> None:
    kind = fmt.kind_of(file)
    blobs = attachment_service.blobs(ctx)
    horizons: dict[str, int] = {}
    if kind == "rules":
        horizons = rule_service.log_heads(ctx)
    done = 0
    for chunk in _chunks(_rows(directory, file), BATCH):
        rows = [_prepared(kind, row, report) for _, row in chunk]
        if kind == "attachments":
            for row in rows:
                path = directory / fmt.ATTACHMENTS_DIR / row["sha256"]
                if path.is_file() and not blobs.exists(row["sha256"]):
                    blobs.put(path.read_bytes())
                    report.attachments += 1
        now = ctx.clock()

        def write(conn: Any, rows: list[Row] = rows, now: int = now) -> None:
            store.insert(conn, kind, ws_id, rows)
            if kind == "rules":
                store.insert_rule_cursors(conn, [r["id"] for r in rows], horizons, now)

        try:
            ctx.db.write(write)
        except (InvalidInput, Conflict) as exc:
            raise Conflict(
                f"{file} lines {chunk[0][0]}-{chunk[-1][0]}: {exc.message} (the lines before "
                "were imported)"
            ) from None
        done += len(rows)
        progress(file, done)
    report.rows[kind] = done
