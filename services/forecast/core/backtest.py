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
from dataclasses import asdict, replace

import numpy as np
import pandas as pd

from services.common.distribution import (
    BandProbabilities,
    band_probabilities,
    brier,
    combine_fiscal_year,
    log_score,
    pit,
    ranked_probability_score,
    score_call,
)
from services.forecast.core.company import (
    NET_INCOME,
    NON_GAAP,
    choose_way,
    forecast_company,
    non_gaap_fits,
    non_gaap_past,
    ways_available,
)
from services.forecast.core.data import (
    FREQ,
    derive_yoy_bands,
    guidance_band,
    guidance_before,
    quarter,
)
from services.forecast.core.engine import fit, forecast, grid_forecast, record_forecasts
from services.forecast.core.evidence import GuidedBand
from services.forecast.core.guided import (
    FISCAL_YEAR_PREFIX,
    Evidence,
    GuidedCall,
    Pair,
    landings_before,
    walk_calls,
)
from services.forecast.core.models import naive as naive_model
from services.forecast.core.types import (
    BacktestReport,
    BacktestRow,
    BandSummary,
    CallScores,
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
    evidence: Evidence | None = None,
) -> BacktestReport:
    """Out-of-sample forecasts for every eligible quarter and their summary per metric.

    Guided quarters are called as the live service calls them (``guided.py``): the
    statistical forecast stacked with the guidance evidence known before the quarter, the
    stacking weight learned from the calls resolved before it (whatever their metric).
    """
    label = start or spec.backtest_start
    first = quarter(label) if label else None
    guidance = None if guidance is None else derive_yoy_bands(guidance, history)
    pairs: dict[str, list[Pair]] = {}
    for metric in metrics:
        if metric not in history.columns:
            raise ValueError(f"metric {metric!r} not in history columns {list(history.columns)}")
        pairs[metric] = _metric_pairs(history, metric, guidance, history_as_of, spec)
    evidence = evidence or Evidence()
    rows = guided_rows(pairs, history, guidance, evidence)
    rows += fiscal_year_rows(history, guidance, [m for m in pairs], spec, evidence)
    kept = [r for r in rows if first is None or _made_in(r) >= first]
    summary = {
        metric: summarise([r for r in kept if r.metric == metric], history, metric, guidance)
        for metric in pairs
    }
    return BacktestReport(tuple(kept), summary)


def _metric_pairs(
    history: pd.DataFrame,
    metric: str,
    guidance: pd.DataFrame | None,
    history_as_of: HistoryAsOf | None,
    spec: ForecastSpec,
) -> list[Pair]:
    if history_as_of is None and metric == NON_GAAP:
        return _non_gaap_pairs(history, guidance, spec)
    if history_as_of is None:
        return record_forecasts(fit(history, metric=metric, spec=spec, guidance=guidance))
    periods = eligible_periods(history[metric], spec.min_train, None)
    return [
        pair
        for period in periods
        if (pair := _refit_pair(history, metric, guidance, period, history_as_of, spec)) is not None
    ]


def _refit_pair(
    history: pd.DataFrame,
    metric: str,
    guidance: pd.DataFrame | None,
    period: pd.Period,
    history_as_of: HistoryAsOf | None,
    spec: ForecastSpec,
) -> Pair | None:
    """Refit on the data known before ``period`` and forecast it (statistically)."""
    as_of = history_as_of or (lambda when: history.loc[history.index < when])
    known = guidance_before(guidance, period)
    forecasts = forecast_company(
        as_of(period), target=str(period), guidance=known, spec=spec, evidence=None
    )
    if metric not in forecasts:
        return None
    return forecasts[metric], _actual(history, metric, period)


def _actual(history: pd.DataFrame, metric: str, period: pd.Period) -> float:
    return float(history[metric].to_numpy()[history.index.get_loc(period)])


