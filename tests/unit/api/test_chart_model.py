"""One chart model, two renderers: the status page's SVG and `guidepost plot`'s PNG draw the
same ticks, segments, points and legend; gaps stay gaps; labels and legend stay readable."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import pairwise
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox
from PIL import Image

from services.api.chart_model import (
    MAX_X_LABELS,
    SWATCH_HEIGHT,
    ChartModel,
    fan_model,
    legend_entries,
    trend_model,
)
from services.api.charts import FanChart, TrendChart
from services.api.png import render_figure, write_fan_chart, write_trend_chart
from services.api.svg import render_svg

pytestmark = pytest.mark.unit
SVG = "{http://www.w3.org/2000/svg}"


def quarters(first_year: int, count: int) -> list[str]:
    return [f"{first_year + i // 4}Q{i % 4 + 1}" for i in range(count)]


def fan(history: list[tuple[str, float]], period: str = "2024Q2", **kwargs: object) -> FanChart:
    return FanChart(
        company="ACME", metric="net_income", period=period, currency="CNY", scale="millions",
        history=tuple(history), point=1190.0, lo80=1150.0, hi80=1230.0, lo95=1120.0,
        hi95=1260.0, **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def twelve_quarters_missing(*missing: str) -> list[tuple[str, float]]:
    periods = quarters(2021, 13)  # 2021Q1 .. 2024Q1, the quarters before 2024Q2
    return [(p, 900.0 + 20 * i) for i, p in enumerate(periods) if p not in missing]


def daily_trend() -> TrendChart:
    days = [f"2024-05-{d:02d}" for d in range(1, 15)]
    return TrendChart(
        company="ACME", metric="dpd90_rate_pct", series=tuple((d, 2.0 + i / 10)
        for i, d in enumerate(days)), next_period="2024-05-15", next_forecast=3.5, next_lo=3.3,
        next_hi=3.7, verdict="deteriorating", slope=0.1, change_points=("2024-05-07",),
    )  # fmt: skip


def monthly_trend_missing(*missing: str) -> TrendChart:
    months = [f"{2022 + i // 12}-{i % 12 + 1:02d}" for i in range(24)]
    return TrendChart(
        company="ACME", metric="dpd90_rate_pct",
        series=tuple((m, 2.0 + i / 20) for i, m in enumerate(months) if m not in missing),
        next_period="2024-01", next_forecast=3.3, next_lo=3.1, next_hi=3.5,
        verdict="deteriorating", slope=0.05,
    )  # fmt: skip


MODELS = {
    "fan with a band and a gap": fan_model(
        fan(twelve_quarters_missing("2022Q4"), band=(1170.0, 1230.0), state="likely_inside")
    ),
    "fan without history": fan_model(fan([], band=(1100.0, None))),
    "monthly trend with two gaps": trend_model(monthly_trend_missing("2022-11", "2023-04")),
    "daily trend with a change point": trend_model(daily_trend()),
}


# --------------------------------------------------------------------------- what each draws


def svg_drawing(model: ChartModel) -> ET.Element:
    return ET.fromstring(render_svg(model))


def svg_texts(root: ET.Element, css_class: str) -> list[str]:
    return [
        el.text or "" for el in root.iter(f"{SVG}text") if css_class in el.get("class", "").split()
    ]


def svg_series(root: ET.Element, role: str) -> tuple[list[int], int]:
    """Points per polyline segment, and dots, of the series group with that role."""
    (group,) = [g for g in root.iter(f"{SVG}g") if g.get("class") == role]
    segments = [len(p.get("points", "").split()) for p in group.iter(f"{SVG}polyline")]
    return segments, len(list(group.iter(f"{SVG}circle")))


def png_series(fig: Figure, role: str) -> tuple[list[int], int]:
    lines = [line for line in fig.axes[0].get_lines() if line.get_gid() == role]
    segments = [len(line.get_xdata()) for line in lines]
    dots = sum(len(line.get_xdata()) for line in lines if line.get_marker() not in ("", "None"))
    return segments, dots


def png_legend(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.texts if t.get_gid() == "legend"]


@pytest.mark.parametrize("name", MODELS)
def test_both_renderers_draw_the_same_ticks_legend_segments_and_points(name: str) -> None:
    model = MODELS[name]
    svg, png = svg_drawing(model), render_figure(model)
    axes = png.axes[0]

    x_labels = [t.label for t in model.x_ticks]
    assert svg_texts(svg, "x") == x_labels
    assert [t.get_text() for t in axes.get_xticklabels()] == x_labels
    y_labels = [t.label for t in model.y_ticks]
    assert svg_texts(svg, "y") == y_labels
    assert [t.get_text() for t in axes.get_yticklabels()] == y_labels
    legend = [e.text for e in model.legend]
    assert [t.text for t in svg.iter(f"{SVG}text") if t.get("class") is None] == legend
    assert png_legend(png) == legend
    for series in model.series:
        expected = [len(s) for s in series.segments], len(series.points) * bool(series.dot_radius)
        assert svg_series(svg, series.role) == expected, series.role
        assert png_series(png, series.role) == expected, series.role
    for role in {a.role for a in model.areas}:
        drawn = [p for p in svg.iter(f"{SVG}polygon") if p.get("class") == role]
        filled = [p for p in axes.patches if p.get_gid() == role]
        assert len(drawn) == len(filled) == sum(a.role == role for a in model.areas), role


# --------------------------------------------------------------------------- gaps


def test_a_missing_quarter_breaks_the_history_into_two_segments() -> None:
    model = fan_model(fan(twelve_quarters_missing("2022Q4")))

    history = model.series_of("history")

    assert [len(s) for s in history.segments] == [7, 5]
    assert (history.segments[0][-1].label, history.segments[1][0].label) == (
        "2022Q3: 1,020",
        "2023Q1: 1,060",
    )
    assert [t.label for t in model.x_ticks][-1] == "2024Q2"


def test_the_svg_draws_no_line_across_the_missing_quarter() -> None:
    model = fan_model(fan(twelve_quarters_missing("2022Q4")))
    svg = svg_drawing(model)
    (group,) = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "history"]

    ends = []
    for polyline in group.iter(f"{SVG}polyline"):
        xs = [float(pair.split(",")[0]) for pair in polyline.get("points", "").split()]
        ends.append((min(xs), max(xs)))

    step = model.plot.width / (model.x_range[1] - model.x_range[0])
    (_, first_end), (second_start, _) = ends
    assert second_start - first_end == pytest.approx(2 * step, abs=0.2)  # one quarter skipped


def test_isolated_quarters_are_single_point_segments_with_their_dot() -> None:
    history = fan_model(fan(twelve_quarters_missing(*quarters(2021, 13)[1::2]))).series_of(
        "history"
    )

    assert [len(s) for s in history.segments] == [1] * 7
    assert len(history.points) == 7


def test_a_monthly_trend_keeps_its_missing_months_as_gaps() -> None:
    model = trend_model(monthly_trend_missing("2022-11", "2022-12"))

    assert [len(s) for s in model.series_of("history").segments] == [10, 12]
    assert len(model.x_ticks) <= MAX_X_LABELS
    assert model.x_ticks[-1].label == "2024-01"


# --------------------------------------------------------------------------- readable


def text_boxes(fig: Figure, texts: list[object]) -> list[Bbox]:
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    return [t.get_window_extent(renderer) for t in texts if t.get_text()]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", MODELS)
def test_png_x_labels_do_not_run_together_and_the_legend_is_off_the_data(name: str) -> None:
    model = MODELS[name]
    fig = render_figure(model)
    axes = fig.axes[0]
    fig.canvas.draw()  # type: ignore[no-untyped-call]

    labels = text_boxes(fig, list(axes.get_xticklabels()))
    for left, right in pairwise(labels):
        assert not left.overlaps(right), f"{left} overlaps {right}"
    plot = axes.get_window_extent()
    for legend_text in text_boxes(fig, [t for t in fig.texts if t.get_gid() == "legend"]):
        assert not legend_text.overlaps(plot)
    assert all(e.y + SWATCH_HEIGHT < model.plot.top for e in model.legend)


def test_many_quarters_are_thinned_to_at_most_eight_labels_ending_at_the_target() -> None:
    history = [(p, 1000.0 + i) for i, p in enumerate(quarters(2012, 48))]

    model = fan_model(fan(history))

    labels = [t.label for t in model.x_ticks]
    assert 1 < len(labels) <= MAX_X_LABELS
    assert labels[-1] == "2024Q2"
    assert model.x_label_degrees == 0


def test_labels_too_wide_for_their_room_are_turned_in_both_renderers() -> None:
    model = trend_model(daily_trend())
    svg, png = svg_drawing(model), render_figure(model)

    assert model.x_label_degrees == 45
    turned = [t for t in svg.iter(f"{SVG}text") if "turned" in t.get("class", "").split()]
    assert len(turned) == len(model.x_ticks)
    assert all("rotate(-45" in t.get("transform", "") for t in turned)
    assert {t.get_rotation() for t in png.axes[0].get_xticklabels()} == {45.0}


def test_a_long_legend_wraps_onto_further_rows_from_the_plot_s_left_edge() -> None:
    entries = legend_entries([("history", "a rather long legend entry " * 2)] * 3)

    assert len({e.y for e in entries}) == 3
    assert all(e.x == entries[0].x for e in entries)


# --------------------------------------------------------------------------- files


def test_the_png_files_are_valid_and_the_size_plot_promises(tmp_path: Path) -> None:
    chart = fan(twelve_quarters_missing("2022Q4"), band=(1170.0, 1230.0))
    paths = [write_fan_chart(chart, tmp_path), write_trend_chart(daily_trend(), tmp_path)]

    for path in paths:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.size == (960, 504)
