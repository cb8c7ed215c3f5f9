"""The status page and the PNG plots show a band check's call, its confidence, a one-sided band
and where a derived band came from."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.forecasts import ForecastUpdated, QuantilePoint
from schemas.money import Scale
from schemas.registry import Basis
from services.api.charts import fan_charts
from services.api.pages import company_page
from services.api.png import write_fan_chart
from services.api.reader import CompanyState
from services.api.svg import fan_chart_svg
from services.guidance.core import BandCheck

pytestmark = pytest.mark.unit
DERIVED_FROM = "the 2023Q2 actual of 1,000.0 grown at least +10.0%"


def forecast() -> ForecastUpdated:
    grid = ((0.1, "1080"), (0.5, "1120"), (0.9, "1160"), (0.025, "1060"), (0.975, "1180"))
    quantiles = tuple(QuantilePoint(probability=p, value=Decimal(v)) for p, v in sorted(grid))
    return ForecastUpdated(
        company="ACME", metric="net_income", period="2024Q2", basis=Basis.GAAP, currency="CNY",
        scale=Scale.MILLIONS, point=Decimal(1120), lo80=Decimal(1080), hi80=Decimal(1160),
        lo95=Decimal(1060), hi95=Decimal(1180), quantiles=quantiles, n_obs=12, method="test",
        as_of=datetime(2024, 5, 1, tzinfo=UTC), inputs_digest="t",
    )  # fmt: skip


def derived_check() -> BandCheck:
    return BandCheck(
        metric="net_income", period="2024Q2", low=1100.0, high=None, point=1120.0, lo80=1080.0,
        hi80=1160.0, lo95=1060.0, hi95=1180.0, p_below=0.3, p_inside=0.7, p_above=0.0,
        distance_to_band=0.0, state="likely_inside", scale="millions", currency="CNY",
        forecast_event_id="f", guidance_event_id="g", checked_at="2024-05-01T00:00:00+00:00",
        confidence=0.7, confidence_word="high", band_source="derived", derived_from=DERIVED_FROM,
        prior_period="2023Q2", prior_actual=1000.0, yoy_low_pct=10.0,
    )  # fmt: skip


def test_a_card_shows_the_call_its_confidence_and_a_derived_one_sided_band() -> None:
    state = CompanyState("ACME", [forecast()], [derived_check()], [], [], [], 0)

    page = company_page(state, ["ACME"])

    assert '<span class="state likely_inside">likely inside</span>' in page
    assert (
        "guidance at least 1,100; P(below) 30% · P(inside) 70% · P(above) 0%; high confidence"
        in page
    )
    assert f"band derived from {DERIVED_FROM}" in page


def test_a_one_sided_band_is_drawn_to_the_edge_with_only_its_stated_bound() -> None:
    (chart,) = fan_charts([forecast()], [derived_check()], [])

    svg = fan_chart_svg(chart)

    assert svg.count('class="guidance-edge"') == 1
    assert "low 1,100" in svg
    assert "high " not in svg
    assert "vs guidance at least 1,100" in svg


def test_a_one_sided_band_plots_as_png(tmp_path: Path) -> None:
    (chart,) = fan_charts([forecast()], [derived_check()], [])

    path = write_fan_chart(chart, tmp_path)

    assert path.read_bytes().startswith(b"\x89PNG")
