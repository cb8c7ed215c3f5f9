"""The alert lifecycle: identity, dedupe, repeats, resolved notices, silences and inhibition.

Pure: standard library only. A worker reports an `Observation` (a condition holds, or no longer
holds); `decide` compares it with the stored `AlertRecord` and returns the record to store plus,
at most, one `Notification` to send. The rules follow Alertmanager's:

* identity is (company, period, kind, subject), hashed into a stable `fingerprint`;
* a first firing is announced at once; the same firing again is not (a replay sends nothing);
* a change of state or severity against what was last *announced* is announced at once;
* an unchanged firing is announced again once `repeat_interval` has passed since the last notice;
* an observation that reports an event rather than a condition (`announce_changes`: a new
  guidance statement) is announced whenever its content differs from what the record holds;
* a clear resolves the alert, with a resolved notice only if a firing notice went out;
* while silenced or inhibited the record follows the observations but no firing notice goes
  out, so the first observation after the mute ends announces what the receiver has not heard;
  a resolved notice still goes out, to close an incident the receiver already holds open.

Hysteresis of the states themselves is decided upstream; this module only refuses to add noise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from fnmatch import fnmatchcase
from functools import cached_property
from types import MappingProxyType
from typing import Literal

Status = Literal["firing", "resolved"]
ConditionName = Literal["firing", "clear"]
Labels = Mapping[str, str]

LABEL_NAMES = ("company", "period", "kind", "subject", "severity", "state")
"""Labels silences and inhibit rules may match on. A missing state is the empty string."""


# --------------------------------------------------------------------------- identity


def fingerprint(*, company: str, period: str, kind: str, subject: str) -> str:
    """A stable 32-hex-digit id: SHA-256 of the identity labels, the same in every process."""
    identity = json.dumps([company, period, kind, subject], separators=(",", ":"))
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]


def group_key(*, company: str, period: str) -> str:
    """Alerts of one company and period share a group, spelled like Alertmanager's groupKey."""
    return f"{{}}:{{company={json.dumps(company)},period={json.dumps(period)}}}"


def labels_of(
    *, company: str, period: str, kind: str, subject: str, severity: str, state: str | None
) -> dict[str, str]:
    return {
        "company": company,
        "period": period,
        "kind": kind,
        "subject": subject,
        "severity": severity,
        "state": state or "",
    }


def details_digest(details: Mapping[str, object]) -> str:
    """SHA-256 of the details as canonical JSON (sorted keys), for change detection."""
    try:
        canonical = json.dumps(
            details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"alert details must be JSON (str, number, bool, null, lists, objects): {error}"
        ) from None
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- observations


@dataclass(frozen=True, kw_only=True)
class Observation:
    """What a worker saw: a condition of one alert identity, firing or clear, at `observed_at`."""

    company: str
    period: str
    kind: str
    subject: str
    condition: ConditionName
    severity: str
    state: str | None
    summary: str
    details: Mapping[str, object] = field(default_factory=dict, hash=False)
    observed_at: datetime
    announce_changes: bool = False  # an event (each one is news), not a lasting condition

    def __post_init__(self) -> None:
        if self.condition not in ("firing", "clear"):
            raise ValueError(f"condition {self.condition!r} must be 'firing' or 'clear'")
        if self.observed_at.tzinfo is None:
            raise ValueError("observed_at must be timezone-aware, e.g. datetime.now(UTC)")
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    @cached_property  # a SHA-256 the worker asks for several times per observation
    def fingerprint(self) -> str:
        return fingerprint(
            company=self.company, period=self.period, kind=self.kind, subject=self.subject
        )

    @property
    def labels(self) -> dict[str, str]:
        return labels_of(
            company=self.company,
            period=self.period,
            kind=self.kind,
            subject=self.subject,
            severity=self.severity,
            state=self.state,
        )


