"""The envelope every Guidepost event shares, and the strict base model behind it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar
from uuid import uuid4

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo

from schemas.periods import year_of
from schemas.plausibility import (
    EPOCH,
    Plausibility,
    check_occurred_at,
    check_period,
    plausibility_of,
)

COMPANY_PATTERN = r"^[A-Z0-9][A-Z0-9._-]{0,31}$"


class StrictModel(BaseModel):
    """Frozen, unknown fields rejected, NaN and infinity rejected."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        str_strip_whitespace=True,
        use_enum_values=False,
    )


def _check_period(value: str, info: ValidationInfo) -> str:
    check_period(value, plausibility_of(info), year_of)  # a PeriodError is a ValueError
    return value


FISCAL_PERIOD_PATTERN = re.compile(r"^([0-9]{4}Q[1-4]|FY[0-9]{4})$")


def _check_fiscal_period(value: str, info: ValidationInfo) -> str:
    if not FISCAL_PERIOD_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not a fiscal period; expected a quarter '2024Q2' or 'FY2024'"
        )
    check_period(value, plausibility_of(info), year_of)
    return value


# The forms of a period, for the JSON Schemas (the validators also check the calendar and years)
PERIOD_FORMS = (
    r"^([0-9]{4}Q[1-4]|FY[0-9]{4}|[0-9]{4}-(0[1-9]|1[0-2])"
    r"|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]))$"
)
Period = Annotated[
    str,
    AfterValidator(_check_period),
    Field(
        description="A quarter '2024Q2', year 'FY2024', month '2024-05' or day '2024-05-31'.",
        examples=["2024Q2", "2024-05", "2024-05-31"],
        json_schema_extra={"pattern": PERIOD_FORMS},
    ),
]
FiscalPeriod = Annotated[
    str,
    AfterValidator(_check_fiscal_period),
    Field(
        description="A fiscal quarter '2024Q2' or year 'FY2024'.",
        examples=["2024Q2", "FY2024"],
        json_schema_extra={"pattern": FISCAL_PERIOD_PATTERN.pattern},
    ),
]
Company = Annotated[
    str,
    Field(
        pattern=COMPANY_PATTERN,
        description="The company's ticker or identifier, upper case.",
        examples=["QFIN"],
    ),
]


def new_event_id() -> str:
    return uuid4().hex


def utc_now() -> datetime:
    return datetime.now(UTC)


def schema_version_field(current: int, change: str) -> Any:
    """The `schema_version` field of a contract at version `current` (earlier versions still
    validate: each change so far only widened what a contract accepts)."""
    return Field(
        default=current, ge=1, le=current, description=f"Contract version; {current}: {change}"
    )


class Event(StrictModel):
    """The shared envelope: who said what about which company, and when."""

    EVENT_TYPE: ClassVar[str] = "event"
    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: str = Field(
        default_factory=new_event_id,
        min_length=1,
        max_length=128,
        description="Unique per event; redeliveries carry the same id.",
    )
    schema_version: int = Field(default=1, ge=1, le=1, description="Contract version.")
    occurred_at: AwareDatetime = Field(
        default_factory=utc_now,
        ge=EPOCH,  # checked in pydantic's core; upstream events check more (`check_known_at`)
        description="When the fact became known (timezone-aware).",
    )
    producer: str = Field(
        default="guidepost", min_length=1, max_length=64, description="The system that emitted it."
    )
    company: Company


def check_known_at(event: Event, bounds: Plausibility) -> None:
    """For upstream events: `occurred_at` within the years accepted and not beyond the clock
    plus its tolerance (a fact claiming to be known in the future would stay current over
    every later correction). Events Guidepost derives carry its own workers' clocks, which may
    drift apart a little, and are not held to it."""
    try:
        check_occurred_at(event.occurred_at, bounds)
    except ValueError as error:
        raise ValueError(f"occurred_at: {error}") from None
