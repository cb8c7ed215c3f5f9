"""The alerts worker: signals in, lifecycle decided, notices out on the durable alerts stream.

The record and the notice are written in one MULTI, so a crash can neither send a notice
twice nor lose one; a replayed signal finds the record already updated and sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from schemas.alerts import Alert, AlertKind, AlertSignal
from schemas.base import Event, utc_now
from services.alerts.events import alert_from_notification
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
from services.alerts.redelivery import Pending
from services.alerts.store import (
    AlertRecords,
    DeliveryLedger,
    RecordWrite,
    RedeliverySchedule,
    Silences,
    SilencesVersion,
)
from services.alerts.webhook import (
    AlertSink,
    DeliveryFailed,
    notice_batches,
)
from services.common.health import Backoff
from services.common.metrics import NO_METRICS, AlertMetrics, WebhookMetrics
from services.common.streams import Acknowledgement

PRODUCER = "guidepost-alerts"
log = logging.getLogger(__name__)
DEFAULT_INHIBIT_RULES = (WITHDRAWN_GUIDANCE_MUTES_BAND_CHECKS,)
# Alerts that report events, each of which is news (not lasting conditions)
EVENT_KINDS = frozenset({AlertKind.GUIDANCE_REVISION})


class AlertService:
    def __init__(
        self,
        *,
        records: AlertRecords,
        silences: Silences,
        repeat_interval: timedelta,
        rules: Sequence[InhibitRule] = DEFAULT_INHIBIT_RULES,
        metrics: AlertMetrics = NO_METRICS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._metrics = metrics
        self._clock = clock
        self._records = records
        self._repeat_interval = repeat_interval
        self._rules = tuple(rules)
        self.silences = silences
        self._active = ActiveSilences(silences)

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
        now = self._clock()
        known, complete, silences_version = await self._known_records(observations)
        silences = await self._active.at(now, version=silences_version)
        writes: list[RecordWrite] = []
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
            writes.append(RecordWrite(decision.record, alert))
        await self._records.write(writes, acknowledgement)
        for sent in (write.notice for write in writes if write.notice is not None):
            self._metrics.alert_sent(kind=sent.kind.value, status=sent.status.value)

    async def _known_records(
        self, observations: Sequence[Observation]
    ) -> tuple[dict[tuple[str, str], AlertRecord | None], set[str], SilencesVersion]:
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
        known = await self._records.known(whole=sorted(complete), single=single)
        return known.records, complete, known.silences_version

    async def records(self, company: str) -> dict[str, AlertRecord]:
        return await self._records.records(company)


class ActiveSilences:
    """Silences in force, re-read only when their version (which every change bumps, read with
    the batch's records) moved."""

    def __init__(self, silences: Silences) -> None:
        self._silences = silences
        self._cached: tuple[SilencesVersion, list[Silence]] | None = None

    async def at(self, now: datetime, *, version: SilencesVersion) -> list[Silence]:
        if self._cached is None or self._cached[0] != version:
            self._cached = (version, await self._silences.all())
        return [silence for silence in self._cached[1] if silence.is_active(at=now)]


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

    def __init__(
        self,
        *,
        ledger: DeliveryLedger,
        schedule: RedeliverySchedule,
        sink: AlertSink,
        horizon_s: float = 6 * 3600.0,
        backoff: RetryBackoff | None = None,
        metrics: WebhookMetrics = NO_METRICS,
        name: str = "webhook",
        max_batch: int = 100,
    ) -> None:
        self._ledger = ledger
        self._sink = sink
        self._horizon_s = horizon_s
        self._backoff = backoff or RetryBackoff()
        self._metrics = metrics
        self._max_batch = max_batch
        self.name = name
        self.schedule = schedule
        self.loop_health = Backoff(f"the {name} redelivery loop", logger=log)
        self._receiver_down_until = 0.0  # after a failure, until the next attempt is due

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
        return await self._ledger.delivered(event_ids)

    async def _take_leases(self, event_ids: list[str]) -> set[str]:
        """Lease each notice; returns the ids another consumer holds (or repeated here)."""
        return await self._ledger.take_leases(event_ids)

    async def _release_leases(self, event_ids: list[str]) -> None:
        await self._ledger.release_leases(event_ids)

    async def _mark_delivered(self, event_ids: list[str]) -> None:
        await self._ledger.mark_delivered(event_ids)
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
        await self._ledger.dead_letter(pending, error=failure.last_error, attempts=attempts)
        await self.schedule.done(pending.event_id)
        self._metrics.webhook_failed(sink=self.name, outcome="dead_lettered")
        log.error(
            "%s delivery of alert %s failed for good after %d attempt(s) (%s); "
            "dead-lettered as delivery_failed (guidepost dlq replay resends it)",
            self.name, pending.event_id, attempts, failure.last_error,
        )  # fmt: skip
        return None

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


__all__ = ["ActiveSilences", "AlertService", "WebhookDelivery", "fingerprint"]
