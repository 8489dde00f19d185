"""Experiment pages in-process over httpx, on SQLite and PostgreSQL: the lists, one experiment
with its results, tagging, the comparison (statistics, regressions first), escaping, isolation."""

from __future__ import annotations

import re
from html import escape
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from dashboard_helpers import csrf_of, other_workspace_browser
from goldloop.http.dashboard import experiment_detail, experiment_pages
from test_dashboard_runs import EVIL, assert_escaped

API = "/api/v1"
T0 = 1_764_150_816_000_000
Call = tuple[str, int, dict[str, float], Any]  # example, repetition, scores, outputs


async def register(client: httpx.AsyncClient, name: str, **kw: Any) -> str:
    r = await client.post(f"{API}/experiments", json={"name": name, **kw})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def store_calls(
    client: httpx.AsyncClient, experiment: str, calls: list[Call], *, prefix: str
) -> None:
    """One root run per call (the runner's metadata on it) and its scores as feedback."""
    items = []
    for i, (example, rep, _scores, outputs) in enumerate(calls):
        items.append(
            {
                "id": f"{prefix}-r{i}",
                "trace_id": f"{prefix}-t{i}",
                "name": "agent",
                "kind": "chain",
                "start_time": T0 + i,
                "end_time": T0 + i + 1500,
                "inputs": {"question": f"question of {example}"},
                "outputs": outputs,
                "metadata": {"experiment": experiment, "example_id": example, "repetition": rep},
                "reference_example_id": example,
            }
        )
    r = await client.post(f"{API}/runs/batch", json={"runs": items, "project": experiment})
    assert r.status_code == 202, r.text
    for i, (_ex, _rep, scores, _out) in enumerate(calls):
        for key, score in scores.items():
            body = {"run_id": f"{prefix}-r{i}", "key": key, "score": score}
            assert (await client.post(f"{API}/feedback", json=body)).status_code == 201


def calls(correct: dict[str, float], evil_on: str | None = None) -> list[Call]:
    """Two repetitions per example; ``quality`` wobbles a little between repetitions."""
    out: list[Call] = []
    for example, score in correct.items():
        for rep in (0, 1):
            outputs = {"answer": EVIL if example == evil_on else f"answer to {example}"}
            scores = {"correct": score, "quality": score * 0.8 + 0.05 * rep}
            out.append((example, rep, scores, outputs))
    return out


async def two_experiments(client: httpx.AsyncClient) -> tuple[str, str, str]:
    """Dataset ``golden`` and experiments A (baseline) and B (candidate), both with two
    repetitions: B regresses ex1, improves ex2, leaves ex0 and ex3 alone."""
    made = await client.post(f"{API}/datasets", json={"name": "golden"})
    assert made.status_code == 201
    dataset_id = str(made.json()["id"])
    examples = [{"id": f"ex{i}", "inputs": {"q": i}, "outputs": {"a": i}} for i in range(4)]
    r = await client.post(f"{API}/datasets/golden/examples", json={"examples": examples})
    assert r.status_code == 201, r.text
    a = await register(
        client, "agent-v1 " + EVIL, dataset="golden", repetitions=2,
        evaluators=["exact_match"], metadata={EVIL: EVIL, "git_sha": "abc123"},
    )  # fmt: skip
    await store_calls(
        client, "agent-v1 " + EVIL, calls({"ex0": 1, "ex1": 1, "ex2": 0, "ex3": 1}), prefix="a"
    )
    b = await register(client, "agent-v2", dataset="golden", repetitions=2)
    await store_calls(
        client, "agent-v2", calls({"ex0": 1, "ex1": 0, "ex2": 1, "ex3": 1}, "ex1"), prefix="b"
    )
    return dataset_id, a, b


