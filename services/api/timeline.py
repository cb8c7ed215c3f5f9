"""The alert timeline: each notice placed at the time its fact became known.

An `Alert`'s own `occurred_at` is when the alerts worker built the notice (processing time),
which a backlog, a restart or a replay can put hours after the fact. The time the fact became
known travels in the notice's episode: `starts_at` is the known-at of the observation that
started it firing, `ends_at` the known-at of the one that cleared it. A later notice of the
same episode (a repeat, or a change of state) carries only the episode's start, so it is
placed there and ordered after the episode's earlier notices by its number.

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

    @property
    def continues_episode(self) -> bool:
        """A later notice of a firing episode: its time is the episode's start."""
        return self.status != AlertStatus.RESOLVED.value and self.notification > 1


def timeline(alerts: Sequence[Alert]) -> tuple[TimelineEntry, ...]:
    """Newest known fact first; within one known-at, the later notice first."""
    entries = (_entry(alert) for alert in alerts)
    return tuple(sorted(entries, key=lambda e: (e.known_at, e.notification), reverse=True))


def known_at(alert: Alert) -> datetime:
    if alert.status is AlertStatus.RESOLVED and alert.ends_at is not None:
        return alert.ends_at
    return alert.starts_at


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
    return TimelineEntry(
        known_at=known_at(alert),
        status=shown_status(alert),
        severity=alert.severity.value,
        kind=alert.kind.value,
        subject=alert.subject,
        period=alert.period,
        summary=alert.summary,
        notification=alert.notification,
        processed_at=alert.occurred_at,
    )
