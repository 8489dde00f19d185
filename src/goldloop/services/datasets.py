"""Datasets: create, get (by id or name), list, rename, change schemas, delete; versions, tags,
reading ``as_of`` and diffs. Example writes are in ``services.examples``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain import datasets as rules
from goldloop.domain.clock import to_iso
from goldloop.domain.datasets import AsOf, ExampleSchemas
from goldloop.domain.errors import Conflict, InvalidInput, NotFound
from goldloop.domain.safe_values import scrub
from goldloop.services import attachments, audit
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import attachments as attachment_rows
from goldloop.store import datasets as store
from goldloop.store import examples as example_store
from goldloop.store.datasets import DatasetRow, VersionRow

MAX_LIMIT = 1000
UNSET: Any = object()


@dataclass(frozen=True)
class DatasetInfo:
    row: DatasetRow
    example_count: int
    tags: dict[str, int]


@dataclass(frozen=True)
class DatasetPage:
    items: list[DatasetInfo]
    next_cursor: str | None


@dataclass(frozen=True)
class VersionInfo:
    row: VersionRow
    tags: list[str]


@dataclass(frozen=True)
class Diff:
    from_version: int
    to_version: int
    added: list[str]
    removed: list[str]
    changed: list[str]


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    return limit


def load(conn: Connection, who: Principal, ref: str, *, for_update: bool = False) -> DatasetRow:
    """The dataset with this id or name in the caller's workspace, else ``NotFound``."""
    row = store.get(conn, who.workspace_id, ref, for_update=for_update)
    if row is None:
        raise NotFound(f"no dataset with id or name {ref!r}")
    return row


def schemas_of(row: DatasetRow) -> ExampleSchemas:
    return ExampleSchemas(
        rules.compile_schema(row.inputs_schema, "inputs_schema"),
        rules.compile_schema(row.outputs_schema, "outputs_schema"),
    )


def _info(conn: Connection, row: DatasetRow) -> DatasetInfo:
    return DatasetInfo(row, example_store.count(conn, row.id, None), store.tags(conn, row.id))


def create(
    ctx: ServiceContext,
    who: Principal,
    name: str,
    *,
    description: str | None = None,
    inputs_schema: dict[str, Any] | None = None,
    outputs_schema: dict[str, Any] | None = None,
    data_type: str = "kv",
    metadata: dict[str, Any] | None = None,
) -> DatasetInfo:
    name = rules.check_name(name)
    description = scrub(description)
    rules.check_data_type(data_type)
    metadata = _check_metadata(metadata)
    rules.compile_schema(inputs_schema, "inputs_schema")
    rules.compile_schema(outputs_schema, "outputs_schema")
    now = ctx.clock()
    row = DatasetRow(
        id=str(uuid.uuid4()),
        workspace_id=who.workspace_id,
        name=name,
        description=description,
        inputs_schema=inputs_schema,
        outputs_schema=outputs_schema,
        head_version=0,
        created_at=now,
        updated_at=now,
        data_type=data_type,
        metadata=metadata,
    )

    def write(conn: Connection) -> None:
        if store.get_by_name(conn, who.workspace_id, name) is not None:
            raise Conflict(f"a dataset named {name!r} already exists", details={"field": "name"})
        store.insert(conn, row)

    ctx.db.write(write)
    return DatasetInfo(row, 0, {})


def _check_metadata(metadata: Any) -> dict[str, Any] | None:
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a JSON object", details={"field": "metadata"})
    return scrub(metadata) or None


def get(ctx: ServiceContext, who: Principal, ref: str) -> DatasetInfo:
    return ctx.db.read(lambda c: _info(c, load(c, who, ref)))


def list_datasets(
    ctx: ServiceContext, who: Principal, *, limit: int = 100, cursor: str | None = None
) -> DatasetPage:
    check_limit(limit)

    def read(conn: Connection) -> list[DatasetInfo]:
        rows = store.list_page(conn, who.workspace_id, limit=limit + 1, after_name=cursor)
        return [_info(conn, r) for r in rows]

    items = ctx.db.read(read)
    more = len(items) > limit
    items = items[:limit]
    return DatasetPage(items, items[-1].row.name if more and items else None)


