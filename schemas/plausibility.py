"""What a plausible event looks like: the bounds every contract checks at the door.

A producer can send any well-formed JSON; these bounds keep one event from driving unbounded
work downstream (a period in the year 9999 once made a refit build a quarterly index to it) or
from pinning a fact in the future. The window of period years and the tolerance on `occurred_at`
are deployment settings: validators read them from the validation context (`context=
{"plausibility": Plausibility(...)}`) and fall back to the defaults below.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationInfo

CONTEXT_KEY = "plausibility"
DEFAULT_FIRST_YEAR = 1990
DEFAULT_YEARS_AHEAD = 2
DEFAULT_OCCURRED_AT_TOLERANCE = timedelta(minutes=5)

# Any number on the wire: 0 or between 10^-18 and 10^18 in magnitude, so that scaling, float
# conversion and JSON round trips never overflow nor underflow.
MAX_MAGNITUDE = Decimal(10) ** 18
MIN_EXPONENT = -18
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Money in whole units of its currency (after applying the stated scale): 10^18 is a thousand
# times the largest annual revenue of any company in any currency.
MAX_WHOLE_UNITS = Decimal(10) ** 18


@dataclass(frozen=True)
class Plausibility:
    """The period-year window (first year to `years_ahead` after the current year) and how far
    ahead of the validator's clock an `occurred_at` may be (producers' clocks drift)."""

    first_year: int = DEFAULT_FIRST_YEAR
    years_ahead: int = DEFAULT_YEARS_AHEAD
    occurred_at_tolerance: timedelta = DEFAULT_OCCURRED_AT_TOLERANCE
    earliest: datetime = field(init=False, repr=False, compare=False)
    # validated on every event: what a busy stream repeats is remembered (see the methods)
    _periods: dict[str, str | None] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _periods_year: list[int] = field(
        init=False, repr=False, compare=False, default_factory=lambda: [0]
    )

    def __post_init__(self) -> None:
        if self.first_year < 1 or self.years_ahead < 0:
            raise ValueError("first_year must be at least 1 and years_ahead not negative")
        if self.occurred_at_tolerance < timedelta(0):
            raise ValueError("occurred_at_tolerance must not be negative")
        object.__setattr__(self, "earliest", datetime(self.first_year, 1, 1, tzinfo=UTC))

    def now(self) -> datetime:
        return datetime.now(UTC)

    def last_year(self) -> int:
        return _current_year() + self.years_ahead

    def period_problem(self, period: str, year_of: Callable[[str], int]) -> str | None:
        """Why a period is not accepted (None if it is): not a period at all (`year_of`
        raises ValueError) or its year outside the window; remembered per period for the
        current year."""
        this_year = _current_year()
        if self._periods_year[0] != this_year or len(self._periods) > 16_384:
            self._periods.clear()
            self._periods_year[0] = this_year
        if period not in self._periods:
            self._periods[period] = self._problem(period, year_of)
        return self._periods[period]

    def _problem(self, period: str, year_of: Callable[[str], int]) -> str | None:
        try:
            year = year_of(period)
        except ValueError as error:
            return str(error)
        last = self.last_year()
        if self.first_year <= year <= last:
            return None
        return (
            f"{period!r} is outside the accepted years {self.first_year}–{last} "
            f"({self.years_ahead} years after the current one)"
        )

    def as_context(self) -> dict[str, Any]:
        return {CONTEXT_KEY: self}


DEFAULT_PLAUSIBILITY = Plausibility()


def plausibility_of(info: ValidationInfo | None) -> Plausibility:
    """The bounds this validation runs under: the context's, else the defaults (validated on
    every event: kept to a dictionary lookup)."""
    context = info.context if info is not None else None
    if not context:
        return DEFAULT_PLAUSIBILITY
    found: Plausibility = context.get(CONTEXT_KEY, DEFAULT_PLAUSIBILITY)
    return found


_year = [0.0, 0]  # when the current year was last read (monotonic seconds), and that year


def _current_year() -> int:
    """The current year, read from the clock at most once a minute."""
    now = time.monotonic()
    if now - _year[0] > 60.0:
        _year[:] = [now, datetime.now(UTC).year]
    return int(_year[1])


def check_period(period: str, bounds: Plausibility, year_of: Callable[[str], int]) -> None:
    problem = bounds.period_problem(period, year_of)
    if problem is not None:
        raise ValueError(problem)


def check_occurred_at(moment: datetime, bounds: Plausibility, *, future: bool = True) -> None:
    """Not before the first year; with `future`, not beyond the clock plus the tolerance."""
    if moment < bounds.earliest:
        raise ValueError(f"{moment.isoformat()} is before {bounds.earliest.date().isoformat()}")
    if not future:
        return
    now = bounds.now()
    if moment > now + bounds.occurred_at_tolerance:
        raise ValueError(
            f"{moment.isoformat()} is {_readable(moment - now)} in the future; at most "
            f"{_readable(bounds.occurred_at_tolerance)} ahead of this clock is accepted"
        )


def check_number(value: Decimal) -> Decimal:
    """Finite, and 0 or between 10^-18 and 10^18 in magnitude."""
    if not value.is_finite():
        raise ValueError("must be a finite number, not NaN or infinity")
    if abs(value) > MAX_MAGNITUDE:
        raise ValueError("must be at most 1e18 in magnitude")
    if value.adjusted() < MIN_EXPONENT and value:
        raise ValueError("must be 0 or at least 1e-18 in magnitude")
    return value


def check_whole_units(value: Decimal, factor: Decimal, *, field: str) -> None:
    """Money stated in a scale stays within MAX_WHOLE_UNITS once scaled."""
    if abs(value) * factor > MAX_WHOLE_UNITS:
        raise ValueError(f"{field}: {value} at this scale exceeds 1e18 units of its currency")


def _readable(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86_400:
        return f"{seconds // 86_400} day(s)"
    if seconds >= 3_600:
        return f"{seconds // 3_600} hour(s)"
    if seconds >= 60:
        return f"{seconds // 60} minute(s)"
    return f"{seconds} second(s)"
