"""A guided figure's forecast: the statistical forecast stacked with the guidance evidence.

For a (metric, period) the company guided, ``Evidence.call`` takes the statistical forecast,
the band, the company's landings known before the period and the past guided calls, and
returns the pooled predictive distribution (``evidence.py``). The backtest and the live
forecast both come through here, each with only what was known before the guided period.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pandas as pd

from services.common.distribution import Grid, linear_pool
from services.forecast.core.data import FREQ, guidance_band, guidance_before, quarter
from services.forecast.core.evidence import (
    GuidedBand,
    PositionPrior,
    evidence_quantiles,
    learned_prior,
    published_prior,
    record_weights,
    stacking_weight,
)
from services.forecast.core.types import MetricForecast, ModelSkill

K = TypeVar("K", bound=Hashable)
FISCAL_YEAR_PREFIX = "FY"
EVIDENCE_MODEL = "guidance_evidence"


@dataclass(frozen=True)
class Landing:
    """Where one statement's actual landed, and the first quarter its actual was known in."""

    metric: str
    period: str
    position: float
    known_from: int  # quarterly Period ordinal


@dataclass(frozen=True)
class PastCall:
    """Log densities, at the actual, of the two distributions a past guided call pooled."""

    period: str
    log_guided: float
    log_statistical: float


@dataclass(frozen=True)
class GuidedCall:
    """The pooled forecast of a guided figure and what went into it."""

    forecast: MetricForecast
    band: GuidedBand
    guidance_only: tuple[tuple[float, float], ...]
    weight: float
    landings: int


@dataclass(frozen=True)
class Evidence:
    """The prior of where actuals land, and past calls pooled from elsewhere (other companies
    in the store, other series of a panel) that inform the stacking weight."""

    prior: PositionPrior = field(default_factory=published_prior)
    shared_calls: tuple[PastCall, ...] = ()

    def call(
        self,
        statistical: MetricForecast,
        band: GuidedBand,
        *,
        landings: Sequence[Landing],
        past: Iterable[PastCall],
        as_of: pd.Period | None = None,
    ) -> GuidedCall:
        """``as_of``: the quarter the call is made in (default: the target quarter)."""
        target = (as_of or quarter(statistical.target)).ordinal
        ages = [target - landing.known_from for landing in landings]
        weights = [float(w) for w in record_weights(ages)]
        predictive = self.prior.predictive([landing.position for landing in landings], weights)
        probabilities = [p for p, _ in statistical.quantiles]
        guided = evidence_quantiles(band, predictive, probabilities)
        calls = [*self.shared_calls, *past]
        weight = stacking_weight([c.log_guided for c in calls], [c.log_statistical for c in calls])
        pooled = pooled_forecast(statistical, guided, weight, landings=len(landings))
        return GuidedCall(pooled, band, guided, weight, len(landings))


Pair = tuple[MetricForecast, float]  # an out-of-sample statistical forecast and its actual


def walk_calls(
    pairs: Mapping[str, Sequence[Pair]],
    history: pd.DataFrame,
    guidance: pd.DataFrame | None,
    evidence: Evidence,
) -> Iterator[tuple[MetricForecast, float, GuidedCall | None]]:
    """Every past forecast in period order, guided quarters called with what was known before
    them: the landings before the quarter and the calls resolved before it (any metric)."""
    ordered = sorted(
        ((quarter(f.target), metric, f, a) for metric, found in pairs.items() for f, a in found),
        key=lambda item: (item[0], item[1]),
    )
    resolved: list[PastCall] = []
    for period, metric, statistical, actual in ordered:
        band = target_band(guidance, metric=metric, period=period)
        if band is None:
            yield statistical, actual, None
            continue
        before = [c for c in resolved if quarter(c.period) < period]
        landings = landings_before(history, guidance, period)
        call = evidence.call(statistical, band, landings=landings, past=before)
        resolved.append(past_call(call, statistical, actual))
        yield statistical, actual, call


def guide(
    results: Mapping[K, MetricForecast],
    pairs: Callable[[], Mapping[str, Sequence[Pair]]],
    history: pd.DataFrame,
    guidance: pd.DataFrame | None,
    evidence: Evidence,
) -> dict[K, MetricForecast]:
    """``results`` with every guided target stacked with the guidance evidence. ``pairs``
    gives the fits' past out-of-sample forecasts, whose guided quarters teach the stacking
    weight; it is called only when some target is guided."""
    bands = {
        key: target_band(guidance, metric=r.metric, period=quarter(r.target))
        for key, r in results.items()
    }
    if all(band is None for band in bands.values()):
        return dict(results)
    past = [
        past_call(call, statistical, actual)
        for statistical, actual, call in walk_calls(pairs(), history, guidance, evidence)
        if call is not None
    ]
    guided: dict[K, MetricForecast] = {}
    for key, result in results.items():
        band, period = bands[key], quarter(result.target)
        if band is None:
            guided[key] = result
            continue
        known = [c for c in past if quarter(c.period) < period]
        landings = landings_before(history, guidance, period)
        guided[key] = evidence.call(result, band, landings=landings, past=known).forecast
    return guided


TRACK_LIMIT = 40  # landings and calls kept per company for the store-wide evidence


@dataclass(frozen=True)
class Track:
    """A company's contribution to the evidence of others: where its actuals landed and what
    its resolved calls taught (the most recent ``TRACK_LIMIT`` of each)."""

    positions: tuple[float, ...]
    calls: tuple[PastCall, ...]

    def to_json(self) -> str:
        calls = [[c.period, c.log_guided, c.log_statistical] for c in self.calls]
        return json.dumps({"positions": list(self.positions), "calls": calls})

    @classmethod
    def from_json(cls, text: str | bytes) -> Track:
        data = json.loads(text)
        calls = tuple(PastCall(str(p), float(g), float(s)) for p, g, s in data["calls"])
        positions = tuple(float(x) for x in data["positions"])
        return cls(positions[-TRACK_LIMIT:], calls[-TRACK_LIMIT:])


