"""Money as Decimal with an explicit currency and scale; never a bare float."""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from schemas.plausibility import check_number

CURRENCY_ALIASES = {"RMB": "CNY", "US$": "USD", "HK$": "HKD"}


class Scale(StrEnum):
    """How many currency units one stated figure stands for."""

    UNITS = "units"
    THOUSANDS = "thousands"
    MILLIONS = "millions"
    BILLIONS = "billions"

    @property
    def factor(self) -> Decimal:
        return SCALE_FACTORS[self]


SCALE_FACTORS = {
    Scale.UNITS: Decimal(1),
    Scale.THOUSANDS: Decimal(1_000),
    Scale.MILLIONS: Decimal(1_000_000),
    Scale.BILLIONS: Decimal(1_000_000_000),
}


def _normalise_currency(value: object) -> object:
    if isinstance(value, str):
        return CURRENCY_ALIASES.get(value.strip().upper(), value.strip().upper())
    return value


def _finite(value: Decimal) -> Decimal:
    return check_number(value)


# A number given as text: ASCII digits, an optional sign, point and exponent, blanks around it
# (`Decimal()` alone would also read other scripts' digits and `1_000`). The JSON Schemas carry
# the same pattern, so a validator and the service agree on which texts are numbers.
NUMBER_TEXT = r"^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"
_NUMBER_TEXT = re.compile(NUMBER_TEXT)
_NOT_FINITE_TEXT = re.compile(r"^\s*[+-]?(nan|snan|inf|infinity)\s*$", re.IGNORECASE)
# What Guidepost writes: plain notation, never an exponent (242000000000, not 2.42E+11)
PLAIN_NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"


def _number_text(value: object) -> object:
    """Texts that are numbers pass on; NaN and infinity pass on to be refused as not finite."""
    if isinstance(value, str) and not (_NUMBER_TEXT.match(value) or _NOT_FINITE_TEXT.match(value)):
        raise ValueError(
            f"{value[:40]!r} is not a number; expected ASCII digits like '1170.5' or '-2.1e3'"
        )
    return value


def plain_decimal(value: Decimal) -> str:
    """A decimal in plain notation, as every event and alert carries it: 2.42E+11 is written
    242000000000 (a reader parsing the text as a number gets the same value either way, but
    not every reader parses exponents, and people read these)."""
    return format(value, "f")


CURRENCY_DESCRIPTION = "ISO 4217 code; 'RMB' is accepted and stored as 'CNY'."
Currency = Annotated[
    str,
    BeforeValidator(_normalise_currency),
    Field(pattern=r"^[A-Z]{3}$", description=CURRENCY_DESCRIPTION, examples=["CNY", "USD"]),
    # accepted in any case and as the aliases US$ and HK$ (blanks around it too: see
    # `schemas.json_schema.padded`)
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([A-Za-z]{3}|[Uu][Ss]\$|[Hh][Kk]\$)$",
            "description": CURRENCY_DESCRIPTION,
            "examples": ["CNY", "USD"],
        },
        mode="validation",
    ),
]
FiniteDecimal = Annotated[
    Decimal,
    BeforeValidator(_number_text),
    AfterValidator(_finite),
    PlainSerializer(plain_decimal, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": PLAIN_NUMBER}, mode="serialization"),
]
"""Finite, 0 or between 1e-18 and 1e18 in magnitude (`schemas.plausibility`); a JSON number or
a numeric text on the way in, plain-notation text on the way out."""


def rescale(amount: Decimal, *, source: Scale, target: Scale) -> Decimal:
    """The same amount restated in another scale: 4,153,183 thousands = 4,153.183 millions."""
    return amount * source.factor / target.factor


class Money(BaseModel):
    """An amount of one currency at one stated scale."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: FiniteDecimal = Field(description="The figure as stated, in `scale` units.")
    currency: Currency
    scale: Scale = Field(description="units, thousands, millions or billions of `currency`.")

    def to(self, scale: Scale) -> Money:
        return Money(
            amount=rescale(self.amount, source=self.scale, target=scale),
            currency=self.currency,
            scale=scale,
        )
