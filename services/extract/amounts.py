"""Printed numbers ("1,234,567", "(1,234)", "-", "12.3%") and the currency and scale words."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from schemas.money import Scale

NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?")
ZERO_MARKS = frozenset({"-", "–", "—"})
CURRENCY_CODES = {
    "RMB": "CNY",
    "CNY": "CNY",
    "US$": "USD",
    "USD": "USD",
    "HK$": "HKD",
    "HKD": "HKD",
}
CURRENCY_NAMES = {
    "renminbi": "CNY",
    "u.s. dollars": "USD",
    "us dollars": "USD",
    "hong kong dollars": "HKD",
}
SCALE_WORDS = {
    "thousand": Scale.THOUSANDS,
    "million": Scale.MILLIONS,
    "billion": Scale.BILLIONS,
}


@dataclass(frozen=True)
class Number:
    value: Decimal
    decimals: int
    percent: bool = False


def parse_number(text: str) -> Number:
    """A printed number; parentheses mean negative. Raises ValueError for anything else."""
    body = text.strip()
    negative = body.startswith("(") and body.endswith(")")
    body = body[1:-1].strip() if negative else body
    percent = body.endswith("%")
    body = body.removesuffix("%").strip()
    if NUMBER.fullmatch(body) is None:
        raise ValueError(f"{text!r} is not a number; expected e.g. '1,234', '(1,234)' or '12.3%'")
    value = Decimal(body.replace(",", ""))
    decimals = len(body.partition(".")[2])
    return Number(-value if negative else value, decimals, percent)


def parse_cell(text: str) -> Number | None:
    """A table cell: None when empty, zero for a dash, else the number."""
    body = text.strip()
    if not body:
        return None
    if body in ZERO_MARKS:
        return Number(Decimal(0), 0)
    return parse_number(body)


def currency_code(symbol: str) -> str:
    """ISO code for a printed symbol ('RMB', 'US$', 'US\\$'); KeyError when unknown."""
    return CURRENCY_CODES[symbol.replace("\\", "").upper()]


def scale_of(word: str | None) -> Scale:
    """The scale a word names ('million', 'thousands'); no word means units."""
    if word is None:
        return Scale.UNITS
    return SCALE_WORDS[word.lower().removesuffix("s")]
