"""An example filter (``domain.langsmith.example_filter``) as a parameterized SQL condition on
``dataset_examples.metadata``, per dialect. Every leaf is false, never NULL, on a row without
metadata, so ``not(...)`` selects exactly the rows its operand does not."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from goldloop.domain.langsmith.example_filter import AllOf, AnyOf, Exists, Has, Match, Not
from goldloop.store.schema import dataset_examples as ex


def _path(key: str) -> str:
    return f'$."{key}"'  # keys are checked to be letters, digits, _ . - (no quotes)


def _exists(pg: bool, key: str) -> sa.ColumnElement[bool]:
    if pg:
        return sa.func.jsonb_extract_path(ex.c.metadata, key).isnot(None)
    return sa.func.json_type(ex.c.metadata, _path(key)).isnot(None)


def _is(pg: bool, key: str, value: Any) -> sa.ColumnElement[bool]:
    if pg:
        return ex.c.metadata.op("@>", is_comparison=True)(
            sa.literal({key: value}, postgresql.JSONB)
        )
    kind = sa.func.json_type(ex.c.metadata, _path(key))
    if value is None:
        return kind == "null"
    if isinstance(value, bool):
        return kind == ("true" if value else "false")
    extracted: sa.ColumnElement[Any] = sa.func.json_extract(ex.c.metadata, _path(key))
    if isinstance(value, str):
        return sa.and_(kind == "text", extracted == value)
    return sa.and_(kind.in_(("integer", "real")), extracted == value)


def _leaf(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    return sa.func.coalesce(condition, sa.false(), type_=sa.Boolean)


def condition(conn: Connection, match: Match) -> sa.ColumnElement[bool]:
    pg = conn.dialect.name == "postgresql"
    if isinstance(match, Exists):
        return _leaf(_exists(pg, match.key))
    if isinstance(match, Has):
        return sa.and_(*(_leaf(_is(pg, k, v)) for k, v in match.pairs))
    if isinstance(match, AllOf):
        return sa.and_(*(condition(conn, p) for p in match.parts))
    if isinstance(match, AnyOf):
        return sa.or_(*(condition(conn, p) for p in match.parts))
    assert isinstance(match, Not)
    return sa.not_(condition(conn, match.part))
