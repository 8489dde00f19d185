"""Trace content as HTML: a collapsible JSON viewer (chat messages: ``chat_view``).

Everything here is untrusted (LLM output, user input, sender metadata). The viewer builds HTML
from a fixed set of tags and classes; every key and value passes through ``markupsafe.escape``
and nothing from the document ever lands in a tag name, attribute name or URL. Output is capped
(string length, node count, nesting depth) so a huge or hostile document cannot stall a page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from markupsafe import Markup

MAX_STRING = 20_000  # characters of one string shown before "… N more characters"
MAX_NODES = 4_000  # values rendered per document
MAX_DEPTH = 60  # nesting shown; deeper parts are shown as compact JSON text
OPEN_DEPTH = 2  # containers nested less deeply than this start expanded
COMPACT_BYTES = 40_000  # size of the compact JSON fallback for parts not rendered


class _Budget:
    def __init__(self, nodes: int) -> None:
        self.left = nodes


def _string(text: str) -> Markup:
    shown = text if len(text) <= MAX_STRING else text[:MAX_STRING]
    more = (
        Markup('<span class="j-more">… {} more characters</span>').format(
            f"{len(text) - MAX_STRING:,}"
        )
        if len(text) > MAX_STRING
        else Markup("")
    )
    return Markup('<span class="j-str">"{}"</span>{}').format(shown, more)


def _scalar(value: Any) -> Markup:
    if value is None:
        return Markup('<span class="j-lit">null</span>')
    if value is True or value is False:
        return Markup('<span class="j-lit">{}</span>').format("true" if value else "false")
    if isinstance(value, int | float):
        return Markup('<span class="j-num">{}</span>').format(value)
    if isinstance(value, str):
        return _string(value)
    return _string(str(value))


def compact(value: Any, limit: int = COMPACT_BYTES) -> str:
    """One-line JSON text (capped); plain text, for Jinja to escape."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit:,} more)"


def _node(value: Any, depth: int, budget: _Budget) -> Markup:
    budget.left -= 1
    if not isinstance(value, Mapping | list | tuple):
        return _scalar(value)
    if not value:
        return Markup('<span class="j-punct">{}</span>').format(
            "{}" if isinstance(value, Mapping) else "[]"
        )
    if depth >= MAX_DEPTH or budget.left <= 0:
        return Markup('<span class="j-cut">{}</span>').format(compact(value, 2_000))
    is_map = isinstance(value, Mapping)
    items = list(value.items()) if isinstance(value, Mapping) else list(enumerate(value))
    n = len(items)
    label = (
        f"{{ {n} key{'s' if n != 1 else ''} }}"
        if is_map
        else f"[ {n} item{'s' if n != 1 else ''} ]"
    )
    rows = []
    for i, (key, child) in enumerate(items):
        if budget.left <= 0:
            rows.append(
                Markup('<div class="j-row j-more">… {} more not shown</div>').format(len(items) - i)
            )
            break
        key_html = (
            Markup('<span class="j-key">"{}"</span>: ').format(key)
            if is_map
            else Markup('<span class="j-idx">{}</span> ').format(key)
        )
        rows.append(
            Markup('<div class="j-row">{}{}</div>').format(
                key_html, _node(child, depth + 1, budget)
            )
        )
    return Markup(
        '<details class="j"{}><summary><span class="j-sum">{}</span></summary>'
        '<div class="j-body">{}</div></details>'
    ).format(Markup(" open") if depth < OPEN_DEPTH else Markup(""), label, Markup("").join(rows))


def render_json(value: Any, *, max_nodes: int = MAX_NODES) -> Markup:
    """The collapsible, escaped HTML view of a JSON value."""
    return Markup('<div class="json">{}</div>').format(_node(value, 0, _Budget(max_nodes)))
