"""Operator actions behind the command: dead letters, history, alert tailing, silences."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import redis.asyncio as aioredis
from pydantic import ValidationError

from schemas.alerts import Alert, Condition
from schemas.base import COMPANY_PATTERN
from schemas.deadletter import DeadLetter, FailureReason
from schemas.history import ChangeKind, FactChange, HistoryUpdated
from schemas.periods import PeriodError, frequency_of
from schemas.registry import metric_spec
from schemas.streams import Streams
from services.alerts.events import signal
from services.alerts.lifecycle import AlertRecord
from services.alerts.store import RedisAlertsView, RedisRedeliverySchedule
from services.common.histories.facts import FactVersion, RedisHistoryStore
from services.common.ids import derived_id
from services.common.records import decode_entries, decode_record, log_unreadable
from services.common.streams import publish
from services.forecast.store import RedisForecastStore

STREAM_MAX_LENGTH = 1_000_000  # the workers' default cap (the history stream is not capped)
PRODUCER = "guidepost-cli"


@dataclass(frozen=True)
class StoredLetter:
    entry_id: str
    letter: DeadLetter


@dataclass(frozen=True)
class LetterRead:
    """Every readable dead letter, and the ids of entries in the stream that are none."""

    letters: list[StoredLetter]
    unreadable: list[str]


async def read_dead_letters(redis: aioredis.Redis, streams: Streams) -> LetterRead:
    entries: Any = await redis.xrange(streams.dead_letters)
    decoded = decode_entries(entries, DeadLetter, stream=streams.dead_letters)
    letters = [StoredLetter(entry_id, letter) for entry_id, letter in decoded.records]
    return LetterRead(letters, decoded.unreadable)


async def dead_letters(redis: aioredis.Redis, streams: Streams) -> list[StoredLetter]:
    """The readable dead letters (an unreadable entry is skipped and logged)."""
    return (await read_dead_letters(redis, streams)).letters


REQUEUE = "requeued to its stream"
REDELIVER = "scheduled for redelivery by the alerts worker"
RERUN = "refit rerun (quarantine lifted)"


@dataclass
class KindReport:
    """What `replay` did with the letters of one reason."""

    action: str
    matched: int = 0
    replayed: int = 0
    skipped: list[str] | None = None  # why some letters could not be replayed

    def skip(self, entry_id: str, why: str) -> None:
        self.skipped = [*(self.skipped or []), f"{entry_id}: {why}"]

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "matched": self.matched,
            "replayed": self.replayed,
            "skipped": self.skipped or [],
            # each kind's own word for what it did
            {REQUEUE: "requeued", REDELIVER: "scheduled", RERUN: "rerun"}[self.action]: (
                self.replayed
            ),
        }


async def replay(
    redis: aioredis.Redis, streams: Streams, letters: list[StoredLetter]
) -> dict[str, KindReport]:
    """Each letter back where it can be handled, by reason:

    * an entry that failed on a stream (invalid, oversized, undecodable, conflict, handler
      failed) goes back on its stream, through the normal validation (a truncated copy cannot);
    * a notice the webhook (or Alertmanager) did not take is scheduled for redelivery by that
      sink (the alerts worker sends it, once: its delivered mark makes any repeat a no-op);
    * a refit letter lifts its company's quarantine and marks it for a refit now.

    Each letter is deleted once its effect is durable (a crash in between replays it twice,
    which the dedupe marks absorb)."""
    reports: dict[str, KindReport] = {}
    for stored in letters:
        reason = stored.letter.reason
        action = _ACTIONS.get(reason, REQUEUE)
        report = reports.setdefault(reason.value, KindReport(action))
        report.matched += 1
        why = await _replay_one(redis, streams, stored, action)
        if why is None:
            await redis.xdel(streams.dead_letters, stored.entry_id)
            report.replayed += 1
        else:
            report.skip(stored.entry_id, why)
    return reports


_ACTIONS = {FailureReason.DELIVERY_FAILED: REDELIVER, FailureReason.REFIT_FAILED: RERUN}


async def _replay_one(
    redis: aioredis.Redis, streams: Streams, stored: StoredLetter, action: str
) -> str | None:
    """None when replayed, else why not."""
    letter = stored.letter
    if action == RERUN:
        company = letter.company or letter.payload.get("company")
        if not company:
            return "names no company"
        await RedisForecastStore(redis, streams).release(company, at=time.time())
        await resolve_quarantine_alert(redis, streams, company)
        return None
    if letter.payload_truncated:
        return "only a truncated copy was kept (see payload_sha256 and payload_bytes)"
    if action == REDELIVER:
        alert = decode_record({k.encode(): v.encode() for k, v in letter.payload.items()}, Alert)
        if alert is None:
            return "its payload is not a notice (an Alert)"
        sink = letter.group or "webhook"  # the sink that gave up: webhook or alertmanager
        await RedisRedeliverySchedule(redis, streams, sink=sink).requeue(
            alert.event_id, alert.model_dump_json(), error=letter.error
        )
        return None
    await redis.xadd(letter.source_stream, dict(letter.payload))  # type: ignore[arg-type]
    return None


async def resolve_quarantine_alert(redis: aioredis.Redis, streams: Streams, company: str) -> int:
    """Clear the company's quarantine alert, once its quarantine is lifted: nobody else ends
    it (the forecast worker only raises it). A refit that fails again quarantines the company
    anew and raises a new alert. Returns how many alerts were cleared."""
    records = await RedisAlertsView(redis, streams).records(company)
    now = datetime.now(UTC)
    cleared = [
        signal(record, condition=Condition.CLEAR, summary=_lifted(company), producer=PRODUCER,
               at=now)
        for record in records.values()
        if _is_quarantine_alert(record) and record.status == "firing"
    ]  # fmt: skip
    if cleared:
        await publish(
            redis, streams.signals, cleared, max_length=STREAM_MAX_LENGTH, streams=streams
        )
    return len(cleared)


def _is_quarantine_alert(record: AlertRecord) -> bool:
    """The alert the forecast worker raised when it quarantined the company (its period is
    the quarter it was raised in, read back from the record)."""
    # imported here: the forecast worker's events load the numerical stack, which the
    # other operator commands need not pay for
    from services.forecast.events import QUARANTINE_KIND, QUARANTINE_SUBJECT

    return (record.kind, record.subject) == (QUARANTINE_KIND.value, QUARANTINE_SUBJECT)


def _lifted(company: str) -> str:
    return f"{company}'s quarantine was lifted (guidepost dlq replay); its refit runs again."


async def purge(redis: aioredis.Redis, streams: Streams, *, before: datetime) -> int:
    """Delete dead letters older than `before` (stream ids are millisecond timestamps)."""
    boundary = f"{int(before.timestamp() * 1000)}-0"
    entries: Any = await redis.xrange(streams.dead_letters, max=f"({boundary}")
    ids = [entry_id for entry_id, _ in entries]
    if ids:
        await redis.xdel(streams.dead_letters, *ids)
    return len(ids)


async def history(
    redis: aioredis.Redis, streams: Streams, *, company: str, period: str | None
) -> list[FactVersion]:
    versions = await RedisHistoryStore(redis, streams).versions(company)
    chosen = [v for v in versions if period is None or v.period == period]
    return sorted(chosen, key=lambda v: (v.metric, v.period, v.known_at))


@dataclass(frozen=True)
class Retraction:
    retracted: FactVersion
    announcement_id: str | None  # None: the period cannot be announced; the refit was marked
    quarantined: bool  # the company's refits wait for `dlq replay` of its refit letter


class RetractionError(ValueError):
    """The company, metric or period is not one."""


class NothingToRetractError(RetractionError):
    """The fact has no current value to withdraw."""


async def retract(
    redis: aioredis.Redis, streams: Streams, *, company: str, metric: str, period: str
) -> Retraction:
    """Withdraw a fact's current value (bitemporal: `history --as-of` an earlier time still
    shows it) and announce the change, so forecasts and guidance checks follow."""
    check_fact_names(company, metric, period)
    retraction_id = f"retraction-{uuid4().hex}"
    store = RedisHistoryStore(redis, streams)
    now = datetime.now(UTC)
    version = await store.retract(company, metric, period, at=now, retraction_id=retraction_id)
    if version is None:
        raise NothingToRetractError(f"{company} has no current value of {metric} for {period}")
    update = _retraction_history_update(company, version, retraction_id)
    refits = RedisForecastStore(redis, streams)
    if update is not None:
        await publish(
            redis, streams.history, [update], max_length=STREAM_MAX_LENGTH, streams=streams
        )
    else:  # a period no contract accepts any more (recorded before it was refused)
        await refits.mark_all([company], at=time.time())
    quarantined = company in await refits.quarantined([company])
    return Retraction(version, update.event_id if update else None, quarantined)


def _retraction_history_update(
    company: str, version: FactVersion, retraction_id: str
) -> HistoryUpdated | None:
    """The history update that tells of it, so forecasts and guidance checks follow; None when
    the fact's period is outside what a contract accepts now."""
    try:
        change = FactChange(
            metric=version.metric,
            period=version.period,
            kind=ChangeKind.RETRACTED,
            value=version.value,
            previous=version.value,
            currency=version.currency,
        )
    except ValidationError:
        return None
    return HistoryUpdated(
        event_id=derived_id(retraction_id, "history"),
        company=company,
        producer=PRODUCER,
        cause_event_id=retraction_id,
        facts=(change,),
    )


