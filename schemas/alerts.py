"""Alert signals (conditions observed by workers) and alerts (what subscribers receive)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, Field, JsonValue

from schemas.base import Event, Period, schema_version_field


class AlertKind(StrEnum):
    BAND_CHECK = "band_check"
    OUTCOME = "outcome"
    DATA_QUALITY = "data_quality"
    RESTATEMENT = "restatement"
    GUIDANCE_ARITHMETIC = "guidance_arithmetic"
    GUIDANCE_REVISION = "guidance_revision"
    DELINQUENCY_TREND = "delinquency_trend"
    CHANGE_POINT = "change_point"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Condition(StrEnum):
    FIRING = "firing"
    CLEAR = "clear"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


BAND_STATES_CHANGE = (
    "a band check's state names the likeliest side (likely_below, likely_inside, likely_above; "
    "version 1 said on_track, at_risk_of_missing, likely_to_beat) and its details carry the "
    "call's confidence and, for a band derived from year-on-year growth, what it was derived from."
)


class AlertSignal(Event):
    """A worker observed that a condition holds (or no longer holds)."""

    EVENT_TYPE: ClassVar[str] = "alert_signal"
    SCHEMA_VERSION: ClassVar[int] = 2

    schema_version: int = schema_version_field(2, BAND_STATES_CHANGE)
    kind: AlertKind
    period: Period
    subject: str = Field(max_length=200, examples=["net_income"])
    condition: Condition = Condition.FIRING
    severity: Severity = Severity.INFO
    state: str | None = Field(
        default=None,
        description="The condition's state; a band check names the likeliest side: "
        "likely_below, likely_inside or likely_above.",
        examples=["likely_below", "likely_inside", "likely_above"],
    )
    summary: str = Field(max_length=1000, description="One human sentence with the numbers.")
    details: dict[str, JsonValue] = Field(default_factory=dict)
    cause_event_id: str | None = None


class Alert(Event):
    """An alert notification as subscribers receive it."""

    EVENT_TYPE: ClassVar[str] = "alert"
    SCHEMA_VERSION: ClassVar[int] = 2

    schema_version: int = schema_version_field(2, BAND_STATES_CHANGE)
    fingerprint: str = Field(description="Stable identity: company, period, kind, subject.")
    group_key: str = Field(description="Alerts of one company and period share a group.")
    kind: AlertKind
    status: AlertStatus
    severity: Severity
    period: Period
    subject: str
    state: str | None = Field(
        default=None, examples=["likely_below", "likely_inside", "likely_above"]
    )
    summary: str
    details: dict[str, JsonValue] = Field(default_factory=dict)
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    notification: int = Field(ge=1, description="1 for the first notice of this firing.")
