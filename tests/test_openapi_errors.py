"""Issue 22 (9): the schema lists the error answers the server really gives, with their body.

No operation promises 422 (invalid input is a 400), every error answer has the one ``Error``
body (OTLP receivers: the OTLP ``Status``), and answers the server gives to real requests are
listed for their operation and match the published body schema.
"""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema

from goldloop.http.api_reference import openapi_markdown, openapi_schema
from goldloop.http.error_responses import ERROR_SCHEMA


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


async def test_no_operation_promises_422_and_every_error_has_the_error_body(
    anon: httpx.AsyncClient,
) -> None:
    schema = (await anon.get("/api/v1/openapi.json")).json()
    assert schema["components"]["schemas"]["Error"] == ERROR_SCHEMA
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    ops = _operations(schema)
    assert len(ops) > 60
    for path, method, op in ops:
        assert "422" not in op["responses"], (method, path)
        errors = {s: r for s, r in op["responses"].items() if s.startswith(("4", "5"))}
        assert errors, (method, path)
        for status, response in errors.items():
            ref = response["content"]["application/json"]["schema"]["$ref"]
            expected = "OtlpStatus" if path.startswith("/v1/") and status != "401" else "Error"
            if status == "429":
                expected = "Error"
            assert ref == f"#/components/schemas/{expected}", (method, path, status)


async def test_the_statuses_follow_what_the_route_is(anon: httpx.AsyncClient) -> None:
    paths = (await anon.get("/api/v1/openapi.json")).json()["paths"]

    def statuses(path: str, method: str) -> set[str]:
        return {s for s in paths[path][method]["responses"] if s[0] in "45"}

    assert statuses("/healthz", "get") == {"429"}
    assert statuses("/api/v1/projects/{project_id}", "get") >= {"400", "401", "404", "503"}
    assert "403" not in statuses("/api/v1/projects/{project_id}", "get")
    assert statuses("/api/v1/projects", "post") >= {"400", "401", "409", "413", "415", "503"}
    assert "403" in statuses("/api/v1/channels/{channel_id}", "delete")  # admin only
    assert statuses("/v1/traces", "post") >= {"400", "401", "413", "415", "503"}
    assert paths["/api/v1/projects"]["get"]["security"] == [{"ApiKey": []}, {"Bearer": []}]
    assert "security" not in paths["/healthz"]["get"]
    retry = paths["/api/v1/projects"]["get"]["responses"]["503"]["headers"]
    assert "Retry-After" in retry


async def test_real_error_answers_are_listed_and_match_the_body_schema(
    anon: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    schema = (await anon.get("/api/v1/openapi.json")).json()
    paths = schema["paths"]
    created = await client.post("/api/v1/projects", json={"name": "p"})
    assert created.status_code == 201
    cases = [
        (anon, "get", "/api/v1/projects", "/api/v1/projects", None, 401),
        (client, "get", "/api/v1/projects/{project_id}", "/api/v1/projects/nope", None, 404),
        (client, "post", "/api/v1/projects", "/api/v1/projects", {"name": "p"}, 409),
        (client, "post", "/api/v1/projects", "/api/v1/projects", {"name": 3}, 400),
        (client, "post", "/api/v1/runs/query", "/api/v1/runs/query", {"filter": "x =="}, 400),
        (client, "get", "/api/v1/runs", "/api/v1/runs?project=absent", None, 404),
    ]
    for c, method, template, url, body, expected in cases:
        r = await c.request(method, url, json=body)
        assert r.status_code == expected, (url, r.text)
        assert str(expected) in paths[template][method]["responses"], (method, template)
        jsonschema.validate(r.json(), ERROR_SCHEMA)


def test_the_reference_lists_each_operations_errors() -> None:
    text = openapi_markdown(openapi_schema())
    section = text.split("### `GET /api/v1/projects/{project_id}`", 1)[1].split("###", 1)[0]
    assert "Errors: 400, 401, 404, 429, 503 (Error)" in section
    assert "422" not in text.split("## Models", 1)[0]
    register = text.split("### `POST /api/v1/experiments`", 1)[1].split("###", 1)[0]
    assert "Returns: 200 ExperimentOut, 201 ExperimentOut" in register
