"""`DeadLetter`: an entry no worker could handle, kept with its original payload."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from schemas.base import StrictModel, new_event_id, utc_now


class FailureReason(StrEnum):
    INVALID = "invalid"  # failed validation: retrying cannot help
    OVERSIZED = "oversized"
    UNDECODABLE = "undecodable"
    HANDLER_FAILED = "handler_failed"  # failed its retries
    DELIVERY_FAILED = "delivery_failed"  # a sink gave up


class DeadLetter(StrictModel):
    dead_letter_id: str = Field(default_factory=new_event_id)
    source_stream: str
    entry_id: str
    group: str | None = None
    payload: dict[str, str] = Field(description="The entry's fields as received (UTF-8).")
    reason: FailureReason
    error: str = Field(description="What was wrong, naming the field where there is one.")
    field: str | None = None
    delivery_count: int = Field(ge=0)
    failed_at: AwareDatetime = Field(default_factory=utc_now)
    company: str | None = None
    event_id: str | None = None
