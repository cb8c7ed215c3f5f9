"""Events turned into facts: one value of one metric for one period, as known at one time."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple

from schemas.metrics import MetricReported
from schemas.money import Scale
from schemas.registry import METRICS, Unit
from schemas.results import IncomeStatement, ResultsPublished

FIELD_SEPARATOR = "|"


class Fact(NamedTuple):  # a NamedTuple: built for every event on the ingest path
    """`value` is in whole currency units for money, else in the metric's unit.
    `precision` is the smallest step the source stated (4,153.2 million → 100,000 units)."""

    metric: str
    period: str
    value: Decimal
    precision: Decimal
    known_at: datetime
    event_id: str
    currency: str | None = None

    @property
    def field(self) -> str:
        return f"{self.metric}{FIELD_SEPARATOR}{self.period}"


def stated_precision(amount: Decimal, scale: Scale = Scale.UNITS) -> Decimal:
    """One unit of the last stated digit, in whole units: Decimal('4153.2') millions → 100000."""
    exponent = amount.as_tuple().exponent
    return _step(exponent if isinstance(exponent, int) else 0, scale)


@lru_cache(maxsize=256)
def _step(exponent: int, scale: Scale) -> Decimal:
    return Decimal(1).scaleb(exponent) * scale.factor


def known_at_text(moment: datetime) -> str:
    """UTC with fixed width, so that text order is time order (the store compares text):
    2024-05-30T06:00:00.000000Z."""
    utc = moment.astimezone(UTC)  # %-formatting: isoformat and strftime cost twice as much
    fields = (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % fields  # noqa: UP031


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
