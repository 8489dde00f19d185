"""Small time-series charts as SVG geometry, computed on the server.

The template draws the SVG from these numbers; every label is text that Jinja escapes, so a
chart can never carry markup. No chart library and no canvas: the pages stay script-free and
the charts print, scale and work air-gapped.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

WIDTH = 560
HEIGHT = 170
LEFT = 56
AXIS_CHARS = 7  # characters of a y-axis label that fit left of the plot at the chart's font
RIGHT = 10
TOP = 10
BOTTOM = 24


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    css: str
    tip: str


@dataclass(frozen=True, slots=True)
class Line:
    points: str
    css: str


@dataclass
class Chart:
    title: str
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    dots: list[Bar] = field(default_factory=list)  # hover targets for line points
    yticks: list[tuple[float, str]] = field(default_factory=list)
    xticks: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    markers: list[Bar] = field(default_factory=list)  # thin vertical bars at moments in time
    total: str = ""
    empty: bool = True


def nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times 10^k at or above ``value``."""
    if value <= 0:
        return 1.0
    if not math.isfinite(value) or value > 1e300:  # sums of absurd stored values: no rounding
        return sys.float_info.max
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * exp >= value:
            return float(step * exp)
    return float(10 * exp)


def _time_label(us: int, span_us: int) -> str:
    moment = datetime.fromtimestamp(us / 1_000_000, tz=UTC)
    return moment.strftime("%H:%M" if span_us <= 2 * 86_400_000_000 else "%m-%d")


_NUMBER_IN_LABEL = re.compile(r"^(\D*?)(-?\d[\d,]*(?:\.\d+)?)(.*)$")
_SI = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))


def axis_label(text: str) -> str:
    """A tick label that fits the axis: a number wider than ``AXIS_CHARS`` keeps its unit and
    loses digits (``1,000,000`` -> ``1M``, ``$12,345.67`` -> ``$12.3k``); tooltips stay exact."""
    match = _NUMBER_IN_LABEL.match(text)
    if len(text) <= AXIS_CHARS or match is None:
        return text
    prefix, digits, suffix = match.groups()
    value = float(digits.replace(",", ""))
    for scale, letter in _SI:
        if abs(value) >= scale:
            return f"{prefix}{value / scale:.3g}{letter}{suffix}"
    return f"{prefix}{value:.3g}{suffix}"


def _frame(chart: Chart, starts: Sequence[int], top: float, fmt: Callable[[float], str]) -> None:
    plot_h = HEIGHT - TOP - BOTTOM
    chart.yticks = [(TOP + plot_h * (1 - f), axis_label(fmt(top * f))) for f in (0, 0.5, 1)]
    if starts:
        span = starts[-1] - starts[0]
        slot = (WIDTH - LEFT - RIGHT) / len(starts)
        picks = sorted({0, len(starts) // 2, len(starts) - 1})
        chart.xticks = [(LEFT + slot * (i + 0.5), _time_label(starts[i], span)) for i in picks]


def bar_chart(
    title: str,
    starts: Sequence[int],
    series: Sequence[tuple[str, str, Sequence[float]]],
    fmt: Callable[[float], str],
) -> Chart:
    """Stacked bars per bucket; ``series`` = (label, css class, values)."""
    chart = Chart(title=title, legend=[(css, label) for label, css, _ in series])
    totals = [sum(s[2][i] for s in series) for i in range(len(starts))]
    top = nice_max(max(totals, default=0))
    _frame(chart, starts, top, fmt)
    chart.empty = not any(totals)
    chart.total = fmt(sum(totals))
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(starts), 1)
    gap = min(2.0, slot * 0.2)
    for i, start in enumerate(starts):
        base = float(TOP + plot_h)
        for label, css, values in series:
            v = values[i]
            if not v:
                continue
            h = plot_h * v / top
            base -= h
            tip = f"{_time_label(start, 0)} {label}: {fmt(v)}"
            chart.bars.append(Bar(LEFT + slot * i + gap / 2, base, slot - gap, h, css, tip))
    return chart


def line_chart(
    title: str,
    starts: Sequence[int],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    fmt: Callable[[float], str],
) -> Chart:
    """Lines over buckets (gaps where a value is None); ``series`` = (label, css, values)."""
    chart = Chart(title=title, legend=[(css, label) for label, css, _ in series])
    present = [v for _, _, vals in series for v in vals if v is not None]
    top = nice_max(max(present, default=0))
    _frame(chart, starts, top, fmt)
    chart.empty = not present
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(starts), 1)
    for label, css, values in series:
        segment: list[str] = []
        for i, v in enumerate(values):
            if v is None:
                if segment:
                    chart.lines.append(Line(" ".join(segment), css))
                segment = []
                continue
            x = LEFT + slot * (i + 0.5)
            y = TOP + plot_h * (1 - v / top)
            segment.append(f"{x:.1f},{y:.1f}")
            tip = f"{_time_label(starts[i], 0)} {label}: {fmt(v)}"
            chart.dots.append(Bar(x - 2.5, y - 2.5, 5, 5, css, tip))
        if segment:
            chart.lines.append(Line(" ".join(segment), css))
    return chart


def add_marker(
    chart: Chart, starts: Sequence[int], at_us: int, css: str, tip: str, span_us: int
) -> None:
    """A vertical marker at ``at_us`` on a chart whose buckets start at ``starts``."""
    if not starts:
        return
    slot = (WIDTH - LEFT - RIGHT) / len(starts)
    bucket = (starts[1] - starts[0]) if len(starts) > 1 else max(span_us, 1)
    position = (at_us - starts[0]) / bucket  # in buckets from the first one
    x = LEFT + slot * min(max(position, 0.0), float(len(starts)))
    chart.markers.append(Bar(x - 1, TOP, 2, HEIGHT - TOP - BOTTOM, css, tip))
