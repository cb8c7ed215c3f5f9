"""Stored facts at native frequency → one quarterly frame for the numerical core.

Daily or monthly values become quarters by the metric's kind: flows are summed, stocks and
point-in-time rates take the last value, in-period rates are averaged (weighted by the
registry's weight metric where there is one). A quarterly figure reported as such always wins
over an aggregate.

A quarter whose sub-periods are incomplete is marked partial and nowcast: a flow's sum is
scaled to the whole quarter by the share of its days covered (two months of volume stand for
two thirds of the quarter), while stocks and rates keep their latest value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd

from schemas.money import Scale
from schemas.periods import Frequency, Quarter, frequency_of, period_end, quarter_of
from schemas.registry import Aggregation, Unit, UnknownMetricError, metric_spec
from services.common.histories.facts import FactVersion
from services.forecast.core.identities import Derivation, fill_identities

Observation = tuple[str, str, float]  # metric, period, value in the model's unit
MODEL_SCALE = Scale.MILLIONS  # the core sees money in millions of the company's currency


@dataclass(frozen=True)
class QuarterlyHistory:
    frame: pd.DataFrame  # PeriodIndex (Q-DEC) named 'period', one float column per metric
    partial: frozenset[tuple[str, str]]  # (metric, quarter) aggregated from incomplete data
    derived: tuple[Derivation, ...] = ()  # figures the accounting identities filled in


def assemble(
    observations: Iterable[Observation], *, max_quarters: int | None = None
) -> QuarterlyHistory:
    """The quarterly frame, its gaps then filled where accounting identities determine them
    (reported fiscal years of flows take part: a year less three quarters is the fourth).

    Raises HistorySpanError when the quarters observed span more than `max_quarters`: what a
    refit holds and fits grows with the span, so one stray period decades away must not make
    it build an index of thousands of quarters (the caller quarantines the company instead)."""
    observations = list(observations)
    if max_quarters is not None:
        check_span(observations, max_quarters)
    direct: dict[tuple[str, Quarter], float] = {}
    finer: dict[tuple[str, Quarter], list[tuple[str, float]]] = defaultdict(list)
    years: dict[tuple[str, int], float] = {}
    for metric, period, value in observations:
        if frequency_of(period) is Frequency.FISCAL_YEAR:
            if metric_spec(metric).aggregation is Aggregation.SUM:
                years[(metric, int(period[2:]))] = value
            continue
        quarter = quarter_of(period)
        if frequency_of(period) is Frequency.QUARTER:
            direct[(metric, quarter)] = value
        else:
            finer[(metric, quarter)].append((period, value))
    values = dict(direct)
    partial: set[tuple[str, str]] = set()
    for (metric, quarter), points in finer.items():
        if (metric, quarter) in direct:
            continue
        value = _aggregate(metric, quarter, sorted(points), finer)
        periods = [period for period, _ in points]
        if not _complete(quarter, periods):
            partial.add((metric, str(quarter)))
            value = _nowcast(metric, quarter, periods, value)
        values[(metric, quarter)] = value
    filled = fill_identities(_frame(values), fiscal_years=years)
    return QuarterlyHistory(filled.frame, frozenset(partial), filled.derived)


class HistorySpanError(ValueError):
    """A company's history spans more quarters than a refit may hold."""


def check_span(observations: list[Observation], max_quarters: int) -> None:
    quarters = [
        quarter_of(period)
        for _, period, _ in observations
        if frequency_of(period) is not Frequency.FISCAL_YEAR
    ]
    if not quarters:
        return
    first, last = min(quarters), max(quarters)
    span = (last.year - first.year) * 4 + last.quarter - first.quarter + 1
    if span > max_quarters:
        raise HistorySpanError(
            f"the history spans {span} quarters ({first} to {last}), more than the "
            f"{max_quarters} a refit may hold; retract the stray fact (guidepost history retract)"
        )


def _aggregate(
    metric: str,
    quarter: Quarter,
    points: list[tuple[str, float]],
    finer: dict[tuple[str, Quarter], list[tuple[str, float]]],
) -> float:
    spec = metric_spec(metric)
    numbers = [value for _, value in points]
    if spec.aggregation is Aggregation.SUM:
        return sum(numbers)
    if spec.aggregation is Aggregation.LAST:
        return numbers[-1]
    weights = dict(finer.get((spec.weight_metric, quarter), [])) if spec.weight_metric else {}
    paired = [(value, weights.get(period)) for period, value in points]
    if spec.aggregation is Aggregation.WEIGHTED_MEAN and all(w for _, w in paired):
        total = sum(w for _, w in paired if w)
        return sum(value * (w or 0.0) for value, w in paired) / total
    return sum(numbers) / len(numbers)


