"""`goldloop feedback-keys ...`: a workspace's score configs (declared feedback keys) on a
running server over HTTP."""

from __future__ import annotations

import json
from typing import Any

import click

from goldloop.cli.groups import Group
from goldloop.cli.remote import api_errors, http_options
from goldloop.client import Client


def _category(text: str) -> str | dict[str, Any]:
    """``warm`` or ``warm=1`` (a label with its score)."""
    label, sep, score = text.rpartition("=")
    if not sep:
        return text
    try:
        return {"label": label, "score": float(score)}
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: write LABEL or LABEL=SCORE with a number", param_hint="--category"
        ) from None


def _describe(k: dict[str, Any]) -> str:
    if k["kind"] == "continuous":
        low = "-inf" if k["min"] is None else f"{k['min']:g}"
        high = "inf" if k["max"] is None else f"{k['max']:g}"
        return f"[{low}, {high}]"
    if k["kind"] == "categorical":
        return ", ".join(
            c["label"] if c["score"] is None else f"{c['label']}={c['score']:g}"
            for c in k["categories"] or []
        )
    return ""


@click.group("feedback-keys", cls=Group)
def feedback_keys() -> None:
    """Score configs: the feedback keys a workspace declares, with their rubric."""


@feedback_keys.command("list")
@http_options
@api_errors
def keys_list(endpoint: str, api_key: str | None) -> None:
    """One line per declared key: key, kind, range or categories, description."""
    with Client(endpoint, api_key) as client:
        for k in client.list_feedback_keys():
            extra = "  correction expected" if k["correction_expected"] else ""
            click.echo(f"{k['key']}  {k['kind']}  {_describe(k)}  {k['description'] or ''}{extra}")


@feedback_keys.command("show")
@http_options
@click.argument("key")
@api_errors
def keys_show(endpoint: str, api_key: str | None, key: str) -> None:
    """The declaration as JSON."""
    with Client(endpoint, api_key) as client:
        click.echo(json.dumps(client.get_feedback_key(key), indent=2, sort_keys=True))


@feedback_keys.command("declare")
@http_options
@click.argument("key")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(["continuous", "categorical", "boolean", "freeform"]),
    help="What a score of this key is.",
)
@click.option("--min", "low", type=float, default=None, help="continuous: lowest score.")
@click.option("--max", "high", type=float, default=None, help="continuous: highest score.")
@click.option(
    "--category",
    "categories",
    multiple=True,
    help="categorical: LABEL or LABEL=SCORE, once per category, in the order reviewers see.",
)
@click.option("--description", default=None, help="What the key measures.")
@click.option("--rubric", default=None, help="What reviewers read before scoring.")
@click.option(
    "--rubric-file",
    type=click.File("r"),
    default=None,
    help="Read the rubric from a file (- for stdin).",
)
@click.option(
    "--correction-expected", is_flag=True, help="Reviewers should also write a correction."
)
@click.option("--lower-is-better", is_flag=True, help="A lower score is the better one.")
@api_errors
def keys_declare(
    endpoint: str,
    api_key: str | None,
    key: str,
    kind: str,
    low: float | None,
    high: float | None,
    categories: tuple[str, ...],
    description: str | None,
    rubric: str | None,
    rubric_file: Any,
    correction_expected: bool,
    lower_is_better: bool,
) -> None:
    """Declare (or redeclare) KEY; needs an admin key. Feedback on it is then checked."""
    if rubric is not None and rubric_file is not None:
        raise click.UsageError("give --rubric or --rubric-file, not both")
    if rubric_file is not None:
        rubric = rubric_file.read()
    with Client(endpoint, api_key) as client:
        declared = client.declare_feedback_key(
            key,
            kind,
            min=low,
            max=high,
            categories=[_category(c) for c in categories] or None,
            description=description,
            rubric=rubric,
            correction_expected=correction_expected,
            lower_is_better=lower_is_better,
        )
    click.echo(f"{declared['key']}  {declared['kind']}  {_describe(declared)}")


@feedback_keys.command("delete")
@http_options
@click.argument("key")
@api_errors
def keys_delete(endpoint: str, api_key: str | None, key: str) -> None:
    """Forget KEY's declaration (its feedback stays); needs an admin key."""
    with Client(endpoint, api_key) as client:
        client.delete_feedback_key(key)
    click.echo(f"{key} deleted")
