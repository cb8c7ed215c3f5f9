"""Charts as inline SVG, drawn without any library so the page needs nothing from the network.

A thin renderer of `services.api.chart_model`: it maps the model's data positions into its
plot area and draws each part with a class the page's styles colour. Every chart carries
stable hooks: `svg.fan-chart[data-metric][data-period]` and `svg.trend-chart[data-metric]`,
with classes on the parts (`history`, `interval-80`, `interval-95`, `point-forecast`,
`guidance-band`); each unbroken run of a series is one `polyline.segment`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

from services.api.chart_model import (
    SWATCH_GAP,
    SWATCH_HEIGHT,
    SWATCH_WIDTH,
    TITLE_BASELINE,
    Area,
    ChartModel,
    Label,
    Rule,
    Series,
    TimelineMarker,
    fan_model,
    trend_model,
)
from services.api.charts import FanChart, TrendChart

ANCHORS = {"start": "start", "middle": "middle", "end": "end"}


@dataclass(frozen=True)
class Frame:
    """Maps the model's data positions to SVG coordinates inside its plot area."""

    model: ChartModel

    def x(self, position: float) -> float:
        low, high = self.model.x_range
        return self.model.plot.left + (position - low) / (high - low) * self.model.plot.width

    def y(self, value: float) -> float:
        low, high = self.model.y_range
        return self.model.plot.top + (high - value) / (high - low) * self.model.plot.height

    def at(self, x: float, y: float) -> tuple[float, float]:
        return self.x(x), self.y(y)


def fan_chart_svg(chart: FanChart) -> str:
    return render_svg(fan_model(chart))


def trend_chart_svg(chart: TrendChart) -> str:
    return render_svg(trend_model(chart))


def render_svg(model: ChartModel) -> str:
    frame = Frame(model)
    return "".join(
        [
            _open(model),
            _axes(model, frame),
            *(_area(frame, area) for area in model.areas),
            *(_marker(model, frame, marker) for marker in model.markers),
            *(_rule(frame, rule) for rule in model.rules),
            *(_series(frame, series) for series in model.series),
            *(_label(frame, label) for label in model.labels),
            _legend(model),
            "</svg>",
        ]
    )


def _open(model: ChartModel) -> str:
    width, height = model.canvas
    attributes = " ".join(f'data-{k}="{escape(v)}"' for k, v in model.attributes)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{model.kind}" '
        f'id="{escape(model.element_id)}" {attributes} viewBox="0 0 {width:g} {height:g}" '
        f'width="{width:g}" height="{height:g}" role="img" '
        f'aria-label="{escape(model.description)}"><title>{escape(model.description)}</title>'
        + _text(8, TITLE_BASELINE, model.title, "chart-title")
    )


def _axes(model: ChartModel, frame: Frame) -> str:
    plot = model.plot
    parts = ['<g class="axes">']
    for tick in model.y_ticks:
        y = frame.y(tick.position)
        parts.append(
            f'<line class="grid" x1="{plot.left:.1f}" x2="{plot.right:.1f}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(_text(plot.left - 6, y, tick.label, "tick y"))
    for tick in model.x_ticks:
        parts.append(_x_tick(frame.x(tick.position), plot.bottom + 16, tick.label, model))
    parts.append(_text(8, plot.top - 10, model.unit, "unit"))
    parts.append("</g>")
    return "".join(parts)


def _x_tick(x: float, y: float, text: str, model: ChartModel) -> str:
    if not model.x_label_degrees:
        return _text(x, y, text, "tick x")
    turn = f"rotate({-model.x_label_degrees:g} {x:.1f} {y - 10:.1f})"
    return (
        f'<text class="tick x turned" x="{x:.1f}" y="{y - 10:.1f}" transform="{turn}" '
        f'text-anchor="end" dominant-baseline="hanging">{escape(text)}</text>'
    )


def _area(frame: Frame, area: Area) -> str:
    return f'<polygon class="{area.role}" points="{_points(frame.at(*v) for v in area.vertices)}"/>'


def _marker(model: ChartModel, frame: Frame, marker: TimelineMarker) -> str:
    x = frame.x(marker.x)
    return (
        f'<line class="{marker.role}" x1="{x:.1f}" x2="{x:.1f}" y1="{model.plot.top:.1f}" '
        f'y2="{model.plot.bottom:.1f}"><title>{escape(marker.label)}</title></line>'
    )


def _rule(frame: Frame, rule: Rule) -> str:
    (x1, y1), (x2, y2) = frame.at(*rule.start), frame.at(*rule.end)
    return f'<line class="{rule.role}" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"/>'


def _series(frame: Frame, series: Series) -> str:
    lines = "".join(
        f'<polyline class="segment" points="{_points(frame.at(p.x, p.y) for p in segment)}"/>'
        for segment in series.segments
    )
    dots = "".join(
        f'<circle class="dot" cx="{frame.x(p.x):.1f}" cy="{frame.y(p.y):.1f}" '
        f'r="{series.dot_radius:g}"><title>{escape(p.label)}</title></circle>'
        for p in series.points
        if series.dot_radius
    )
    return f'<g class="{series.role}">{lines}{dots}</g>'


def _label(frame: Frame, label: Label) -> str:
    x, y = frame.x(label.x) + label.dx, frame.y(label.y) + label.dy
    anchor = ANCHORS[label.anchor]
    return (
        f'<text class="{label.role}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">'
        f"{escape(label.text)}</text>"
    )


def _legend(model: ChartModel) -> str:
    parts = ['<g class="legend">']
    for entry in model.legend:
        parts.append(
            f'<rect class="swatch {entry.role}" x="{entry.x:g}" y="{entry.y:g}" '
            f'width="{SWATCH_WIDTH:g}" height="{SWATCH_HEIGHT:g}"/>'
        )
        x, y = entry.x + SWATCH_WIDTH + SWATCH_GAP, entry.y + SWATCH_HEIGHT - 1
        parts.append(f'<text x="{x:g}" y="{y:g}">{escape(entry.text)}</text>')
    parts.append("</g>")
    return "".join(parts)


def _text(x: float, y: float, text: str, kind: str) -> str:
    return f'<text class="{kind}" x="{x:.1f}" y="{y:.1f}">{escape(text)}</text>'


def _points(coordinates: Iterable[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)
