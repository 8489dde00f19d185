"""The small JSON Schema validator in goldloop.domain.json_schema."""

from __future__ import annotations

from typing import Any

import pytest

from goldloop.domain.json_schema import SchemaError, check_schema, schema_errors

CASES: list[tuple[Any, Any, bool]] = [
    (True, {"x": 1}, True),
    (False, 1, False),
    ({"type": "integer"}, 3, True),
    ({"type": "integer"}, 3.0, True),
    ({"type": "integer"}, 3.5, False),
    ({"type": "integer"}, True, False),
    ({"type": "number"}, False, False),
    ({"type": "boolean"}, 0, False),
    ({"type": ["string", "null"]}, None, True),
    ({"type": ["string", "null"]}, 1, False),
    ({"enum": [1, "a", None]}, 1.0, True),
    ({"enum": [1, "a", None]}, True, False),
    ({"const": {"a": [1, 2]}}, {"a": [1, 2]}, True),
    ({"const": {"a": [1, 2]}}, {"a": [2, 1]}, False),
    ({"minLength": 2, "maxLength": 3}, "ab", True),
    ({"minLength": 2, "maxLength": 3}, "abcd", False),
    ({"pattern": "^[A-Z]{3}$"}, "ABC", True),
    ({"pattern": "^[A-Z]{3}$"}, "ABCD", False),
    ({"minimum": 1, "exclusiveMaximum": 5}, 5, False),
    ({"exclusiveMinimum": 0}, 0, False),
    ({"multipleOf": 0.1}, 0.3, True),
    ({"multipleOf": 2}, 3, False),
    ({"type": "array", "items": {"type": "integer"}}, [1, 2, 3], True),
    ({"type": "array", "items": {"type": "integer"}}, [1, "2"], False),
    ({"prefixItems": [{"type": "string"}], "items": False}, ["a"], True),
    ({"prefixItems": [{"type": "string"}], "items": False}, ["a", 1], False),
    ({"items": [{"type": "string"}], "additionalItems": False}, ["a", 1], False),
    ({"contains": {"const": 3}}, [1, 2, 3], True),
    ({"contains": {"const": 3}}, [1, 2], False),
    ({"uniqueItems": True}, [1, 1.0], False),
    ({"uniqueItems": True}, [1, True], True),
    ({"minItems": 1}, [], False),
    (
        {"patternProperties": {"^x_": {"type": "integer"}}, "additionalProperties": False},
        {"x_a": 1},
        True,
    ),
    (
        {"patternProperties": {"^x_": {"type": "integer"}}, "additionalProperties": False},
        {"y": 1},
        False,
    ),
    ({"additionalProperties": {"type": "string"}}, {"a": "x", "b": 2}, False),
    ({"propertyNames": {"maxLength": 3}}, {"abcd": 1}, False),
    ({"minProperties": 1}, {}, False),
    ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, 2, True),
    ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, 2.5, False),
    ({"oneOf": [{"type": "number"}, {"type": "integer"}]}, 2, False),
    ({"oneOf": [{"type": "number"}, {"type": "integer"}]}, 2.5, True),
    ({"allOf": [{"minimum": 1}, {"maximum": 3}]}, 4, False),
    ({"not": {"type": "null"}}, None, False),
    (
        {"if": {"properties": {"kind": {"const": "refund"}}}, "then": {"required": ["amount"]}},
        {"kind": "refund"},
        False,
    ),
    (
        {"if": {"properties": {"kind": {"const": "refund"}}}, "then": {"required": ["amount"]}},
        {"kind": "info"},
        True,
    ),
    (
        {
            "$defs": {"pos": {"type": "integer", "minimum": 1}},
            "properties": {"n": {"$ref": "#/$defs/pos"}},
        },
        {"n": 0},
        False,
    ),
    ({"definitions": {"s": {"type": "string"}}, "items": {"$ref": "#/definitions/s"}}, ["a"], True),
    (
        {"type": "object", "properties": {"next": {"$ref": "#"}}, "additionalProperties": False},
        {"next": {"next": {}}},
        True,
    ),
    (
        {"type": "object", "properties": {"next": {"$ref": "#"}}, "additionalProperties": False},
        {"next": {"bad": 1}},
        False,
    ),
    ({"format": "email", "title": "ignored"}, "not an email", True),
]


@pytest.mark.parametrize(("schema", "value", "valid"), CASES)
def test_validation(schema: Any, value: Any, valid: bool) -> None:
    check_schema(schema)
    errors = schema_errors(value, schema)
    assert (errors == []) == valid, errors


def test_error_paths_point_at_the_value() -> None:
    schema = {
        "type": "object",
        "properties": {"rooms": {"type": "array", "items": {"type": "object", "required": ["id"]}}},
    }
    assert schema_errors({"rooms": [{"id": 1}, {}]}, schema) == [
        "$.rooms[1]: missing required property 'id'"
    ]


def test_error_limit() -> None:
    schema = {"type": "array", "items": {"type": "string"}}
    assert len(schema_errors(list(range(100)), schema, limit=5)) == 5


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ([], "JSON object or a boolean"),
        ({"type": "text"}, "unknown type"),
        ({"properties": {"a": {"pattern": "("}}}, "invalid pattern"),
        ({"items": {"$ref": "#/$defs/missing"}}, "does not resolve"),
        ({"$ref": "http://example.com/s.json"}, "only local"),
    ],
)
def test_check_schema_rejects_unusable_schemas(schema: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        check_schema(schema)


def test_data_keywords_are_not_treated_as_schemas() -> None:
    check_schema({"const": {"type": "not-a-type"}, "enum": [{"type": "x"}]})


def test_ref_cycle_is_reported() -> None:
    schema = {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}
    with pytest.raises(SchemaError, match="too deep"):
        schema_errors(1, schema)
