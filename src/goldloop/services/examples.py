"""Dataset examples: add (one or many), update, delete, list and get ``as_of`` a version.

Every write request that changes something makes exactly one new version of the dataset; a
request that changes nothing (e.g. re-importing identical examples) makes none.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain import datasets as rules
from goldloop.domain.errors import Conflict, InvalidInput, NotFound
from goldloop.domain.langsmith.example_filter import Match
from goldloop.domain.safe_values import scrub
from goldloop.services import attachments, redaction
from goldloop.services import datasets as ds
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import attachments as attachment_rows
from goldloop.store import datasets as dataset_store
from goldloop.store import examples as store
from goldloop.store.datasets import DatasetRow, VersionRow
from goldloop.store.examples import ExampleRow

MAX_EXAMPLES_PER_REQUEST = 50_000


@dataclass(frozen=True)
class ExampleIn:
    inputs: Any
    outputs: Any = None
    metadata: dict[str, Any] | None = None
    splits: list[str] | None = None
    id: str | None = None
    lineage: dict[str, Any] | None = None
    source_run_id: str | None = None


@dataclass
class WriteResult:
    dataset_id: str
    version: int  # the new version, or the unchanged newest one when nothing changed
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


@dataclass(frozen=True)
class ExamplePage:
    version: int
    items: list[ExampleRow]
    next_cursor: str | None


def commit_version(
    conn: Connection,
    row: DatasetRow,
    now: int,
    message: str | None,
    *,
    added: list[ExampleRow],
    updated: list[ExampleRow],
    removed: list[str],
) -> int:
    """Write one new version holding these changes; returns its number (or the unchanged head
    when there are no changes). The caller holds the dataset row lock."""
    if not (added or updated or removed):
        return row.head_version
    version = row.head_version + 1
    at = max(now, row.updated_at)  # versions never go back in time, so as_of a time is exact
    dataset_store.update(conn, row.id, {"head_version": version, "updated_at": at})
    dataset_store.add_version(
        conn, row.id, VersionRow(version, at, message, len(added), len(updated), len(removed))
    )
    store.close(conn, row.id, [u.id for u in updated] + removed, version)
    store.insert(conn, row.id, version, [replace(r, updated_at=at) for r in added + updated])
    return version


def build_rows(
    row: DatasetRow, items: list[ExampleIn], now: int, *, first_index: int = 0
) -> list[ExampleRow]:
    """Check ids, splits and the dataset's schemas; give ids to new examples."""
    schemas = ds.schemas_of(row)
    violations: list[rules.Violation] = []
    fresh = iter(rules.new_example_ids(now, sum(1 for i in items if i.id is None)))
    rows = []
    for n, item in enumerate(items):
        index = first_index + n
        if item.id is not None:
            rules.check_example_id(item.id)
        if item.inputs is None:
            raise InvalidInput(
                f"example {index}: inputs are required", details={"index": index, "field": "inputs"}
            )
        if item.metadata is not None and not isinstance(item.metadata, dict):
            raise InvalidInput(
                f"example {index}: metadata must be an object",
                details={"index": index, "field": "metadata"},
            )
        run_id = item.source_run_id
        if run_id is not None and not (isinstance(run_id, str) and 1 <= len(run_id) <= 64):
            raise InvalidInput(
                f"example {index}: lineage run_id must be a run id (text of 1-64 characters)",
                details={"index": index, "field": "lineage"},
            )
        violations += schemas.violations(index, item.id, item.inputs, item.outputs)
        inputs = scrub(item.inputs)
        rows.append(
            ExampleRow(
                id=item.id or next(fresh),
                inputs=inputs,
                outputs=scrub(item.outputs),
                metadata=scrub(item.metadata),
                splits=rules.check_splits(item.splits),
                lineage=item.lineage,
                source_run_id=item.source_run_id,
                inputs_hash=rules.inputs_hash(inputs),
                created_at=now,
                updated_at=now,
                version=0,
            )
        )
    rules.raise_violations(violations)
    return rows


