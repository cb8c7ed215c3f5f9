"""Fiscal periods and calendar buckets, spelled as strings on the wire.

Pure standard library so that every layer (contracts, stores, the numerical core) can share it.
Quarters are calendar quarters (`2024Q2`); fiscal years are `FY2024`; operational metrics may
also be reported for a month (`2024-05`) or a day (`2024-05-31`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache

# ASCII digits only: `\d` would also take other scripts' digits, which int() reads as the same
# number while the text names another period
QUARTER_PATTERN = re.compile(r"^(?P<year>[0-9]{4})Q(?P<quarter>[1-4])$")
FISCAL_YEAR_PATTERN = re.compile(r"^FY(?P<year>[0-9]{4})$")
MONTH_PATTERN = re.compile(r"^(?P<year>[0-9]{4})-(?P<month>0[1-9]|1[0-2])$")
DAY_PATTERN = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class Frequency(StrEnum):
    DAY = "day"
    MONTH = "month"
    QUARTER = "quarter"
    FISCAL_YEAR = "fiscal_year"


class PeriodError(ValueError):
    """A period string that is none of `2024Q2`, `FY2024`, `2024-05` or `2024-05-31`."""


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    quarter: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        match = QUARTER_PATTERN.match(text)
        if match is None:
            raise PeriodError(f"{text!r} is not a quarter; expected e.g. '2024Q2'")
        return cls(int(match["year"]), int(match["quarter"]))

    @classmethod
    def containing(cls, day: date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    def __str__(self) -> str:
        return f"{self.year}Q{self.quarter}"

    def shift(self, quarters: int) -> Quarter:
        index = self.year * 4 + (self.quarter - 1) + quarters
        return Quarter(index // 4, index % 4 + 1)

    def next(self) -> Quarter:
        return self.shift(1)

    def previous(self) -> Quarter:
        return self.shift(-1)

    def same_quarter_last_year(self) -> Quarter:
        return self.shift(-4)

    @property
    def start(self) -> date:
        return date(self.year, 3 * self.quarter - 2, 1)

    @property
    def end(self) -> date:
        return self.next().start - timedelta(days=1)

    @property
    def months(self) -> tuple[str, str, str]:
        first = 3 * self.quarter - 2
        return tuple(f"{self.year}-{m:02d}" for m in range(first, first + 3))  # type: ignore[return-value]


@lru_cache(maxsize=8192)  # validated on every event; busy streams repeat a few periods
def frequency_of(period: str) -> Frequency:
    """Which kind of period a string names; raises PeriodError for anything else."""
    if QUARTER_PATTERN.match(period):
        return Frequency.QUARTER
    if FISCAL_YEAR_PATTERN.match(period):
        return Frequency.FISCAL_YEAR
    if MONTH_PATTERN.match(period):
        return Frequency.MONTH
    if DAY_PATTERN.match(period):
        try:
            date.fromisoformat(period)
        except ValueError as error:
            raise PeriodError(f"{period!r} is not a calendar day: {error}") from None
        return Frequency.DAY
    raise PeriodError(
        f"{period!r} is not a period; expected a quarter '2024Q2', a fiscal year 'FY2024', "
        "a month '2024-05' or a day '2024-05-31'"
    )


@lru_cache(maxsize=8192)
def year_of(period: str) -> int:
    """The calendar year a period falls in (its first four digits, after 'FY' for a year)."""
    frequency_of(period)  # raises PeriodError for anything that is not a period
    return int(period[2:6] if period.startswith("FY") else period[:4])


@lru_cache(maxsize=8192)
def period_start(period: str) -> date:
    """The first calendar day a period covers."""
    frequency = frequency_of(period)
    if frequency is Frequency.DAY:
        return date.fromisoformat(period)
    if frequency is Frequency.FISCAL_YEAR:
        return quarters_of_fiscal_year(period)[0].start
    if frequency is Frequency.MONTH:
        year, month = (int(part) for part in period.split("-"))
        return date(year, month, 1)
    return Quarter.parse(period).start


def quarter_of(period: str) -> Quarter:
    """The calendar quarter a day, month or quarter falls in."""
    frequency = frequency_of(period)
    if frequency is Frequency.QUARTER:
        return Quarter.parse(period)
    if frequency is Frequency.MONTH:
        year, month = period.split("-")
        return Quarter(int(year), (int(month) - 1) // 3 + 1)
    if frequency is Frequency.DAY:
        return Quarter.containing(date.fromisoformat(period))
    raise PeriodError(f"{period!r} is a fiscal year, not inside one quarter")


def quarters_of_fiscal_year(period: str) -> tuple[Quarter, ...]:
    """The four quarters of `FY2024` (fiscal years follow the calendar year)."""
    match = FISCAL_YEAR_PATTERN.match(period)
    if match is None:
        raise PeriodError(f"{period!r} is not a fiscal year; expected e.g. 'FY2024'")
    year = int(match["year"])
    return tuple(Quarter(year, q) for q in range(1, 5))


def period_end(period: str) -> date:
    """The last calendar day a period covers."""
    frequency = frequency_of(period)
    if frequency is Frequency.DAY:
        return date.fromisoformat(period)
    if frequency is Frequency.FISCAL_YEAR:
        return quarters_of_fiscal_year(period)[-1].end
    if frequency is Frequency.MONTH:
        year, month = (int(part) for part in period.split("-"))
        following = date(year + month // 12, month % 12 + 1, 1)
        return following - timedelta(days=1)
    return Quarter.parse(period).end
