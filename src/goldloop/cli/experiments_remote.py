"""`goldloop experiments list|show|tag|untag`, and where `compare` and `gate --baseline` find an
experiment: a saved results file, an experiment id or name on the server, or ``tag:NAME`` (the
experiment of the dataset carrying that tag)."""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click
import orjson

from goldloop.cli.groups import Group
from goldloop.cli.remote import api_errors, http_options
from goldloop.client import Client

if TYPE_CHECKING:
    from goldloop.evaluation import ExperimentResults


def fail_usage(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def load_experiment(
    spec: str, *, endpoint: str | None, api_key: str | None, dataset: str | None = None
) -> ExperimentResults:
    """A results file, an experiment id or name on the server, or ``tag:NAME`` with
    ``dataset``; anything that cannot be found or read exits with code 2."""
    from goldloop.evaluation import _baselines as baselines

    try:
        return baselines.load_experiment(spec, endpoint=endpoint, api_key=api_key, dataset=dataset)
    except baselines.BaselineError as exc:
        fail_usage(str(exc))


def tag_on_pass(experiment: str, tag: str, endpoint: str | None, api_key: str | None) -> str:
    """Tag the experiment the gate just passed; returns the line to print."""
    from goldloop.evaluation import _baselines as baselines

    try:
        return baselines.tag_experiment(experiment, tag, endpoint=endpoint, api_key=api_key)
    except baselines.BaselineError as exc:
        fail_usage(str(exc))


# --- goldloop experiments ... -----------------------------------------------------------------


def _scores(e: dict[str, Any]) -> str:
    parts = []
    for key, s in e["scores"].items():
        mean = s["mean"]
        shown = "-" if mean is None or math.isnan(mean) else f"{mean:.3f}"
        parts.append(f"{key}={shown} (n={s['n']})")
    return ", ".join(parts)


def _dataset(e: dict[str, Any]) -> str:
    if not e["dataset_id"]:
        return "-"
    name = e["dataset"] or e["dataset_id"]
    return f"{name}@v{e['dataset_version']}" if e["dataset_version"] is not None else name


@click.group(cls=Group)
def experiments() -> None:
    """Experiments on a running server: list, show, tag baselines."""


@experiments.command("list")
@click.option("--dataset", default=None, help="Only experiments on this dataset (id or name).")
@click.option("--tag", default=None, help="Only the experiment(s) carrying this tag.")
@click.option("--limit", default=20, show_default=True, help="At most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON Lines.")
@http_options
@api_errors
def list_cmd(
    dataset: str | None, tag: str | None, limit: int, as_json: bool, endpoint: str,
    api_key: str | None,
) -> None:  # fmt: skip
    """Experiments, newest first: dataset and version, runs, errors, tags, mean per score key."""
    with Client(endpoint, api_key) as client:
        for i, e in enumerate(client.list_experiments(dataset=dataset, tag=tag)):
            if i >= limit:
                break
            if as_json:
                click.echo(orjson.dumps(e).decode())
                continue
            tags = ",".join(e["tags"]) or "-"
            click.echo(
                f"{e['name']}\t{_dataset(e)}\t{e['run_count']} runs\t{e['error_count']} errors"
                f"\t{tags}\t{_scores(e)}"
            )


@experiments.command("show")
@click.argument("experiment")
@click.option("--json", "as_json", is_flag=True, help="Print the experiment as JSON.")
@http_options
@api_errors
def show_cmd(experiment: str, as_json: bool, endpoint: str, api_key: str | None) -> None:
    """One experiment (id or name) with its aggregate scores per key."""
    with Client(endpoint, api_key) as client:
        e = client.get_experiment(experiment)
    if as_json:
        click.echo(orjson.dumps(e, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"Experiment {e['name']} ({e['id']}), created {e['created_at']}")
    click.echo(f"dataset: {_dataset(e)}   repetitions: {e['repetitions'] or '-'}")
    click.echo(f"runs: {e['run_count']}   errors: {e['error_count']}")
    click.echo(f"tags: {', '.join(e['tags']) or '-'}")
    if e["metadata"]:
        click.echo(f"metadata: {orjson.dumps(e['metadata']).decode()}")
    click.echo(f"{'key':28} {'mean':>8} {'n':>6} {'binary':>7}")
    for key, s in e["scores"].items():
        mean = "-" if s["mean"] is None else f"{s['mean']:.3f}"
        click.echo(f"{key:28} {mean:>8} {s['n']:6d} {'yes' if s['binary'] else 'no':>7}")


@experiments.command("tag")
@click.argument("experiment")
@click.argument("tag")
@http_options
@api_errors
def tag_cmd(experiment: str, tag: str, endpoint: str, api_key: str | None) -> None:
    """Tag EXPERIMENT with TAG, such as `main`; the tag leaves the experiment that had it."""
    with Client(endpoint, api_key) as client:
        moved = client.tag_experiment(experiment, tag)
    name = moved["experiment"]["name"]
    previous = moved["previous"]
    click.echo(f"tagged {name} as {tag!r}" + (f" (moved from {previous})" if previous else ""))


@experiments.command("untag")
@click.argument("experiment")
@click.argument("tag")
@http_options
@api_errors
def untag_cmd(experiment: str, tag: str, endpoint: str, api_key: str | None) -> None:
    """Remove TAG from EXPERIMENT."""
    with Client(endpoint, api_key) as client:
        e = client.untag_experiment(experiment, tag)
    click.echo(f"removed tag {tag!r} from {e['name']}")
