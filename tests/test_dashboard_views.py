"""The dashboard's pure view code: the JSON viewer, chat detection, trace layout, charts."""

from __future__ import annotations

import re

from goldloop.http.dashboard import charts, formatting, json_view, trace_layout

EVIL = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'


def test_json_viewer_escapes_keys_and_values() -> None:
    html = str(json_view.render_json({EVIL: [EVIL, {"k": EVIL}], "n": 1.5, "b": None}))
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    assert "onerror=&#34;" in html or "onerror=&quot;" in html
    # Only the viewer's own tags appear.
    tags = set(re.findall(r"<\s*([a-zA-Z0-9]+)", html))
    assert tags <= {"div", "details", "summary", "span"}


def test_json_viewer_caps_huge_documents() -> None:
    long = "x" * (json_view.MAX_STRING + 500)
    html = str(json_view.render_json({"s": long}))
    assert "500 more characters" in html
    many = list(range(10_000))
    html = str(json_view.render_json(many))
    assert "more not shown" in html
    deep: object = "bottom"
    for _ in range(500):
        deep = [deep]
    html = str(json_view.render_json(deep))  # no RecursionError, cut to compact text
    assert "j-cut" in html


def _run(rid: str, parent: str | None, depth: int, start: int, end: int) -> dict[str, object]:
    return {"id": rid, "parent_id": parent, "depth": depth, "start_time": start, "end_time": end}


def _balanced(rows: list[trace_layout.TreeRow], base: int = 0) -> bool:
    """Every opened subtree is closed and closes never outrun opens."""
    depth_open = 0
    for r in rows:
        depth_open += 1 if r.open else 0
        depth_open -= r.closes
        if depth_open < 0:
            return False
    return depth_open == 0


def test_trace_layout_nests_and_closes_subtrees() -> None:
    runs = [
        _run("root", None, 0, 0, 1000),
        _run("a", "root", 1, 0, 400),
        _run("a1", "a", 2, 100, 300),
        _run("b", "root", 1, 500, 1000),
    ]
    rows = trace_layout.layout({"runs": runs, "start_time": 0, "end_time": 1000})
    assert [(r.open, r.closes) for r in rows] == [(True, 0), (True, 0), (False, 1), (False, 1)]
    assert [r.descendants for r in rows] == [3, 1, 0, 0]
    assert _balanced(rows)
    a1 = rows[2]
    assert (a1.bar_x, a1.bar_w) == (100.0, 200.0)
    assert rows[0].bar_w == 1000.0


def test_big_traces_send_only_a_budget_of_rows() -> None:
    runs = [_run("root", None, 0, 0, 5000)]
    for g in range(100):  # 100 groups of 49 steps under the root
        runs.append(_run(f"g{g}", "root", 1, g * 50, g * 50 + 50))
        for s in range(49):
            runs.append(_run(f"g{g}-{s}", f"g{g}", 2, g * 50 + s, g * 50 + s + 1))
    trace = {"runs": runs, "start_time": 0, "end_time": 5000}
    rows = trace_layout.layout(trace)
    assert len(rows) == 101  # the root and its 100 collapsed groups
    assert _balanced(rows)
    assert all(not r.open and r.descendants == 49 for r in rows[1:])
    selected = trace_layout.layout(trace, "g7-3")
    assert len(selected) == 101 + 49  # the selected run's group is open
    assert _balanced(selected)
    below = trace_layout.subtree(trace, "g7")
    assert below is not None
    assert [r.run["id"] for r in below] == [f"g7-{s}" for s in range(49)]
    assert _balanced(below)
    assert trace_layout.subtree(trace, "nope") is None


def test_a_deep_chain_opens_the_path_to_the_selection() -> None:
    runs = [_run("root", None, 0, 0, 10)]
    for i in range(3000):  # a chain: every run is the parent of the next
        runs.append(_run(f"r{i}", str(runs[-1]["id"]), i + 1, i, i + 1))
    rows = trace_layout.layout({"runs": runs, "start_time": 0, "end_time": 3001}, "r2000")
    opened = {r.run["id"] for r in rows if r.open}
    assert "r1999" in opened
    assert "r2000" in opened  # the selection itself is open too
    assert "r2500" not in {r.run["id"] for r in rows}  # deeper rows are not sent
    assert _balanced(rows)


def test_charts_scale_and_label() -> None:
    assert charts.nice_max(0) == 1.0
    assert charts.nice_max(7) == 10.0
    assert charts.nice_max(120) == 200.0
    starts = [i * 3_600_000_000 for i in range(4)]
    chart = charts.bar_chart("Runs", starts, [("ok", "s-ok", [1, 2, 0, 5])], str)
    assert not chart.empty
    assert len(chart.bars) == 3
    assert max(b.h for b in chart.bars) == charts.HEIGHT - charts.TOP - charts.BOTTOM
    line = charts.line_chart("p50", starts, [("p50", "s-a", [1.0, None, 2.0, 2.0])], str)
    assert len(line.lines) == 2  # a gap splits the line
    empty = charts.line_chart("x", starts, [("x", "s-a", [None] * 4)], str)
    assert empty.empty


def test_axis_labels_fit_beside_the_plot_and_keep_their_unit() -> None:
    assert charts.axis_label("950") == "950"
    assert charts.axis_label("1,000,000") == "1M"
    assert charts.axis_label("1,250,000") == "1.25M"
    assert charts.axis_label("$12,345.67") == "$12.3k"
    assert charts.axis_label("3,000,000,000") == "3B"
    assert charts.axis_label("12.50 s") == "12.50 s"  # fits: unchanged
    assert charts.axis_label("1h 02m 03s") == "1h 02m 03s"  # no leading number to shorten
    starts = [i * 3_600_000_000 for i in range(3)]
    tokens = charts.bar_chart(
        "Tokens", starts, [("input", "s-a", [2_400_000.0, 900_000.0, 0.0])], formatting.number
    )
    labels = [label for _, label in tokens.yticks]
    assert labels == ["0", "1.25M", "2.5M"]
    assert all(len(label) <= charts.AXIS_CHARS for label in labels)
    assert tokens.bars[0].tip.endswith("2,400,000")  # the tooltip stays exact