async def test_lists_detail_tagging_and_paging(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = await browser.get("/experiments")
    assert empty.status_code == 200
    assert "goldloop.evaluate(" in empty.text
    assert "goldloop gate" in empty.text

    dataset_id, a, b = await two_experiments(client)
    listing = await browser.get("/experiments")
    assert listing.status_code == 200
    assert_escaped(listing.text)
    assert listing.text.index("agent-v2") < listing.text.index("agent-v1 ")  # newest first
    assert 'href="/datasets/' in listing.text
    assert "n=8" in listing.text  # 8 scores per key per experiment
    assert "75.0%" in listing.text  # A's pass rate on `correct`
    oldest = await browser.get("/experiments", params={"order": "asc"})
    assert oldest.text.index("agent-v1 ") < oldest.text.index("agent-v2")

    per_dataset = await browser.get(f"/datasets/{dataset_id}/experiments")
    assert per_dataset.status_code == 200
    assert 'class="active">Experiments</a>' in per_dataset.text  # the dataset's tab
    assert "vs main" not in per_dataset.text  # no baseline yet
    empty_ds = await client.post(f"{API}/datasets", json={"name": "fresh"})
    fresh = await browser.get(f"/datasets/{empty_ds.json()['id']}/experiments")
    assert 'data="fresh"' in fresh.text  # the empty state names the dataset to run on

    detail = await browser.get(f"/experiments/{a}")
    assert detail.status_code == 200
    assert_escaped(detail.text)
    assert "abc123" in detail.text
    assert "exact_match" in detail.text
    assert detail.text.count("/traces/a-t") == 8
    assert "answer to ex2" in detail.text

    token = csrf_of(detail.text)
    refused = await browser.post(f"/experiments/{a}/tags", data={"tag": "main"})
    assert refused.status_code == 403
    tagged = await browser.post(f"/experiments/{a}/tags", data={"csrf": token, "tag": "main"})
    assert tagged.status_code == 303
    bad = await browser.post(f"/experiments/{a}/tags", data={"csrf": token, "tag": "no way"})
    assert bad.status_code == 400
    assert "a tag is 1-64 letters" in bad.text

    # The tag can be taken off again from the page (a POST with the CSRF token).
    page = await browser.get(f"/experiments/{a}")
    assert f'action="/experiments/{a}/tags/main/remove"' in page.text
    assert (await browser.post(f"/experiments/{a}/tags/main/remove")).status_code == 403
    removed = await browser.post(f"/experiments/{a}/tags/main/remove", data={"csrf": token})
    assert removed.status_code == 303
    assert "/tags/main/remove" not in (await browser.get(f"/experiments/{a}")).text
    again = await browser.post(f"/experiments/{a}/tags/main/remove", data={"csrf": token})
    assert again.status_code == 404
    tagged = await browser.post(f"/experiments/{a}/tags", data={"csrf": token, "tag": "main"})
    assert tagged.status_code == 303

    per_dataset = await browser.get(f"/datasets/{dataset_id}/experiments")
    vs_main = re.search(r'href="(/experiments/compare\?[^"]+)">vs main<', per_dataset.text)
    assert vs_main
    assert f"baseline={a}" in vs_main.group(1)
    assert f"candidate={b}" in vs_main.group(1)
    b_page = await browser.get(f"/experiments/{b}")
    assert "Compare with the <code>main</code> baseline" in b_page.text
    assert_escaped(b_page.text)  # B's output for ex1 is hostile

    monkeypatch.setattr(experiment_pages, "PAGE_SIZE", 1)
    one = await browser.get("/experiments", params={"order": "asc"})
    assert "agent-v1 " in one.text
    assert "agent-v2" not in one.text
    after = re.search(r'href="([^"]+)">Next page', one.text)
    assert after
    two = await browser.get(after.group(1).replace("&amp;", "&"))
    assert "agent-v2" in two.text
    assert "agent-v1 " not in two.text
    assert "First page" in two.text

    monkeypatch.setattr(experiment_detail, "RESULTS_PAGE", 5)
    first = await browser.get(f"/experiments/{a}")
    assert first.text.count("/traces/a-t") == 5
    more = re.search(r'href="([^"]+)">Next page', first.text)
    assert more
    rest = await browser.get(more.group(1).replace("&amp;", "&"))
    assert rest.text.count("/traces/a-t") == 3
    assert (await browser.get("/experiments/nope")).status_code == 404
    assert (await browser.get("/datasets/nope/experiments")).status_code == 404


async def test_comparison_puts_regressions_first_with_the_statistics(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    _, a, b = await two_experiments(client)
    page = await browser.get("/experiments/compare", params={"baseline": a, "candidate": b})
    assert page.status_code == 200, page.text
    assert_escaped(page.text)
    html = page.text
    order = re.findall(r'data-example="([^"]+)" data-outcome="([^"]+)"', html)
    assert order[0] == ("ex1", "regressed")
    assert order[1] == ("ex2", "improved")
    assert sorted(order[2:]) == [("ex0", "unchanged"), ("ex3", "unchanged")]
    assert re.findall(r'data-key="([^"]+)"', html) == ["correct", "quality"]
    start = html.index('data-key="correct"')
    correct_row = html[start : html.index("</tr>", start)]
    assert "hall-t" in correct_row  # two repetitions: per-example means, not McNemar
    assert re.search(r'class="num errored"[^>]*>0 / 0<', correct_row)
    assert re.search(r'class="num mde">[0-9.]+<', correct_row)
    assert "dataset version" in html
    assert re.search(r'class="num ci">\[[-+]', correct_row)  # the 95% interval
    assert re.search(r'class="num pval">[0-9.]+<', correct_row)
    assert "No significant regression" in html  # one up, one down: nothing to see
    assert "noise ±" in html  # repetitions: each example's run-to-run noise
    assert "within noise" in html or "beyond noise" in html
    assert "Swap A and B" in html

    only = await browser.get(
        "/experiments/compare", params={"baseline": a, "candidate": b, "show": "regressed"}
    )
    assert re.findall(r'data-example="([^"]+)"', only.text) == ["ex1"]
    swapped = await browser.get("/experiments/compare", params={"baseline": b, "candidate": a})
    assert re.findall(r'data-example="([^"]+)" data-outcome="regressed"', swapped.text) == ["ex2"]

    flipped = await browser.get(
        "/experiments/compare", params={"baseline": a, "candidate": b, "lower": "correct, quality"}
    )
    assert "lower is better" in flipped.text
    assert 'value="correct, quality"' in flipped.text  # the form keeps the choice
    assert re.findall(r'data-example="([^"]+)" data-outcome="regressed"', flipped.text) == ["ex2"]
    assert "lower=correct%2Cquality" in flipped.text  # ... and so do the links

    assert (await browser.get("/experiments/compare")).status_code == 400
    same = await browser.get("/experiments/compare", params={"baseline": a, "candidate": a})
    assert same.status_code == 400
    missing = await browser.get("/experiments/compare", params={"baseline": a, "candidate": "x"})
    assert missing.status_code == 404
    bad_alpha = await browser.get(
        "/experiments/compare", params={"baseline": a, "candidate": b, "alpha": "2"}
    )
    assert bad_alpha.status_code == 400


async def test_a_clear_regression_is_the_verdict(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    assert (await client.post(f"{API}/datasets", json={"name": "big"})).status_code == 201
    a = await register(client, "base", dataset="big")
    b = await register(client, "worse", dataset="big")
    good = [(f"e{i}", 0, {"correct": 1.0}, {"answer": "ok"}) for i in range(14)]
    bad = [(f"e{i}", 0, {"correct": 0.0}, {"answer": "no"}) for i in range(12)] + good[12:]
    await store_calls(client, "base", good, prefix="g")
    await store_calls(client, "worse", bad, prefix="w")
    page = await browser.get("/experiments/compare", params={"baseline": a, "candidate": b})
    assert page.status_code == 200
    assert "Significant regression" in page.text
    assert "mcnemar" in page.text  # one binary score per side
    assert '<span class="badge error">regression</span>' in page.text


async def test_another_workspace_gets_404(client: httpx.AsyncClient, app: FastAPI) -> None:
    dataset_id, a, b = await two_experiments(client)
    async with other_workspace_browser(app) as other:
        for path in (
            f"/experiments/{a}",
            f"/datasets/{dataset_id}/experiments",
            f"/experiments/compare?baseline={a}&candidate={b}",
        ):
            assert (await other.get(path)).status_code == 404, path
        listing = await other.get("/experiments")
        assert "agent-v2" not in listing.text
        token = csrf_of(listing.text)
        r = await other.post(f"/experiments/{a}/tags", data={"csrf": token, "tag": "main"})
        assert r.status_code == 404
        r = await other.post(f"/experiments/{a}/tags/main/remove", data={"csrf": token})
        assert r.status_code == 404


def cells_of(html: str, example: str) -> list[str]:
    """The HTML of every results row (one per repetition) of this example."""
    row = rf'<tr class="result-row[^"]*" data-example="{example}">(.*?)</tr>'
    return re.findall(row, html, re.S)


async def test_results_show_references_labels_and_marked_failures(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, a, _b = await two_experiments(client)
    page = await browser.get(f"/experiments/{a}")
    assert page.status_code == 200
    html = page.text
    assert "<th>Reference output</th>" in html
    # Each row: a readable label (its id in the title and behind "id"), the dataset example's
    # reference output beside the run's output, and its scores marked pass or fail in words.
    (ex2_first, ex2_second) = cells_of(html, "ex2")
    assert 'title="example ex2">question of ex2</span>' in ex2_first
    assert '<code class="mono small">ex2</code>' in ex2_first
    reference = re.search(r'<td class="io-cell reference">(.*?)</td>', ex2_first, re.S)
    assert reference
    assert "answer to ex2" not in reference.group(1)  # the reference, not the output
    assert re.search(r">\s*2\s*<", reference.group(1))  # the example's outputs {"a": 2}
    assert '<div class="score-mark fail">0 <span class="mark-text">fail</span>' in ex2_first
    assert '<span class="mark-text">fail</span>' in ex2_second
    (ex0_first, _) = cells_of(html, "ex0")
    assert '<div class="score-mark pass">1 <span class="mark-text">pass</span>' in ex0_first
    assert 'class="score-mark fail"' not in ex0_first

    # 2 of 8 runs fail (ex2, both repetitions); counts per key; the filter is a plain link.
    assert re.search(r'class="failing-count">2</strong> of 8 runs failing', html)
    assert re.search(r'data-key="correct">failing on correct <span class="muted">2<', html)
    failing = await browser.get(f"/experiments/{a}", params={"failing": "1"})
    assert failing.status_code == 200
    assert re.findall(r'class="result-row[^"]*" data-example="([^"]+)"', failing.text) == [
        "ex2",
        "ex2",
    ]
    assert 'class="active" aria-current="page">Failures only' in failing.text
    assert 'id="failing" name="failing" value="1" checked' in failing.text
    # A stricter pass mark fails quality 0.8/0.85 too; per key, only that key's failures.
    strict = await browser.get(
        f"/experiments/{a}", params={"failing": "1", "key": "quality", "pass": "0.9"}
    )
    assert strict.status_code == 200
    assert len(re.findall(r'class="result-row', strict.text)) == 8
    assert re.search(r'class="failing-count">8</strong> of 8', strict.text)
    on_correct = await browser.get(
        f"/experiments/{a}", params={"failing": "1", "key": "correct", "pass": "0.9"}
    )
    assert len(re.findall(r'class="result-row', on_correct.text)) == 2
    nothing = await browser.get(f"/experiments/{a}", params={"failing": "1", "key": "nokey"})
    assert nothing.status_code == 200
    assert "No failing runs on nokey" in nothing.text

    # The failures page pages, keeping the filter in its links.
    monkeypatch.setattr(experiment_detail, "RESULTS_PAGE", 1)
    first = await browser.get(f"/experiments/{a}", params={"failing": "1"})
    more = re.search(r'href="([^"]+)">Next page', first.text)
    assert more
    assert "failing=1" in more.group(1)
    second = await browser.get(more.group(1).replace("&amp;", "&"))
    assert len(re.findall(r'class="result-row', second.text)) == 1
    assert "Next page" not in second.text

    # Any URL parameter: a page or a 400, never a 5xx.
    for params in (
        {"pass": "2"}, {"pass": "nan"}, {"pass": "x"}, {"pass": "-1"},
        {"failing": "1", "after": "x"}, {"after": "x"}, {"failing": "maybe", "key": EVIL},
        {"failing": "1", "pass": "inf"}, {"failing": "1", "after": "99999999999999999999"},
    ):  # fmt: skip
        r = await browser.get(f"/experiments/{a}", params=params)
        assert r.status_code in (200, 400), (params, r.status_code)
        assert_escaped(r.text)
    assert (await browser.get(f"/experiments/{a}", params={"pass": "2"})).status_code == 400


async def test_hostile_labels_references_and_evaluator_errors(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    assert (await client.post(f"{API}/datasets", json={"name": "hostile"})).status_code == 201
    question = EVIL + ' "quoted" and a long tail of words that goes on'
    examples = [{"id": "evil", "inputs": {"question": question}, "outputs": {"answer": EVIL}}]
    r = await client.post(f"{API}/datasets/hostile/examples", json={"examples": examples})
    assert r.status_code == 201, r.text
    e = await register(client, "hostile-run", dataset="hostile")
    run = {
        "id": "h-r0", "trace_id": "h-t0", "name": "agent", "kind": "chain",
        "start_time": T0, "end_time": T0 + 10, "inputs": {"question": question},
        "outputs": {"answer": "fine"}, "reference_example_id": "evil",
        "metadata": {"experiment": "hostile-run", "example_id": "evil", "repetition": 0},
    }  # fmt: skip
    r = await client.post(f"{API}/runs/batch", json={"runs": [run], "project": "hostile-run"})
    assert r.status_code == 202, r.text
    errored = {
        "run_id": "h-r0", "key": "judge", "comment": EVIL,
        "source_info": {"evaluator": "judge", "error": "ValueError: " + EVIL},
    }  # fmt: skip
    assert (await client.post(f"{API}/feedback", json=errored)).status_code == 201
    page = await browser.get(f"/experiments/{e}")
    assert page.status_code == 200
    assert_escaped(page.text)
    (row,) = cells_of(page.text, "evil")
    label = re.search(r'<span class="ex-label" title="example evil">([^<]*)</span>', row)
    assert label
    assert label.group(1).startswith("&lt;script&gt;window.__xss=1&lt;/script&gt;&lt;img")
    assert label.group(1).endswith("…")  # the first words, cut
    reference = re.search(r'class="io-cell reference">(.*?)</td>', row, re.S)
    assert reference
    assert "&lt;script&gt;" in reference.group(1)
    assert 'class="score-mark fail"' in row  # an evaluator's error fails its key
    assert ">eval error</span>" in row
    assert re.search(r'class="failing-count">1</strong> of 1 runs', page.text)


async def test_comparison_shows_references_labels_and_an_escaped_word_diff(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    _, a, b = await two_experiments(client)
    page = await browser.get("/experiments/compare", params={"baseline": a, "candidate": b})
    assert page.status_code == 200
    assert_escaped(page.text)
    start = page.text.index('data-example="ex1"')
    row = page.text[start : page.text.index("</tr>", start)]
    assert 'title="example ex1">question of ex1</span>' in row
    reference = re.search(r'class="io-cell reference">(.*?)</td>', row, re.S)
    assert reference
    assert re.search(r">\s*1\s*<", reference.group(1))  # ex1's reference outputs {"a": 1}
    # B answered ex1 with hostile markup: the diff against A's answer shows it as text.
    diff = re.search(r'<pre class="word-diff out-diff">(.*?)</pre>', row, re.S)
    assert diff
    # Leaving out the added words spells A's answer, leaving out the removed ones B's, escaped.
    old = re.sub(r"<ins>.*?</ins>|</?del>", "", diff.group(1), flags=re.S)
    new = re.sub(r"<del>.*?</del>|</?ins>", "", diff.group(1), flags=re.S)
    assert old == "answer to ex1"
    assert new == escape(EVIL, quote=True).replace("&quot;", "&#34;")
    assert "<ins>" in diff.group(1)
    assert "<del>" in diff.group(1)
    unchanged = page.text[page.text.index('data-example="ex0"') :]
    assert "Same output as A." in unchanged[: unchanged.index("</tr>")]


async def test_compare_up_to_five_experiments(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    _, a, b = await two_experiments(client)
    more = []
    for name, correct in (
        ("agent-v3", {"ex0": 0, "ex1": 1, "ex2": 0, "ex3": 1}),
        ("agent-v4", {"ex0": 1, "ex1": 1, "ex2": 1, "ex3": 1}),
        ("agent-v5", {"ex0": 1, "ex1": 1, "ex2": 0, "ex3": 0}),
    ):
        more.append(await register(client, name, dataset="golden", repetitions=2))
        await store_calls(client, name, calls(correct), prefix=name)
    c, d, e = more
    page = await browser.get(
        "/experiments/compare", params={"baseline": a, "candidate": [b, c, d, e]}
    )
    assert page.status_code == 200, page.text
    html = page.text
    assert_escaped(html)
    assert re.findall(r'<table class="grid stats" data-candidate="([^"]+)"', html) == [b, c, d, e]
    for letter in "BCDE":
        assert f'<span class="ab {letter.lower()}">{letter}</span>' in html
    assert 'class="grid sidebyside cols-5"' in html
    # Every example once, a column per experiment; regressed against any candidate first.
    order = re.findall(r'data-example="([^"]+)" data-outcome="([^"]+)"', html)
    assert sorted(ex for ex, _ in order) == ["ex0", "ex1", "ex2", "ex3"]
    assert dict(order) == {
        "ex0": "regressed", "ex1": "regressed", "ex2": "improved", "ex3": "regressed",
    }  # fmt: skip
    assert order[-1] == ("ex2", "improved")
    start = html.index('data-example="ex2"')
    row = html[start : html.index("</tr>", start)]
    assert re.findall(r'data-side="([A-E])"', row) == ["B", "C", "D", "E"]
    assert row.count('<pre class="word-diff out-diff">') + row.count("Same output as A.") == 4
    # The options form and the page links keep all four candidates.
    form = html[html.index('class="inline-form compare-options"') :]
    assert len(re.findall(r'name="candidate" value="', form[: form.index("</form>")])) == 4
    tab = re.search(r'href="([^"]+)">Regressed', html)
    assert tab
    assert tab.group(1).count("candidate=") == 4
    rebased = re.search(r'href="([^"]+)">Make C the baseline', html)
    assert rebased
    swapped = await browser.get(rebased.group(1).replace("&amp;", "&"))
    assert swapped.status_code == 200
    stats = re.findall(r'<table class="grid stats" data-candidate="([^"]+)"', swapped.text)
    assert stats == [b, a, d, e]

    # The experiments list offers several candidates (checkboxes) for one baseline.
    listing = await browser.get("/experiments")
    assert len(re.findall(r'type="checkbox" name="candidate"', listing.text)) == 5

    # More than five, the same one twice, the baseline as a candidate, nothing: 400s.
    six = await browser.get(
        "/experiments/compare", params={"baseline": a, "candidate": [b, c, d, e, "x"]}
    )
    assert six.status_code == 400
    assert "compare at most 5 experiments at once" in six.text
    flood = await browser.get(
        "/experiments/compare", params={"baseline": a, "candidate": [EVIL] * 500}
    )
    assert flood.status_code == 400
    assert_escaped(flood.text)
    twice = await browser.get("/experiments/compare", params={"baseline": a, "candidate": [b, b]})
    assert twice.status_code == 400
    assert "the same candidate is given twice" in twice.text
    itself = await browser.get("/experiments/compare", params={"baseline": a, "candidate": [b, a]})
    assert itself.status_code == 400
    blank = await browser.get("/experiments/compare", params={"baseline": a, "candidate": ""})
    assert blank.status_code == 400
    for params in ({"page": "x"}, {"page": "-5"}, {"show": EVIL}, {"alpha": "nan"}):
        r = await browser.get(
            "/experiments/compare", params={"baseline": a, "candidate": [b, c], **params}
        )
        assert r.status_code in (200, 400), (params, r.status_code)
        assert_escaped(r.text)
