"""The syntax tree of the run filter language (see ``goldloop.domain.filters``), and its
canonical text form: ``parse(to_text(node)) == node``."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field


@dataclass(frozen=True, slots=True)
class Str:
    value: str


@dataclass(frozen=True, slots=True)
class Num:
    value: int | float


@dataclass(frozen=True, slots=True)
class Duration:
    """A length of time, in microseconds (``2s``, ``150ms``)."""

    us: int


@dataclass(frozen=True, slots=True)
class Ago:
    """A moment relative to when the filter is evaluated (``1h ago``), microseconds back."""

    us: int


@dataclass(frozen=True, slots=True)
class Time:
    """An absolute moment, microseconds since the epoch (from an ISO string or an integer)."""

    us: int


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool


@dataclass(frozen=True, slots=True)
class Null:
    pass


Value = Str | Num | Duration | Ago | Time | Bool | Null


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # canonical field name, e.g. "latency" or "metadata"
    path: tuple[str, ...] = ()  # for metadata: the keys below it


@dataclass(frozen=True, slots=True)
class Compare:
    field: Field
    op: str
    value: Value
    pos: int = dc_field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class In:
    field: Field
    values: tuple[Value, ...]
    pos: int = dc_field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Truthy:
    """A bare field: true / set / exists (see ``docs/filters.md``)."""

    field: Field
    pos: int = dc_field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


Node = Compare | In | Truthy | Not | And | Or


def to_text(node: Node) -> str:
    if isinstance(node, And | Or):
        word = " and " if isinstance(node, And) else " or "
        return "(" + word.join(to_text(i) for i in node.items) + ")"
    if isinstance(node, Not):
        return "not " + to_text(node.item)
    if isinstance(node, Truthy):
        return _path_text(node.field)
    if isinstance(node, In):
        return f"{_path_text(node.field)} in ({', '.join(value_text(v) for v in node.values)})"
    return f"{_path_text(node.field)} {node.op} {value_text(node.value)}"


def _path_text(fld: Field) -> str:
    return ".".join([fld.name, *(quote(k) for k in fld.path)])


def quote(text: str) -> str:
    body = text.replace("\\", "\\\\").replace('"', '\\"')
    body = body.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{body}"'


def value_text(v: Value) -> str:
    if isinstance(v, Str):
        return quote(v.value)
    if isinstance(v, Num):
        return repr(v.value)
    if isinstance(v, Duration):
        return f"{v.us}us"
    if isinstance(v, Ago):
        return f"{v.us}us ago"
    if isinstance(v, Time):
        return str(v.us)
    if isinstance(v, Bool):
        return "true" if v.value else "false"
    return "null"
