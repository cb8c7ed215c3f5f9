"""Rolling-origin backtest, one quarter ahead, expanding window, no look-ahead.

For every quarter t with an actual and at least ``spec.min_train`` earlier observations, the
forecast uses only rows for quarters before t (``history_as_of(t)``, by default the rows of
``history`` before t) and guidance issued before t. A plain metric is backtested from one fit:
its out-of-sample record is exactly the forecasts those truncated fits make (a unit test checks
this). Non-GAAP net income comes from the records of three fits (net income, SBC, non-GAAP) and
the skill rule of ``company``; a quarter whose forecast the records lack (say net income is
missing in it) and custom vintages are refit at every origin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from services.forecast.core.company import (
    NET_INCOME,
    NON_GAAP,
    choose_way,
    forecast_company,
    non_gaap_fits,
    non_gaap_past,
    ways_available,
)
from services.forecast.core.data import guidance_band, quarter
from services.forecast.core.engine import fit, record_forecasts
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
    if history_as_of is None and metric == NON_GAAP:
        return _non_gaap_rows(history, guidance, first, spec)
    if history_as_of is None:
        return _rows_from_one_fit(history, metric, guidance, first, spec)
    periods = eligible_periods(history[metric], spec.min_train, first)
    return [
        row
        for period in periods
        if (row := _refit_row(history, metric, guidance, period, history_as_of, spec)) is not None
    ]


def _refit_row(
    history: pd.DataFrame,
    metric: str,
    guidance: pd.DataFrame | None,
    period: pd.Period,
    history_as_of: HistoryAsOf | None,
    spec: ForecastSpec,
) -> BacktestRow | None:
    """Refit on the data known before ``period`` and forecast it."""
    as_of = history_as_of or (lambda when: history.loc[history.index < when])
    known = guidance_before(guidance, period)
    forecasts = forecast_company(as_of(period), target=str(period), guidance=known, spec=spec)
    if metric not in forecasts:
        return None
    actual = float(history[metric].to_numpy()[history.index.get_loc(period)])
    return _row(forecasts[metric], actual, guidance)


def _non_gaap_rows(
    history: pd.DataFrame,
    guidance: pd.DataFrame | None,
    first: pd.Period | None,
    spec: ForecastSpec,
) -> list[BacktestRow]:
    """Each eligible quarter's non-GAAP forecast chosen from the three fits' records."""
    past = non_gaap_past(non_gaap_fits(history, guidance, spec))
    rows = []
    for period in eligible_periods(history[NON_GAAP], spec.min_train, first):
        target = str(period)
        options = {way: past[way][target][0] for way in past if target in past[way]}
        if not options or set(options) != ways_available(history, period, spec):
            row = _refit_row(history, NON_GAAP, guidance, period, None, spec)
            rows.extend([] if row is None else [row])
            continue
        chosen = options[choose_way(past, options, before=target)]
        actual = float(history[NON_GAAP].to_numpy()[history.index.get_loc(period)])
        rows.append(_row(chosen, actual, guidance))
    return rows


def _rows_from_one_fit(
    history: pd.DataFrame,
    metric: str,
    guidance: pd.DataFrame | None,
    first: pd.Period | None,
    spec: ForecastSpec,
) -> list[BacktestRow]:
    fitted = fit(history, metric=metric, spec=spec, guidance=guidance)
    return [
        _row(result, actual, guidance)
        for result, actual in record_forecasts(fitted)
        if first is None or quarter(result.target) >= first
    ]


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
