"""``goldloop export``: a workspace (or chosen projects and datasets) as documented files.

Every kind of object is read in keyset pages of ``PAGE`` rows and written line by line, so memory
stays flat however large the workspace. Secrets never leave: channel URLs are cut to
``scheme://host/…``, routing and signing keys replaced by ``SECRET_REMOVED``, a rule's webhook
URLs and evaluator credentials masked as the API shows them. The manifest, written last, names
each file with its row count and SHA-256. See docs/export.md for the format.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from goldloop._version import __version__
from goldloop.domain import export_format as fmt
from goldloop.domain.clock import to_iso
from goldloop.domain.errors import InvalidInput, NotFound
from goldloop.domain.otel.export import export_lines
from goldloop.domain.outbound import masked_url
from goldloop.domain.rules import masked_actions
from goldloop.services import attachments as attachment_service
from goldloop.services import audit, auth
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import tenancy
from goldloop.store import workspace_export as store
from goldloop.store.schema import datasets, projects
from goldloop.store.workspace_export import Row, Selection

PAGE = 1000
Progress = Callable[[str, int], None]
"""Called as rows are written or read: (file name, rows so far in it)."""


def _no_progress(file: str, rows: int) -> None:
    pass


def _secret(value: Any) -> Any:
    return fmt.SECRET_REMOVED if value else None


def _without_secrets(kind: str, row: Row) -> Row:
    if kind == "channels":
        row["url"] = masked_url(row["url"])
        row["secret"] = _secret(row["secret"])
        row["signing_secret"] = _secret(row["signing_secret"])
    elif kind == "rules":
        row["actions"] = masked_actions(row["actions"] or [])
        row["signing_secret"] = _secret(row["signing_secret"])
    return row


def _empty_target(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInput(f"{target} exists and is not an empty directory")
    target.mkdir(parents=True, exist_ok=True)


def selection_of(
    ctx: ServiceContext, workspace_id: str, project_refs: Sequence[str], dataset_refs: Sequence[str]
) -> Selection:
    """Projects and datasets by id or name; none given: the whole workspace."""
    if not project_refs and not dataset_refs:
        return Selection()

    def ids(table: Any, refs: Sequence[str], what: str) -> tuple[str, ...]:
        out = []
        for ref in refs:
            found = ctx.db.read(
                partial(store.resolve, table=table, workspace_id=workspace_id, ref=ref)
            )
            if found is None:
                raise NotFound(f"no {what} {ref!r} in the workspace")
            out.append(found)
        return tuple(out)

    return Selection(ids(projects, project_refs, "project"), ids(datasets, dataset_refs, "dataset"))


class _Writer:
    """One export file: lines out, counted and hashed."""

    def __init__(self, path: Path) -> None:
        self.counter = fmt.HashingCounter()
        self._out: BinaryIO = path.open("wb")

    def write(self, line: bytes, rows: int = 1) -> None:
        self._out.write(line)
        self.counter.add(line, rows)

    def close(self) -> fmt.FileEntry:
        self._out.close()
        return self.counter.entry()


def _pages(
    ctx: ServiceContext, kind: str, workspace_id: str, selection: Selection
) -> Iterator[list[Row]]:
    after = None
    while True:
        rows, after = ctx.db.read(
            partial(
                store.page,
                kind=kind,
                workspace_id=workspace_id,
                selection=selection,
                after=after,
                limit=PAGE,
            )
        )
        if not rows:
            return
        yield rows


def export_workspace(
    ctx: ServiceContext,
    workspace: str,
    target: Path,
    *,
    project_refs: Sequence[str] = (),
    dataset_refs: Sequence[str] = (),
    otlp: bool = True,
    progress: Progress = _no_progress,
    who: Principal | None = None,
) -> dict[str, Any]:
    """Write the export into ``target`` (a new or empty directory); returns the manifest.
    ``who``: the API key that asked (the audit entry names it), None for the command line."""
    ws = auth.workspace_by_name(ctx, workspace)
    selection = selection_of(ctx, ws.id, project_refs, dataset_refs)
    _empty_target(target)
    names = dict(ctx.db.read(partial(store.project_names, workspace_id=ws.id, selection=selection)))
    blobs = attachment_service.blobs(ctx)
    blob_dir = target / fmt.ATTACHMENTS_DIR
    blob_dir.mkdir()
    files: dict[str, fmt.FileEntry] = {}
    copied = missing = 0
    otlp_out = _Writer(target / fmt.OTLP_FILE) if otlp else None
    for file in fmt.FILES:
        kind = fmt.kind_of(file)
        out = _Writer(target / file)
        for rows in _pages(ctx, kind, ws.id, selection):
            for row in rows:
                out.write(fmt.encode_line(_without_secrets(kind, row)))
            if kind == "runs" and otlp_out is not None:
                for project_id, group in _by_project(rows):
                    otlp_out.write(export_lines(group, names.get(project_id, project_id)))
            if kind == "attachments":
                for row in rows:
                    copy = blob_dir / row["sha256"]
                    if copy.exists():
                        continue
                    try:
                        shutil.copyfile(blobs.path_of(row["sha256"]), copy)
                        copied += 1
                    except FileNotFoundError:
                        missing += 1
            progress(file, out.counter.rows)
        files[file] = out.close()
    if otlp_out is not None:
        files[fmt.OTLP_FILE] = otlp_out.close()
    notes = [
        "Secrets are not exported: channel URLs are cut to scheme://host/…, routing and signing "
        f"keys read {fmt.SECRET_REMOVED!r}, rule webhook URLs and evaluator credentials are "
        "masked. Imported channels and rules that need one are disabled."
    ]
    if missing:
        notes.append(f"{missing} attached files were missing from the blob store")
    doc = fmt.manifest(
        version=__version__,
        created_at=to_iso(ctx.clock()) or "",
        workspace={"id": ws.id, "name": ws.name},
        selection=None
        if selection.whole
        else {
            "projects": list(selection.project_ids or ()),
            "datasets": list(selection.dataset_ids or ()),
        },
        files=files,
        attachments={"files": copied, "missing": missing},
        notes=notes,
    )
    raw = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    (target / fmt.MANIFEST).write_bytes(raw)
    audit.record(
        ctx,
        who,
        "workspace.exported",
        workspace_id=ws.id,
        target_type="workspace",
        target_id=ws.id,
        details={"selection": doc["selection"], "rows": {n: e.rows for n, e in files.items()}},
    )
    return doc


def _by_project(rows: list[Row]) -> Iterator[tuple[str, list[Row]]]:
    """Consecutive runs of one project (a page is in project order)."""
    group: list[Row] = []
    for row in rows:
        if group and row["project_id"] != group[0]["project_id"]:
            yield group[0]["project_id"], group
            group = []
        group.append(row)
    if group:
        yield group[0]["project_id"], group


def archive(directory: Path, tar_path: Path) -> None:
    """``directory`` as a .tar.gz whose members sit under the directory's name."""
    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(directory, arcname=directory.name)


