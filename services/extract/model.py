"""What the announcement parser returns: figures with provenance, and what it could not place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from schemas.money import Scale, rescale
from schemas.registry import Unit


class AnnouncementError(ValueError):
    """The document cannot be read as a results announcement; nothing is guessed."""


class Kind(StrEnum):
    """Where a figure belongs in the contracts."""

    REVENUE_LINE = "revenue_line"
    COST_LINE = "cost_line"
    OTHER_LINE = "other_line"
    HEADLINE = "headline"
    PER_SHARE = "per_share"
    SHARE_COUNT = "share_count"
    RATIO = "ratio"
    METRIC = "metric"
    GUIDANCE = "guidance"


class Role(StrEnum):
    """What a figure says about its target: the value itself, a change, or a guided bound."""

    VALUE = "value"
    CHANGE = "change"
    LOW = "low"
    HIGH = "high"
    YOY_LOW = "yoy_low"
    YOY_HIGH = "yoy_high"


class Origin(StrEnum):
    TABLE = "table"
    PROSE = "prose"


@dataclass(frozen=True, order=True)
class Target:
    """A contract name: a statement line (with its parent subtotal), headline, metric, ..."""

    kind: Kind
    name: str
    parent: str | None = None

    @property
    def label(self) -> str:
        return f"{self.parent}.{self.name}" if self.parent else self.name


@dataclass(frozen=True)
class Provenance:
    """Where a figure was read: `text` is exactly `line_text[start:end]` of 1-based `line`."""

    line: int
    start: int
    end: int
    text: str
    column: str
    label: str


@dataclass(frozen=True)
class Figure:
    """One number as printed, signed by the contract's convention, in its stated scale."""

    target: Target
    period: str
    value: Decimal
    unit: Unit
    currency: str | None
    scale: Scale | None
    decimals: int
    origin: Origin
    provenance: Provenance
    role: Role = Role.VALUE

    @property
    def half_unit(self) -> Decimal:
        """Half a unit of the last printed digit: the rounding the printed figure may carry."""
        return Decimal(5).scaleb(-self.decimals - 1)

    def value_in(self, scale: Scale) -> Decimal:
        return rescale(self.value, source=self.scale or Scale.UNITS, target=scale)

    def half_unit_in(self, scale: Scale) -> Decimal:
        return rescale(self.half_unit, source=self.scale or Scale.UNITS, target=scale)


@dataclass(frozen=True)
class Unplaced:
    """A line or figure the parser read but could not map to the contracts."""

    line: int
    text: str
    reason: str


@dataclass(frozen=True)
class ExchangeRate:
    """The stated convenience rate: `rate` units of `base` (the statement currency) per unit
    of `currency`."""

    base: str
    currency: str
    rate: Decimal
    decimals: int
    provenance: Provenance


@dataclass(frozen=True)
class Extraction:
    """Everything read from one announcement."""

    company: str
    period: str
    published_at: datetime
    title: str
    digest: str
    currency: str
    scale: Scale
    figures: tuple[Figure, ...]
    unplaced: tuple[Unplaced, ...]
    exchange_rate: ExchangeRate | None

    def select(
        self, *, origin: Origin | None = None, kinds: frozenset[Kind] | None = None
    ) -> list[Figure]:
        return [
            figure
            for figure in self.figures
            if (origin is None or figure.origin is origin)
            and (kinds is None or figure.target.kind in kinds)
        ]
