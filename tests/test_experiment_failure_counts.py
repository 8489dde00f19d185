"""The experiment page's failure counts and *failures only* rows, counted by the database, held
against a plain computation over seeded random results on SQLite and PostgreSQL: failed calls,
evaluator errors (and falsy error values that are not errors), missing scores, booleans, 0-1
scores on and around the pass mark, numbers that are not 0-1 scores, two scores of one key, and
the pass mark changed with ``?pass=``. Then the query plans: indexes, no scan of a table."""

from __future__ import annotations

import random
import re
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest

from goldloop.store import experiment_failures
from sqlite_plans import query_plans

API = "/api/v1"
T0 = 1_764_150_816_000_000
RUNS = 64  # more than a page of results (50), so the failing rows take two pages
KEYS = ("correct", "quality", "judge", "rating", "latency")

Given = tuple[Any, dict[str, Any] | None]  # (score, source_info) of one feedback row


def _given(rng: random.Random, key: str) -> list[Given]:
    """What one run got for ``key``: nothing, one result, or now and then two."""

    def one() -> Given:
        if key == "correct":
            return rng.choice([True, False]), None
        if key == "quality":
            return rng.choice([0.0, 0.35, 0.5, 0.8, 1.0, round(rng.random(), 3)]), None
        if key == "judge":  # an evaluator: errors, and error values Python finds falsy
            info = rng.choice([
                {"error": "judge timed out"}, {"error": ""}, {"error": False}, {"error": 0},
                {"error": []}, {"error": {}}, {"error": ["rate limited"]}, {"error": None},
                {"skipped": True}, {"evaluator": "judge"},
            ])  # fmt: skip
            return rng.choice([None, 0.2, 0.9, True]), info
        if key == "rating":  # a 1-5 rating: only 1 reads as a 0-1 score (and passes)
            return rng.randint(1, 5), None
        return rng.choice([1250.0, 3.5, 0.25]), None  # latency: mostly not a 0-1 score

    chance = rng.random()
    if chance < 0.2:
        return []
    return [one(), one()] if chance > 0.9 else [one()]


def _fails(given: Given, pass_mark: float) -> bool:
    score, info = given
    if info and info.get("error"):
        return True
    if isinstance(score, bool):
        return not score
    return isinstance(score, int | float) and 0 <= score <= 1 and score < pass_mark


def _seeded(seed: int) -> list[tuple[str, bool, dict[str, list[Given]]]]:
    """(run id, whether its call failed, what each key got) per run, in stored order."""
    rng = random.Random(seed)
    return [
        (f"run-{i:03d}", rng.random() < 0.12, {key: _given(rng, key) for key in KEYS})
        for i in range(RUNS)
    ]


async def _store(client: httpx.AsyncClient, name: str, runs: list[Any]) -> str:
    r = await client.post(f"{API}/experiments", json={"name": name, "repetitions": 1})
    assert r.status_code == 201, r.text
    experiment = str(r.json()["id"])
    items = []
    for i, (run_id, call_failed, _) in enumerate(runs):
        item: dict[str, Any] = {
            "id": run_id, "trace_id": f"t-{run_id}", "name": "agent", "kind": "chain",
            "start_time": T0 + i, "end_time": T0 + i + 900,
            "inputs": {"question": f"q{i}"}, "outputs": {"answer": f"a{i}"},
            "metadata": {"example_id": f"ex{i}", "repetition": 0},
        }  # fmt: skip
        if call_failed:
            item["error"] = {"type": "TimeoutError", "message": "the target timed out"}
        items.append(item)
    r = await client.post(f"{API}/runs/batch", json={"runs": items, "project": name})
    assert r.status_code == 202, r.text
    for run_id, _, results in runs:
        for key, given in results.items():
            for score, info in given:
                body = {"run_id": run_id, "key": key, "score": score, "source_info": info}
                r = await client.post(f"{API}/feedback", json=body)
                assert r.status_code == 201, r.text
    return experiment


