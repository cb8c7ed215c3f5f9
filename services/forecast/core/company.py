"""Forecasts for a company's result lines that respect their reconciliation.

Non-GAAP net income = net income + share-based compensation (SBC). Two ways to forecast it:
*reconciled*: net income and SBC forecast separately and added quantile by quantile (a
comonotone sum: the widest, and so the most cautious, joint assumption), so that point and
every quantile reconcile exactly; *direct*: from the non-GAAP history itself. SBC is read from
its own column and, where missing, from the identity non-GAAP − net income when both are
reported (a reconciliation, not an interpolation).

Choice, by out-of-sample skill: over the past quarters both ways forecast (each from the data
before that quarter), the way with the smaller mean absolute error wins, given at least
``MIN_SKILL_QUARTERS`` such quarters; otherwise the reconciled way (exact identity) when it is
available. The same rule picks every backtest quarter's forecast from the quarters before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from services.forecast.core.data import derive_yoy_bands, quarter
from services.forecast.core.engine import fit, forecast, record_forecasts
from services.forecast.core.guided import Evidence, Pair, guide
from services.forecast.core.types import Fitted, ForecastSpec, MetricForecast, ModelSkill

NET_INCOME = "net_income"
NON_GAAP = "non_gaap_net_income"
SBC = "share_based_comp"
TARGET_METRICS = (NET_INCOME, NON_GAAP)
MIN_SKILL_QUARTERS = 2
RECONCILED, DIRECT = "reconciled", "direct"
Past = dict[str, dict[str, tuple[MetricForecast, float]]]
DEFAULT_EVIDENCE = Evidence()


@dataclass(frozen=True)
class NonGaapFits:
    """The fits behind a non-GAAP forecast (None where a series has too little history)."""

    net_income: Fitted | None
    sbc: Fitted | None
    direct: Fitted | None


def forecast_company(
    history: pd.DataFrame,
    *,
    target: str,
    guidance: pd.DataFrame | None = None,
    spec: ForecastSpec = ForecastSpec(),
    evidence: Evidence | None = DEFAULT_EVIDENCE,
) -> dict[str, MetricForecast]:
    """Forecasts for ``target`` of net income, non-GAAP net income and any guided metric; a
    guided figure stacked with the guidance evidence (``guided.py``) unless ``evidence`` is
    None (the statistical forecast alone)."""
    fits = non_gaap_fits(history, guidance, spec)
    others = {
        metric: fit(history, metric=metric, spec=spec, guidance=guidance)
        for metric in _metrics(history, target=target, guidance=guidance)
        if metric not in TARGET_METRICS and _enough(history, metric, spec)
    }
    results: dict[str, MetricForecast] = {}
    if fits.net_income is not None:
        results[NET_INCOME] = forecast(fits.net_income, target=target)
    non_gaap = non_gaap_forecast(fits, target, results.get(NET_INCOME))
    if non_gaap is not None:
        results[NON_GAAP] = non_gaap
    results.update({metric: forecast(f, target=target) for metric, f in others.items()})
    if evidence is None or guidance is None:
        return results
    derived = derive_yoy_bands(guidance, history)
    return guide(results, lambda: past_pairs(fits, others), history, derived, evidence)


def past_pairs(fits: NonGaapFits, others: Mapping[str, Fitted]) -> dict[str, list[Pair]]:
    """Every fit's out-of-sample forecasts of past quarters with their actuals (non-GAAP by
    the way its skill rule chose for each quarter)."""
    pairs = {metric: record_forecasts(f) for metric, f in others.items()}
    if fits.net_income is not None:
        pairs[NET_INCOME] = record_forecasts(fits.net_income)
    past = non_gaap_past(fits)
    chosen = []
    for target in sorted(set(past[RECONCILED]) | set(past[DIRECT]), key=quarter):
        options = {way: past[way][target][0] for way in past if target in past[way]}
        way = choose_way(past, options, before=target)
        chosen.append(past[way][target])
    pairs[NON_GAAP] = chosen
    return pairs


def non_gaap_fits(
    history: pd.DataFrame, guidance: pd.DataFrame | None, spec: ForecastSpec
) -> NonGaapFits:
    """Fits of net income (with guidance), SBC (identity-filled) and non-GAAP (direct)."""
    with_sbc = implied_sbc(history)

    def maybe(frame: pd.DataFrame, metric: str, known: pd.DataFrame | None) -> Fitted | None:
        if not _enough(frame, metric, spec):
            return None
        return fit(frame, metric=metric, spec=spec, guidance=known)

    return NonGaapFits(
        maybe(history, NET_INCOME, guidance),
        maybe(with_sbc, SBC, None),
        maybe(history, NON_GAAP, guidance),
    )


def non_gaap_forecast(
    fits: NonGaapFits, target: str, net_income: MetricForecast | None
) -> MetricForecast | None:
    """The way chosen by past skill (module docstring) forecasts ``target``."""
    options: dict[str, MetricForecast] = {}
    if net_income is not None and fits.sbc is not None:
        sbc = forecast(fits.sbc, target=target)
        options[RECONCILED] = reconcile(net_income, sbc, metric=NON_GAAP)
    if fits.direct is not None:
        options[DIRECT] = forecast(fits.direct, target=target)
    if not options:
        return None
    past = non_gaap_past(fits)
    return options[choose_way(past, options, before=str(quarter(target)))]


def non_gaap_past(fits: NonGaapFits) -> Past:
    """Each way's out-of-sample non-GAAP forecasts of past quarters, with the actuals."""
    past: Past = {RECONCILED: {}, DIRECT: {}}
    if fits.direct is not None:
        past[DIRECT] = {f.target: (f, a) for f, a in record_forecasts(fits.direct)}
    if fits.net_income is not None and fits.sbc is not None:
        sbc = {f.target: (f, a) for f, a in record_forecasts(fits.sbc)}
        for ni, actual in record_forecasts(fits.net_income):
            if ni.target in sbc:
                total = reconcile(ni, sbc[ni.target][0], metric=NON_GAAP)
                past[RECONCILED][ni.target] = (total, actual + sbc[ni.target][1])
    return past


