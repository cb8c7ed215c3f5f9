"""What each chart draws, computed once for the SVG status page and the PNG plots.

A fan chart shows one guided figure: its reported history, the point forecast for the target
period, the 80% and 95% intervals fanning out from the last actual, and the guidance band.
A trend chart shows one delinquency rate with the next period's forecast and change points.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from schemas.forecasts import ForecastUpdated, TrendUpdated
from schemas.periods import QUARTER_PATTERN, Quarter, frequency_of
from services.common.histories.facts import FactVersion, latest_as_of
from services.guidance.core import BandCheck

HISTORY_QUARTERS = 12
TREND_POINTS = 24

Point = tuple[str, float]


@dataclass(frozen=True)
class FanChart:
    """Money in the forecast's scale (e.g. CNY millions)."""

    company: str
    metric: str
    period: str
    currency: str
    scale: str
    history: tuple[Point, ...]
    point: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float
    band: tuple[float | None, float | None] | None = None  # a None bound is an open side
    state: str | None = None
    p_below: float | None = None
    p_inside: float | None = None
    p_above: float | None = None
    confidence_word: str | None = None
    derived_from: str | None = None  # what a band derived from year-on-year growth rests on

    @property
    def unit(self) -> str:
        return f"{self.currency} {self.scale}"

    @property
    def slug(self) -> str:
        return f"{self.metric}-{self.period}"

    @property
    def band_bounds(self) -> tuple[float, ...]:
        """The band's stated (or derived) bounds, open sides left out."""
        return tuple(b for b in self.band or () if b is not None)

    @property
    def axis(self) -> tuple[str, ...]:
        """Every quarter from the first charted one to the target (unreported ones too)."""
        first = Quarter.parse(self.history[0][0] if self.history else self.period)
        count = _quarter_index(self.period) - _quarter_index(str(first)) + 1
        return tuple(str(first.shift(i)) for i in range(count))


@dataclass(frozen=True)
class TrendChart:
    """Rates in percent; the slope in percentage points per period."""

    company: str
    metric: str
    series: tuple[Point, ...]
    next_period: str
    next_forecast: float
    next_lo: float
    next_hi: float
    verdict: str
    slope: float
    change_points: tuple[str, ...] = ()

    @property
    def slug(self) -> str:
        return self.metric


def fan_charts(
    forecasts: list[ForecastUpdated], bands: list[BandCheck], versions: list[FactVersion]
) -> list[FanChart]:
    """One chart per open forecast (its actual not yet reported), guided figures first."""
    checks = {(b.metric, b.period): b for b in bands}
    current = latest_as_of(versions, None)
    reported = {(v.metric, v.period) for v in current}
    open_forecasts = [f for f in forecasts if (f.metric, f.period) not in reported]
    charts = [_fan(f, checks.get((f.metric, f.period)), current) for f in open_forecasts]
    return sorted(charts, key=lambda c: (c.band is None, c.metric, c.period))


def _fan(
    forecast: ForecastUpdated, check: BandCheck | None, current: list[FactVersion]
) -> FanChart:
    factor = forecast.scale.factor
    return FanChart(
        company=forecast.company,
        metric=forecast.metric,
        period=forecast.period,
        currency=forecast.currency,
        scale=forecast.scale.value,
        history=quarterly_history(current, forecast.metric, before=forecast.period, factor=factor),
        point=float(forecast.point),
        lo80=float(forecast.lo80),
        hi80=float(forecast.hi80),
        lo95=float(forecast.lo95),
        hi95=float(forecast.hi95),
        band=(check.low, check.high) if check else None,
        state=check.state if check else None,
        p_below=check.p_below if check else None,
        p_inside=check.p_inside if check else None,
        p_above=check.p_above if check else None,
        confidence_word=check.confidence_word if check else None,
        derived_from=check.derived_from if check else None,
    )


def quarterly_history(
    current: list[FactVersion], metric: str, *, before: str, factor: Decimal
) -> tuple[Point, ...]:
    """Reported values of `metric` in the quarters before the target, in the forecast's scale."""
    first = str(Quarter.parse(before).shift(-HISTORY_QUARTERS))
    return tuple(
        sorted(
            (v.period, float(v.value / factor))
            for v in current
            if v.metric == metric and QUARTER_PATTERN.match(v.period) and first <= v.period < before
        )
    )


def trend_charts(trends: list[TrendUpdated], versions: list[FactVersion]) -> list[TrendChart]:
    current = latest_as_of(versions, None)
    return [_trend(trend, current) for trend in trends]


def _trend(trend: TrendUpdated, current: list[FactVersion]) -> TrendChart:
    frequency = frequency_of(trend.last_period)
    series = sorted(
        (v.period, float(v.value))
        for v in current
        if v.metric == trend.metric
        and frequency_of(v.period) is frequency
        and v.period <= trend.last_period
    )
    return TrendChart(
        company=trend.company,
        metric=trend.metric,
        series=tuple(series[-TREND_POINTS:]),
        next_period=trend.next_period,
        next_forecast=trend.next_forecast_pct,
        next_lo=trend.next_lo_pct,
        next_hi=trend.next_hi_pct,
        verdict=trend.verdict.value,
        slope=trend.slope_pct_points,
        change_points=tuple(c.period for c in trend.change_points),
    )


def band_words(low: float | None, high: float | None) -> str:
    """'1,170–1,230', 'at least 1,170' or 'at most 1,230'."""
    if low is not None and high is not None:
        return f"{figure(low)}–{figure(high)}"
    return f"at least {figure(low)}" if low is not None else f"at most {figure(high or 0.0)}"


def figure(value: float) -> str:
    """Money with thousands separators, small numbers with two decimals."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def _quarter_index(period: str) -> int:
    quarter = Quarter.parse(period)
    return quarter.year * 4 + quarter.quarter
