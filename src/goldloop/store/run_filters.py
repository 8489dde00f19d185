"""Compile a filter AST (``goldloop.domain.filters``) to a parameterized SQLAlchemy condition.

Every literal becomes a bound parameter; no filter text ever reaches SQL. The result works on
SQLite and PostgreSQL: JSON access (metadata, tags, text search) is compiled per dialect.

Logic is two-valued on purpose: every predicate is TRUE or FALSE, never SQL NULL, so ``not p``
is exactly the complement of ``p`` (``model != "x"`` and ``not model = "x"`` both include runs
that have no model).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from goldloop.domain import filters as f
from goldloop.store import payload_store
from goldloop.store.schema import feedback, projects, runs

Cond = ColumnElement[bool]

_COLUMNS: dict[str, sa.Column[Any]] = {
    "id": runs.c.id,
    "trace_id": runs.c.trace_id,
    "parent_id": runs.c.parent_id,
    "name": runs.c.name,
    "kind": runs.c.kind,
    "status": runs.c.status,
    "model": runs.c.model,
    "provider": runs.c.provider,
    "session_id": runs.c.session_id,
    "user_id": runs.c.user_id,
    "latency": runs.c.latency_us,
    "tokens": runs.c.total_tokens,
    "input_tokens": runs.c.input_tokens,
    "output_tokens": runs.c.output_tokens,
    "cost": runs.c.cost,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
    "root": runs.c.is_root,
}
_TEXT_COLUMNS: dict[str, tuple[sa.Column[Any], ...]] = {
    "inputs": (runs.c.inputs,),
    "outputs": (runs.c.outputs,),
    "text": (runs.c.inputs, runs.c.outputs),
}

_JSONB = postgresql.JSONB()


class FilterCompiler:
    """Compiles filters for one dialect, one workspace and one evaluation time ``now`` (µs)."""

    def __init__(self, dialect: str, workspace_id: str, now: int) -> None:
        self.pg = dialect == "postgresql"
        self.workspace_id = workspace_id
        self.now = now

    def compile(self, node: f.Node | None) -> Cond:
        if node is None:
            return sa.true()
        return self._node(node)

    def _node(self, node: f.Node) -> Cond:
        if isinstance(node, f.And):
            return sa.and_(*(self._node(i) for i in node.items))
        if isinstance(node, f.Or):
            return sa.or_(*(self._node(i) for i in node.items))
        if isinstance(node, f.Not):
            return sa.not_(self._node(node.item))
        fld = node.field
        if fld.name == "metadata":
            return self._metadata(node)
        if fld.name in ("feedback", "has_correction"):
            return self._feedback(node)
        if fld.name == "tags":
            return self._tags(node)
        if fld.name == "project":
            return self._project(node)
        if fld.name == "error":
            return self._error(node)
        if fld.name in _TEXT_COLUMNS:
            return self._text(node)
        return self._column(node, _COLUMNS[fld.name])

    # -- plain columns ----------------------------------------------------------------------------
    def _value(self, v: f.Value) -> Any:
        if isinstance(v, f.Str | f.Num | f.Bool):
            return v.value
        if isinstance(v, f.Duration | f.Time):
            return v.us
        if isinstance(v, f.Ago):
            return self.now - v.us
        return None

    def _column(self, node: f.Compare | f.In | f.Truthy, col: sa.Column[Any]) -> Cond:
        if isinstance(node, f.Truthy):
            if node.field.name == "root":
                return col == sa.true()  # `=`, not IS: an index serves equality
            return col.isnot(None) if col.nullable else sa.true()
        if isinstance(node, f.In):
            return _guard(col, col.in_([self._value(v) for v in node.values]), bool(col.nullable))
        if isinstance(node.value, f.Null):
            return col.is_(None) if node.op == "=" else col.isnot(None)
        return _compare(col, node.op, self._value(node.value), bool(col.nullable))

    # -- project: by name or id -------------------------------------------------------------------
    def _project(self, node: f.Compare | f.In | f.Truthy) -> Cond:
        if isinstance(node, f.Truthy):
            return sa.true()
        scope = projects.c.workspace_id == self.workspace_id
        if isinstance(node, f.In):
            names = [self._value(v) for v in node.values]
            match: Cond = sa.or_(projects.c.name.in_(names), projects.c.id.in_(names))
        elif node.op in f.TEXT_OPS:
            match = _contains(projects.c.name, str(self._value(node.value)))
        else:
            value = self._value(node.value)
            match = sa.or_(projects.c.name == value, projects.c.id == value)
        cond = runs.c.project_id.in_(sa.select(projects.c.id).where(scope, match))
        if isinstance(node, f.Compare) and node.op in ("!=", "!~"):
            return sa.not_(cond)
        return cond

    # -- error: bare = status error; ~ searches the error text ------------------------------------
    def _error(self, node: f.Compare | f.In | f.Truthy) -> Cond:
        if isinstance(node, f.Truthy):
            return runs.c.status == "error"
        assert isinstance(node, f.Compare)
        found = self._json_text_contains(runs.c.error, _value_str(node.value))
        return found if node.op == "~" else sa.not_(found)

    # -- inputs / outputs / text: case-insensitive substring of the JSON documents ----------------
    def _text(self, node: f.Compare | f.In | f.Truthy) -> Cond:
        cols = _TEXT_COLUMNS[node.field.name]
        if isinstance(node, f.Truthy):
            return sa.or_(*(self._json_present(c) for c in cols))
        assert isinstance(node, f.Compare)
        needle = _value_str(node.value)
        found = sa.or_(*(self._json_text_contains(c, needle) for c in cols))
        return found if node.op == "~" else sa.not_(found)

    def _json_text_contains(self, col: sa.Column[Any], needle: str) -> Cond:
        # Match the needle as it appears inside a JSON string (quotes, backslashes and control
        # characters escaped), so `"say \"hi\""` finds the text `say "hi"`.
        encoded = orjson.dumps(needle).decode()[1:-1]
        found = _contains(sa.cast(col, sa.Text), encoded, nullable=False)
        if self._readable(col) is not col:  # SQLite, a column that may hold zstd frames
            frame = sa.func.typeof(col) == "blob"
            found = sa.case((frame, payload_store.contains(col, encoded.lower())), else_=found)
        return sa.and_(self._json_present(col), found)

    def _json_present(self, col: sa.Column[Any]) -> Cond:
        kind: ColumnElement[Any]
        if self.pg:
            kind = sa.func.jsonb_typeof(col)
        elif self._readable(col) is not col:  # a frame is never the document null: not opened
            kind = sa.case((sa.func.typeof(col) == "blob", "frame"), else_=sa.func.json_type(col))
        else:
            kind = sa.func.json_type(col)
        return sa.and_(col.isnot(None), kind != "null")

    def _readable(self, col: sa.Column[Any]) -> ColumnElement[Any]:
        """On SQLite a run's large documents may be zstd frames: decompressed for SQL."""
        if self.pg or col.name not in payload_store.COMPRESSED_COLUMNS or col.table is not runs:
            return col
        return payload_store.readable(col)

    # -- tags -------------------------------------------------------------------------------------
    def _tags(self, node: f.Compare | f.In | f.Truthy) -> Cond:
        col = runs.c.tags
        if isinstance(node, f.Truthy):
            if self.pg:
                # CASE, not AND: PostgreSQL may evaluate AND operands in any order, and
                # jsonb_array_length raises on a non-array.
                length = sa.case(
                    (sa.func.jsonb_typeof(col) == "array", sa.func.jsonb_array_length(col)),
                    else_=0,
                )
                return sa.and_(col.isnot(None), length > 0)
            return sa.and_(col.isnot(None), sa.func.json_array_length(col) > 0)
        values = (
            [self._value(v) for v in node.values]
            if isinstance(node, f.In)
            else [self._value(node.value)]
        )
        if self.pg:
            has: Cond = sa.or_(
                *(col.op("@>")(sa.bindparam(None, [v], type_=_JSONB)) for v in values)
            )
            has = sa.and_(col.isnot(None), has)
        else:
            each = sa.func.json_each(col).table_valued("value")
            match = sa.select(sa.literal(1)).select_from(each).where(each.c.value.in_(values))
            has = sa.exists(match)
        if isinstance(node, f.Compare) and node.op == "!=":
            return sa.not_(has)
        return has

    # -- metadata.<path> --------------------------------------------------------------------------
    def _metadata(self, node: f.Compare | f.In | f.Truthy) -> Cond:
        return self._json_value(runs.c.metadata, node.field.path, node)

    def _json_value(
        self, col: sa.Column[Any], path: tuple[str, ...], node: f.Compare | f.In | f.Truthy
    ) -> Cond:
        """A predicate on the JSON value at ``path`` inside ``col``, typed (see docs/filters.md)."""
        extract: ColumnElement[Any]
        as_text: ColumnElement[Any]
        if self.pg and not path:
            extract = col
            as_text = col.op("#>>")(sa.bindparam(None, [], type_=postgresql.ARRAY(sa.Text)))
            json_kind = sa.func.jsonb_typeof(col)
        elif self.pg:
            extract = sa.func.jsonb_extract_path(col, *path)
            as_text = sa.func.jsonb_extract_path_text(col, *path)
            json_kind = sa.func.jsonb_typeof(extract)
        else:
            sqlite_path = "$" + "".join(f'."{k}"' for k in path)
            extract = sa.func.json_extract(col, sqlite_path)
            as_text = extract
            json_kind = sa.func.json_type(col, sqlite_path)
        if isinstance(node, f.Truthy):
            return json_kind.isnot(None)

        def kind_is(*kinds: str) -> Cond:
            return sa.and_(json_kind.isnot(None), json_kind.in_(kinds))

        def equals(v: f.Value) -> Cond:
            if isinstance(v, f.Null):
                return sa.or_(json_kind.is_(None), json_kind == "null")
            value = self._value(v)
            if self.pg:
                return sa.and_(
                    extract.isnot(None), extract == sa.bindparam(None, value, type_=_JSONB)
                )
            if isinstance(v, f.Bool):
                return kind_is("true" if v.value else "false")
            if isinstance(v, f.Num):
                return sa.and_(kind_is("integer", "real"), extract == value)
            return sa.and_(kind_is("text"), extract == value)

        if isinstance(node, f.In):
            return sa.or_(*(equals(v) for v in node.values))
        op = node.op
        if op == "=":
            return equals(node.value)
        if op == "!=":
            return sa.not_(equals(node.value))
        if op in f.TEXT_OPS:  # substring of string values only
            is_string = kind_is("string" if self.pg else "text")
            found = sa.and_(is_string, _contains(as_text, _value_str(node.value), nullable=False))
            return found if op == "~" else sa.not_(found)
        numeric_kinds = ("number",) if self.pg else ("integer", "real")
        as_number = sa.case(
            (json_kind.in_(numeric_kinds), sa.cast(as_text, sa.Float) if self.pg else extract),
            else_=sa.null(),
        )
        return _compare(as_number, op, self._value(node.value), nullable=True)

    # -- feedback.KEY[.ATTRIBUTE], has_correction: the run's feedback (by run or by trace) --------
    def _feedback(self, node: f.Compare | f.In | f.Truthy) -> Cond:
        """Feedback belongs to a run by ``run_id``; feedback on a whole trace (no run_id) belongs
        to the trace's root run. Negative operators (``!=``, ``!~``, ``= false``) are the
        complement of the positive one: ``feedback.k != 1`` = no ``k`` feedback scored 1."""
        fb = feedback
        path = node.field.path
        where: list[Cond] = [fb.c.workspace_id == self.workspace_id]
        if node.field.name == "has_correction":
            attr = "has_correction"
        else:
            if path:
                where.append(fb.c.key == path[0])
            attr = path[1] if len(path) == 2 else "score" if path else "any"
        negate = False
        if isinstance(node, f.Truthy):
            where.append(self._feedback_present(attr, explicit=len(path) == 2))
        elif attr == "has_correction":
            assert isinstance(node, f.Compare)
            assert isinstance(node.value, f.Bool)
            where.append(fb.c.has_correction == sa.true())
            negate = node.value.value != (node.op == "=")
        else:
            op = "in" if isinstance(node, f.In) else node.op
            negate = op in ("!=", "!~")
            positive = {"!=": "=", "!~": "~"}.get(op, op)
            values = node.values if isinstance(node, f.In) else (node.value,)
            where.append(self._feedback_match(attr, positive, values, node.field))
        # Two uncorrelated IN subqueries (each evaluated once, then probed), not a correlated
        # EXISTS with an OR inside: that one would scan the feedback of a key for every run.
        # Both exclude NULLs, so IN is never NULL and `not` stays an exact complement.
        by_run = sa.select(fb.c.run_id).where(*where, fb.c.run_id.isnot(None))
        by_trace = sa.select(fb.c.trace_id).where(
            *where, fb.c.run_id.is_(None), fb.c.trace_id.isnot(None)
        )
        found = sa.or_(
            runs.c.id.in_(by_run), sa.and_(runs.c.is_root, runs.c.trace_id.in_(by_trace))
        )
        return sa.not_(found) if negate else found

    def _feedback_present(self, attr: str, *, explicit: bool) -> Cond:
        fb = feedback
        if attr == "has_correction":
            return fb.c.has_correction == sa.true()
        if attr == "comment":
            return fb.c.comment.isnot(None)
        if attr == "value":
            return self._json_present(fb.c.value)
        if attr == "score" and explicit:
            return fb.c.score.isnot(None)
        return sa.true()  # feedback, feedback.KEY, feedback.KEY.source: it exists

    def _feedback_match(
        self, attr: str, op: str, values: tuple[f.Value, ...], fld: f.Field
    ) -> Cond:
        fb = feedback
        if attr == "value":
            if op == "in":
                return self._json_value(fb.c.value, (), f.In(fld, values))
            return self._json_value(fb.c.value, (), f.Compare(fld, op, values[0]))
        if attr == "comment":
            return _contains(fb.c.comment, _value_str(values[0]))
        if attr == "source":
            return fb.c.source.in_([self._value(v) for v in values])
        # float() for every value: a mixed int/float IN list would otherwise be typed by its
        # first element on PostgreSQL (0.7 compared as an integer)
        numbers = [
            float(v.value) if isinstance(v, f.Bool) else float(self._value(v)) for v in values
        ]
        if op == "in":
            return _guard(fb.c.score, fb.c.score.in_(numbers))
        return _compare(fb.c.score, op, numbers[0], nullable=True)


def _value_str(v: f.Value) -> str:
    assert isinstance(v, f.Str)
    return v.value


def _guard(col: ColumnElement[Any], cond: Cond, nullable: bool = True) -> Cond:
    return sa.and_(col.isnot(None), cond) if nullable else cond


_CMP: dict[str, Callable[[ColumnElement[Any], Any], Cond]] = {
    "=": lambda c, v: c == v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
}


def _compare(col: ColumnElement[Any], op: str, value: Any, nullable: bool) -> Cond:
    if op == "!=":
        return sa.not_(_guard(col, col == value, nullable))
    if op == "~":
        return _contains(col, str(value), nullable)
    if op == "!~":
        return sa.not_(_contains(col, str(value), nullable))
    return _guard(col, _CMP[op](col, value), nullable)


def _contains(col: ColumnElement[Any], needle: str, nullable: bool = True) -> Cond:
    """Case-insensitive substring (``LIKE`` with ``%`` and ``_`` in the needle escaped)."""
    return _guard(col, sa.func.lower(col).contains(needle.lower(), autoescape=True), nullable)


def compile_filter(node: f.Node | None, *, dialect: str, workspace_id: str, now: int) -> Cond:
    return FilterCompiler(dialect, workspace_id, now).compile(node)