def company_track(
    pairs: Mapping[str, Sequence[Pair]],
    history: pd.DataFrame,
    guidance: pd.DataFrame | None,
    evidence: Evidence,
    *,
    before: pd.Period,
) -> Track:
    """The company's landings and resolved calls known before ``before``."""
    landings = landings_before(history, guidance, before)
    calls = [
        past_call(call, statistical, actual)
        for statistical, actual, call in walk_calls(pairs, history, guidance, evidence)
        if call is not None and quarter(statistical.target) < before
    ]
    ordered = sorted(landings, key=lambda landing: landing.known_from)
    return Track(tuple(x.position for x in ordered)[-TRACK_LIMIT:], tuple(calls)[-TRACK_LIMIT:])


def shared_evidence(tracks: Mapping[str, Track], *, exclude: str) -> Evidence:
    """Evidence learned from the other companies' tracks: the empirical-Bayes prior of where
    actuals land and their resolved calls for the stacking weight."""
    others = {company: t for company, t in tracks.items() if company != exclude}
    prior = learned_prior({company: list(t.positions) for company, t in others.items()})
    return Evidence(prior, tuple(c for t in others.values() for c in t.calls))


def past_call(call: GuidedCall, statistical: MetricForecast, actual: float) -> PastCall:
    """What a resolved call teaches the stacking weight."""
    return PastCall(
        statistical.target,
        float(Grid.of(call.guidance_only).log_density(actual)),
        float(Grid.of(statistical.quantiles).log_density(actual)),
    )


def pooled_forecast(
    statistical: MetricForecast,
    guided: tuple[tuple[float, float], ...],
    weight: float,
    *,
    landings: int,
) -> MetricForecast:
    """w·guidance + (1 − w)·statistical as a quantile grid; the point is its median."""
    probabilities = [p for p, _ in statistical.quantiles]
    grid = linear_pool([guided, statistical.quantiles], [weight, 1 - weight], probabilities)
    values = {round(p, 6): v for p, v in grid}
    median = float(Grid.of(grid).quantile(0.5))
    skills = tuple(
        ModelSkill(m.name, m.weight * (1 - weight), m.mape, m.mase, m.n) for m in statistical.models
    )
    evidence = ModelSkill(EVIDENCE_MODEL, weight, math.nan, None, landings)
    return MetricForecast(
        metric=statistical.metric,
        target=statistical.target,
        point=median,
        lo80=values[0.1],
        hi80=values[0.9],
        lo95=values[0.025],
        hi95=values[0.975],
        quantiles=grid,
        models=(*skills, evidence),
        drivers=statistical.drivers,
        n_obs=statistical.n_obs,
        method=f"stacked with guidance evidence (weight {weight:.2f}, {landings} landings)",
    )


def target_band(
    guidance: pd.DataFrame | None, *, metric: str, period: pd.Period
) -> GuidedBand | None:
    """The band guided for ``metric`` in ``period`` by statements issued before it (growth
    statements carry the band `derive_yoy_bands` gave them)."""
    found = guidance_band(guidance_before(guidance, period), metric=metric, period=period)
    return None if found is None else GuidedBand(*found)


def landings_before(
    history: pd.DataFrame, guidance: pd.DataFrame | None, before: pd.Period
) -> list[Landing]:
    """Every guided statement whose actual was known before ``before``: quarters before it,
    fiscal years whose four quarters all are. The last statement issued for a figure counts."""
    if guidance is None or guidance.empty:
        return []
    known = history.loc[history.index < before]
    found = []
    for metric, period in _guided_figures(guidance_before(guidance, before)):
        actual, known_from = _actual(known, metric, period)
        if actual is None:
            continue
        band = _band(guidance_before(guidance, before), metric, period)
        if band is not None:
            found.append(Landing(metric, period, band.position(actual), known_from))
    return found


def _band(guidance: pd.DataFrame | None, metric: str, label: str) -> GuidedBand | None:
    found = guidance_band(guidance, metric=metric, period=label)
    return None if found is None else GuidedBand(*found)


def _guided_figures(guidance: pd.DataFrame | None) -> list[tuple[str, str]]:
    if guidance is None or guidance.empty:
        return []
    pairs = guidance[["metric", "for_quarter"]].drop_duplicates()
    return [(str(m), str(p)) for m, p in pairs.itertuples(index=False)]


def _last_quarter(period: str) -> pd.Period:
    """A quarter as itself; a fiscal year ``FY2020`` as its fourth quarter."""
    if period.startswith(FISCAL_YEAR_PREFIX):
        return pd.Period(f"{period[len(FISCAL_YEAR_PREFIX) :]}Q4", freq=FREQ)
    return quarter(period)


def _actual(known: pd.DataFrame, metric: str, period: str) -> tuple[float | None, int]:
    """The actual of a quarter or a fiscal year (the sum of its four quarters), and the
    ordinal of the quarter after the last one it needs."""
    last = _last_quarter(period)
    if metric not in known.columns:
        return None, 0
    quarters = [last - k for k in range(4)] if period.startswith(FISCAL_YEAR_PREFIX) else [last]
    values = [known[metric].get(q, np.nan) for q in quarters]
    if not all(np.isfinite(v) for v in values):
        return None, 0
    return float(np.sum(values)), int((last + 1).ordinal)
