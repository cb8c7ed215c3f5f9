"""The same charts as PNG files, drawn with matplotlib's Agg canvas (no display, no pyplot)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from services.api.charts import FanChart, TrendChart, figure

HISTORY = "#2b3a4a"
FORECAST = "#1f5fa8"
INTERVAL_80 = "#86b2de"
INTERVAL_95 = "#c9dcf0"
BAND = "#e0a100"
SIZE_IN = (8.0, 4.2)
DPI = 120


def write_fan_chart(chart: FanChart, directory: Path) -> Path:
    fig, axes = _figure()
    periods = list(chart.axis)
    target = len(periods) - 1
    last = chart.history[-1] if chart.history else (chart.period, chart.point)
    start = (periods.index(last[0]), last[1])
    if chart.band:
        _band(axes, chart, [start[0], target + 0.5])
    for low, high, colour, label in (
        (chart.lo95, chart.hi95, INTERVAL_95, "95%"),
        (chart.lo80, chart.hi80, INTERVAL_80, "80%"),
    ):
        axes.fill_between(
            [start[0], target],
            [start[1], low],
            [start[1], high],
            color=colour,
            label=label,
            linewidth=0,
        )
    if chart.history:
        axes.plot(
            [periods.index(p) for p, _ in chart.history],
            [v for _, v in chart.history],
            "o-",
            color=HISTORY,
            markersize=3,
            label="reported",
        )
    axes.plot([start[0], target], [start[1], chart.point], "--", color=FORECAST)
    axes.plot([target], [chart.point], "o", color=FORECAST, label="forecast")
    axes.annotate(
        figure(chart.point),
        (target, chart.point),
        xytext=(8, 0),
        textcoords="offset points",
        va="center",
        color=FORECAST,
        fontweight="bold",
    )
    title = f"{chart.company} {chart.metric} {chart.period}"
    if chart.state:
        title += f" — {chart.state.replace('_', ' ')}"
    _finish(fig, axes, periods, title, chart.unit)
    return _save(fig, directory / f"{chart.company}_{chart.slug}_fan.png")


def _band(axes: Axes, chart: FanChart, span: list[float]) -> None:
    """The band shaded from its low to its high bound (an open side to the plotted extreme)."""
    low, high = chart.band or (None, None)
    plotted = [v for _, v in chart.history] + [chart.lo95, chart.hi95, *chart.band_bounds]
    bottom = low if low is not None else min(plotted)
    top = high if high is not None else max(plotted)
    axes.fill_between(span, bottom, top, color=BAND, alpha=0.3, label="guidance")
    for bound in chart.band_bounds:
        axes.axhline(bound, color=BAND, linestyle=":", linewidth=1)


def write_trend_chart(chart: TrendChart, directory: Path) -> Path:
    fig, axes = _figure()
    periods = [p for p, _ in chart.series] + [chart.next_period]
    target = len(periods) - 1
    axes.plot(
        range(len(chart.series)),
        [v for _, v in chart.series],
        "o-",
        color=HISTORY,
        markersize=3,
        label="reported",
    )
    axes.errorbar(
        [target],
        [chart.next_forecast],
        yerr=[[chart.next_forecast - chart.next_lo], [chart.next_hi - chart.next_forecast]],
        fmt="o",
        color=FORECAST,
        capsize=4,
        label="next period",
    )
    for period in chart.change_points:
        if period in periods:
            axes.axvline(periods.index(period), color="#c62828", linestyle="--", linewidth=1)
    title = f"{chart.company} {chart.metric} — {chart.verdict} ({chart.slope:+.2f} pp/period)"
    _finish(fig, axes, periods, title, "%")
    return _save(fig, directory / f"{chart.company}_{chart.slug}_trend.png")


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=SIZE_IN, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _finish(fig: Figure, axes: Axes, periods: list[str], title: str, unit: str) -> None:
    every = max(1, len(periods) // 8)
    ticks = list(range(len(periods) - 1, -1, -every))[::-1]
    axes.set_xticks(ticks, [periods[i] for i in ticks])
    axes.set_title(title, loc="left")
    axes.set_ylabel(unit)
    axes.grid(axis="y", color="#e6ebf0")
    axes.legend(loc="upper left", fontsize=8, frameon=False)
    fig.tight_layout()


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, format="png")
    return path


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
    axes.legend(loc="upper left", fontsize=8, frameon=False)
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
    axes.legend(loc="upper right", fontsize=8, frameon=False)
    fig.tight_layout()
    return _save(fig, directory / f"{name}_pit.png")
