"""The generated reference pages under docs/ match the code they are generated from."""

from __future__ import annotations

from pathlib import Path

import click

from goldloop.cli.main import cli
from goldloop.cli.reference import cli_markdown
from goldloop.http.api_reference import openapi_markdown, openapi_schema

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_cli_reference_is_current() -> None:
    text = cli_markdown(cli)
    assert "## `goldloop`" in text
    assert "`goldloop serve`" in text
    assert (DOCS / "cli.md").read_text() == text, (
        "docs/cli.md is stale: run `PYTHONPATH=src python -m goldloop reference cli > docs/cli.md`"
    )


def test_api_reference_is_current() -> None:
    text = openapi_markdown(openapi_schema())
    assert "### `POST /api/v1/projects`" in text
    assert (DOCS / "api-reference.md").read_text() == text, (
        "docs/api-reference.md is stale: run "
        "`PYTHONPATH=src python -m goldloop reference api > docs/api-reference.md`"
    )


def test_cli_reference_lists_every_command_and_option() -> None:
    @click.group()
    def root() -> None:
        """Root help."""

    @root.command()
    @click.option("--port", type=int, help="Port | to bind.")
    def serve(port: int) -> None:
        """Serve things."""

    @root.command(hidden=True)
    def secret() -> None:
        """Not listed."""

    text = cli_markdown(root)
    assert "### `goldloop serve`" in text
    assert "Serve things." in text
    assert "| `--port INTEGER` | Port \\| to bind. |" in text
    assert "secret" not in text


def test_api_reference_renders_operations_and_models() -> None:
    schema = {
        "info": {"version": "9"},
        "paths": {
            "/api/v1/things/{id}": {
                "get": {
                    "tags": ["things"],
                    "summary": "Get Thing",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Thing"}
                                }
                            }
                        }
                    },
                }
            }
        },
        "components": {
            "schemas": {
                "Thing": {
                    "properties": {"name": {"type": "string", "description": "The name."}},
                    "required": ["name"],
                }
            }
        },
    }
    text = openapi_markdown(schema)
    assert "### `GET /api/v1/things/{id}`" in text
    assert "| `id` | path | string | yes |  |" in text
    assert "Returns: 200 Thing" in text
    assert "| `name` | string | yes | The name. |" in text