def export_archive(
    ctx: ServiceContext,
    who: Principal,
    *,
    project_refs: Sequence[str] = (),
    dataset_refs: Sequence[str] = (),
    otlp: bool = True,
) -> Path:
    """The caller's workspace exported as a .tar.gz in a temporary folder of the data
    directory (an export can be larger than the system's temporary space); the caller sends
    it, then removes it with ``discard``."""
    names = {w.id: w.name for w in ctx.db.read(tenancy.list_workspaces)}
    name = names[who.workspace_id]
    ctx.settings.data_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=ctx.settings.data_dir))
    try:
        stem = f"goldloop-{_safe(name)}-{(to_iso(ctx.clock()) or '')[:10]}"
        export_workspace(
            ctx,
            name,
            work / stem,
            project_refs=project_refs,
            dataset_refs=dataset_refs,
            otlp=otlp,
            who=who,
        )
        archive(work / stem, work / f"{stem}.tar.gz")
        shutil.rmtree(work / stem)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return work / f"{stem}.tar.gz"


def discard(path: Path) -> None:
    """Remove an archive ``export_archive`` made, with its temporary folder."""
    shutil.rmtree(path.parent, ignore_errors=True)


def _safe(name: str) -> str:
    """A workspace name as a file name: letters, digits, '-' and '_' only."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:60] or "workspace"