def _counts(html: str) -> tuple[int, int, dict[str, int]]:
    total = re.search(r'class="failing-count">(\d+)</strong> of (\d+) runs failing', html)
    assert total, html[:2000]
    tabs = re.findall(r'data-key="([^"]+)">failing on [^<]+<span class="muted">(\d+)<', html)
    return int(total.group(1)), int(total.group(2)), {k: int(n) for k, n in tabs}


async def _failing_rows(browser: httpx.AsyncClient, url: str) -> list[str]:
    """The run ids the failures-only view lists, following its pages."""
    shown: list[str] = []
    next_url: str | None = url
    while next_url:
        page = await browser.get(next_url)
        assert page.status_code == 200, page.text[:500]
        shown += re.findall(r'href="/traces/[^"?]+\?run=([^"]+)">trace</a>', page.text)
        found = re.search(r'<a href="([^"]+)">Next page', page.text)
        next_url = unescape(found.group(1)) if found else None
    return shown


@pytest.mark.parametrize("seed", [23, 2026])
async def test_counts_and_failing_rows_match_a_plain_computation(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, seed: int
) -> None:
    runs = _seeded(seed)
    experiment = await _store(client, f"seeded-{seed}", runs)
    keys = {key for _, _, results in runs for key, given in results.items() if given}
    rng = random.Random(seed)
    for pass_mark in (0.5, 0.0, 0.35, 0.8, 1.0, round(rng.random(), 2)):
        params = {} if pass_mark == 0.5 else {"pass": str(pass_mark)}

        def fails_on(results: dict[str, list[Given]], key: str | None, mark: float) -> bool:
            chosen = [g for k, given in results.items() if key in (None, k) for g in given]
            return any(_fails(g, mark) for g in chosen)

        expected_any = [r for r, failed, res in runs if failed or fails_on(res, None, pass_mark)]
        expected_by_key = {
            key: [r for r, failed, res in runs if failed or fails_on(res, key, pass_mark)]
            for key in keys
        }
        page = await browser.get(f"/experiments/{experiment}", params=params)
        assert page.status_code == 200
        failing, total, by_key = _counts(page.text)
        assert (failing, total) == (len(expected_any), RUNS), pass_mark
        assert by_key == {k: len(v) for k, v in expected_by_key.items()}, pass_mark

        url = httpx.URL(f"/experiments/{experiment}", params={"failing": "1", **params})
        assert await _failing_rows(browser, str(url)) == expected_any, pass_mark
        for key, expected in expected_by_key.items():
            url = url.copy_merge_params({"key": key})
            assert await _failing_rows(browser, str(url)) == expected, (pass_mark, key)
    # A key no result has keeps no run (not even the failed calls); a cursor past any run's
    # position is a 400, not a database error.
    nothing = await browser.get(
        f"/experiments/{experiment}", params={"failing": "1", "key": "no-such-key"}
    )
    assert nothing.status_code == 200
    assert "No failing runs on no-such-key" in nothing.text
    for failing_only in ({}, {"failing": "1"}):
        huge = {**failing_only, "after": str(2**64)}
        assert (await browser.get(f"/experiments/{experiment}", params=huge)).status_code == 400


def test_the_counts_and_the_failing_rows_search_indexes(tmp_path: Path) -> None:
    """SQLite's plans: the root runs by project, each run's feedback by run id; no table is
    scanned whole, whatever the experiment's size."""

    def calls(conn: Any) -> None:
        experiment_failures.failure_tally(conn, "w", "p", 0.5)
        for key in (None, "correct"):
            experiment_failures.failing_runs(
                conn, "w", "p", key=key, pass_mark=0.5, after_pk=10, limit=51
            )

    plans = query_plans(tmp_path, calls)
    assert len(plans) == 5  # three counts, two pages (an empty page fetches nothing more)
    for plan in plans:
        steps = " | ".join(plan)
        assert "SCAN runs" not in steps, steps
        assert "SCAN feedback" not in steps, steps
        assert re.search(r"SEARCH runs USING (COVERING )?INDEX \w+ \(project_id=\?", steps), steps
    for plan in (plans[1], plans[2], plans[3], plans[4]):
        steps = " | ".join(plan)
        assert "ix_feedback_run_key (workspace_id=? AND run_id=?" in steps, steps