@dataclass(frozen=True, kw_only=True)
class Explanation:
    """The human sentence and structured details an alert carries, with their digest."""

    summary: str
    details: Mapping[str, object] = field(hash=False)
    digest: str


def explain(observation: Observation) -> Explanation:
    """Keep the worker's sentence and details; describe the labels if the sentence is missing."""
    summary = observation.summary.strip() or _default_summary(observation)
    details = observation.details
    return Explanation(summary=summary, details=details, digest=_content_digest(summary, details))


def _default_summary(observation: Observation) -> str:
    what = observation.state or observation.condition
    return (
        f"{observation.kind} on {observation.subject} for {observation.company} "
        f"{observation.period}: {what}"
    )


def _content_digest(summary: str, details: Mapping[str, object]) -> str:
    return details_digest({"summary": summary, "details": dict(details)})


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, kw_only=True)
class AlertRecord:
    """The stored state of one alert identity.

    `notified_state` and `notified_severity` are what the receiver last heard; comparing against
    them (not the last observation) is what lets a mute end with exactly the notice still owed.
    `notifications` counts the notices of the current firing episode (resolved included).
    """

    fingerprint: str
    company: str
    period: str
    kind: str
    subject: str
    status: Status
    severity: str
    state: str | None
    summary: str
    details_digest: str
    starts_at: datetime
    observed_at: datetime
    last_notified_at: datetime | None = None
    notifications: int = 0
    resolved_at: datetime | None = None
    notified_state: str | None = None
    notified_severity: str | None = None

    @property
    def group_key(self) -> str:
        return group_key(company=self.company, period=self.period)

    @property
    def labels(self) -> dict[str, str]:
        return labels_of(
            company=self.company,
            period=self.period,
            kind=self.kind,
            subject=self.subject,
            severity=self.severity,
            state=self.state,
        )

    @property
    def was_announced(self) -> bool:
        return self.notifications > 0


class Reason(StrEnum):
    FIRST = "first"
    STATE_CHANGE = "state_change"
    SEVERITY_CHANGE = "severity_change"
    REPEAT = "repeat"
    RESOLVED = "resolved"
    UPDATE = "update"  # new content of an event-like alert


@dataclass(frozen=True, kw_only=True)
class Notification:
    """One notice to send: everything a sink needs to build a `schemas.alerts.Alert`."""

    status: Status
    number: int
    reason: Reason
    fingerprint: str
    group_key: str
    company: str
    period: str
    kind: str
    subject: str
    severity: str
    state: str | None
    summary: str
    details: Mapping[str, object] = field(hash=False)
    starts_at: datetime
    ends_at: datetime | None

    @property
    def is_repeat(self) -> bool:
        return self.reason is Reason.REPEAT

    @property
    def is_state_change(self) -> bool:
        return self.reason in (Reason.STATE_CHANGE, Reason.SEVERITY_CHANGE)


@dataclass(frozen=True, kw_only=True)
class Decision:
    record: AlertRecord | None
    notification: Notification | None = None


# --------------------------------------------------------------------------- decide


def decide(
    observation: Observation,
    record: AlertRecord | None,
    *,
    now: datetime,
    repeat_interval: timedelta,
    silenced: bool,
    inhibited: bool,
) -> Decision:
    """The record to store and the notice (if any) this observation calls for."""
    if repeat_interval <= timedelta(0):
        raise ValueError(f"repeat_interval must be positive, got {repeat_interval}")
    if record is not None and record.fingerprint != observation.fingerprint:
        raise ValueError(
            f"record {record.fingerprint} belongs to another alert than the observation "
            f"{observation.fingerprint} ({observation.company} {observation.period} "
            f"{observation.kind} {observation.subject})"
        )
    explanation = explain(observation)
    if record is not None and _is_stale_or_replayed(observation, explanation, record):
        return Decision(record=record)
    muted = silenced or inhibited
    if observation.condition == "clear":
        return _clear(observation, explanation, record, now=now)
    return _fire(observation, explanation, record, now=now, every=repeat_interval, muted=muted)