def choose_way(past: Past, options: Mapping[str, object], *, before: str) -> str:
    """RECONCILED or DIRECT for a forecast of quarter ``before``: the smaller mean absolute
    error over the quarters before it that both ways forecast (at least MIN_SKILL_QUARTERS),
    else RECONCILED when available."""
    if len(options) == 1:
        return next(iter(options))
    common = sorted(set(past[RECONCILED]) & set(past[DIRECT]))
    common = [t for t in common if quarter(t) < quarter(before)]
    if len(common) < MIN_SKILL_QUARTERS:
        return RECONCILED
    mae = {way: _mae([past[way][t] for t in common]) for way in (RECONCILED, DIRECT)}
    return DIRECT if mae[DIRECT] < mae[RECONCILED] else RECONCILED


def ways_available(history: pd.DataFrame, period: pd.Period, spec: ForecastSpec) -> set[str]:
    """The ways a fit on the history before ``period`` can forecast non-GAAP net income."""
    past = implied_sbc(history.loc[history.index < period])
    ways = {DIRECT} if _enough(past, NON_GAAP, spec) else set()
    if _enough(past, NET_INCOME, spec) and _enough(past, SBC, spec):
        ways.add(RECONCILED)
    return ways


def _mae(pairs: list[tuple[MetricForecast, float]]) -> float:
    return float(np.mean([abs(actual - f.point) for f, actual in pairs]))


def implied_sbc(history: pd.DataFrame) -> pd.DataFrame:
    """History whose SBC column is filled, where empty, by non-GAAP − net income."""
    reported = history[SBC] if SBC in history.columns else pd.Series(np.nan, index=history.index)
    if NON_GAAP in history.columns and NET_INCOME in history.columns:
        reported = reported.fillna(history[NON_GAAP] - history[NET_INCOME])
    return history.assign(**{SBC: reported})


def reconcile(base: MetricForecast, addend: MetricForecast, *, metric: str) -> MetricForecast:
    """``base + addend`` quantile by quantile (comonotone), point by point."""
    probs = [p for p, _ in base.quantiles]
    if probs != [p for p, _ in addend.quantiles] or base.target != addend.target:
        raise ValueError("reconcile needs forecasts of one target on one quantile grid")
    values = [a + b for (_, a), (_, b) in zip(base.quantiles, addend.quantiles, strict=True)]
    return MetricForecast(
        metric=metric,
        target=base.target,
        point=base.point + addend.point,
        lo80=base.lo80 + addend.lo80,
        hi80=base.hi80 + addend.hi80,
        lo95=base.lo95 + addend.lo95,
        hi95=base.hi95 + addend.hi95,
        quantiles=tuple(zip(probs, values, strict=True)),
        models=_prefixed(base) + _prefixed(addend),
        drivers=base.drivers,
        n_obs=min(base.n_obs, addend.n_obs),
        method=f"{base.metric} + {addend.metric} (comonotone sum of calibrated forecasts)",
    )


def _prefixed(forecast_: MetricForecast) -> tuple[ModelSkill, ...]:
    return tuple(
        ModelSkill(f"{forecast_.metric}:{m.name}", m.weight, m.mape, m.mase, m.n)
        for m in forecast_.models
    )


def _metrics(history: pd.DataFrame, *, target: str, guidance: pd.DataFrame | None) -> list[str]:
    guided: list[str] = []
    if guidance is not None and not guidance.empty:
        rows = guidance[guidance["for_quarter"] == str(quarter(target))]
        guided = sorted(set(rows["metric"]) - set(TARGET_METRICS))
    return [m for m in (*TARGET_METRICS, *guided) if m in history.columns]


def _enough(history: pd.DataFrame, metric: str, spec: ForecastSpec) -> bool:
    return metric in history.columns and int(history[metric].notna().sum()) >= spec.min_train