def update(
    ctx: ServiceContext,
    who: Principal,
    ref: str,
    *,
    name: str | None = None,
    description: Any = UNSET,
    inputs_schema: Any = UNSET,
    outputs_schema: Any = UNSET,
    data_type: str | None = None,
    metadata: Any = UNSET,
) -> DatasetInfo:
    """Rename, describe, retype, set/clear (None) the metadata or the schemas. A new schema
    must hold for every current example. None of this makes a new version: versions track
    examples."""
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = rules.check_name(name)
    if description is not UNSET:
        values["description"] = description
    if data_type is not None:
        values["data_type"] = rules.check_data_type(data_type)
    if metadata is not UNSET:
        values["metadata"] = _check_metadata(metadata)
    for field, schema in (("inputs_schema", inputs_schema), ("outputs_schema", outputs_schema)):
        if schema is not UNSET:
            rules.compile_schema(schema, field)
            values[field] = schema

    def write(conn: Connection) -> DatasetInfo:
        row = load(conn, who, ref, for_update=True)
        if "name" in values:
            clash = store.get_by_name(conn, who.workspace_id, values["name"])
            if clash is not None and clash.id != row.id:
                raise Conflict(
                    f"a dataset named {values['name']!r} already exists",
                    details={"field": "name"},
                )
        if "inputs_schema" in values or "outputs_schema" in values:
            _check_current_examples(conn, _merged(row, values))
        store.update(conn, row.id, {**values, "updated_at": max(ctx.clock(), row.updated_at)})
        return _info(conn, load(conn, who, row.id))

    return ctx.db.write(write)


def _merged(row: DatasetRow, values: dict[str, Any]) -> DatasetRow:
    fields = {f: getattr(row, f) for f in DatasetRow.__dataclass_fields__}
    fields.update(values)
    return DatasetRow(**fields)


def _check_current_examples(conn: Connection, row: DatasetRow) -> None:
    schemas = schemas_of(row)
    violations: list[rules.Violation] = []
    after: str | None = None
    index = 0
    while len(violations) < rules.MAX_REPORTED:
        page = example_store.list_page(conn, row.id, None, limit=1000, after_id=after)
        for ex in page:
            violations += schemas.violations(index, ex.id, ex.inputs, ex.outputs)
            index += 1
        if len(page) < 1000:
            break
        after = page[-1].id
    if violations:
        try:
            rules.raise_violations(violations)
        except InvalidInput as exc:
            raise InvalidInput(
                "the new schema does not hold for the current examples; "
                + exc.message.removeprefix("schema violation: "),
                details=exc.details,
            ) from None


def delete(ctx: ServiceContext, who: Principal, ref: str) -> str:
    now = ctx.clock()

    def write(conn: Connection) -> str:
        row = load(conn, who, ref, for_update=True)
        attachment_rows.remove_dataset(conn, who.workspace_id, row.id)
        store.delete(conn, row.id)
        audit.entry(
            conn,
            now,
            who.workspace_id,
            who,
            "dataset.deleted",
            target_type="dataset",
            target_id=row.id,
            details={"name": row.name, "versions": row.head_version},
        )
        return row.id

    deleted = ctx.db.write(write)
    attachments.sweep(ctx)  # the files only this dataset's examples held
    return deleted


# --- versions, as_of, tags, diff -----------------------------------------------------------


def resolve(conn: Connection, row: DatasetRow, as_of: AsOf | None) -> int:
    """The version number an ``as_of`` selector names; raises a 4xx error that says why not."""
    if as_of is None:
        return row.head_version
    if as_of.version is not None:
        if as_of.version > row.head_version:
            raise NotFound(
                f"dataset {row.name!r} has no version {as_of.version} "
                f"(versions 0-{row.head_version})",
                details={"field": "as_of"},
            )
        return as_of.version
    if as_of.tag is not None:
        tags = store.tags(conn, row.id)
        if as_of.tag not in tags:
            known = ", ".join(sorted(tags)) or "none"
            raise NotFound(
                f"dataset {row.name!r} has no tag {as_of.tag!r} (tags: {known})",
                details={"field": "as_of"},
            )
        return tags[as_of.tag]
    assert as_of.time is not None
    version = store.version_at(conn, row.id, as_of.time)
    if version is None:
        raise InvalidInput(
            f"dataset {row.name!r} did not exist at {to_iso(as_of.time)}: "
            f"it was created at {to_iso(row.created_at)}",
            details={"field": "as_of"},
        )
    return version


