"""From a company's history and guidance to its forecast and trend events, with the fitted
states kept between refits.

A refit is incremental when it can be: each company's compact fitted state stays in a bounded
LRU (`states.py`), and a new observation runs the candidates with their fixed parameters
(`update`). The state is fitted afresh when missing (a new company, an evicted one, another
worker's), when older than `full_refit_s`, or when `update` itself decides enough new quarters
arrived.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd

from schemas.forecasts import ForecastUpdated, TrendUpdated, TrendVerdict
from schemas.periods import Quarter
from schemas.registry import DELINQUENCY_METRICS, Unit, metric_spec
from services.common.histories.facts import FactVersion
from services.common.histories.guidance import GuidanceVersion
from services.common.metrics import NO_METRICS, FitMetrics
from services.forecast.assemble import MODEL_SCALE, QuarterlyHistory, assemble, observations_of
from services.forecast.core import Fitted, ForecastSpec, MetricForecast, fit, forecast, update
from services.forecast.core.company import (
    DEFAULT_EVIDENCE,
    NET_INCOME,
    NON_GAAP,
    SBC,
    NonGaapFits,
    implied_sbc,
    non_gaap_forecast,
    past_pairs,
)
from services.forecast.core.data import derive_yoy_bands
from services.forecast.core.data import quarter as period_of
from services.forecast.core.guided import Evidence, Track, company_track, guide
from services.forecast.events import derived_inputs, forecast_event, trend_event
from services.forecast.states import CompanyState, FittedStates
from services.forecast.trends import TrendSpec, fit_trend

log = logging.getLogger(__name__)
DEFAULT_FULL_REFIT_S = 6 * 3600.0
DEFAULT_MAX_HISTORY_QUARTERS = 160  # 40 years: a refit's memory and time grow with the span


@dataclass(frozen=True)
class RefitInputs:
    """One company's refit: its quarterly history, guidance and the others' evidence."""

    company: str
    history: QuarterlyHistory
    guidance: list[GuidanceVersion]
    currency: str
    as_of: str  # when its latest fact became known
    evidence: Evidence = DEFAULT_EVIDENCE


def refit_inputs(
    company: str,
    versions: list[FactVersion],
    guidance: list[GuidanceVersion],
    evidence: Evidence,
    *,
    max_quarters: int = DEFAULT_MAX_HISTORY_QUARTERS,
) -> RefitInputs:
    """Raises ValueError on mixed currencies, HistorySpanError on too long a span."""
    currency = _currency(versions)
    history = assemble(observations_of(versions), max_quarters=max_quarters)
    as_of = max((v.known_at for v in versions), default="")
    return RefitInputs(company, history, guidance, currency, as_of, evidence)


@dataclass(frozen=True)
class Refitted:
    forecasts: list[ForecastUpdated]
    trends: list[TrendUpdated]
    track: Track | None  # the company's landings and calls, for the others' evidence


class CompanyFitter:
    def __init__(
        self,
        *,
        spec: ForecastSpec = ForecastSpec(),
        states: FittedStates | None = None,
        full_refit_s: float = DEFAULT_FULL_REFIT_S,
        metrics: FitMetrics = NO_METRICS,
    ) -> None:
        self._spec = spec
        self.states = states or FittedStates()
        self._full_refit_s = full_refit_s
        self._metrics = metrics
        self.fits = {"full": 0, "incremental": 0}  # metric fits of each kind, for benchmarks

    def refit(self, inputs: RefitInputs) -> Refitted:
        forecasts, track = self.forecasts(inputs)
        history = inputs.history
        found = (self.trend(inputs.company, history, m) for m in DELINQUENCY_METRICS)
        return Refitted(forecasts, [trend for trend in found if trend], track)

    def forecasts(self, inputs: RefitInputs) -> tuple[list[ForecastUpdated], Track | None]:
        """The company's forecast events, and its track (None without guidance)."""
        frame = inputs.history.frame
        target = next_target(frame)
        if target is None:
            return [], None
        guidance = derive_yoy_bands(guidance_table(inputs.guidance), frame)
        results, track = self.forecast_metrics(
            inputs.company, frame, target, guidance, inputs.evidence
        )
        money = [r for r in results.values() if metric_spec(r.metric).unit is Unit.MONEY]
        digest = _digest(frame, guidance)
        return [self._event(inputs, result, digest) for result in money], track

    @staticmethod
    def _event(inputs: RefitInputs, result: MetricForecast, digest: str) -> ForecastUpdated:
        return forecast_event(
            inputs.company,
            result,
            currency=inputs.currency,
            as_of=inputs.as_of,
            digest=digest,
            derived=derived_inputs(result, inputs.history.derived),
        )

    def forecast_metrics(
        self,
        company: str,
        frame: pd.DataFrame,
        target: str,
        guidance: pd.DataFrame,
        evidence: Evidence = DEFAULT_EVIDENCE,
    ) -> tuple[dict[tuple[str, str], MetricForecast], Track | None]:
        """What `core.forecast_company` computes, from the company's kept state when fresh, for
        the target quarter and for the rest of any fiscal year with open guidance."""
        started = time.perf_counter()
        state = self.states.take(company, max_age_s=self._full_refit_s) or CompanyState()
        fits = self._fits(state, frame, target, guidance)
        non_gaap = self._non_gaap(state, fits, frame, guidance)
        results: dict[tuple[str, str], MetricForecast] = {}
        for quarter in _open_quarters(target, guidance):
            results.update(_forecasts_for(quarter, fits, non_gaap))
        others = {m: f for m, f in fits.items() if m not in (NET_INCOME, SBC, NON_GAAP)}
        pairs = functools.cache(lambda: past_pairs(non_gaap, others))
        results = guide(results, pairs, frame, guidance, evidence)
        track = None
        if not guidance.empty:
            track = company_track(pairs(), frame, guidance, evidence, before=period_of(target))
        self._keep(company, state, fits)
        self._metrics.observe_fit(time.perf_counter() - started)
        return results, track

    def _fits(
        self, state: CompanyState, frame: pd.DataFrame, target: str, guidance: pd.DataFrame
    ) -> dict[str, Fitted]:
        return {
            metric: self._fitted(state, frame, metric, guidance)
            for metric in _direct_metrics(frame, target, guidance)
            if _enough(frame, metric, self._spec)
        }

    def _keep(self, company: str, state: CompanyState, fits: dict[str, Fitted]) -> None:
        if not state.fits:
            state.fitted_at = time.monotonic()
        state.fits = fits
        self.states.put(company, state)

    def _non_gaap(
        self,
        state: CompanyState,
        fits: dict[str, Fitted],
        frame: pd.DataFrame,
        guidance: pd.DataFrame,
    ) -> NonGaapFits:
        """The fits the core's non-GAAP choice needs (reconciled vs direct, by past skill)."""
        with_sbc = implied_sbc(frame)
        if _enough(with_sbc, SBC, self._spec):
            fits[SBC] = self._fitted(state, with_sbc, SBC, None)
        if _enough(frame, NON_GAAP, self._spec):
            fits[NON_GAAP] = self._fitted(state, frame, NON_GAAP, guidance)
        return NonGaapFits(fits.get(NET_INCOME), fits.get(SBC), fits.get(NON_GAAP))

    def _fitted(
        self,
        state: CompanyState,
        frame: pd.DataFrame,
        metric: str,
        guidance: pd.DataFrame | None,
    ) -> Fitted:
        previous = state.fits.get(metric)
        if previous is not None:
            try:
                updated = update(previous, frame, guidance=guidance)
            except ValueError:
                log.info("update of %s failed; fitting afresh", metric, exc_info=True)
            else:
                self.fits["incremental"] += 1
                return updated
        self.fits["full"] += 1
        return fit(frame, metric=metric, spec=self._spec, guidance=guidance)

    def trend(self, company: str, history: QuarterlyHistory, metric: str) -> TrendUpdated | None:
        if metric not in history.frame.columns or history.frame[metric].notna().sum() < 2:
            return None
        series = history.frame[metric]
        key = series.to_json(double_precision=10)
        state = self.states.take(company, max_age_s=float("inf")) or CompanyState(fitted_at=0.0)
        cached = state.trends.get(metric)
        if cached is None or cached[0] != key:
            cached = (key, _fit_trend(company, series, metric))
            state.trends[metric] = cached
        self.states.put(company, state)
        return cached[1]


