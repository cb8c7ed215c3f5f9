"""The charts as PNG files, drawn with matplotlib's Agg canvas (no display, no pyplot).

Fan and trend charts are a thin renderer of `services.api.chart_model`, the description the
status page's SVG draws too; the backtest's reliability diagram and PIT histogram are drawn
here directly."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

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
    fan_model,
    trend_model,
)
from services.api.charts import FanChart, TrendChart

HISTORY = "#2b3a4a"
FORECAST = "#1f5fa8"
INTERVAL_80 = "#86b2de"
INTERVAL_95 = "#c9dcf0"
BAND = "#e0a100"
CHANGE_POINT = "#c62828"
MUTED = "#5b6b7c"
SIZE_IN = (8.0, 4.2)
DPI = 120
TEXT_PT = 9.5  # the SVG's 11-unit text at this figure's scale, a little under
# how each role of the chart model is painted (the page's styles say the same for the SVG)
FILLS = {
    "interval-95": (INTERVAL_95, 1.0),
    "interval-80": (INTERVAL_80, 1.0),
    "guidance-band": (BAND, 0.3),
    "history": (HISTORY, 1.0),
    "point-forecast": (FORECAST, 1.0),
    "forecast-point": (FORECAST, 1.0),
    "next-forecast": (FORECAST, 1.0),
    "next-interval": (FORECAST, 1.0),
    "guidance-edge": (BAND, 1.0),
    "change-point": (CHANGE_POINT, 1.0),
}
TEXT_COLOURS = {"guidance-label": "#9a6d00", "value": FORECAST, "value forecast-value": FORECAST}
ALIGN = {"start": "left", "middle": "center", "end": "right"}


def write_fan_chart(chart: FanChart, directory: Path) -> Path:
    figure_ = render_figure(fan_model(chart))
    return _save(figure_, directory / f"{chart.company}_{chart.slug}_fan.png")


def write_trend_chart(chart: TrendChart, directory: Path) -> Path:
    figure_ = render_figure(trend_model(chart))
    return _save(figure_, directory / f"{chart.company}_{chart.slug}_trend.png")


def render_figure(model: ChartModel) -> Figure:
    """The model drawn on a matplotlib figure: every artist carries its role as its gid."""
    fig = Figure(figsize=SIZE_IN, dpi=DPI)
    FigureCanvasAgg(fig)
    scale = SIZE_IN[0] * 72 / model.canvas[0]  # points per canvas unit
    axes = fig.add_axes(_fractions(model))
    for area in model.areas:
        _area(axes, area)
    for marker in model.markers:
        colour, _ = FILLS[marker.role]
        axes.axvline(marker.x, color=colour, linestyle="--", linewidth=1, gid=marker.role)
    for rule in model.rules:
        _rule(axes, rule)
    for series in model.series:
        _series(axes, series, scale)
    for label in model.labels:
        _label(axes, label, scale)
    _axes(axes, model)
    _legend(fig, model)
    _text(fig, model, 8, TITLE_BASELINE, model.title, size=TEXT_PT + 1.5, weight="bold")
    _text(fig, model, 8, model.plot.top - 10, model.unit, colour=MUTED)
    return fig


def _fractions(model: ChartModel) -> tuple[float, float, float, float]:
    width, height = model.canvas
    plot = model.plot
    return (plot.left / width, 1 - plot.bottom / height, plot.width / width, plot.height / height)


def _area(axes: Axes, area: Area) -> None:
    colour, alpha = FILLS[area.role]
    xs, ys = zip(*area.vertices, strict=True)
    axes.fill(xs, ys, color=colour, alpha=alpha, linewidth=0, gid=area.role)


def _rule(axes: Axes, rule: Rule) -> None:
    colour, _ = FILLS[rule.role]
    style, width = (":", 1.0) if rule.role == "guidance-edge" else ("-", 3.0)
    xs, ys = zip(rule.start, rule.end, strict=True)
    axes.plot(xs, ys, linestyle=style, linewidth=width, color=colour, gid=rule.role)


def _series(axes: Axes, series: Series, scale: float) -> None:
    colour, _ = FILLS[series.role]
    for segment in series.segments:
        axes.plot(
            [p.x for p in segment],
            [p.y for p in segment],
            linestyle="--" if series.dashed else "-",
            linewidth=2 if len(segment) > 1 else 0,
            marker="o" if series.dot_radius else "",
            markersize=2 * series.dot_radius * scale,
            color=colour,
            gid=series.role,
        )


def _label(axes: Axes, label: Label, scale: float) -> None:
    axes.annotate(
        label.text,
        (label.x, label.y),
        xytext=(label.dx * scale, -label.dy * scale),
        textcoords="offset points",
        ha=ALIGN[label.anchor],
        va="center",
        fontsize=TEXT_PT,
        color=TEXT_COLOURS.get(label.role, MUTED),
        fontweight="bold" if label.role.startswith("value") else "normal",
        annotation_clip=False,
        gid=label.role,
    )


def _axes(axes: Axes, model: ChartModel) -> None:
    axes.set_xlim(*model.x_range)
    axes.set_ylim(*model.y_range)
    turned = bool(model.x_label_degrees)
    axes.set_xticks(
        [t.position for t in model.x_ticks],
        [t.label for t in model.x_ticks],
        rotation=model.x_label_degrees,
        ha="right" if turned else "center",
        rotation_mode="anchor" if turned else "default",
        fontsize=TEXT_PT,
        color=MUTED,
    )
    axes.set_yticks(
        [t.position for t in model.y_ticks],
        [t.label for t in model.y_ticks],
        fontsize=TEXT_PT,
        color=MUTED,
    )
    axes.grid(axis="y", color="#e6ebf0")
    axes.set_axisbelow(True)


def _legend(fig: Figure, model: ChartModel) -> None:
    """The model's legend, swatch by swatch where it put them (above the plot)."""
    width, height = model.canvas
    for entry in model.legend:
        colour, alpha = FILLS[entry.role]
        swatch = Rectangle(
            (entry.x / width, 1 - (entry.y + SWATCH_HEIGHT) / height),
            SWATCH_WIDTH / width,
            SWATCH_HEIGHT / height,
            transform=fig.transFigure,
            facecolor=colour,
            alpha=max(alpha, 0.5),
            linewidth=0,
            gid=f"legend {entry.role}",
        )
        fig.patches.append(swatch)
        x = entry.x + SWATCH_WIDTH + SWATCH_GAP
        _text(fig, model, x, entry.y + SWATCH_HEIGHT / 2, entry.text, va="center", gid="legend")