def add(
    ctx: ServiceContext,
    who: Principal,
    ref: str,
    items: list[ExampleIn],
    *,
    upsert: bool = False,
    message: str | None = None,
) -> WriteResult:
    """Add examples in one version. An example with an ``id`` that already exists is a 409,
    unless ``upsert``: then it is updated when different and left alone when equal."""
    if not items:
        raise InvalidInput("no examples given", details={"field": "examples"})
    if len(items) > MAX_EXAMPLES_PER_REQUEST:
        raise InvalidInput(
            f"at most {MAX_EXAMPLES_PER_REQUEST} examples per request",
            details={"field": "examples"},
        )
    given = [i.id for i in items if i.id is not None]
    if len(set(given)) != len(given):
        dup = next(i for i in given if given.count(i) > 1)
        raise InvalidInput(f"example id {dup!r} appears twice in the request", details={"id": dup})
    items = [_redacted(ctx, who, item) for item in items]
    now = ctx.clock()

    def write(conn: Connection) -> WriteResult:
        row = ds.load(conn, who, ref, for_update=True)
        rows = build_rows(row, items, now)
        existing = store.by_ids(conn, row.id, given) if given else {}
        result = WriteResult(row.id, row.head_version)
        added, updated = [], []
        for new in rows:
            old = existing.get(new.id)
            if old is None:
                added.append(new)
            elif not upsert:
                raise Conflict(
                    f"example {new.id!r} already exists in dataset {row.name!r}; "
                    "PATCH it, or import with upsert",
                    details={"id": new.id},
                )
            elif old.content() == new.content():
                result.unchanged.append(new.id)
            else:
                updated.append(replace(new, created_at=old.created_at))
        result.version = commit_version(
            conn, row, now, message, added=added, updated=updated, removed=[]
        )
        result.added = [r.id for r in added]
        result.updated = [r.id for r in updated]
        return result

    return ctx.db.write(write)


UPDATABLE = ("inputs", "outputs", "metadata", "splits")


def _redacted(ctx: ServiceContext, who: Principal, item: ExampleIn) -> ExampleIn:
    """The example's inputs, outputs and metadata with the workspace's PII redaction applied."""
    values = {"inputs": item.inputs, "outputs": item.outputs, "metadata": item.metadata}
    done = redaction.redact_values(ctx, who.workspace_id, values)
    return item if done is values else replace(item, **dict(done))


def update(
    ctx: ServiceContext,
    who: Principal,
    ref: str,
    example_id: str,
    changes: dict[str, Any],
    *,
    message: str | None = None,
    touch: bool = False,
) -> tuple[WriteResult, ExampleRow]:
    """Change an example in a new version. An update that changes nothing makes no version,
    unless ``touch``: then the example is rewritten as it is, and counts as updated (LangSmith
    records every update)."""
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise InvalidInput(
            f"cannot change {', '.join(unknown)}; updatable: {', '.join(UPDATABLE)}",
            details={"field": unknown[0]},
        )
    texts: dict[str, Any] = {
        k: changes[k] for k in ("inputs", "outputs", "metadata") if k in changes
    }
    if texts:
        changes = {**changes, **redaction.redact_values(ctx, who.workspace_id, texts)}
    now = ctx.clock()

    def write(conn: Connection) -> tuple[WriteResult, ExampleRow]:
        row = ds.load(conn, who, ref, for_update=True)
        old = store.by_ids(conn, row.id, [example_id]).get(example_id)
        if old is None:
            raise NotFound(f"dataset {row.name!r} has no example {example_id!r}")
        item = ExampleIn(
            inputs=changes.get("inputs", old.inputs),
            outputs=changes.get("outputs", old.outputs),
            metadata=changes.get("metadata", old.metadata),
            splits=changes.get("splits", old.splits),
            id=example_id,
            lineage=old.lineage,
            source_run_id=old.source_run_id,
        )
        new = replace(build_rows(row, [item], now)[0], created_at=old.created_at)
        result = WriteResult(row.id, row.head_version)
        if new.content() == old.content() and not touch:
            result.unchanged.append(example_id)
            return result, old
        result.version = commit_version(
            conn, row, now, message, added=[], updated=[new], removed=[]
        )
        result.updated = [example_id]
        return result, replace(new, version=result.version)

    return ctx.db.write(write)