def _fit_trend(company: str, series: pd.Series, metric: str) -> TrendUpdated | None:
    spec = TrendSpec(higher_is_worse=metric_spec(metric).higher_is_worse)
    result = fit_trend(series, metric=metric, spec=spec)
    if result.verdict == TrendVerdict.INSUFFICIENT_DATA.value:
        return None  # too few points for a trend; nothing to publish yet
    return trend_event(company, result)


def _direct_metrics(frame: pd.DataFrame, target: str, guidance: pd.DataFrame) -> list[str]:
    """Net income and every metric guided for the target quarter or its fiscal year
    (non-GAAP comes after)."""
    guided: set[str] = set()
    if not guidance.empty:
        periods = {target, f"FY{Quarter.parse(target).year}"}
        guided = set(guidance.loc[guidance["for_quarter"].isin(periods), "metric"])
    ordered = [NET_INCOME, *sorted(guided - {NET_INCOME, NON_GAAP})]
    return [m for m in ordered if m in frame.columns]


def _open_quarters(target: str, guidance: pd.DataFrame) -> list[str]:
    """The target quarter, and the later quarters of fiscal years with open guidance."""
    quarters = {target}
    first = Quarter.parse(target)
    if not guidance.empty:
        for period in set(guidance["for_quarter"]):
            if str(period).startswith("FY") and int(str(period)[2:]) == first.year:
                quarters |= {str(Quarter(first.year, q)) for q in range(first.quarter, 5)}
    return sorted(quarters)


