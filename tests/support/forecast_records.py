"""Forecast and trend events as the forecast worker would keep them (store tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from schemas.forecasts import ForecastUpdated, QuantilePoint, TrendUpdated, TrendVerdict
from schemas.money import Scale
from schemas.registry import Basis


def forecast_record(company: str, period: str, point: str = "500") -> ForecastUpdated:
    value = Decimal(point)
    return ForecastUpdated(
        company=company, metric="net_income", period=period, basis=Basis.GAAP, currency="CNY",
        scale=Scale.MILLIONS, point=value, lo80=value - 10, hi80=value + 10, lo95=value - 20,
        hi95=value + 20, n_obs=12, method="test", as_of=datetime(2024, 5, 1, tzinfo=UTC),
        inputs_digest=f"digest-{period}-{point}",
        quantiles=tuple(QuantilePoint(probability=p, value=value) for p in (0.1, 0.5, 0.9)),
    )  # fmt: skip


def trend_record(company: str, metric: str, last_period: str) -> TrendUpdated:
    return TrendUpdated(
        company=company, metric=metric, last_period=last_period, n_obs=8, level_pct=2.5,
        slope_pct_points=0.2, slope_lo=0.1, slope_hi=0.3, mann_kendall_tau=0.6,
        mann_kendall_p=0.01, verdict=TrendVerdict.DETERIORATING, confidence=0.9,
        next_period="2024Q2", next_forecast_pct=2.7, next_lo_pct=2.4, next_hi_pct=3.0,
    )  # fmt: skip
