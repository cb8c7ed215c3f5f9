"""The alerts worker: signals in, lifecycle decided, notices out on the durable alerts stream.

The record and the notice are written in one MULTI, so a crash can neither send a notice
twice nor lose one; a replayed signal finds the record already updated and sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from schemas.alerts import Alert, AlertKind, AlertSignal
from schemas.base import Event, utc_now
from schemas.deadletter import DeadLetter, FailureReason
from schemas.streams import DATA_FIELD, Streams
from services.alerts.lifecycle import (
    WITHDRAWN_GUIDANCE_MUTES_BAND_CHECKS,
    AlertRecord,
    InhibitRule,
    Observation,
    Silence,
    decide,
    fingerprint,
    inhibited_by,
    matches_all,
    silenced_by,
)
from services.alerts.redelivery import Backoff as RetryBackoff
from services.alerts.redelivery import Pending, RedeliverySchedule
from services.alerts.webhook import (
    AlertSink,
    DeliveryFailed,
    alert_from_notification,
    notice_batches,
)
from services.common.health import Backoff
from services.common.metrics import NO_METRICS, AlertMetrics, WebhookMetrics
from services.common.streams import Acknowledgement, dead_letter
from services.common.wire import as_text, entry_fields

PRODUCER = "guidepost-alerts"
log = logging.getLogger(__name__)
DEFAULT_INHIBIT_RULES = (WITHDRAWN_GUIDANCE_MUTES_BAND_CHECKS,)
# Alerts that report events, each of which is news (not lasting conditions)
EVENT_KINDS = frozenset({AlertKind.GUIDANCE_REVISION})


class AlertService:
    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        streams: Streams,
        repeat_interval: timedelta,
        max_length: int,
        rules: Sequence[InhibitRule] = DEFAULT_INHIBIT_RULES,
        metrics: AlertMetrics = NO_METRICS,
        atomic: bool = True,
    ) -> None:
        self._metrics = metrics
        self._atomic = atomic
        self._redis = redis
        self._streams = streams
        self._repeat_interval = repeat_interval
        self._max_length = max_length
        self._rules = tuple(rules)
        self.silences = RedisSilenceStore(redis, streams)

    async def apply_all(self, events: Sequence[Event]) -> list[BaseException | None]:
        """A batch of signals: records read in one round trip, decided in order, written in one
        MULTI with their notices (a failure leaves the whole batch pending, to be retried)."""
        return await self.apply_all_acknowledging(events, None)

    async def apply_all_acknowledging(
        self, events: Sequence[Event], acknowledgement: Acknowledgement | None
    ) -> list[BaseException | None]:
        """`apply_all`, the batch's entries acknowledged with its effects (in the same MULTI on
        one Redis, after it on a cluster)."""
        try:
            observations = [_observation(e) for e in events]  # type: ignore[arg-type]
            await self.observe_many(observations, acknowledgement)
        except Exception as error:
            return [error] * len(events)
        return [None] * len(events)

    async def observe(self, observation: Observation) -> None:
        await self.observe_many([observation])

    async def observe_many(
        self, observations: Sequence[Observation], acknowledgement: Acknowledgement | None = None
    ) -> None:
        now = utc_now()
        known, complete, silences_version = await self._known_records(observations)
        silences = await self.silences.active(now, version=silences_version)
        writes: list[tuple[Observation, AlertRecord, Alert | None]] = []
        for observation in observations:
            key = (observation.company, observation.fingerprint)
            record = known.get(key)
            firing = [
                r for (company, _), r in known.items()
                if company == observation.company and r is not None and r.status == "firing"
            ] if observation.company in complete else []  # fmt: skip
            decision = decide(
                observation,
                record,
                now=now,
                repeat_interval=self._repeat_interval,
                silenced=silenced_by(observation.labels, silences, at=now) is not None,
                inhibited=inhibited_by(observation.labels, firing, self._rules) is not None,
            )
            if decision.record is None or decision.record == record:
                continue
            known[key] = decision.record
            notice = decision.notification
            alert = alert_from_notification(notice, producer=PRODUCER) if notice else None
            writes.append((observation, decision.record, alert))
        await self._write(writes, acknowledgement)

    async def _write(
        self,
        writes: list[tuple[Observation, AlertRecord, Alert | None]],
        acknowledgement: Acknowledgement | None = None,
    ) -> None:
        """MULTI on one Redis; on a cluster the stream and the records live on different slots,
        so the notices go first and their deterministic ids let subscribers drop a repeat.
        An acknowledgement goes last in the MULTI: MULTI refuses the whole block if a command
        cannot be queued (out of memory, say), and a queued one fails only on a key of the
        wrong type, which no retry would mend. Without a MULTI it is sent after the writes."""
        in_multi = acknowledgement if writes and self._atomic else None
        if writes:
            await self._write_records(writes, in_multi)
        if acknowledgement is not None and in_multi is None:
            await acknowledgement.send(self._redis)

    async def _write_records(
        self,
        writes: list[tuple[Observation, AlertRecord, Alert | None]],
        acknowledgement: Acknowledgement | None,
    ) -> None:
        async with self._redis.pipeline(transaction=self._atomic) as pipe:
            for observation, record, alert in writes:
                if alert is not None:
                    pipe.xadd(
                        self._streams.alerts,
                        entry_fields(alert),  # type: ignore[arg-type]
                        maxlen=self._max_length,
                        approximate=True,
                    )
                key = self._streams.company_key(observation.company, "alerts")
                pipe.hset(key, observation.fingerprint, encode_record(record))
            if acknowledgement is not None:
                acknowledgement.add_to(pipe)
            await pipe.execute()
        for _, _, alert in writes:
            if alert is not None:
                self._metrics.alert_sent(kind=alert.kind.value, status=alert.status.value)

    async def _known_records(
        self, observations: Sequence[Observation]
    ) -> tuple[dict[tuple[str, str], AlertRecord | None], set[str], bytes | None]:
        """Each observed alert's record and, for companies where a rule could inhibit one of
        them, every record of the company (the inhibition candidates); and the silences'
        version — one round trip."""
        complete = {
            o.company
            for o in observations
            if any(matches_all(rule.target, o.labels) for rule in self._rules)
        }
        single = sorted(
            {(o.company, o.fingerprint) for o in observations if o.company not in complete}
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self.silences.version_key)
            for company in sorted(complete):
                pipe.hgetall(self._streams.company_key(company, "alerts"))
            for company, fingerprint in single:
                pipe.hget(self._streams.company_key(company, "alerts"), fingerprint)
            silences_version, *replies = await pipe.execute()
        known: dict[tuple[str, str], AlertRecord | None] = {}
        for company, raw in zip(sorted(complete), replies, strict=False):
            known.update({(company, as_text(k)): decode_record(v) for k, v in raw.items()})
        for key, raw in zip(single, replies[len(complete) :], strict=True):
            known[key] = decode_record(raw) if raw else None
        return known, complete, silences_version

    async def records(self, company: str) -> dict[str, AlertRecord]:
        raw = await self._redis.hgetall(self._streams.company_key(company, "alerts"))  # type: ignore[misc]
        return {as_text(k): decode_record(v) for k, v in raw.items()}


class RedisSilenceStore:
    def __init__(self, redis: aioredis.Redis, streams: Streams) -> None:
        self._redis = redis
        self._key = streams.key("silences")
        self.version_key = streams.key("silences", "version")
        self._cached: tuple[bytes | None, list[Silence]] | None = None

    async def add(self, silence: Silence) -> None:
        document = {
            "id": silence.id,
            "matchers": dict(silence.matchers),
            "starts_at": silence.starts_at.isoformat(),
            "ends_at": silence.ends_at.isoformat(),
            "created_by": silence.created_by,
            "comment": silence.comment,
        }
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._key, silence.id, json.dumps(document, default=str))
            pipe.incr(self.version_key)
            await pipe.execute()

    async def active(self, now: datetime, *, version: bytes | None) -> list[Silence]:
        """Silences in force; re-read only when `version` (the counter at `version_key`, which
        every change bumps, as the caller read it with its other reads) moved."""
        if self._cached is None or self._cached[0] != version:
            self._cached = (version, await self.all())
        return [silence for silence in self._cached[1] if silence.is_active(at=now)]

    async def all(self) -> list[Silence]:
        raw = await self._redis.hgetall(self._key)  # type: ignore[misc]
        return [_silence(json.loads(blob)) for blob in raw.values()]

    async def expire(self, silence_id: str, *, at: datetime) -> bool:
        silences = {s.id: s for s in await self.all()}
        silence = silences.get(silence_id)
        if silence is None:
            return False
        ended = Silence(
            id=silence.id,
            matchers=silence.matchers,
            starts_at=min(silence.starts_at, at - timedelta(microseconds=1)),
            ends_at=at,
            created_by=silence.created_by,
            comment=silence.comment,
        )
        await self.add(ended)
        return True


class WebhookDelivery:
    """Reads the alerts stream with its own group and posts the notices to the sink, one POST
    per alert group (company and period) of each batch read.

    A webhook is an effect outside Redis, so redelivery needs care: a lease keeps a second
    consumer from posting a notice another is still sending, and a delivered mark makes a
    redelivered entry (or a scheduled retry of a notice that got through meanwhile) a no-op.
    Receivers can also dedupe on the delivery id header.

    A notice the sink could not deliver within its own retries is scheduled for redelivery
    (`RedeliverySchedule`) and retried by `run_retries` with backoff until `horizon_s` after
    its first failure, then dead-lettered as `delivery_failed` with the notice as its payload.
    A refusal that waiting cannot mend (4xx) is dead-lettered at once. Every failure is logged
    and counted (`guidepost_webhook_failures_total`). While the receiver is known to be down
    (until its next attempt is due), new notices join the schedule without an attempt of their
    own, so an outage does not slow the alerts stream's reading to one retry budget a notice.

    `name` keeps the group, keys and schedule of one sink apart from another's (the webhook,
    Alertmanager): each sink gets every notice once.
    """

    LEASE_MS = 300_000
    DELIVERED_TTL_S = 30 * 24 * 3600

    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        streams: Streams,
        sink: AlertSink,
        horizon_s: float = 6 * 3600.0,
        backoff: RetryBackoff | None = None,
        metrics: WebhookMetrics = NO_METRICS,
        max_length: int = 1_000_000,
        name: str = "webhook",
        max_batch: int = 100,
    ) -> None:
        self._redis = redis
        self._streams = streams
        self._sink = sink
        self._horizon_s = horizon_s
        self._backoff = backoff or RetryBackoff()
        self._metrics = metrics
        self._max_length = max_length
        self._max_batch = max_batch
        self.name = name
        self.schedule = RedeliverySchedule(redis, streams, sink=name)
        self.loop_health = Backoff(f"the {name} redelivery loop", logger=log)
        self._receiver_down_until = 0.0  # after a failure, until the next attempt is due

    def _key(self, kind: str, event_id: str) -> str:
        return self._streams.key(self.name, kind, event_id)

    async def deliver_all(self, events: Sequence[Event]) -> list[BaseException | None]:
        alerts: list[Alert] = list(events)  # type: ignore[arg-type]
        unique = list({a.event_id: a for a in alerts}.values())  # a notice written twice: once
        delivered = await self._delivered([a.event_id for a in unique])
        waiting = [a for a, done in zip(unique, delivered, strict=True) if not done]
        held = await self._take_leases([a.event_id for a in waiting])
        outcomes: list[BaseException | None] = [
            LeaseHeldError(f"another consumer is delivering {a.event_id}")
            if a.event_id in held
            else None
            for a in alerts
        ]
        leased = [a for a in waiting if a.event_id not in held]
        try:
            for batch in notice_batches(leased, max_size=self._max_batch):
                await self._deliver(batch)
        finally:
            await self._release_leases([a.event_id for a in leased])
        return outcomes

    async def _deliver(self, batch: list[Alert]) -> None:
        now = time.time()
        pending = [Pending(a.event_id, a.model_dump_json(), now, 0, "") for a in batch]
        if now < self._receiver_down_until:
            # the receiver failed a moment ago: wait with the others rather than spend the
            # sink's retries on each new notice (the redelivery loop probes it)
            for first in pending:
                await self.schedule.schedule(
                    first, at=self._receiver_down_until, keep_existing=True
                )
            return
        try:
            await self._sink.send(batch)
        except DeliveryFailed as failure:
            await self._failed(pending, failure)
        else:
            await self._mark_delivered([a.event_id for a in batch])

    async def _delivered(self, event_ids: list[str]) -> list[bool]:
        if not event_ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.exists(self._key("delivered", event_id))
            return [bool(found) for found in await pipe.execute()]

    async def _take_leases(self, event_ids: list[str]) -> set[str]:
        """Lease each notice; returns the ids another consumer holds (or repeated here)."""
        if not event_ids:
            return set()
        async with self._redis.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.set(self._key("lease", event_id), "1", nx=True, px=self.LEASE_MS)
            taken = await pipe.execute()
        return {event_id for event_id, ok in zip(event_ids, taken, strict=True) if not ok}

    async def _release_leases(self, event_ids: list[str]) -> None:
        if event_ids:
            await self._redis.delete(*(self._key("lease", event_id) for event_id in event_ids))

    async def _mark_delivered(self, event_ids: list[str]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.set(self._key("delivered", event_id), "1", ex=self.DELIVERED_TTL_S)
            await pipe.execute()
        self._metrics.notices_delivered(sink=self.name, count=len(event_ids))

    async def _failed(self, batch: list[Pending], failure: DeliveryFailed) -> float | None:
        """Schedule each notice's next attempt, or dead-letter it past the horizon or on a
        refusal retrying cannot mend; returns when the next attempt is due (None if every
        notice was dead-lettered)."""
        due_at: float | None = None
        for pending in batch:
            due = await self._failed_one(pending, failure)
            if due is not None:
                due_at = due if due_at is None else max(due_at, due)
        if due_at is not None:
            self._receiver_down_until = due_at
            log.warning(
                "%s delivery of %d notice(s) failed after %d attempt(s) (%s); next attempt "
                "in %.0fs, for up to %.0fs after each one's first failure",
                self.name, len(batch), failure.attempts, failure.last_error,
                due_at - time.time(), self._horizon_s,
            )  # fmt: skip
        return due_at

    async def _failed_one(self, pending: Pending, failure: DeliveryFailed) -> float | None:
        attempts = pending.attempts + failure.attempts
        elapsed = time.time() - pending.first_failed_at
        if failure.retryable and elapsed < self._horizon_s:
            due = time.time() + self._backoff.delay_s(attempts)
            retried = Pending(
                pending.event_id, pending.alert_json, pending.first_failed_at, attempts,
                failure.last_error,
            )  # fmt: skip
            await self.schedule.schedule(retried, at=due)
            self._metrics.webhook_failed(sink=self.name, outcome="retrying")
            return due
        await self._dead_letter(pending, failure, attempts)
        await self.schedule.done(pending.event_id)
        self._metrics.webhook_failed(sink=self.name, outcome="dead_lettered")
        log.error(
            "%s delivery of alert %s failed for good after %d attempt(s) (%s); "
            "dead-lettered as delivery_failed (guidepost dlq replay resends it)",
            self.name, pending.event_id, attempts, failure.last_error,
        )  # fmt: skip
        return None

    async def _dead_letter(self, pending: Pending, failure: DeliveryFailed, attempts: int) -> None:
        alert = Alert.model_validate_json(pending.alert_json)
        letter = DeadLetter(
            source_stream=self._streams.alerts,
            entry_id=alert.event_id,
            group=self.name,
            payload={DATA_FIELD: pending.alert_json},
            reason=FailureReason.DELIVERY_FAILED,
            error=failure.last_error[:2_000],
            delivery_count=attempts,
            company=alert.company,
            event_id=alert.event_id,
        )
        await dead_letter(
            self._redis, self._streams.dead_letters, letter, max_length=self._max_length
        )

    async def retry_due(self, *, now: float | None = None) -> int:
        """One round of redelivery: the due notices, one POST per alert group; once one fails,
        the rest of the round waits with it (the receiver is evidently down). Returns how many
        were delivered."""
        due = await self.schedule.due(now=now if now is not None else time.time())
        delivered = await self._delivered([p.event_id for p in due])
        for pending, done in zip(due, delivered, strict=True):
            if done:
                await self.schedule.done(pending.event_id)  # got through another way
        waiting = {p.event_id: p for p, done in zip(due, delivered, strict=True) if not done}
        alerts = [Alert.model_validate_json(p.alert_json) for p in waiting.values()]
        batches = notice_batches(alerts, max_size=self._max_batch)
        sent = 0
        for index, batch in enumerate(batches):
            outcome = await self._retry([waiting[a.event_id] for a in batch], batch)
            if isinstance(outcome, float):
                later = [a.event_id for rest in batches[index + 1 :] for a in rest]
                await self.schedule.postpone(later, at=outcome)
                break
            sent += outcome
        return sent

    async def _retry(self, pending: list[Pending], batch: list[Alert]) -> int | float:
        """How many were delivered, or when the receiver may be tried again."""
        held = await self._take_leases([a.event_id for a in batch])
        leased = [a for a in batch if a.event_id not in held]
        if not leased:
            return 0
        try:
            await self._sink.send(leased, max_attempts=1)
        except DeliveryFailed as failure:
            due = await self._failed([p for p in pending if p.event_id not in held], failure)
            return due if due is not None else 0
        finally:
            await self._release_leases([a.event_id for a in leased])
        self._receiver_down_until = 0.0
        await self._mark_delivered([a.event_id for a in leased])
        for alert in leased:
            await self.schedule.done(alert.event_id)
        log.info("%s delivered %d notice(s) on a later attempt", self.name, len(leased))
        return len(leased)

    async def run_retries(self, stop: asyncio.Event, *, poll_s: float = 1.0) -> None:
        """Redeliver scheduled notices until `stop`; backs off and logs once while failing."""
        while not stop.is_set():
            try:
                await self.retry_due()
                wait_s = poll_s
                following = await self.schedule.next_due()
                if following is not None:
                    wait_s = min(poll_s, max(0.0, following - time.time()))
            except Exception as error:  # Redis away: the loop must outlive it
                wait_s = self.loop_health.failed(error)
            else:
                self.loop_health.succeeded()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(wait_s, 0.01))


class LeaseHeldError(RuntimeError):
    """Left pending: the consumer holding the lease finishes it, or its lease expires."""


def _observation(signal: AlertSignal) -> Observation:
    return Observation(
        company=signal.company,
        period=signal.period,
        kind=signal.kind.value,
        subject=signal.subject,
        condition=signal.condition.value,
        severity=signal.severity.value,
        state=signal.state,
        summary=signal.summary,
        details=signal.details,
        observed_at=signal.occurred_at,
        announce_changes=signal.kind in EVENT_KINDS,
    )


DATETIME_FIELDS = {"starts_at", "observed_at", "last_notified_at", "resolved_at"}


def encode_record(record: AlertRecord) -> str:
    """A flat record (`asdict` would deep-copy every field: measurable on the alert path)."""
    values = ((name, getattr(record, name)) for name in _RECORD_FIELDS)
    return json.dumps({k: v.isoformat() if isinstance(v, datetime) else v for k, v in values})


_RECORD_FIELDS = tuple(f.name for f in fields(AlertRecord))


def decode_record(blob: bytes | str) -> AlertRecord:
    document: dict[str, Any] = json.loads(blob)
    known = set(_RECORD_FIELDS)
    values: dict[str, Any] = {
        k: datetime.fromisoformat(v) if k in DATETIME_FIELDS and v else v
        for k, v in document.items()
        if k in known
    }
    return AlertRecord(**values)


def _silence(document: dict[str, Any]) -> Silence:
    return Silence(
        id=document["id"],
        matchers=document["matchers"],
        starts_at=datetime.fromisoformat(document["starts_at"]),
        ends_at=datetime.fromisoformat(document["ends_at"]),
        created_by=document["created_by"],
        comment=document["comment"],
    )


__all__ = ["AlertService", "RedisSilenceStore", "WebhookDelivery", "fingerprint"]
