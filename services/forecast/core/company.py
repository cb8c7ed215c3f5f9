"""Forecasts for a company's result lines that respect their reconciliation.

Non-GAAP net income = net income + share-based compensation (SBC). Net income and SBC are
forecast separately and added quantile by quantile (a comonotone sum: the widest, and so the
most cautious, joint assumption), so that point and every quantile reconcile exactly. SBC is
read from its own column and, where missing, from the identity non-GAAP − net income when both
are reported (a reconciliation, not an interpolation). With too little SBC history the
non-GAAP figure is forecast directly from its own history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.forecast.core.data import quarter
from services.forecast.core.engine import fit, forecast
from services.forecast.core.types import ForecastSpec, MetricForecast, ModelSkill

NET_INCOME = "net_income"
NON_GAAP = "non_gaap_net_income"
SBC = "share_based_comp"
TARGET_METRICS = (NET_INCOME, NON_GAAP)


def forecast_company(
    history: pd.DataFrame,
    *,
    target: str,
    guidance: pd.DataFrame | None = None,
    spec: ForecastSpec = ForecastSpec(),
) -> dict[str, MetricForecast]:
    """Forecasts for ``target`` of net income, non-GAAP net income and any guided metric."""
    results: dict[str, MetricForecast] = {}
    for metric in _metrics(history, target=target, guidance=guidance):
        if metric != NON_GAAP and _enough(history, metric, spec):
            results[metric] = one_metric(history, metric, target, guidance, spec)
    if _enough(history, NON_GAAP, spec) or _enough(implied_sbc(history), SBC, spec):
        non_gaap = non_gaap_forecast(history, target, guidance, spec, results.get(NET_INCOME))
        if non_gaap is not None:
            results[NON_GAAP] = non_gaap
    return results


def one_metric(
    history: pd.DataFrame,
    metric: str,
    target: str,
    guidance: pd.DataFrame | None,
    spec: ForecastSpec,
) -> MetricForecast:
    return forecast(fit(history, metric=metric, spec=spec, guidance=guidance), target=target)


def non_gaap_forecast(
    history: pd.DataFrame,
    target: str,
    guidance: pd.DataFrame | None,
    spec: ForecastSpec,
    net_income: MetricForecast | None,
) -> MetricForecast | None:
    """Net income + SBC when both can be forecast, else non-GAAP from its own history."""
    with_sbc = implied_sbc(history)
    if net_income is not None and _enough(with_sbc, SBC, spec):
        sbc = one_metric(with_sbc, SBC, target, None, spec)
        return reconcile(net_income, sbc, metric=NON_GAAP)
    if _enough(history, NON_GAAP, spec):
        return one_metric(history, NON_GAAP, target, guidance, spec)
    return None


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
