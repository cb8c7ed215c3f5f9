"""Document-level facts: company, fiscal period, datelines, the convenience rate, sections."""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from schemas.base import COMPANY_PATTERN
from schemas.periods import Quarter
from services.extract.amounts import currency_code, parse_number
from services.extract.model import AnnouncementError, ExchangeRate, Provenance

MONTH_NAMES = tuple(calendar.month_name)[1:]
MONTH = "(?:" + "|".join(MONTH_NAMES) + ")"
DATE = rf"(?P<month>{MONTH})\s+(?P<day>\d{{1,2}}),\s*(?P<year>\d{{4}})"
ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4}
ORDINAL = "(?:first|second|third|fourth)"

TICKER = re.compile(r"\((?P<exchange>[A-Za-z][A-Za-z ]*):\s*(?P<ticker>[A-Z][A-Z0-9.]*)\s*[;)]")
PERIOD_TITLE = re.compile(
    rf"(?P<ordinal>{ORDINAL}) quarter (?:and (?:full|fiscal) year )?ended {DATE}", re.IGNORECASE
)
DATELINE = re.compile(rf"^(?P<place>[A-Z][A-Za-z .]*(?:, [A-Z][A-Za-z .]*)?),\s+{DATE}\b")
PLACE_ZONES = {
    "hong kong": "Asia/Hong_Kong",
    "shanghai": "Asia/Shanghai",
    "beijing": "Asia/Shanghai",
    "shenzhen": "Asia/Shanghai",
    "china": "Asia/Shanghai",
    "singapore": "Asia/Singapore",
    "new york": "America/New_York",
}
EXCHANGE_RATE = re.compile(
    r"rate of (?P<base>RMB|HK\\?\$)\s?(?P<rate>\d+(?:\.\d+)?) to "
    r"(?P<quote>US\\?\$)\s?(?P<per>\d+(?:\.\d+)?)"
)


def date_of(match: re.Match[str]) -> date:
    month = MONTH_NAMES.index(match["month"].capitalize()) + 1
    return date(int(match["year"]), month, int(match["day"]))


def read_company(lines: Sequence[str], override: str | None) -> str:
    """The ticker given on the command line, else the first '(EXCHANGE: TICKER' listing."""
    if override is not None:
        return checked_company(override.strip().upper())
    for line in lines:
        if (match := TICKER.search(line)) is not None:
            return checked_company(match["ticker"])
    raise AnnouncementError(
        "no company ticker found; expected a listing like '(NASDAQ: ABCD)' or pass --company"
    )


def checked_company(company: str) -> str:
    if re.match(COMPANY_PATTERN, company) is None:
        raise AnnouncementError(f"{company!r} is not a company ticker; expected e.g. 'ABCD'")
    return company


def read_period(lines: Sequence[str]) -> str:
    """The reported quarter, from '... second quarter ended June 30, 2025'."""
    for line in lines:
        if (match := PERIOD_TITLE.search(line)) is not None:
            return str(checked_quarter(match))
    raise AnnouncementError(
        "no reporting period found; expected e.g. 'second quarter ended June 30, 2025'"
    )


def checked_quarter(match: re.Match[str]) -> Quarter:
    ended = date_of(match)
    quarter = Quarter.containing(ended)
    if quarter.end != ended or quarter.quarter != ORDINALS[match["ordinal"].lower()]:
        raise AnnouncementError(
            f"{match.group(0)!r} is not a calendar quarter end; only calendar quarters are read"
        )
    return quarter


def read_published_at(lines: Sequence[str]) -> datetime:
    """The earliest dateline ('Hong Kong, August 1, 2025'), at the start of that day, local time."""
    stamps = [stamp for line in lines if (stamp := dateline_stamp(line)) is not None]
    if not stamps:
        raise AnnouncementError("no dateline found; expected e.g. 'Hong Kong, August 1, 2025'")
    return min(stamps)


def dateline_stamp(line: str) -> datetime | None:
    match = DATELINE.match(line)
    if match is None:
        return None
    zone = next((z for p, z in PLACE_ZONES.items() if p in match["place"].lower()), None)
    if zone is None:
        return None
    return datetime.combine(date_of(match), time(0), tzinfo=ZoneInfo(zone))


def read_exchange_rate(lines: Sequence[str]) -> ExchangeRate | None:
    """'at a rate of RMB7.1000 to US$1.00' as 7.1 CNY per USD; None when not stated."""
    for number, line in enumerate(lines, start=1):
        if (match := EXCHANGE_RATE.search(line)) is not None:
            return exchange_rate(match, number)
    return None


def exchange_rate(match: re.Match[str], line: int) -> ExchangeRate:
    rate = parse_number(match["rate"])
    per = parse_number(match["per"]).value
    if per == 0:
        raise AnnouncementError(f"line {line}: exchange rate per zero units: {match.group(0)!r}")
    provenance = Provenance(
        line, match.start("rate"), match.end("rate"), match["rate"], "exchange rate", match[0]
    )
    base, quote = currency_code(match["base"]), currency_code(match["quote"])
    return ExchangeRate(base, quote, rate.value / per, rate.decimals, provenance)
