"""Fiscal-year guidance is checked against reported quarters plus the remaining forecasts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest
from scipy import stats

from schemas.forecasts import ForecastUpdated, QuantilePoint
from schemas.money import Scale
from schemas.registry import Basis
from services.common.histories.guidance import GuidanceVersion
from services.guidance.service import band_check, fiscal_year_distribution

pytestmark = pytest.mark.unit
PROBABILITIES = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.975, 0.99)


def normal_forecast(period: str, *, mean: float, sd: float) -> ForecastUpdated:
    quantiles = tuple(
        QuantilePoint(probability=p, value=Decimal(str(round(mean + sd * stats.norm.ppf(p), 3))))
        for p in PROBABILITIES
    )
    value = {p: float(q.value) for p, q in zip(PROBABILITIES, quantiles, strict=True)}
    return ForecastUpdated(
        company="ACME", metric="loan_volume", period=period, basis=Basis.OPERATIONAL, currency="CNY",
        scale=Scale.MILLIONS, point=Decimal(str(mean)), lo80=Decimal(str(value[0.1])), hi80=Decimal(str(value[0.9])),
        lo95=Decimal(str(value[0.025])), hi95=Decimal(str(value[0.975])), quantiles=quantiles, n_obs=12,
        method="test", as_of=datetime(2024, 5, 1, tzinfo=UTC), inputs_digest="t",
    )  # fmt: skip


def test_a_fiscal_year_sums_reported_quarters_and_remaining_forecasts() -> None:
    reported = [Decimal("60000000000"), Decimal("62000000000")]  # two quarters, whole CNY
    remaining = [
        normal_forecast("2024Q3", mean=64000, sd=3000),
        normal_forecast("2024Q4", mean=66000, sd=4000),
    ]

    distribution = fiscal_year_distribution(period="FY2024", reported=reported, remaining=remaining)

    assert distribution.point == pytest.approx(252000)
    sd = np.hypot(3000, 4000)  # independent quarters: variances add
    assert distribution.lo80 == pytest.approx(252000 + sd * stats.norm.ppf(0.1), rel=0.01)
    assert distribution.hi95 == pytest.approx(252000 + sd * stats.norm.ppf(0.975), rel=0.01)


def test_a_fiscal_year_band_check_gives_probabilities_of_the_total() -> None:
    remaining = [
        normal_forecast("2024Q3", mean=64000, sd=3000),
        normal_forecast("2024Q4", mean=66000, sd=4000),
    ]
    distribution = fiscal_year_distribution(
        period="FY2024", reported=[Decimal("60e9"), Decimal("62e9")], remaining=remaining
    )
    guidance = GuidanceVersion(
        event_id="g", metric="loan_volume", period="FY2024", basis="operational", status="issued",
        low="245000000000", high="255000000000", currency="CNY", yoy_low_pct=None, yoy_high_pct=None,
        issued_in_period="2024Q2", known_at="2024-08-20T00:00:00.000000Z", source=None,
    )  # fmt: skip

    check = band_check(distribution, guidance, previous_state=None)

    sd = np.hypot(3000, 4000)
    expected_below = stats.norm.cdf(245000, loc=252000, scale=sd)
    assert (check.low, check.high) == (245000.0, 255000.0)
    assert check.p_below == pytest.approx(expected_below, abs=0.02)
    assert check.p_below + check.p_inside + check.p_above == pytest.approx(1.0)