def _non_gaap_pairs(
    history: pd.DataFrame, guidance: pd.DataFrame | None, spec: ForecastSpec
) -> list[Pair]:
    """Each eligible quarter's non-GAAP forecast chosen from the three fits' records."""
    past = non_gaap_past(non_gaap_fits(history, guidance, spec))
    pairs: list[Pair] = []
    for period in eligible_periods(history[NON_GAAP], spec.min_train, None):
        target = str(period)
        options = {way: past[way][target][0] for way in past if target in past[way]}
        if not options or set(options) != ways_available(history, period, spec):
            pair = _refit_pair(history, NON_GAAP, guidance, period, None, spec)
            pairs.extend([] if pair is None else [pair])
            continue
        chosen = options[choose_way(past, options, before=target)]
        pairs.append((chosen, _actual(history, NON_GAAP, period)))
    return pairs


def guided_rows(
    pairs: dict[str, list[Pair]],
    history: pd.DataFrame,
    guidance: pd.DataFrame | None,
    evidence: Evidence,
) -> list[BacktestRow]:
    """Rows in period order; guided quarters are called with what was known before them."""
    return [
        _row(statistical, actual) if call is None else _guided_row(call, actual)
        for statistical, actual, call in walk_calls(pairs, history, guidance, evidence)
    ]


def fiscal_year_rows(
    history: pd.DataFrame,
    guidance: pd.DataFrame | None,
    metrics: list[str],
    spec: ForecastSpec,
    evidence: Evidence,
) -> list[BacktestRow]:
    """A call for every fiscal-year statement whose year is over, made as the live band check
    makes it in the quarter after the statement: the reported quarters plus the remaining
    quarters' forecasts from the history before that quarter (``combine_fiscal_year``). The
    row's ``guidance_only`` is what the guidance evidence alone would have called."""
    if guidance is None or guidance.empty:
        return []
    statements = guidance[guidance["for_quarter"].str.startswith(FISCAL_YEAR_PREFIX)]
    rows = []
    for row in statements.itertuples(index=False):
        metric, label = str(row.metric), str(row.for_quarter)
        if metric not in metrics:
            continue
        made_in = quarter(str(row.issued_in_quarter)) + 1
        found = _fiscal_year_row(history, guidance, metric, label, made_in, spec, evidence)
        rows.extend([] if found is None else [found])
    return rows


def _fiscal_year_row(
    history: pd.DataFrame,
    guidance: pd.DataFrame,
    metric: str,
    label: str,
    made_in: pd.Period,
    spec: ForecastSpec,
    evidence: Evidence,
) -> BacktestRow | None:
    year = int(label[len(FISCAL_YEAR_PREFIX) :])
    quarters = [pd.Period(f"{year}Q{k}", freq=FREQ) for k in range(1, 5)]
    values = [float(history[metric].get(q, np.nan)) for q in quarters]
    found = guidance_band(guidance_before(guidance, made_in), metric=metric, period=label)
    known = history.loc[history.index < made_in]
    enough = known[metric].notna().sum() >= spec.min_train
    if found is None or not all(np.isfinite(values)) or not enough:
        return None
    reported = [v for q, v in zip(quarters, values, strict=True) if q < made_in]
    fitted = fit(known, metric=metric, spec=spec)
    try:
        remaining = [forecast(fitted, target=str(q)) for q in quarters if q >= made_in]
    except ValueError:
        return None  # a remaining quarter beyond what the fit can forecast
    grid = combine_fiscal_year(
        reported=reported,
        remaining_quantiles=[f.quantiles for f in remaining],
        probabilities=spec.quantile_probabilities,
    )
    point = sum(reported) + sum(f.point for f in remaining)
    statistical = grid_forecast(metric, label, point, np.array([v for _, v in grid]), spec)
    band = GuidedBand(*found)
    landings = landings_before(history, guidance, made_in)
    call = evidence.call(statistical, band, landings=landings, past=(), as_of=made_in)
    fiscal = GuidedCall(statistical, band, call.guidance_only, 0.0, call.landings)
    return replace(_guided_row(fiscal, sum(values)), as_of=str(made_in), guidance_weight=None)


def _made_in(row: BacktestRow) -> pd.Period:
    return quarter(row.as_of or row.period)


def _row(result: MetricForecast, actual: float) -> BacktestRow:
    return BacktestRow(
        period=result.target,
        metric=result.metric,
        forecast=result.point,
        lo80=result.lo80,
        hi80=result.hi80,
        lo95=result.lo95,
        hi95=result.hi95,
        actual=actual,
        model=result.method,
        pit=pit(result.quantiles, actual),
    )


