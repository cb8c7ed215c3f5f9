"""The live band check: one probability implementation, calls that say what the probabilities
say, and bands derived from year-on-year growth that say what they were derived from."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from scipy import stats

from schemas.alerts import Severity
from schemas.forecasts import ForecastUpdated, QuantilePoint
from schemas.money import Scale
from schemas.registry import Basis
from services.common.histories.guidance import GuidanceVersion
from services.forecast.core import MetricForecast
from services.guidance.core import GuidedBand
from services.guidance.events import band_signal
from services.guidance.service import band_check, fiscal_year_distribution, forecast_distribution

pytestmark = pytest.mark.unit
PROBABILITIES = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.975, 0.99)
MILLION = Decimal(1_000_000)


def normal_forecast(mean: float, sd: float, period: str = "2024Q2") -> ForecastUpdated:
    quantiles = tuple(
        QuantilePoint(probability=p, value=Decimal(str(round(mean + sd * stats.norm.ppf(p), 3))))
        for p in PROBABILITIES
    )
    value = {q.probability: q.value for q in quantiles}
    return ForecastUpdated(
        company="ACME", metric="net_income", period=period, basis=Basis.GAAP, currency="CNY",
        scale=Scale.MILLIONS, point=Decimal(str(mean)), lo80=value[0.1], hi80=value[0.9],
        lo95=value[0.025], hi95=value[0.975], quantiles=quantiles, n_obs=12, method="test",
        as_of=datetime(2024, 5, 1, tzinfo=UTC), inputs_digest="t",
    )  # fmt: skip


def guidance(**stated: str | None) -> GuidanceVersion:
    fields: dict[str, str | None] = {"low": None, "high": None, "yoy_low_pct": None}
    fields |= {"yoy_high_pct": None, **stated}
    return GuidanceVersion(
        event_id="g", metric="net_income", period="2024Q2", basis="gaap", status="issued",
        currency="CNY", issued_in_period="2024Q1", known_at="2024-05-20T00:00:00.000000Z",
        source=None, **fields,
    )  # fmt: skip


def the_core_forecast(forecast: ForecastUpdated) -> MetricForecast:
    """What the backtest holds for the same predictive distribution."""
    return MetricForecast(
        metric=forecast.metric, target=forecast.period, point=float(forecast.point),
        lo80=float(forecast.lo80), hi80=float(forecast.hi80), lo95=float(forecast.lo95),
        hi95=float(forecast.hi95), quantiles=forecast.quantile_pairs(), models=(), drivers=(),
        n_obs=forecast.n_obs, method=forecast.method,
    )  # fmt: skip


@pytest.mark.parametrize(("low", "high"), [(700.0, 760.0), (1160.0, 1500.0), (500.0, 1400.0)])
def test_the_live_check_and_the_backtest_give_the_same_probabilities_beyond_the_grid(
    low: float, high: float
) -> None:
    forecast = normal_forecast(1000.0, 50.0)  # its grid spans about 884 to 1116
    stated = guidance(low=str(Decimal(str(low)) * MILLION), high=str(Decimal(str(high)) * MILLION))

    check = band_check(forecast_distribution(forecast), stated, previous_state=None)
    backtest = the_core_forecast(forecast).band_probabilities(low=low, high=high)

    assert (check.p_below, check.p_inside, check.p_above) == backtest.as_tuple()


def test_a_fiscal_year_of_one_remaining_quarter_keeps_that_quarters_distribution() -> None:
    quarter = normal_forecast(1000.0, 50.0, period="2024Q4")
    year = fiscal_year_distribution(
        period="FY2024", reported=[Decimal(3000) * MILLION], remaining=[quarter]
    )
    shifted = [v - 3000.0 for _, v in year.quantiles]

    assert [p for p, _ in year.quantiles] == list(PROBABILITIES)
    assert shifted == pytest.approx([v for _, v in quarter.quantile_pairs()], abs=2.0)


def test_the_issue_example_is_called_likely_below_with_low_confidence() -> None:
    # a forecast whose P(below), P(inside), P(above) are about 0.46, 0.37, 0.17
    forecast = normal_forecast(1174.0, 60.0)
    stated = guidance(low=str(1168 * MILLION), high=str(1231 * MILLION))

    check = band_check(forecast_distribution(forecast), stated, previous_state=None)
    signal = band_signal(
        "ACME", check, GuidedBand(Decimal(1168) * MILLION, Decimal(1231) * MILLION)
    )

    assert check.p_below > check.p_inside > check.p_above
    assert (check.state, check.confidence_word) == ("likely_below", "low")
    assert check.confidence == check.p_below
    assert signal.severity is Severity.WARNING
    assert signal.summary.startswith(
        f"ACME net_income 2024Q2 is likely below guidance, low confidence ({check.p_below:.0%})"
    )


@pytest.mark.parametrize(
    ("mean", "state", "severity"),
    [
        (900.0, "likely_below", Severity.WARNING),
        (1000.0, "likely_inside", Severity.INFO),
        (1100.0, "likely_above", Severity.INFO),
    ],
)
def test_the_severity_follows_the_call(mean: float, state: str, severity: Severity) -> None:
    stated = guidance(low=str(970 * MILLION), high=str(1030 * MILLION))
    check = band_check(
        forecast_distribution(normal_forecast(mean, 20.0)), stated, previous_state=None
    )

    signal = band_signal("ACME", check, GuidedBand(Decimal(970) * MILLION, Decimal(1030) * MILLION))

    assert (check.state, signal.state, signal.severity) == (state, state, severity)


def test_a_call_stored_by_an_earlier_version_is_made_afresh() -> None:
    stated = guidance(low=str(970 * MILLION), high=str(1030 * MILLION))
    forecast = forecast_distribution(normal_forecast(900.0, 20.0))

    assert band_check(forecast, stated, previous_state="on_track").state == "likely_below"


def test_a_band_derived_from_growth_says_what_it_was_derived_from() -> None:
    stated = guidance(yoy_low_pct="7.0", yoy_high_pct="12.5")
    band = GuidedBand(
        low=Decimal("1093.4") * MILLION * Decimal("1.07"),
        high=Decimal("1093.4") * MILLION * Decimal("1.125"),
        prior_period="2023Q2",
        prior_actual=Decimal("1093.4") * MILLION,
        yoy_low_pct=Decimal("7.0"),
        yoy_high_pct=Decimal("12.5"),
    )

    check = band_check(
        forecast_distribution(normal_forecast(1180.0, 40.0)),
        stated,
        band=band,
        previous_state=None,
    )
    signal = band_signal("ACME", check, band)

    assert (check.low, check.high) == pytest.approx((1169.938, 1230.075))
    assert (check.band_source, check.prior_period, check.prior_actual) == (
        "derived",
        "2023Q2",
        1093.4,
    )
    assert (check.yoy_low_pct, check.yoy_high_pct) == (7.0, 12.5)
    assert check.derived_from == "the 2023Q2 actual of 1,093.4 grown +7.0% to +12.5%"
    assert "derived from the 2023Q2 actual of 1,093.4 grown +7.0% to +12.5%" in signal.summary
    assert signal.details["band_source"] == "derived"
    restated = replace(band, prior_actual=Decimal("1100") * MILLION)
    assert band_signal("ACME", check, restated).event_id != signal.event_id


def test_one_stated_growth_bound_gives_a_one_sided_band_with_nothing_on_its_open_side() -> None:
    stated = guidance(yoy_low_pct="10")
    prior = Decimal(1000) * MILLION
    band = GuidedBand(prior * Decimal("1.1"), None, "2023Q2", prior, Decimal(10), None)

    check = band_check(
        forecast_distribution(normal_forecast(1120.0, 30.0)),
        stated,
        band=band,
        previous_state=None,
    )
    signal = band_signal("ACME", check, band)

    assert (check.low, check.high, check.p_above) == (1100.0, None, 0.0)
    assert check.p_below == pytest.approx(stats.norm.cdf(1100.0, 1120.0, 30.0), abs=0.01)
    assert (check.state, check.distance_to_band) == ("likely_inside", 0.0)
    assert "vs guidance at least 1,100.0 CNY millions" in signal.summary
    assert "grown at least +10.0%" in signal.summary


def test_a_check_of_growth_guidance_without_its_derived_band_is_refused() -> None:
    forecast = forecast_distribution(normal_forecast(1000.0, 20.0))

    with pytest.raises(ValueError, match="states no amount band"):
        band_check(forecast, guidance(yoy_low_pct="10"), previous_state=None)


def test_a_call_knows_what_its_forecast_knew_not_when_it_was_processed() -> None:
    forecast = normal_forecast(1200.0, 40.0)
    stated = guidance(low="1170000000", high="1230000000")

    check = band_check(forecast_distribution(forecast), stated, previous_state=None)
    signal = band_signal(
        "ACME", check, GuidedBand(Decimal(1170) * MILLION, Decimal(1230) * MILLION)
    )

    assert check.known_at == forecast.as_of.isoformat()
    assert signal.details["known_at"] == forecast.as_of.isoformat()  # the timeline's place
    assert check.checked_at != check.known_at


def test_a_fiscal_year_call_knows_the_latest_of_its_remaining_quarters() -> None:
    early = normal_forecast(300.0, 20.0, period="2024Q3")
    late = normal_forecast(320.0, 20.0, period="2024Q4").model_copy(
        update={"as_of": datetime(2024, 8, 20, tzinfo=UTC)}
    )

    distribution = fiscal_year_distribution(
        period="FY2024", reported=[Decimal(600) * MILLION], remaining=[early, late]
    )

    assert distribution.known_at == late.as_of.isoformat()
