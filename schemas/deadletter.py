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
    CONFLICT = "conflict"  # an event id already recorded with other content
    DELIVERY_FAILED = "delivery_failed"  # a sink gave up: the payload is the notice (an Alert)
    REFIT_FAILED = "refit_failed"  # a company's refit failed its attempts: it is quarantined


class DeadLetter(StrictModel):
    dead_letter_id: str = Field(default_factory=new_event_id)
    source_stream: str
    entry_id: str
    group: str | None = None
    payload: dict[str, str] = Field(
        description="The entry's fields as received (UTF-8); a copy capped in size, see "
        "`payload_truncated`."
    )
    payload_truncated: bool = Field(
        default=False,
        description="The copy in `payload` is shortened: the entry cannot be replayed from it.",
    )
    payload_bytes: int | None = Field(
        default=None, ge=0, description="Size of the original entry's fields, in bytes."
    )
    payload_sha256: str | None = Field(
        default=None, description="SHA-256 of the original event body (or of all its fields)."
    )
    reason: FailureReason
    error: str = Field(description="What was wrong, naming the field where there is one.")
    field: str | None = None
    details: dict[str, str] = Field(
        default_factory=dict, description="Reason-specific facts, e.g. both digests of a conflict."
    )
    delivery_count: int = Field(ge=0)
    failed_at: AwareDatetime = Field(default_factory=utc_now)
    company: str | None = None
    event_id: str | None = None