def _guided_row(call: GuidedCall, actual: float) -> BacktestRow:
    result, band = call.forecast, call.band
    scored = score_call(result.quantiles, low=band.low, high=band.high, actual=actual)
    alone = band_probabilities(call.guidance_only, low=band.low, high=band.high)
    return replace(
        _row(result, actual),
        **asdict(scored),
        guidance_weight=call.weight,
        guidance_only=alone.as_tuple(),
    )


def eligible_periods(series: pd.Series, min_train: int, first: pd.Period | None) -> list[pd.Period]:
    """Quarters with an actual and at least ``min_train`` earlier actuals."""
    observed = series.notna()
    before = observed.cumsum().shift(1, fill_value=0)
    periods = series.index[observed & (before >= min_train)]
    return [p for p in periods if first is None or p >= first]


def summarise(
    rows: list[BacktestRow],
    history: pd.DataFrame,
    metric: str,
    guidance: pd.DataFrame | None,
) -> MetricSummary:
    """MAPE (percent), MASE, interval coverage (percent), the baselines' MAPE and the scores
    of the band calls."""
    guided = [r for r in rows if r.low is not None or r.high is not None]
    rows = [r for r in rows if not r.period.startswith(FISCAL_YEAR_PREFIX)]
    if not rows:
        return MetricSummary(None, None, None, None, None, None, None, bands=band_summary(guided))
    periods = [quarter(r.period) for r in rows]
    actual = np.array([r.actual for r in rows])
    point = np.array([r.forecast for r in rows])
    naive, drift = _baselines(history[metric], periods)
    return MetricSummary(
        mape=_mape(actual, point),
        mase=_mase(history[metric], periods, actual, point),
        coverage80=_coverage(actual, [(r.lo80, r.hi80) for r in rows]),
        coverage95=_coverage(actual, [(r.lo95, r.hi95) for r in rows]),
        naive_mape=_mape(actual, naive),
        drift_mape=_mape(actual, drift),
        guidance_mid_mape=_midpoint_mape([r for r in guided if r in rows]),
        bands=band_summary(guided),
    )


def band_summary(rows: list[BacktestRow]) -> BandSummary | None:
    """Mean scores of the calls beside the uniform, midpoint and guidance-only calls."""
    if not rows:
        return None
    uniform = BandProbabilities(1 / 3, 1 / 3, 1 / 3)
    inside = BandProbabilities(0.0, 1.0, 0.0)
    calls = [
        (BandProbabilities(r.p_below or 0.0, r.p_inside or 0.0, r.p_above or 0.0), r) for r in rows
    ]
    alone = [(BandProbabilities(*(r.guidance_only or (0, 0, 0))), r) for r in rows]
    return BandSummary(
        calls=len(rows),
        model=_scores(calls),
        uniform=_scores([(uniform, r) for r in rows]),
        midpoint=_scores([(inside, r) for r in rows]),
        guidance_only=_scores(alone),
        mape=_mape(np.array([r.actual for r in rows]), np.array([r.forecast for r in rows])),
        midpoint_mape=_midpoint_mape(rows),
    )


def _scores(calls: list[tuple[BandProbabilities, BacktestRow]]) -> CallScores:
    outcomes = [(p, str(r.outcome)) for p, r in calls]
    return CallScores(
        brier=float(np.mean([brier(p, o) for p, o in outcomes])),
        rps=float(np.mean([ranked_probability_score(p, o) for p, o in outcomes])),
        log_score=float(np.mean([log_score(p, o) for p, o in outcomes])),
    )


def _midpoint_mape(rows: list[BacktestRow]) -> float | None:
    if not rows:
        return None
    mids = [GuidedBand(r.low, r.high).reference for r in rows]
    return _mape(np.array([r.actual for r in rows]), np.array(mids))


def _baselines(series: pd.Series, periods: list[pd.Period]) -> tuple[np.ndarray, np.ndarray]:
    """Naive (last actual) and drift forecasts for each period from the actuals before it."""
    from services.forecast.core.models import Series, drift

    y = series.to_numpy(dtype=float)
    start = series.index[0]
    positions = [(p - start).n for p in periods]
    full = Series(y, y.size, int(start.ordinal))
    return naive_model(full, None, 1).pred[positions], drift(full, None, 1).pred[positions]


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
