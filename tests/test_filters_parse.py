"""The filter grammar: what parses to what, and where and why a bad filter fails."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from goldloop.domain import filters as f
from goldloop.domain.errors import InvalidInput


def test_the_filter_bar_example() -> None:
    node = f.parse(
        'kind = "llm" and latency > 2s and tag = "prod" and metadata.customer = "acme" '
        "and not error"
    )
    assert node == f.And(
        (
            f.Compare(f.Field("kind"), "=", f.Str("llm")),
            f.Compare(f.Field("latency"), ">", f.Duration(2_000_000)),
            f.Compare(f.Field("tags"), "=", f.Str("prod")),
            f.Compare(f.Field("metadata", ("customer",)), "=", f.Str("acme")),
            f.Not(f.Truthy(f.Field("error"))),
        )
    )


def test_precedence_not_binds_tighter_than_and_than_or() -> None:
    a = f.Truthy(f.Field("root"))
    b = f.Truthy(f.Field("error"))
    c = f.Truthy(f.Field("model"))
    assert f.parse("root or error and model") == f.Or((a, f.And((b, c))))
    assert f.parse("(root or error) and model") == f.And((f.Or((a, b)), c))
    assert f.parse("not root and error") == f.And((f.Not(a), b))
    assert f.parse("NOT (root OR error)") == f.Not(f.Or((a, b)))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("latency > 150ms", f.Duration(150_000)),
        ("latency > 1.5s", f.Duration(1_500_000)),
        ("latency > 2m", f.Duration(120_000_000)),
        ("latency > 10us", f.Duration(10)),
        ("start_time > 1h ago", f.Ago(3_600_000_000)),
        ("start_time > 1764150000000000", f.Time(1_764_150_000_000_000)),
        ('start_time > "2025-11-26T09:40:00Z"', f.Time(1_764_150_000_000_000)),
        ('start_time > "2025-11-26 10:40:00+01:00"', f.Time(1_764_150_000_000_000)),
        ("cost > .5", f.Num(0.5)),
        ("cost > -1e-3", f.Num(-0.001)),
        ("tokens > 1000", f.Num(1000)),
    ],
)
def test_values(text: str, value: f.Value) -> None:
    node = f.parse(text)
    assert isinstance(node, f.Compare)
    assert node.value == value


def test_aliases_keys_and_lists() -> None:
    assert f.parse('session = "s"') == f.Compare(f.Field("session_id"), "=", f.Str("s"))
    assert f.parse('KIND == "LLM"') == f.Compare(f.Field("kind"), "=", f.Str("llm"))
    assert f.parse("metadata.\"a b\".c-d.2 = 'x'") == f.Compare(
        f.Field("metadata", ("a b", "c-d", "2")), "=", f.Str("x")
    )
    assert f.parse('kind in ("llm", "tool")') == f.In(
        f.Field("kind"), (f.Str("llm"), f.Str("tool"))
    )
    assert f.parse(r'name = "a\"b\\c\n"') == f.Compare(f.Field("name"), "=", f.Str('a"b\\c\n'))


def _error(text: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        f.parse(text)
    return info.value


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("kind = ", 7, "a value"),
        ('kind = "llmm"', 7, "one of agent, chain"),
        ("latency > 2", 10, "a duration with a unit"),
        ("latency > 2parsecs", 11, "a duration unit"),
        ("colour = 1", 0, "a field name"),
        ('(kind = "llm"', 13, "')' to close the '(' at position 0"),
        ('kind = "llm")', 12, "unbalanced ')'"),
        ('name "x"', 5, "an operator after name"),
        ("metadata = 1", 9, "'.' and a metadata key"),
        ('name = "open', 12, 'a closing " for the string opened at position 7'),
        ("root and", 8, "a field name"),
        ("cost ~ 1", 5, "an operator after cost"),
        ('tag > "x"', 4, "an operator after tags"),
        ("kind", 4, "an operator after kind"),
        ("name = 1", 7, "a quoted string for name"),
        ('metadata.x > "a"', 13, "a number after metadata.x >"),
        ('start_time > "yesterday"', 13, "a time for start_time"),
        ("model = 3 $", 10, "a field, value, operator or parenthesis"),
        ('kind in "llm"', 8, "'(' to start the list"),
        ('kind in ("llm" "tool")', 15, "',' or ')'"),
        ("tags = null", 7, "a non-null value"),
        ("cost > 1 ago", 9, "a unit before 'ago'"),
        ("latency.x > 1s", 7, "only metadata and feedback have keys"),
    ],
)
def test_errors_name_the_position_and_what_was_expected(
    text: str, position: int, expected: str
) -> None:
    err = _error(text)
    assert err.details["position"] == position, err.message
    assert expected in err.details["expected"], err.message
    assert err.message.startswith(f"invalid filter at position {position}: expected ")
    assert err.details["field"] == "filter"


def test_limits() -> None:
    assert _error("not " * 60 + "root").details["position"] == 200
    assert "longer than" in _error("root or " * 1000 + "root").message
    assert f.parse("") is None
    assert f.parse("   ") is None


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="abcdeiklmnorstu ().\"=!<>~,0123456789-_\\'", max_size=40))
def test_any_input_parses_or_fails_cleanly(text: str) -> None:
    position: int | None = None
    node = None
    try:
        node = f.parse(text)
    except InvalidInput as exc:
        position = exc.details["position"]
    if position is not None:
        assert 0 <= position <= len(text)
    elif node is not None:
        assert f.parse(f.to_text(node)) == node


_KEYS = st.text(
    alphabet=st.characters(exclude_characters='"', exclude_categories=["Cs"]),
    min_size=1,
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(
    path=st.lists(_KEYS, min_size=1, max_size=3),
    value=st.one_of(
        st.text(max_size=8).map(f.Str),
        st.integers(-(10**12), 10**12).map(f.Num),
        st.floats(allow_nan=False, allow_infinity=False).map(f.Num),
        st.booleans().map(f.Bool),
    ),
)
def test_metadata_predicates_round_trip_through_text(path: list[str], value: f.Value) -> None:
    node = f.Compare(f.Field("metadata", tuple(path)), "=", value)
    assert f.parse(f.to_text(node)) == node
