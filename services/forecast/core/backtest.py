"""Rolling-origin backtest, one quarter ahead, expanding window, no look-ahead.

For every quarter t with an actual and at least ``spec.min_train`` earlier observations, the
forecast uses only rows for quarters before t (``history_as_of(t)``, by default the rows of
``history`` before t) and guidance issued before t. A plain metric is backtested from one fit:
its out-of-sample record is exactly the forecasts those truncated fits make (a unit test checks
this); non-GAAP net income and custom vintages are refit at every origin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from services.forecast.core.company import NET_INCOME, NON_GAAP, forecast_company
from services.forecast.core.data import FREQ, guidance_band, quarter
from services.forecast.core.engine import describe, fit, predictive
from services.forecast.core.models import naive as naive_model
from services.forecast.core.types import (
    BacktestReport,
    BacktestRow,
    ForecastSpec,
    MetricForecast,
    MetricSummary,
)

HistoryAsOf = Callable[[pd.Period], pd.DataFrame]


def run_backtest(
    history: pd.DataFrame,
    *,
    guidance: pd.DataFrame | None = None,
    metrics: Iterable[str] = (NET_INCOME, NON_GAAP),
    start: str | None = None,
    history_as_of: HistoryAsOf | None = None,
    spec: ForecastSpec = ForecastSpec(),
) -> BacktestReport:
    """Out-of-sample forecasts for every eligible quarter and their summary per metric."""
    label = start or spec.backtest_start
    first = quarter(label) if label else None
    rows: list[BacktestRow] = []
    summary: dict[str, MetricSummary] = {}
    for metric in metrics:
        if metric not in history.columns:
            raise ValueError(f"metric {metric!r} not in history columns {list(history.columns)}")
        found = _metric_rows(history, metric, guidance, first, history_as_of, spec)
        rows.extend(found)
        summary[metric] = summarise(found, history, metric, guidance)
    return BacktestReport(tuple(rows), summary)


def _metric_rows(
    history: pd.DataFrame,
    metric: str,
    guidance: pd.DataFrame | None,
    first: pd.Period | None,
    history_as_of: HistoryAsOf | None,
    spec: ForecastSpec,
) -> list[BacktestRow]:
    if history_as_of is None and metric != NON_GAAP:
        return _rows_from_one_fit(history, metric, guidance, first, spec)
    as_of = history_as_of or (lambda period: history.loc[history.index < period])
    rows = []
    for period in eligible_periods(history[metric], spec.min_train, first):
        past = as_of(period)
        known = guidance_before(guidance, period)
        forecasts = forecast_company(past, target=str(period), guidance=known, spec=spec)
        if metric not in forecasts:
            continue
        actual = float(history[metric].to_numpy()[history.index.get_loc(period)])
        rows.append(_row(forecasts[metric], actual, guidance))
    return rows


def _rows_from_one_fit(
    history: pd.DataFrame,
    metric: str,
    guidance: pd.DataFrame | None,
    first: pd.Period | None,
    spec: ForecastSpec,
) -> list[BacktestRow]:
    fitted = fit(history, metric=metric, spec=spec, guidance=guidance)
    record = fitted.record
    rows = []
    for k, ordinal in enumerate(record.ordinal.tolist()):
        period = pd.Period(ordinal=ordinal, freq=FREQ)
        if record.n_before[k] < spec.min_train or (first is not None and period < first):
            continue
        _, point, quantiles = predictive(
            record.head(k),
            record.pred[:, k],
            ordinal=ordinal,
            scale=float(record.scale[k]),
            horizon=int(record.horizon[k]),
            spec=spec,
        )
        grid = tuple(zip(spec.quantile_probabilities, quantiles.tolist(), strict=True))
        result = _as_forecast(metric, str(period), point, grid, spec)
        rows.append(_row(result, float(record.actual[k]), guidance))
    return rows


def _as_forecast(
    metric: str,
    target: str,
    point: float,
    grid: tuple[tuple[float, float], ...],
    spec: ForecastSpec,
) -> MetricForecast:
    values = {round(p, 6): v for p, v in grid}
    (lo80, hi80), (lo95, hi95) = (
        (values[round((1 - lv) / 2, 6)], values[round((1 + lv) / 2, 6)]) for lv in spec.levels
    )
    method = describe(spec)
    return MetricForecast(metric, target, point, lo80, hi80, lo95, hi95, grid, (), (), 0, method)


def _row(result: MetricForecast, actual: float, guidance: pd.DataFrame | None) -> BacktestRow:
    band = guidance_band(guidance, metric=result.metric, period=quarter(result.target))
    probs = result.band_probabilities(low=band[0], high=band[1]) if band else None
    return BacktestRow(
        period=result.target,
        metric=result.metric,
        forecast=result.point,
        lo80=result.lo80,
        hi80=result.hi80,
        lo95=result.lo95,
        hi95=result.hi95,
        p_below=probs.p_below if probs else None,
        p_inside=probs.p_inside if probs else None,
        p_above=probs.p_above if probs else None,
        actual=actual,
        model=result.method,
    )


def eligible_periods(series: pd.Series, min_train: int, first: pd.Period | None) -> list[pd.Period]:
    """Quarters with an actual and at least ``min_train`` earlier actuals."""
    observed = series.notna()
    before = observed.cumsum().shift(1, fill_value=0)
    periods = series.index[observed & (before >= min_train)]
    return [p for p in periods if first is None or p >= first]


def guidance_before(guidance: pd.DataFrame | None, period: pd.Period) -> pd.DataFrame | None:
    """Guidance statements issued before ``period`` (what a forecaster then could know)."""
    if guidance is None:
        return None
    issued = guidance["issued_in_quarter"].map(lambda label: quarter(label) < period)
    return guidance.loc[issued.astype(bool)]


def summarise(
    rows: list[BacktestRow],
    history: pd.DataFrame,
    metric: str,
    guidance: pd.DataFrame | None,
) -> MetricSummary:
    """MAPE (percent), MASE, interval coverage (percent) and the baselines' MAPE."""
    if not rows:
        return MetricSummary(None, None, None, None, None, None, None)
    periods = [quarter(r.period) for r in rows]
    actual = np.array([r.actual for r in rows])
    point = np.array([r.forecast for r in rows])
    naive, drift = _baselines(history[metric], periods)
    mids = [_mid(guidance, metric, p) for p in periods]
    guided = [(a, m) for a, m in zip(actual, mids, strict=True) if m is not None]
    return MetricSummary(
        mape=_mape(actual, point),
        mase=_mase(history[metric], periods, actual, point),
        coverage80=_coverage(actual, [(r.lo80, r.hi80) for r in rows]),
        coverage95=_coverage(actual, [(r.lo95, r.hi95) for r in rows]),
        naive_mape=_mape(actual, naive),
        drift_mape=_mape(actual, drift),
        guidance_mid_mape=_mape(*map(np.array, zip(*guided, strict=True))) if guided else None,
    )


