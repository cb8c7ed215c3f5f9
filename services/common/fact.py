"""A fact: one value of one metric for one period, as known at one time. Ingest makes them
from events, the fact history stores them, and every reader gets them back."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple

from schemas.money import Scale

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