def delete(
    ctx: ServiceContext,
    who: Principal,
    ref: str,
    example_ids: list[str],
    *,
    message: str | None = None,
) -> WriteResult:
    if not example_ids:
        raise InvalidInput("no example ids given", details={"field": "ids"})
    now = ctx.clock()

    def write(conn: Connection) -> WriteResult:
        row = ds.load(conn, who, ref, for_update=True)
        found = store.by_ids(conn, row.id, example_ids)
        missing = sorted(set(example_ids) - set(found))
        if missing:
            raise NotFound(
                f"dataset {row.name!r} has no example {missing[0]!r}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                details={"missing": missing[:100]},
            )
        result = WriteResult(row.id, row.head_version, removed=sorted(found))
        result.version = commit_version(
            conn, row, now, message, added=[], updated=[], removed=result.removed
        )
        return result

    return ctx.db.write(write)


def hard_delete(
    ctx: ServiceContext,
    who: Principal,
    ref: str,
    example_ids: list[str],
    *,
    message: str | None = "hard delete",
) -> WriteResult:
    """Remove these examples from the dataset and erase their content from every version: a
    new version without the current ones (as a delete makes), then every row of each example,
    old versions included, is deleted. Examples already deleted (only in old versions) can be
    erased too."""
    if not example_ids:
        raise InvalidInput("no example ids given", details={"field": "example_ids"})
    ids = sorted(set(example_ids))
    now = ctx.clock()

    def write(conn: Connection) -> WriteResult:
        row = ds.load(conn, who, ref, for_update=True)
        current = store.by_ids(conn, row.id, ids)
        result = WriteResult(row.id, row.head_version, removed=sorted(current))
        result.version = commit_version(
            conn, row, now, message, added=[], updated=[], removed=result.removed
        )
        if store.purge(conn, row.id, ids) == 0:
            raise NotFound(
                f"dataset {row.name!r} has no example {ids[0]!r} in any version",
                details={"missing": ids[:100]},
            )
        attachment_rows.remove_examples(conn, {(row.id, i) for i in ids})
        return result

    result = ctx.db.write(write)
    attachments.sweep(ctx)  # the files only these examples held
    return result


def list_examples(
    ctx: ServiceContext,
    who: Principal,
    ref: str,
    *,
    as_of: str | None = None,
    split: str | None = None,
    metadata: dict[str, Any] | None = None,
    match: Match | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> ExamplePage:
    """Examples in id order (the order they were added), keyset-paginated."""
    ds.check_limit(limit)
    selector = rules.parse_as_of(as_of)
    if metadata:
        rules.check_metadata_filter(metadata)

    def read(conn: Connection) -> ExamplePage:
        row = ds.load(conn, who, ref)
        version = ds.resolve(conn, row, selector)
        rows = store.list_page(
            conn,
            row.id,
            None if version == row.head_version else version,
            split=split,
            metadata=metadata,
            match=match,
            limit=limit + 1,
            after_id=cursor,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return ExamplePage(version, rows, rows[-1].id if more and rows else None)

    return ctx.db.read(read)


def get(
    ctx: ServiceContext, who: Principal, ref: str, example_id: str, as_of: str | None = None
) -> tuple[int, ExampleRow]:
    selector = rules.parse_as_of(as_of)

    def read(conn: Connection) -> tuple[int, ExampleRow]:
        row = ds.load(conn, who, ref)
        version = ds.resolve(conn, row, selector)
        found = store.by_ids(conn, row.id, [example_id], version).get(example_id)
        if found is None:
            raise NotFound(
                f"dataset {row.name!r} has no example {example_id!r} at version {version}"
            )
        return version, found

    return ctx.db.read(read)