def _is_stale_or_replayed(
    observation: Observation, explanation: Explanation, record: AlertRecord
) -> bool:
    """An older observation, or the very same one again, must not move the record."""
    if observation.observed_at != record.observed_at:
        return observation.observed_at < record.observed_at
    return _observed_status(observation) == record.status and _same_content(
        observation, explanation, record
    )


def _observed_status(observation: Observation) -> Status:
    return "firing" if observation.condition == "firing" else "resolved"


def _same_content(observation: Observation, explanation: Explanation, record: AlertRecord) -> bool:
    return (
        observation.state == record.state
        and observation.severity == record.severity
        and explanation.digest == record.details_digest
    )


def _clear(
    observation: Observation,
    explanation: Explanation,
    record: AlertRecord | None,
    *,
    now: datetime,
) -> Decision:
    if record is None or record.status == "resolved":
        return Decision(record=record)
    resolved = replace(
        record,
        status="resolved",
        summary=explanation.summary,
        details_digest=explanation.digest,
        observed_at=observation.observed_at,
        resolved_at=observation.observed_at,
    )
    if not record.was_announced:
        return Decision(record=resolved)
    # A resolved notice is sent even under a silence: it closes an incident the receiver already
    # holds open, while the silence exists to stop new noise.
    announced = replace(
        resolved,
        notifications=record.notifications + 1,
        last_notified_at=now,
    )
    return Decision(
        record=announced, notification=_notification(announced, explanation, Reason.RESOLVED)
    )


def _fire(
    observation: Observation,
    explanation: Explanation,
    record: AlertRecord | None,
    *,
    now: datetime,
    every: timedelta,
    muted: bool,
) -> Decision:
    current = _firing_record(observation, explanation, record)
    reason = _reason_to_announce(current, now=now, every=every)
    if reason is None and observation.announce_changes and _new_content(record, explanation):
        reason = Reason.UPDATE
    if reason is None or muted:
        return Decision(record=current)
    announced = replace(
        current,
        notifications=current.notifications + 1,
        last_notified_at=now,
        notified_state=current.state,
        notified_severity=current.severity,
    )
    return Decision(record=announced, notification=_notification(announced, explanation, reason))


def _new_content(record: AlertRecord | None, explanation: Explanation) -> bool:
    return record is not None and record.details_digest != explanation.digest


def _firing_record(
    observation: Observation, explanation: Explanation, record: AlertRecord | None
) -> AlertRecord:
    """The record after this firing observation; a new episode if there was none firing."""
    if record is None or record.status == "resolved":
        return AlertRecord(
            fingerprint=observation.fingerprint,
            company=observation.company,
            period=observation.period,
            kind=observation.kind,
            subject=observation.subject,
            status="firing",
            severity=observation.severity,
            state=observation.state,
            summary=explanation.summary,
            details_digest=explanation.digest,
            starts_at=observation.observed_at,
            observed_at=observation.observed_at,
        )
    return replace(
        record,
        severity=observation.severity,
        state=observation.state,
        summary=explanation.summary,
        details_digest=explanation.digest,
        observed_at=observation.observed_at,
    )


def _reason_to_announce(record: AlertRecord, *, now: datetime, every: timedelta) -> Reason | None:
    if not record.was_announced or record.last_notified_at is None:
        return Reason.FIRST
    if record.state != record.notified_state:
        return Reason.STATE_CHANGE
    if record.severity != record.notified_severity:
        return Reason.SEVERITY_CHANGE
    if now - record.last_notified_at >= every:
        return Reason.REPEAT
    return None


