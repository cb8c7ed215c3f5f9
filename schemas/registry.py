"""The metric registry: what each metric is, its unit, and how it becomes a quarterly figure.

Names follow the columns of the bundled quarterly history so that a CSV column, an event's
`metric` and a forecast's `metric` are one vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MetricKind(StrEnum):
    FLOW = "flow"  # accumulates over the period (volume, income)
    STOCK = "stock"  # a level at a point in time (outstanding balance)
    RATE = "rate"  # a ratio in percent


class Unit(StrEnum):
    MONEY = "money"
    PERCENT = "percent"
    COUNT = "count"
    MONTHS = "months"


class Aggregation(StrEnum):
    SUM = "sum"  # flows: the quarter is the sum of its months or days
    LAST = "last"  # stocks and point-in-time rates: the value at quarter end
    MEAN = "mean"  # in-period rates without a weight
    WEIGHTED_MEAN = "weighted_mean"  # in-period rates weighted by `weight_metric`


class Basis(StrEnum):
    GAAP = "gaap"
    NON_GAAP = "non_gaap"
    OPERATIONAL = "operational"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: MetricKind
    unit: Unit
    aggregation: Aggregation
    basis: Basis
    description: str
    weight_metric: str | None = None
    higher_is_worse: bool = False
    plausible_min: float | None = None  # 0 for a metric that cannot be negative
    plausible_max: float | None = None

    @property
    def may_be_negative(self) -> bool:
        return self.plausible_min is None or self.plausible_min < 0


def _money(
    name: str, description: str, basis: Basis = Basis.GAAP, *, non_negative: bool = False
) -> MetricSpec:
    """Income lines may be losses; revenue and volumes cannot be negative."""
    floor = 0.0 if non_negative else None
    return MetricSpec(
        name, MetricKind.FLOW, Unit.MONEY, Aggregation.SUM, basis, description, plausible_min=floor
    )


def _rate(name: str, description: str, aggregation: Aggregation, **extra: object) -> MetricSpec:
    return MetricSpec(
        name,
        MetricKind.RATE,
        Unit.PERCENT,
        aggregation,
        Basis.OPERATIONAL,
        description,
        plausible_min=0.0,
        plausible_max=100.0,
        **extra,  # type: ignore[arg-type]
    )


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        _money("total_net_revenue", "Total net revenue for the period.", non_negative=True),
        _money("income_from_operations", "Income from operations."),
        _money("net_income", "Consolidated net income (GAAP)."),
        _money("net_income_attributable", "Net income attributable to ordinary shareholders."),
        _money(
            "net_loss_attributable_to_noncontrolling_interests",
            "Net loss attributable to noncontrolling interests (a profit is negative): "
            "attributable net income less net income.",
        ),
        # a quarter's forfeitures can reverse more expense than it books: may be negative
        _money("share_based_comp", "Share-based compensation expenses."),
        _money(
            "non_gaap_net_income", "Net income excluding share-based compensation.", Basis.NON_GAAP
        ),
        _money(
            "non_gaap_income_from_operations",
            "Income from operations excluding share-based compensation.",
            Basis.NON_GAAP,
        ),
        MetricSpec(
            "loan_volume",
            MetricKind.FLOW,
            Unit.MONEY,
            Aggregation.SUM,
            Basis.OPERATIONAL,
            "Loan facilitation and origination volume in the period.",
            plausible_min=0.0,
        ),
        MetricSpec(
            "outstanding_balance",
            MetricKind.STOCK,
            Unit.MONEY,
            Aggregation.LAST,
            Basis.OPERATIONAL,
            "Outstanding loan balance at the end of the period.",
            plausible_min=0.0,
        ),
        _rate(
            "dpd90_rate_pct",
            "90 day+ delinquency rate at the end of the period.",
            Aggregation.LAST,
            higher_is_worse=True,
        ),
        _rate(
            "day1_delinquency_pct",
            "Day-1 delinquency rate in the period.",
            Aggregation.WEIGHTED_MEAN,
            weight_metric="loan_volume",
            higher_is_worse=True,
        ),
        _rate(
            "collection_30d_pct",
            "30-day collection rate in the period.",
            Aggregation.WEIGHTED_MEAN,
            weight_metric="loan_volume",
        ),
        _rate(
            "repeat_borrower_contribution_pct",
            "Share of volume borrowed by repeat borrowers in the period.",
            Aggregation.WEIGHTED_MEAN,
            weight_metric="loan_volume",
        ),
        MetricSpec(
            "loans_originated",
            MetricKind.FLOW,
            Unit.COUNT,
            Aggregation.SUM,
            Basis.OPERATIONAL,
            "Number of loans originated in the period.",
            plausible_min=0.0,
        ),
        MetricSpec(
            "cumulative_borrowers",
            MetricKind.STOCK,
            Unit.COUNT,
            Aggregation.LAST,
            Basis.OPERATIONAL,
            "Cumulative borrowers with a successful drawdown at period end.",
            plausible_min=0.0,
        ),
    )
}

DELINQUENCY_METRICS = ("dpd90_rate_pct", "day1_delinquency_pct", "collection_30d_pct")
FORECAST_TARGETS = ("net_income", "non_gaap_net_income")


class UnknownMetricError(KeyError):
    pass


def metric_spec(name: str) -> MetricSpec:
    try:
        return METRICS[name]
    except KeyError:
        known = ", ".join(sorted(METRICS))
        raise UnknownMetricError(f"unknown metric {name!r}; known metrics: {known}") from None
