"""Money as Decimal with an explicit currency and scale; never a bare float."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

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


Currency = Annotated[
    str,
    BeforeValidator(_normalise_currency),
    Field(
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code; 'RMB' is accepted and stored as 'CNY'.",
        examples=["CNY", "USD"],
    ),
]
FiniteDecimal = Annotated[Decimal, AfterValidator(_finite)]
"""Finite, 0 or between 1e-18 and 1e18 in magnitude (`schemas.plausibility`)."""


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
