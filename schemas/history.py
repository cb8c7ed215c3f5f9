"""`HistoryUpdated`: what ingestion changed, one event per effective change."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from schemas.base import Event, Period, StrictModel
from schemas.money import Currency, FiniteDecimal


class ChangeKind(StrEnum):
    RECORDED = "recorded"  # first value for this period and metric
    RESTATED = "restated"  # a different value replaced an earlier one
    RETRACTED = "retracted"  # an operator withdrew the value (`value` is the one withdrawn)


class FactChange(StrictModel):
    metric: str
    period: Period
    kind: ChangeKind
    value: FiniteDecimal = Field(description="Whole units of currency for money, else the unit.")
    previous: FiniteDecimal | None = None
    currency: Currency | None = None


class GuidanceChange(StrictModel):
    metric: str
    period: Period
    revision: str = Field(examples=["initial", "raised", "withdrawn"])


class HistoryUpdated(Event):
    EVENT_TYPE: ClassVar[str] = "history_updated"

    cause_event_id: str = Field(description="The input event that caused the change.")
    facts: tuple[FactChange, ...] = ()
    guidance: tuple[GuidanceChange, ...] = ()
