"""Events turned into facts: one value of one metric for one period, as known at one time."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from schemas.metrics import MetricReported
from schemas.money import Scale
from schemas.registry import METRICS, Unit
from schemas.results import IncomeStatement, ResultsPublished
from services.common.histories.facts import Fact


def stated_precision(amount: Decimal, scale: Scale = Scale.UNITS) -> Decimal:
    """One unit of the last stated digit, in whole units: Decimal('4153.2') millions → 100000."""
    exponent = amount.as_tuple().exponent
    return _step(exponent if isinstance(exponent, int) else 0, scale)


@lru_cache(maxsize=256)
def _step(exponent: int, scale: Scale) -> Decimal:
    return Decimal(1).scaleb(exponent) * scale.factor


def facts_from_metric(event: MetricReported) -> list[Fact]:
    scale = event.scale or Scale.UNITS
    return [
        Fact(
            metric=event.metric,
            period=event.period,
            value=event.value * scale.factor if event.unit is Unit.MONEY else event.value,
            precision=stated_precision(event.value, scale),
            known_at=event.occurred_at,
            event_id=event.event_id,
            currency=event.currency,
        )
    ]


def facts_from_statement(
    statement: IncomeStatement, *, known_at: datetime, event_id: str
) -> list[Fact]:
    """The registry's metrics among the statement's headline figures."""
    return [
        Fact(
            metric=name,
            period=statement.period,
            value=amount * statement.scale.factor,
            precision=stated_precision(amount, statement.scale),
            known_at=known_at,
            event_id=event_id,
            currency=statement.currency,
        )
        for name, amount in statement.headlines().items()
        if name in METRICS
    ]


def facts_from_results(event: ResultsPublished) -> list[Fact]:
    """The current period and every comparative period the release printed."""
    facts: list[Fact] = []
    for statement in (event.statement, *event.comparatives):
        facts += facts_from_statement(
            statement, known_at=event.occurred_at, event_id=event.event_id
        )
    return facts
