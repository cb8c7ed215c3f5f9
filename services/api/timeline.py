"""The alert timeline: each notice placed at the time its fact became known.

An `Alert`'s own `occurred_at` is when the alerts worker built the notice (processing time),
which a backlog, a restart or a replay can put hours after the fact. The time the fact became
known travels elsewhere: `ends_at` of a resolved notice is the known-at of the observation
that cleared it; a notice about a statement (a guidance revision) names the statement's
`known_at` in its details; otherwise `starts_at` is the known-at of the observation that
started the episode firing. A later notice of an episode without a stated known-at (a change
of call, a repeat) is placed at the episode's start, marked so, and ordered after the
episode's earlier notices by its number.

Informational notices (severity info: an outcome within guidance, a raised guidance, a
consistent guidance arithmetic) report news rather than a condition that needs attention and
that will later clear, so they are shown as informational and never count as firing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from schemas.alerts import Alert, AlertStatus, Severity

INFORMATIONAL = "informational"


@dataclass(frozen=True)
class TimelineEntry:
    known_at: datetime
    status: str  # firing, resolved or informational
    severity: str
    kind: str
    subject: str
    period: str
    summary: str
    notification: int
    processed_at: datetime  # when the alerts worker built the notice
    at_episode_start: bool  # a later notice placed at its episode's start, its own unknown


def timeline(alerts: Sequence[Alert]) -> tuple[TimelineEntry, ...]:
    """Newest known fact first; within one known-at, the later notice first."""
    entries = (_entry(alert) for alert in alerts)
    return tuple(sorted(entries, key=lambda e: (e.known_at, e.notification), reverse=True))


def known_at(alert: Alert) -> datetime:
    if alert.status is AlertStatus.RESOLVED and alert.ends_at is not None:
        return alert.ends_at
    return stated_known_at(alert) or alert.starts_at


def stated_known_at(alert: Alert) -> datetime | None:
    """The `known_at` a notice's details name (an ISO time with its zone), if any."""
    stated = alert.details.get("known_at")
    try:
        moment = datetime.fromisoformat(stated) if isinstance(stated, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def shown_status(alert: Alert) -> str:
    if alert.severity is Severity.INFO and alert.status is AlertStatus.FIRING:
        return INFORMATIONAL
    return alert.status.value


def record_status(status: object, severity: object) -> str:
    """The shown status of one of the alert service's stored records (plain JSON values)."""
    if status == AlertStatus.FIRING.value and severity == Severity.INFO.value:
        return INFORMATIONAL
    return str(status)


def _entry(alert: Alert) -> TimelineEntry:
    placed = known_at(alert)
    return TimelineEntry(
        known_at=placed,
        status=shown_status(alert),
        severity=alert.severity.value,
        kind=alert.kind.value,
        subject=alert.subject,
        period=alert.period,
        summary=alert.summary,
        notification=alert.notification,
        processed_at=alert.occurred_at,
        at_episode_start=alert.notification > 1 and placed == alert.starts_at,
    )