def _nowcast(metric: str, quarter: Quarter, periods: list[str], value: float) -> float:
    """A partial flow at the run rate of the days it covers; other kinds as observed."""
    if metric_spec(metric).aggregation is not Aggregation.SUM:
        return value
    covered = _days_covered(quarter, periods)
    total = (quarter.end - quarter.start).days + 1
    return value * total / covered if covered else value


def _days_covered(quarter: Quarter, periods: list[str]) -> int:
    days = 0
    for period in set(periods):
        if frequency_of(period) is Frequency.MONTH:
            days += period_end(period).day
        else:
            days += 1
    return min(days, (quarter.end - quarter.start).days + 1)


def _complete(quarter: Quarter, periods: list[str]) -> bool:
    """Months: all three present. Days: the last day of the quarter is covered."""
    if all(frequency_of(p) is Frequency.MONTH for p in periods):
        return set(quarter.months) <= set(periods)
    return max(period_end(p) for p in periods) >= quarter.end


def _frame(values: dict[tuple[str, Quarter], float]) -> pd.DataFrame:
    if not values:
        return pd.DataFrame(index=pd.PeriodIndex([], freq="Q-DEC", name="period"))
    quarters = sorted({quarter for _, quarter in values})
    first, last = quarters[0], quarters[-1]
    span = pd.period_range(str(first), str(last), freq="Q-DEC", name="period")
    frame = pd.DataFrame(index=span, dtype=float)
    for (metric, quarter), value in values.items():
        frame.loc[pd.Period(str(quarter), freq="Q-DEC"), metric] = value
    return frame.sort_index(axis=1)


# --------------------------------------------------------------------------- stored facts


def observations_of(versions: Iterable[FactVersion]) -> list[Observation]:
    """Facts of the registry's metrics in the model's units (money in `MODEL_SCALE`)."""
    return [(v.metric, v.period, model_value(v)) for v in versions if _known_metric(v.metric)]


def model_value(version: FactVersion) -> float:
    if metric_spec(version.metric).unit is Unit.MONEY:
        return float(version.value / MODEL_SCALE.factor)
    return float(version.value)


def _known_metric(metric: str) -> bool:
    try:
        metric_spec(metric)
    except UnknownMetricError:
        return False
    return True


@dataclass(frozen=True)
class DerivedFact:
    """A figure no source reported but an accounting identity determines, in the stored facts'
    units (whole currency units for money), known once its last source was known."""

    metric: str
    period: str
    value: Decimal
    precision: Decimal
    currency: str | None
    known_at: str
    derived_from: str


def derived_facts(current: list[FactVersion]) -> list[DerivedFact]:
    """What the identities derive from the current facts (one version per metric and period,
    e.g. `latest_as_of`), each with the rule and the figures it came from."""
    history = assemble(observations_of(current))
    sources = {(v.metric, v.period): v for v in current}
    known: dict[tuple[str, str], tuple[str, Decimal]] = {
        key: (v.known_at, v.precision) for key, v in sources.items()
    }
    currency = next((v.currency for v in current if v.currency), None)
    facts = []
    for derivation in history.derived:
        inputs = [known[s] for s in derivation.sources if s in known]
        known_at = max((k for k, _ in inputs), default="")
        precision = max((p for _, p in inputs), default=Decimal(0))
        known[(derivation.metric, derivation.period)] = (known_at, precision)
        money = metric_spec(derivation.metric).unit is Unit.MONEY
        facts.append(
            DerivedFact(
                metric=derivation.metric,
                period=derivation.period,
                value=_stored_value(derivation.value, money=money),
                precision=precision,
                currency=currency if money else None,
                known_at=known_at,
                derived_from=derivation.text,
            )
        )
    return facts


def _stored_value(value: float, *, money: bool) -> Decimal:
    if money:
        return Decimal(round(value * float(MODEL_SCALE.factor)))
    return Decimal(repr(round(value, 6)))