def resolve_version(ctx: ServiceContext, who: Principal, ref: str, as_of: str | None) -> int:
    selector = rules.parse_as_of(as_of)
    return ctx.db.read(lambda c: resolve(c, load(c, who, ref), selector))


def list_versions(
    ctx: ServiceContext, who: Principal, ref: str, *, limit: int = 100, cursor: str | None = None
) -> tuple[list[VersionInfo], str | None]:
    """Newest first, with what each version changed and the tags on it."""
    check_limit(limit)
    if cursor is not None and not cursor.isdigit():
        raise InvalidInput("cursor is not one this API gave out", details={"field": "cursor"})
    before = int(cursor) if cursor is not None else None

    def read(conn: Connection) -> list[VersionInfo]:
        row = load(conn, who, ref)
        by_version: dict[int, list[str]] = {}
        for tag, version in store.tags(conn, row.id).items():
            by_version.setdefault(version, []).append(tag)
        rows = store.list_versions(conn, row.id, limit=limit + 1, before=before)
        return [VersionInfo(v, by_version.get(v.version, [])) for v in rows]

    items = ctx.db.read(read)
    more = len(items) > limit
    items = items[:limit]
    return items, str(items[-1].row.version) if more and items else None


def set_tag(
    ctx: ServiceContext, who: Principal, ref: str, tag: str, as_of: str | None
) -> tuple[int, int | None]:
    """Point ``tag`` at a version (default: the newest); returns (version, previous or None)."""
    rules.check_tag(tag)
    selector = rules.parse_as_of(as_of)

    def write(conn: Connection) -> tuple[int, int | None]:
        row = load(conn, who, ref, for_update=True)
        version = resolve(conn, row, selector)
        previous = store.tags(conn, row.id).get(tag)
        store.set_tag(conn, row.id, tag, version, ctx.clock())
        return version, previous

    return ctx.db.write(write)


def delete_tag(ctx: ServiceContext, who: Principal, ref: str, tag: str) -> None:
    def write(conn: Connection) -> bool:
        return store.delete_tag(conn, load(conn, who, ref, for_update=True).id, tag)

    if not ctx.db.write(write):
        raise NotFound(f"dataset {ref!r} has no tag {tag!r}")


def tags(ctx: ServiceContext, who: Principal, ref: str) -> dict[str, int]:
    return ctx.db.read(lambda c: store.tags(c, load(c, who, ref).id))


def diff(
    ctx: ServiceContext,
    who: Principal,
    ref: str,
    from_as_of: str,
    to_as_of: str | None,
    *,
    by_revision: bool = False,
) -> Diff:
    """Examples added, removed and changed between two versions (default ``to``: the newest).
    Changed = different content; with ``by_revision``, rewritten by any version in between
    even to the same content (LangSmith's notion)."""
    old_sel = rules.parse_as_of(from_as_of)
    new_sel = rules.parse_as_of(to_as_of)

    def read(conn: Connection) -> Diff:
        row = load(conn, who, ref)
        old, new = resolve(conn, row, old_sel), resolve(conn, row, new_sel)
        low, high = min(old, new), max(old, new)
        ids = example_store.touched_between(conn, row.id, low, high)
        before = example_store.by_ids(conn, row.id, ids, old)
        after = example_store.by_ids(conn, row.id, ids, new)
        return Diff(
            from_version=old,
            to_version=new,
            added=sorted(set(after) - set(before)),
            removed=sorted(set(before) - set(after)),
            changed=sorted(
                i
                for i in set(before) & set(after)
                if before[i].content() != after[i].content()
                or (by_revision and before[i].version != after[i].version)
            ),
        )

    return ctx.db.read(read)