def _baselines(series: pd.Series, periods: list[pd.Period]) -> tuple[np.ndarray, np.ndarray]:
    """Naive (last actual) and drift forecasts for each period from the actuals before it."""
    from services.forecast.core.models import Series, drift

    y = series.to_numpy(dtype=float)
    start = series.index[0]
    positions = [(p - start).n for p in periods]
    full = Series(y, y.size, int(start.ordinal))
    return naive_model(full, None, 1).pred[positions], drift(full, None, 1).pred[positions]


def _mid(guidance: pd.DataFrame | None, metric: str, period: pd.Period) -> float | None:
    band = guidance_band(guidance_before(guidance, period), metric=metric, period=period)
    return None if band is None else (band[0] + band[1]) / 2


def _mape(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    ok = np.isfinite(forecast) & (actual != 0)
    if not ok.any():
        return None
    return float(np.mean(np.abs((actual[ok] - forecast[ok]) / actual[ok])) * 100)


def _mase(
    series: pd.Series, periods: list[pd.Period], actual: np.ndarray, point: np.ndarray
) -> float | None:
    """Mean of |error| / (in-sample naive MAE over the actuals before each period)."""
    ratios = []
    for period, a, f in zip(periods, actual, point, strict=True):
        past = series[series.index < period].dropna().to_numpy()
        scale = float(np.mean(np.abs(np.diff(past)))) if past.size > 1 else 0.0
        if scale > 0:
            ratios.append(abs(a - f) / scale)
    return float(np.mean(ratios)) if ratios else None


def _coverage(actual: np.ndarray, bands: list[tuple[float, float]]) -> float:
    inside = [lo <= a <= hi for a, (lo, hi) in zip(actual, bands, strict=True)]
    return float(np.mean(inside) * 100)
