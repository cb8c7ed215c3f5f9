"""The events the alerts worker builds, each in one place: the notice (`Alert`) a lifecycle
decision calls for, and a signal about an alert a record holds (so a command can clear an
alert whose condition it ended, with the identity the raising worker used)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from pydantic import JsonValue

from schemas.alerts import Alert, AlertKind, AlertSignal, AlertStatus, Condition, Severity
from services.alerts.lifecycle import AlertRecord, Notification
from services.common.ids import derived_id


def alert_from_notification(notification: Notification, *, producer: str = "guidepost") -> Alert:
    """The `Alert` event for a lifecycle notice (validated: unknown kinds are refused).

    The event id is derived from the notice (fingerprint, episode start, number), so the same
    notice built twice, e.g. after a crash between deciding and acknowledging, carries one id.
    """
    episode = int(notification.starts_at.timestamp())
    return Alert(
        event_id=f"{notification.fingerprint}-{episode}-{notification.number}",
        producer=producer,
        company=notification.company,
        fingerprint=notification.fingerprint,
        group_key=notification.group_key,
        kind=AlertKind(notification.kind),
        status=AlertStatus(notification.status),
        severity=Severity(notification.severity),
        period=notification.period,
        subject=notification.subject,
        state=notification.state,
        summary=notification.summary,
        details=_json_details(notification.details),
        starts_at=notification.starts_at,
        ends_at=notification.ends_at,
        notification=notification.number,
    )


def _json_details(details: Mapping[str, object]) -> dict[str, JsonValue]:
    decoded: dict[str, JsonValue] = json.loads(json.dumps(dict(details), allow_nan=False))
    return decoded


def signal(
    record: AlertRecord,
    *,
    condition: Condition,
    summary: str,
    producer: str,
    at: datetime,
) -> AlertSignal:
    """A signal about the alert `record` holds: same company, period, kind and subject (so the
    same fingerprint), observed `at`. Its id is derived from the alert, the condition and the
    time, so publishing it twice is one signal."""
    return AlertSignal(
        event_id=derived_id(record.fingerprint, condition.value, at.isoformat()),
        company=record.company,
        producer=producer,
        occurred_at=at,
        kind=AlertKind(record.kind),
        period=record.period,
        subject=record.subject,
        condition=condition,
        severity=Severity(record.severity),
        state=record.state,
        summary=summary,
    )