def _forecasts_for(
    quarter: str, fits: dict[str, Fitted], non_gaap: NonGaapFits
) -> dict[tuple[str, str], MetricForecast]:
    results = {
        (metric, quarter): forecast(fitted, target=quarter)
        for metric, fitted in fits.items()
        if metric not in (SBC, NON_GAAP)
    }
    combined = non_gaap_forecast(non_gaap, quarter, results.get((NET_INCOME, quarter)))
    if combined is not None:
        results[(NON_GAAP, quarter)] = combined
    return results


def _enough(frame: pd.DataFrame, metric: str, spec: ForecastSpec) -> bool:
    return metric in frame.columns and int(frame[metric].notna().sum()) >= spec.min_train


def next_target(frame: pd.DataFrame) -> str | None:
    """The quarter after the last one with reported net income (or any reported quarter)."""
    column = "net_income" if "net_income" in frame.columns else None
    observed = frame[column].dropna() if column else frame.dropna(how="all")
    if observed.empty:
        return None
    return str(Quarter.parse(str(observed.index[-1])).next())


def guidance_table(guidance: list[GuidanceVersion]) -> pd.DataFrame:
    """Guidance in the core's columns, money in millions (withdrawn statements left out; a
    statement of growth alone has NaN low and high until `derive_yoy_bands`)."""
    rows = [
        {
            "issued_in_quarter": v.issued_in_period or v.period,
            "for_quarter": v.period,
            "metric": v.metric,
            "low": _millions(v.low),
            "high": _millions(v.high),
            "yoy_low_pct": float(v.yoy_low_pct) if v.yoy_low_pct else float("nan"),
            "yoy_high_pct": float(v.yoy_high_pct) if v.yoy_high_pct else float("nan"),
        }
        for v in guidance
        if v.status == "issued" and (v.band() is not None or v.growth() is not None)
    ]
    columns = [
        "issued_in_quarter",
        "for_quarter",
        "metric",
        "low",
        "high",
        "yoy_low_pct",
        "yoy_high_pct",
    ]
    return pd.DataFrame(rows, columns=columns)


def _millions(value: str | None) -> float:
    return float(Decimal(value) / MODEL_SCALE.factor) if value is not None else float("nan")


def _currency(versions: list[FactVersion]) -> str:
    currencies = {v.currency for v in versions if v.currency}
    if len(currencies) > 1:
        raise ValueError(f"history mixes currencies {sorted(currencies)}; convert before ingest")
    return currencies.pop() if currencies else "CNY"


def _digest(frame: pd.DataFrame, guidance: pd.DataFrame) -> str:
    payload = frame.to_json(double_precision=10) + guidance.to_json(double_precision=10)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]
