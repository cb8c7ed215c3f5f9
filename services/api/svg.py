"""Charts as inline SVG, drawn without any library so the page needs nothing from the network.

Every chart carries stable hooks: `svg.fan-chart[data-metric][data-period]` and
`svg.trend-chart[data-metric]`, with classes on the parts (`history`, `interval-80`,
`interval-95`, `point-forecast`, `guidance-band`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from services.api.charts import FanChart, TrendChart, band_words, figure

WIDTH, HEIGHT = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 84, 44, 40
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Frame:
    """Maps a category index and a value to SVG coordinates inside the plot area."""

    count: int
    low: float
    high: float

    @classmethod
    def fit(cls, count: int, values: Sequence[float]) -> Frame:
        low, high = min(values), max(values)
        pad = (high - low) * 0.08 or abs(high) * 0.1 or 1.0
        return cls(count, low - pad, high + pad)

    @property
    def step(self) -> float:
        return (WIDTH - LEFT - RIGHT) / max(self.count, 1)

    def x(self, index: float) -> float:
        return LEFT + (index + 0.5) * self.step

    def y(self, value: float) -> float:
        return TOP + (self.high - value) / (self.high - self.low) * (HEIGHT - TOP - BOTTOM)


def fan_chart_svg(chart: FanChart) -> str:
    periods = list(chart.axis)
    values = [v for _, v in chart.history] + [chart.lo95, chart.hi95, *chart.band_bounds]
    frame = Frame.fit(len(periods), values)
    target = frame.x(len(periods) - 1)
    last = chart.history[-1] if chart.history else None
    start = (frame.x(periods.index(last[0])), last[1]) if last else None
    title = f"{chart.company} {chart.metric} {chart.period}: forecast {figure(chart.point)}"
    if chart.band:
        title += f" vs guidance {band_words(*chart.band)}"
    parts = [
        _open("fan-chart", f"fan-{chart.slug}", title, metric=chart.metric, period=chart.period),
        _axes(frame, periods, chart.unit),
        _band(frame, chart.band) if chart.band else "",
        _fan(frame, start, target, chart.lo95, chart.hi95, "interval-95"),
        _fan(frame, start, target, chart.lo80, chart.hi80, "interval-80"),
        _series(frame, chart.history, periods),
        _point_forecast(frame, start, target, chart.point, chart.lo95),
        _legend(
            [("history", "reported"), ("point-forecast", "forecast")]
            + [("interval-80", "80%"), ("interval-95", "95%")]
            + ([("guidance-band", "guidance")] if chart.band else [])
        ),
        "</svg>",
    ]
    return "".join(parts)


def trend_chart_svg(chart: TrendChart) -> str:
    periods = [p for p, _ in chart.series] + [chart.next_period]
    values = [v for _, v in chart.series] + [chart.next_lo, chart.next_hi]
    frame = Frame.fit(len(periods), values)
    target = frame.x(len(periods) - 1)
    title = (
        f"{chart.company} {chart.metric}: {chart.verdict}, slope {chart.slope:+.2f} pp per "
        f"period; next {chart.next_forecast:.2f}%"
    )
    parts = [
        _open(
            "trend-chart", f"trend-{chart.slug}", title, metric=chart.metric, verdict=chart.verdict
        ),
        _axes(frame, periods, "%"),
        *(_change_point(frame, periods.index(p), p) for p in chart.change_points if p in periods),
        _series(frame, chart.series, periods),
        f'<line class="next-interval" x1="{target:.1f}" x2="{target:.1f}" '
        f'y1="{frame.y(chart.next_lo):.1f}" y2="{frame.y(chart.next_hi):.1f}"/>',
        f'<circle class="next-forecast" cx="{target:.1f}" cy="{frame.y(chart.next_forecast):.1f}"'
        ' r="4"/>',
        _label(target + 8, frame.y(chart.next_forecast), f"{chart.next_forecast:.2f}%", "value"),
        _legend([("history", "reported"), ("next-forecast", "next period")]),
        "</svg>",
    ]
    return "".join(parts)


def _open(kind: str, element_id: str, title: str, **data: str) -> str:
    attributes = " ".join(f'data-{k}="{escape(v)}"' for k, v in data.items())
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{kind}" id="{escape(element_id)}" '
        f'{attributes} viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )


def _axes(frame: Frame, periods: Sequence[str], unit: str) -> str:
    parts = ['<g class="axes">']
    for tick in nice_ticks(frame.low, frame.high):
        y = frame.y(tick)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(_label(LEFT - 6, y, figure(tick), "tick y"))
    every = math.ceil(len(periods) / MAX_X_LABELS)
    for index, period in enumerate(periods):
        if (len(periods) - 1 - index) % every == 0:
            parts.append(_label(frame.x(index), HEIGHT - BOTTOM + 18, period, "tick x"))
    parts.append(_label(8, TOP - 12, unit, "unit"))
    parts.append("</g>")
    return "".join(parts)


def _band(frame: Frame, band: tuple[float | None, float | None]) -> str:
    """The band as a shaded box from its low to its high bound (an open side runs to the edge
    of the plot), with a dashed edge and a label at each stated bound."""
    low, high = band
    x, right = frame.x(max(frame.count - 2, 0)), WIDTH - RIGHT
    top = frame.y(high) if high is not None else float(TOP)
    bottom = frame.y(low) if low is not None else float(HEIGHT - BOTTOM)
    edges = [(top, f"high {figure(high)}", -6)] if high is not None else []
    edges += [(bottom, f"low {figure(low)}", 6)] if low is not None else []
    return (
        f'<g class="guidance"><rect class="guidance-band" x="{x:.1f}" y="{top:.1f}" '
        f'width="{right - x:.1f}" height="{bottom - top:.1f}"/>'
        + "".join(
            f'<line class="guidance-edge" x1="{LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            + _label(right + 6, y + shift, text, "guidance-label")
            for y, text, shift in edges
        )
        + "</g>"
    )


def _fan(
    frame: Frame,
    start: tuple[float, float] | None,
    target: float,
    low: float,
    high: float,
    kind: str,
) -> str:
    half = frame.step * 0.12
    edge = [(target - half, frame.y(high)), (target + half, frame.y(high))]
    edge += [(target + half, frame.y(low)), (target - half, frame.y(low))]
    points = ([(start[0], frame.y(start[1]))] if start else []) + edge
    return f'<polygon class="{kind}" points="{_points(points)}"/>'


def _series(frame: Frame, series: Sequence[tuple[str, float]], periods: Sequence[str]) -> str:
    coordinates = [(frame.x(periods.index(p)), frame.y(v)) for p, v in series]
    dots = "".join(
        f'<circle class="actual" cx="{x:.1f}" cy="{y:.1f}" r="2.5"><title>{escape(p)}: '
        f"{figure(v)}</title></circle>"
        for (x, y), (p, v) in zip(coordinates, series, strict=True)
    )
    return f'<g class="history"><polyline points="{_points(coordinates)}"/>{dots}</g>'


def _point_forecast(
    frame: Frame, start: tuple[float, float] | None, target: float, point: float, below: float
) -> str:
    y = frame.y(point)
    line = (
        f'<line class="point-forecast" x1="{start[0]:.1f}" y1="{frame.y(start[1]):.1f}" '
        f'x2="{target:.1f}" y2="{y:.1f}"/>'
        if start
        else ""
    )
    return (
        line
        + f'<circle class="forecast-point" cx="{target:.1f}" cy="{y:.1f}" r="4"/>'
        + _label(target, frame.y(below) + 14, figure(point), "value forecast-value")
    )


def _change_point(frame: Frame, index: int, period: str) -> str:
    x = frame.x(index)
    return (
        f'<line class="change-point" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" '
        f'y2="{HEIGHT - BOTTOM}"><title>change point {escape(period)}</title></line>'
    )


def _legend(items: Sequence[tuple[str, str]]) -> str:
    parts = ['<g class="legend">']
    x = LEFT
    for kind, text in items:
        parts.append(f'<rect class="swatch {kind}" x="{x}" y="8" width="12" height="10"/>')
        parts.append(f'<text x="{x + 16}" y="17">{escape(text)}</text>')
        x += 24 + 7 * len(text)
    parts.append("</g>")
    return "".join(parts)


def _label(x: float, y: float, text: str, kind: str) -> str:
    return f'<text class="{kind}" x="{x:.1f}" y="{y:.1f}">{escape(text)}</text>'


def _points(coordinates: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering [low, high]."""
    raw = (high - low) / target
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]
