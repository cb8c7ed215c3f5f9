"""The periods a guided figure relates to: its fiscal year, its prior year, the periods whose
prior year it is."""

from __future__ import annotations

from schemas.periods import FISCAL_YEAR_PATTERN, QUARTER_PATTERN, Quarter


def is_fiscal_year(period: str) -> bool:
    return FISCAL_YEAR_PATTERN.match(period) is not None


def is_quarter(period: str) -> bool:
    return QUARTER_PATTERN.match(period) is not None


def fiscal_year_of(quarter: str) -> str:
    return f"FY{Quarter.parse(quarter).year}"


def fiscal_quarters(period: str) -> list[str]:
    year = int(period[2:])
    return [str(Quarter(year, q)) for q in range(1, 5)]


def following_year_periods(period: str) -> tuple[str, ...]:
    """The periods whose prior year `period` is or is part of: a quarter is the prior of the
    same quarter a year later and part of the prior of the next fiscal year."""
    if is_fiscal_year(period):
        return (f"FY{int(period[2:]) + 1}",)
    if not is_quarter(period):
        return ()
    quarter = Quarter.parse(period)
    return (str(quarter.shift(4)), f"FY{quarter.year + 1}")


def prior_year(period: str) -> str:
    if is_fiscal_year(period):
        return f"FY{int(period[2:]) - 1}"
    return str(Quarter.parse(period).same_quarter_last_year())