def _text(
    fig: Figure,
    model: ChartModel,
    x: float,
    y: float,
    text: str,
    *,
    size: float = TEXT_PT,
    colour: str = HISTORY,
    weight: str = "normal",
    va: str = "baseline",
    gid: str | None = None,
) -> None:
    width, height = model.canvas
    fig.text(
        x / width, 1 - y / height, text, fontsize=size, color=colour, fontweight=weight,
        va=va, gid=gid,
    )  # fmt: skip


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=SIZE_IN, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, format="png")
    return path


def _legend_above(axes: Axes) -> None:
    """A legend over the plot's top-right corner, outside it, so it never hides a point."""
    axes.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)


def write_reliability_diagram(
    calls: list[tuple[tuple[float, float, float], str]], directory: Path, *, name: str
) -> Path:
    """Band calls' stated probability against how often that side happened, every side of
    every call pooled into five bins; the diagonal is perfect calibration. Marker size is the
    number of calls in a bin."""
    fig, axes = _figure()
    sides = ("below", "inside", "above")
    stated = [p for probs, _ in calls for p in probs]
    happened = [float(outcome == side) for _, outcome in calls for side in sides]
    edges = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0000001]
    for low, high in pairwise(edges):
        inside = [(p, h) for p, h in zip(stated, happened, strict=True) if low <= p < high]
        if inside:
            mean_p = sum(p for p, _ in inside) / len(inside)
            rate = sum(h for _, h in inside) / len(inside)
            axes.scatter([mean_p], [rate], s=30 + 12 * len(inside), color=FORECAST, alpha=0.8)
            axes.annotate(str(len(inside)), (mean_p, rate), fontsize=8, ha="center", va="center")
    axes.plot([0, 1], [0, 1], color=HISTORY, linestyle="--", linewidth=1, label="calibrated")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("stated probability of a side")
    axes.set_ylabel("share of those calls where it happened")
    axes.set_title(f"Band calls: reliability ({len(calls)} calls)", loc="left")
    _legend_above(axes)
    fig.tight_layout()
    return _save(fig, directory / f"{name}_reliability.png")


def write_pit_histogram(pits: list[float], directory: Path, *, name: str) -> Path:
    """Histogram of the PIT values F(actual) of out-of-sample forecasts: flat when the
    predictive distributions are calibrated, U-shaped when too narrow, humped when too wide."""
    fig, axes = _figure()
    bins = 10
    axes.hist(pits, bins=bins, range=(0.0, 1.0), color=INTERVAL_80, edgecolor=FORECAST)
    if pits:
        axes.axhline(len(pits) / bins, color=HISTORY, linestyle="--", linewidth=1,
                     label="uniform")  # fmt: skip
    axes.set_xlim(0, 1)
    axes.set_xlabel("PIT = F(actual)")
    axes.set_ylabel("forecasts")
    axes.set_title(f"Probability integral transform ({len(pits)} forecasts)", loc="left")
    if pits:
        _legend_above(axes)
    fig.tight_layout()
    return _save(fig, directory / f"{name}_pit.png")
