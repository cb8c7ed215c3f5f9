"""What a chart draws, decided once: a frozen description both renderers (SVG, PNG) follow.

Positions along the x axis are indexes into the chart's periods (every period from the first
charted one to the target, reported or not); positions along the y axis are values in the
chart's unit. Layout (plot area, legend, where tick labels go and whether they turn) is
decided here in canvas units, a nominal 560 x 300 box the SVG uses as pixels and the PNG
scales to its figure, so the two pictures agree on what is shown and where.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.periods import MONTH_PATTERN, QUARTER_PATTERN, Quarter
from services.api.charts import FanChart, TrendChart, band_words, figure

CANVAS_WIDTH, CANVAS_HEIGHT = 560.0, 300.0
LEFT, RIGHT, BOTTOM = 56.0, 84.0, 34.0
TITLE_BASELINE = 15.0
LEGEND_TOP, LEGEND_ROW = 24.0, 16.0
SWATCH_WIDTH, SWATCH_HEIGHT, SWATCH_GAP, ENTRY_GAP = 12.0, 10.0, 4.0, 14.0
UNIT_ROW = 22.0
CHAR_WIDTH = 6.5  # a generous average width of one 11-unit character
MAX_X_LABELS = 8
TICK_GAP = 8.0  # the least room between two neighbouring x labels
TURNED_DEGREES = 45.0
FAN_HALF_WIDTH = 0.12  # of one period, each side of the target


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str  # what hovering over it (SVG) names


@dataclass(frozen=True)
class Series:
    """A line broken into segments where a period is missing, with a dot on each point."""

    role: str
    segments: tuple[tuple[Point, ...], ...]
    dot_radius: float = 0.0  # canvas units; 0 draws no dots
    dashed: bool = False

    @property
    def points(self) -> tuple[Point, ...]:
        return tuple(p for segment in self.segments for p in segment)


@dataclass(frozen=True)
class Area:
    """A filled polygon: an interval fanning out to the target, or the guidance band."""

    role: str
    vertices: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Rule:
    """A straight line between two data positions (a band edge, the next period's interval)."""

    role: str
    start: tuple[float, float]
    end: tuple[float, float]


@dataclass(frozen=True)
class TimelineMarker:
    """A vertical mark across the plot at one period, e.g. a change point."""

    role: str
    x: float
    label: str


@dataclass(frozen=True)
class Label:
    """Text at a data position, moved by (dx, dy) canvas units (dy grows downwards)."""

    role: str
    x: float
    y: float
    text: str
    dx: float = 0.0
    dy: float = 0.0
    anchor: str = "start"  # start, middle or end


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class LegendEntry:
    """A swatch and its words; (x, y) is the swatch's top-left corner in canvas units."""

    role: str
    text: str
    x: float
    y: float


@dataclass(frozen=True)
class Box:
    """The plot area in canvas units, measured from the canvas's top-left corner."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(frozen=True)
class ChartModel:
    kind: str  # fan-chart or trend-chart
    element_id: str
    attributes: tuple[tuple[str, str], ...]  # data-* hooks for the page
    title: str
    description: str  # one sentence with the numbers, for screen readers
    unit: str
    plot: Box
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    x_ticks: tuple[Tick, ...]
    x_label_degrees: float  # 0 upright; otherwise turned that far to fit
    y_ticks: tuple[Tick, ...]
    areas: tuple[Area, ...]
    rules: tuple[Rule, ...]
    markers: tuple[TimelineMarker, ...]
    series: tuple[Series, ...]
    labels: tuple[Label, ...]
    legend: tuple[LegendEntry, ...]
    canvas: tuple[float, float] = (CANVAS_WIDTH, CANVAS_HEIGHT)

    def series_of(self, role: str) -> Series:
        return next(s for s in self.series if s.role == role)


# --------------------------------------------------------------------------- fan chart


def fan_model(chart: FanChart) -> ChartModel:
    periods = chart.axis
    target = float(len(periods) - 1)
    history = _series("history", chart.history, periods, dot_radius=2.5)
    start = _fan_start(chart, periods)
    values = [v for _, v in chart.history] + [chart.lo95, chart.hi95, *chart.band_bounds]
    y_range = padded_range(values)
    legend_items = [("history", "reported"), ("point-forecast", "forecast")]
    legend_items += [("interval-80", "80%"), ("interval-95", "95%")]
    legend_items += [("guidance-band", "guidance")] if chart.band else []
    band_areas, band_rules, band_labels = _guidance(chart, len(periods), y_range)
    forecast = Point(target, chart.point, f"{chart.period}: {figure(chart.point)}")
    return _assemble(
        kind="fan-chart",
        element_id=f"fan-{chart.slug}",
        attributes=(("metric", chart.metric), ("period", chart.period)),
        title=_fan_title(chart),
        description=_fan_description(chart),
        unit=chart.unit,
        periods=periods,
        y_range=y_range,
        legend_items=legend_items,
        areas=(
            *band_areas,
            _fan(start, target, chart.lo95, chart.hi95, "interval-95"),
            _fan(start, target, chart.lo80, chart.hi80, "interval-80"),
        ),
        rules=band_rules,
        series=(
            history,
            Series("point-forecast", _from_start(start, forecast), dashed=True),
            Series("forecast-point", ((forecast,),), dot_radius=4.0),
        ),
        labels=(*band_labels, _forecast_value(chart, target)),
    )


def _forecast_value(chart: FanChart, target: float) -> Label:
    """The forecast's figure under the 95% interval, clear of the fan."""
    text = figure(chart.point)
    return Label("value forecast-value", target, chart.lo95, text, dy=14.0, anchor="middle")


def _fan_title(chart: FanChart) -> str:
    title = f"{chart.company} {chart.metric} {chart.period}"
    return title + (f" — {chart.state.replace('_', ' ')}" if chart.state else "")


def _fan_description(chart: FanChart) -> str:
    text = f"{chart.company} {chart.metric} {chart.period}: forecast {figure(chart.point)}"
    return text + (f" vs guidance {band_words(*chart.band)}" if chart.band else "")


def _fan_start(chart: FanChart, periods: Sequence[str]) -> tuple[float, float] | None:
    """Where the intervals fan out from: the last reported value."""
    if not chart.history:
        return None
    period, value = chart.history[-1]
    return float(periods.index(period)), value


def _from_start(
    start: tuple[float, float] | None, forecast: Point
) -> tuple[tuple[Point, ...], ...]:
    """The dashed line from the last reported value to the forecast (none without history)."""
    return ((Point(start[0], start[1], "last reported"), forecast),) if start else ()


def _fan(
    start: tuple[float, float] | None, target: float, low: float, high: float, role: str
) -> Area:
    left, right = target - FAN_HALF_WIDTH, target + FAN_HALF_WIDTH
    edge = ((left, high), (right, high), (right, low), (left, low))
    return Area(role, ((start,) if start else ()) + edge)


def _guidance(
    chart: FanChart, count: int, y_range: tuple[float, float]
) -> tuple[tuple[Area, ...], tuple[Rule, ...], tuple[Label, ...]]:
    """The band as a box over the last periods up to the plot's right edge (an open side runs
    to the edge of the plot), a dashed rule at each stated bound and a label beside it."""
    if chart.band is None:
        return (), (), ()
    low, high = chart.band
    left, right = float(max(count - 2, 0)), count - 0.5
    bottom = low if low is not None else y_range[0]
    top = high if high is not None else y_range[1]
    box = Area("guidance-band", ((left, top), (right, top), (right, bottom), (left, bottom)))
    edges = [(high, f"high {figure(high)}", -6.0)] if high is not None else []
    edges += [(low, f"low {figure(low)}", 6.0)] if low is not None else []
    rules = tuple(Rule("guidance-edge", (-0.5, y), (right, y)) for y, _, _ in edges)
    labels = tuple(Label("guidance-label", right, y, text, dx=6.0, dy=dy) for y, text, dy in edges)
    return (box,), rules, labels


# --------------------------------------------------------------------------- trend chart


def trend_model(chart: TrendChart) -> ChartModel:
    periods = period_axis([p for p, _ in chart.series], chart.next_period)
    target = float(len(periods) - 1)
    values = [v for _, v in chart.series] + [chart.next_lo, chart.next_hi]
    markers = tuple(
        TimelineMarker("change-point", float(periods.index(p)), f"change point {p}")
        for p in chart.change_points
        if p in periods
    )
    legend_items = [("history", "reported"), ("next-forecast", "next period")]
    legend_items += [("change-point", "change point")] if markers else []
    next_value = f"{chart.next_forecast:.2f}%"
    next_point = Point(target, chart.next_forecast, f"{chart.next_period}: {next_value}")
    return _assemble(
        kind="trend-chart",
        element_id=f"trend-{chart.slug}",
        attributes=(("metric", chart.metric), ("verdict", chart.verdict)),
        title=f"{chart.company} {chart.metric} — {chart.verdict} ({chart.slope:+.2f} pp/period)",
        description=(
            f"{chart.company} {chart.metric}: {chart.verdict}, slope {chart.slope:+.2f} pp per "
            f"period; next {chart.next_forecast:.2f}%"
        ),
        unit="%",
        periods=periods,
        y_range=padded_range(values),
        legend_items=legend_items,
        rules=(Rule("next-interval", (target, chart.next_lo), (target, chart.next_hi)),),
        markers=markers,
        series=(
            _series("history", chart.series, periods, dot_radius=2.5),
            Series("next-forecast", ((next_point,),), dot_radius=4.0),
        ),
        labels=(Label("value", target, chart.next_forecast, next_value, dx=8.0),),
    )


def period_axis(reported: Sequence[str], last: str) -> tuple[str, ...]:
    """Every quarter (or month) from the first reported one to `last`, so a missing one
    leaves a gap; periods of other kinds are charted as reported."""
    first = reported[0] if reported else last
    for pattern, index, name in ((QUARTER_PATTERN, _quarter_index, _quarter_name),
                                 (MONTH_PATTERN, _month_index, _month_name)):  # fmt: skip
        if pattern.match(first) and pattern.match(last):
            return tuple(name(i) for i in range(index(first), index(last) + 1))
    return (*reported, last)


def _quarter_index(period: str) -> int:
    quarter = Quarter.parse(period)
    return quarter.year * 4 + quarter.quarter - 1


def _quarter_name(index: int) -> str:
    return str(Quarter(index // 4, index % 4 + 1))


def _month_index(period: str) -> int:
    year, month = period.split("-")
    return int(year) * 12 + int(month) - 1


def _month_name(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


# --------------------------------------------------------------------------- shared parts


def _series(
    role: str, values: Sequence[tuple[str, float]], periods: Sequence[str], *, dot_radius: float
) -> Series:
    """The values as points on the axis, a new segment wherever a period has no value."""
    segments: list[list[Point]] = []
    for period, value in values:
        x = float(periods.index(period))
        if not segments or segments[-1][-1].x != x - 1:
            segments.append([])
        segments[-1].append(Point(x, value, f"{period}: {figure(value)}"))
    return Series(role, tuple(tuple(s) for s in segments), dot_radius=dot_radius)


def _assemble(
    *,
    kind: str,
    element_id: str,
    attributes: tuple[tuple[str, str], ...],
    title: str,
    description: str,
    unit: str,
    periods: Sequence[str],
    y_range: tuple[float, float],
    legend_items: Sequence[tuple[str, str]],
    areas: tuple[Area, ...] = (),
    rules: tuple[Rule, ...] = (),
    markers: tuple[TimelineMarker, ...] = (),
    series: tuple[Series, ...] = (),
    labels: tuple[Label, ...] = (),
) -> ChartModel:
    legend = legend_entries(legend_items)
    rows = 1 + int((legend[-1].y - LEGEND_TOP) / LEGEND_ROW) if legend else 0
    top = LEGEND_TOP + rows * LEGEND_ROW + UNIT_ROW
    width = CANVAS_WIDTH - LEFT - RIGHT
    x_ticks, degrees = x_axis_ticks(periods, width)
    bottom = CANVAS_HEIGHT - BOTTOM - _turned_height(x_ticks, degrees)
    return ChartModel(
        kind=kind,
        element_id=element_id,
        attributes=attributes,
        title=title,
        description=description,
        unit=unit,
        plot=Box(LEFT, top, CANVAS_WIDTH - RIGHT, bottom),
        x_range=(-0.5, len(periods) - 0.5),
        y_range=y_range,
        x_ticks=x_ticks,
        x_label_degrees=degrees,
        y_ticks=tuple(Tick(v, figure(v)) for v in nice_ticks(*y_range)),
        areas=areas,
        rules=rules,
        markers=markers,
        series=series,
        labels=labels,
        legend=legend,
    )


def padded_range(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or abs(high) * 0.1 or 1.0
    return low - pad, high + pad


def x_axis_ticks(periods: Sequence[str], plot_width: float) -> tuple[tuple[Tick, ...], float]:
    """At most MAX_X_LABELS labels, counted back from the target so it is always named; turned
    when even those would run into each other."""
    every = max(1, math.ceil(len(periods) / MAX_X_LABELS))
    ticks = tuple(
        Tick(float(i), p) for i, p in enumerate(periods) if (len(periods) - 1 - i) % every == 0
    )
    room = plot_width / max(len(periods), 1) * every
    widest = max((len(t.label) for t in ticks), default=0) * CHAR_WIDTH
    return ticks, (0.0 if widest + TICK_GAP <= room else TURNED_DEGREES)


def _turned_height(ticks: Sequence[Tick], degrees: float) -> float:
    """The extra room turned labels need below the plot."""
    widest = max((len(t.label) for t in ticks), default=0) * CHAR_WIDTH
    return widest * math.sin(math.radians(degrees))


def legend_entries(items: Sequence[tuple[str, str]]) -> tuple[LegendEntry, ...]:
    """One row above the plot from its left edge, wrapping onto further rows when full: the
    legend never sits over the data."""
    entries: list[LegendEntry] = []
    x, y = LEFT, LEGEND_TOP
    for role, text in items:
        width = SWATCH_WIDTH + SWATCH_GAP + len(text) * CHAR_WIDTH
        if x > LEFT and x + width > CANVAS_WIDTH - 8:
            x, y = LEFT, y + LEGEND_ROW
        entries.append(LegendEntry(role, text, x, y))
        x += width + ENTRY_GAP
    return tuple(entries)


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering [low, high]."""
    raw = (high - low) / target
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]
