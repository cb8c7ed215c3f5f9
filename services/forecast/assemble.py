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

import pandas as pd

from schemas.periods import Frequency, Quarter, frequency_of, period_end, quarter_of
from schemas.registry import Aggregation, metric_spec

Observation = tuple[str, str, float]  # metric, period, value in the model's unit


@dataclass(frozen=True)
class QuarterlyHistory:
    frame: pd.DataFrame  # PeriodIndex (Q-DEC) named 'period', one float column per metric
    partial: frozenset[tuple[str, str]]  # (metric, quarter) aggregated from incomplete data


def assemble(
    observations: Iterable[Observation], *, max_quarters: int | None = None
) -> QuarterlyHistory:
    """Raises HistorySpanError when the quarters observed span more than `max_quarters`: what
    a refit holds and fits grows with the span, so one stray period decades away must not make
    it build an index of thousands of quarters (the caller quarantines the company instead)."""
    observations = list(observations)
    if max_quarters is not None:
        check_span(observations, max_quarters)
    direct: dict[tuple[str, Quarter], float] = {}
    finer: dict[tuple[str, Quarter], list[tuple[str, float]]] = defaultdict(list)
    for metric, period, value in observations:
        if frequency_of(period) is Frequency.FISCAL_YEAR:
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
    return QuarterlyHistory(_frame(values), frozenset(partial))


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
