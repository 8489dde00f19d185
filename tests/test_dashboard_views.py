"""The dashboard's pure view code: the JSON viewer, chat detection, trace layout, charts."""

from __future__ import annotations

import re

from goldloop.http.dashboard import charts, json_view, trace_layout

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


def test_chat_detection() -> None:
    chat = json_view.as_chat(
        {
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": EVIL},
            ],
            "temperature": 0,
        }
    )
    assert chat is not None
    assert [m.role for m in chat.messages] == ["system", "user"]
    assert chat.messages[1].texts == [EVIL]
    assert chat.rest == {"temperature": 0}

    openai = json_view.as_chat(
        {
            "choices": [
                {"message": {"role": "assistant", "content": "hi", "tool_calls": [{"id": 1}]}}
            ]
        }
    )
    assert openai is not None
    assert openai.messages[0].tool_calls == [{"id": 1}]

    blocks = json_view.as_chat(
        [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image", "x": 1}]}]
    )
    assert blocks is not None
    assert blocks.messages[0].texts == ["a"]
    assert blocks.messages[0].parts == [{"type": "image", "x": 1}]

    langchain = json_view.as_chat(
        [{"type": "human", "content": "q"}, {"type": "ai", "content": "a"}]
    )
    assert langchain is not None
    assert [m.role for m in langchain.messages] == ["user", "assistant"]

    for not_chat in ({"question": "q"}, ["a", "b"], [{"role": "user"}], "text", None, 3, []):
        assert json_view.as_chat(not_chat) is None


def _run(rid: str, parent: str | None, depth: int, start: int, end: int) -> dict[str, object]:
    return {"id": rid, "parent_id": parent, "depth": depth, "start_time": start, "end_time": end}


def test_trace_layout_nests_and_closes_subtrees() -> None:
    runs = [
        _run("root", None, 0, 0, 1000),
        _run("a", "root", 1, 0, 400),
        _run("a1", "a", 2, 100, 300),
        _run("b", "root", 1, 500, 1000),
    ]
    rows = trace_layout.layout({"runs": runs, "start_time": 0, "end_time": 1000})
    assert [(r.has_children, r.closes) for r in rows] == [
        (True, 0),
        (True, 0),
        (False, 1),
        (False, 1),
    ]
    assert [r.descendants for r in rows] == [3, 1, 0, 0]
    # Opened and closed subtrees balance.
    assert sum(r.has_children for r in rows) == sum(r.closes for r in rows)
    a1 = rows[2]
    assert (a1.bar_x, a1.bar_w) == (100.0, 200.0)
    assert rows[0].bar_w == 1000.0


def test_big_traces_start_collapsed_except_the_path_to_the_selection() -> None:
    runs = [_run("root", None, 0, 0, 10)]
    for i in range(3000):  # a chain: every run is the parent of the next
        runs.append(_run(f"r{i}", runs[-1]["id"], i + 1, i, i + 1))  # type: ignore[arg-type]
    rows = trace_layout.layout({"runs": runs, "start_time": 0, "end_time": 3001}, "r2000")
    opened = {r.run["id"] for r in rows if r.has_children and r.open}
    assert "root" in opened
    assert "r0" in opened
    assert "r1999" in opened
    assert "r2000" not in opened
    assert "r2500" not in opened
    assert sum(r.has_children for r in rows) == sum(r.closes for r in rows)


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