def check_fact_names(company: str, metric: str, period: str) -> None:
    if not re.match(COMPANY_PATTERN, company):
        raise RetractionError(f"--company {company!r} is not a company identifier (e.g. ACME)")
    try:
        metric_spec(metric)
        frequency_of(period)
    except (KeyError, PeriodError) as error:
        raise RetractionError(str(error.args[0])) from None


async def tail_alerts(
    redis: aioredis.Redis,
    streams: Streams,
    *,
    count: int | None,
    timeout_s: float | None,
    from_beginning: bool,
) -> AsyncIterator[Alert]:
    """Read alerts without a group (a tail never takes entries from a subscriber)."""
    notices = RedisAlertsView(redis, streams)
    last_id = "0" if from_beginning else "$"
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    seen = 0
    while (count is None or seen < count) and (deadline is None or time.monotonic() < deadline):
        block_ms = (
            500 if deadline is None else max(1, int(min(0.5, deadline - time.monotonic()) * 1000))
        )
        unreadable = []
        for entry_id, alert in await notices.read_after(last_id, block_ms=block_ms):
            last_id = entry_id
            if alert is None:  # skipped (and logged below); the tail goes on
                unreadable.append(last_id)
                continue
            seen += 1
            yield alert
            if count is not None and seen >= count:
                return
        if unreadable:
            log_unreadable(streams.alerts, Alert, unreadable)
        await asyncio.sleep(0)