def _notification(record: AlertRecord, explanation: Explanation, reason: Reason) -> Notification:
    return Notification(
        status=record.status,
        number=record.notifications,
        reason=reason,
        fingerprint=record.fingerprint,
        group_key=record.group_key,
        company=record.company,
        period=record.period,
        kind=record.kind,
        subject=record.subject,
        severity=record.severity,
        state=record.state,
        summary=explanation.summary,
        details=explanation.details,
        starts_at=record.starts_at,
        ends_at=record.resolved_at,
    )


# --------------------------------------------------------------------------- matching


def _check_matchers(matchers: Mapping[str, str], *, what: str) -> Mapping[str, str]:
    unknown = sorted(set(matchers) - set(LABEL_NAMES))
    if unknown:
        raise ValueError(
            f"{what} names unknown label(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(LABEL_NAMES)}"
        )
    return MappingProxyType(dict(matchers))


def matches_all(matchers: Mapping[str, str], labels: Labels) -> bool:
    """Every matcher (an exact value or a shell-style glob like 'Q*') matches its label."""
    return all(fnmatchcase(labels.get(name, ""), pattern) for name, pattern in matchers.items())


@dataclass(frozen=True, kw_only=True)
class Silence:
    """Mutes alerts whose labels match every matcher, from `starts_at` until `ends_at`."""

    id: str
    matchers: Mapping[str, str] = field(hash=False)
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ValueError(f"silence {self.id} has no matchers; it would mute every alert")
        object.__setattr__(
            self, "matchers", _check_matchers(self.matchers, what=f"silence {self.id}")
        )
        if self.ends_at <= self.starts_at:
            raise ValueError(
                f"silence {self.id} ends at {self.ends_at.isoformat()}, "
                f"not after it starts at {self.starts_at.isoformat()}"
            )

    def is_active(self, *, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def matches(self, labels: Labels, *, at: datetime) -> bool:
        return self.is_active(at=at) and matches_all(self.matchers, labels)


def silenced_by(labels: Labels, silences: Iterable[Silence], *, at: datetime) -> Silence | None:
    """The first silence muting these labels at `at`, if any."""
    return next((silence for silence in silences if silence.matches(labels, at=at)), None)


@dataclass(frozen=True, kw_only=True)
class InhibitRule:
    """A firing source alert mutes target alerts that share the `equal` labels with it.

    E.g. source {kind: guidance_revision, state: withdrawn}, target {kind: band_check},
    equal (company, period, subject): withdrawn guidance leaves no band to check against.
    """

    source: Mapping[str, str] = field(hash=False)
    target: Mapping[str, str] = field(hash=False)
    equal: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", _check_matchers(self.source, what="inhibit source"))
        object.__setattr__(self, "target", _check_matchers(self.target, what="inhibit target"))
        _check_matchers(dict.fromkeys(self.equal, "*"), what="inhibit equal")

    def mutes(self, target: Labels, *, source: Labels) -> bool:
        return (
            matches_all(self.target, target)
            and matches_all(self.source, source)
            and all(target.get(name, "") == source.get(name, "") for name in self.equal)
        )


def inhibited_by(
    labels: Labels,
    firing: Iterable[AlertRecord],
    rules: Iterable[InhibitRule],
) -> AlertRecord | None:
    """The firing alert (other than this one) that inhibits these labels, if any."""
    candidates = [record for record in firing if record.status == "firing"]
    if not candidates:  # the usual case: no SHA-256 of these labels needed
        return None
    own = fingerprint(
        company=labels.get("company", ""),
        period=labels.get("period", ""),
        kind=labels.get("kind", ""),
        subject=labels.get("subject", ""),
    )
    sources = [record for record in candidates if record.fingerprint != own]
    rules = tuple(rules)
    for source in sources:
        if any(rule.mutes(labels, source=source.labels) for rule in rules):
            return source
    return None


WITHDRAWN_GUIDANCE_MUTES_BAND_CHECKS = InhibitRule(
    source={"kind": "guidance_revision", "state": "withdrawn"},
    target={"kind": "band_check"},
    equal=("company", "period", "subject"),
)
