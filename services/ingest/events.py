"""What the ingest worker tells others: every AlertSignal it raises, built by `signal()`, and
its HistoryUpdated events.

A fact HistoryUpdated is built by the recording script from the changes it made (see
record_facts.lua); `history_update_envelope` gives the fields all of a batch's updates share and
`history_update_id` each one's id. A guidance HistoryUpdated is built here.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from schemas.alerts import AlertKind, AlertSignal, Condition, Severity
from schemas.base import Event
from schemas.guidance import GuidanceIssued
from schemas.history import GuidanceChange, HistoryUpdated
from schemas.metrics import MetricReported
from schemas.money import plain_decimal
from schemas.results import IncomeStatement, ResultsPublished
from services.common.histories.facts import ConflictingDuplicate, RecordedChange
from services.common.ids import derived_id
from services.ingest.integrity import Finding

PRODUCER = "guidepost-ingest"
STATEMENT_SUBJECT = "income_statement"


def signal(
    cause: Event,
    *,
    key: tuple[str, ...],
    kind: AlertKind,
    period: str,
    subject: str,
    summary: str,
    details: dict[str, Any],
    severity: Severity = Severity.WARNING,
    condition: Condition = Condition.FIRING,
) -> AlertSignal:
    """An alert signal caused by `cause`, with an id derived from it and `key` (so a
    redelivery raises the same signal again, which the alert lifecycle absorbs)."""
    return AlertSignal(
        event_id=derived_id(cause.event_id, *key),
        company=cause.company,
        producer=PRODUCER,
        kind=kind,
        period=period,
        subject=subject,
        condition=condition,
        severity=severity,
        summary=summary,
        details=details,
        cause_event_id=cause.event_id,
    )


def history_update_id(cause: Event) -> str:
    return derived_id(cause.event_id, "history")


def history_update_envelope(now: datetime) -> dict[str, str | int]:
    """The fields every fact HistoryUpdated of one batch shares (the script adds the rest)."""
    return {
        "schema_version": HistoryUpdated.SCHEMA_VERSION,
        "occurred_at": now.isoformat(),
        "producer": PRODUCER,
    }


def guidance_history_update(event: GuidanceIssued, revision: str) -> HistoryUpdated:
    return HistoryUpdated(
        event_id=history_update_id(event),
        company=event.company,
        producer=PRODUCER,
        cause_event_id=event.event_id,
        guidance=(GuidanceChange(metric=event.metric, period=event.period, revision=revision),),
    )


def conflict_signal(event: Event, conflict: ConflictingDuplicate) -> AlertSignal:
    """A data-quality alert: a producer reused an event id for other content (the first
    content stays recorded; this one is dead-lettered as `conflict`)."""
    return signal(
        event,
        key=("conflict", conflict.received_digest),
        kind=AlertKind.DATA_QUALITY,
        period=_period_of(event),
        subject=f"event_id:{event.event_id}"[:200],
        summary=(
            f"{event.company} event {event.event_id[:64]} was sent again with other content; "
            "the first version stays recorded and the new one is dead-lettered (conflict)."
        ),
        details={
            "event_id": event.event_id,
            "recorded_digest": conflict.recorded_digest,
            "received_digest": conflict.received_digest,
            "rule": "one event id, one content",
        },
    )


def restatement_signal(event: Event, change: RecordedChange) -> AlertSignal:
    old, new = change.previous or Decimal(0), change.value
    unit = change.currency or ""
    return signal(
        event,
        key=("restated", change.metric, change.period),
        kind=AlertKind.RESTATEMENT,
        period=change.period,
        subject=change.metric,
        summary=(
            f"{event.company} {change.metric} for {change.period} was restated from "
            f"{readable(old, unit)} to {readable(new, unit)} "
            f"({readable(new - old, unit, signed=True)})."
        ),
        details={
            "old": plain_decimal(old),
            "new": plain_decimal(new),
            "currency": unit,
            "cause": event.event_id,
        },
    )


def unit_slip_signal(
    event: Event, change: RecordedChange, previous: Decimal, factor: Decimal
) -> AlertSignal:
    direction = "larger" if factor > 0 else "smaller"
    unit = change.currency or ""
    return signal(
        event,
        key=("unit-slip", change.metric, change.period),
        kind=AlertKind.DATA_QUALITY,
        period=change.period,
        subject=change.metric,
        summary=(
            f"{event.company} {change.metric} for {change.period} is "
            f"{readable(change.value, unit)}, "
            f"about {abs(factor):,} times {direction} than the recent quarters' "
            f"{readable(previous, unit)}: probably sent in the wrong scale."
        ),
        details={
            "value": plain_decimal(change.value),
            "recent_median": plain_decimal(previous),
            "factor": plain_decimal(abs(factor)),
            "rule": "a figure 1,000-fold off its previous quarter",
            "cause": event.event_id,
        },
    )


def integrity_signal(
    event: ResultsPublished, statement: IncomeStatement, findings: list[Finding]
) -> AlertSignal:
    """One signal per statement: firing with every broken identity, or clear when all hold."""
    unit = f"{statement.currency} {statement.scale.value}"
    if findings:
        rules = "; ".join(finding.sentence(unit) for finding in findings)
        summary = f"{event.company} {statement.period} statement does not add up: {rules}."
    else:
        summary = f"{event.company} {statement.period} statement: every identity holds."
    return signal(
        event,
        key=("integrity", statement.period),
        kind=AlertKind.DATA_QUALITY,
        period=statement.period,
        subject=STATEMENT_SUBJECT,
        condition=Condition.FIRING if findings else Condition.CLEAR,
        severity=Severity.WARNING if findings else Severity.INFO,
        summary=summary[:1000],
        details={
            "unit": unit,
            "cause": event.event_id,
            "broken": [_broken(finding) for finding in findings],
        },
    )


def _broken(finding: Finding) -> dict[str, str]:
    return {
        "rule": finding.rule,
        "subject": finding.subject,
        "expected": plain_decimal(finding.expected),
        "found": plain_decimal(finding.found),
        "difference": plain_decimal(finding.difference),
        "tolerance": plain_decimal(finding.tolerance),
    }


def readable(value: Decimal, currency: str, *, signed: bool = False) -> str:
    """Money in millions of its currency (facts are stored in whole units); other units as is."""
    if not currency:
        return f"{value:+,}" if signed else f"{value:,}"
    millions = value / Decimal(1_000_000)
    return (
        f"{currency} {millions:+,.1f} million" if signed else f"{currency} {millions:,.1f} million"
    )


def _period_of(event: Event) -> str:
    if isinstance(event, ResultsPublished):
        return event.statement.period
    if isinstance(event, MetricReported | GuidanceIssued):
        return event.period
    raise TypeError(f"ingest has no period for {type(event).__name__}")
