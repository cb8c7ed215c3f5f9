"""Ingestion: validated input events become durable facts, then downstream events.

Effects and the event's dedupe mark are written atomically; the events announcing them
carry ids derived from the cause, so a redelivered input republishes the same ids and
downstream dedupes them. Order per event: record (durable) → publish → acknowledge.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from decimal import Decimal

import redis.asyncio as aioredis

from schemas.alerts import AlertKind, AlertSignal, Condition, Severity
from schemas.base import Event, utc_now
from schemas.guidance import GuidanceIssued
from schemas.history import ChangeKind, FactChange, GuidanceChange, HistoryUpdated
from schemas.metrics import MetricReported
from schemas.money import plain_decimal
from schemas.periods import QUARTER_PATTERN, Quarter
from schemas.registry import Unit, metric_spec
from schemas.results import IncomeStatement, ResultsPublished
from schemas.streams import Streams
from services.common.consumer import apply_each
from services.common.fact import Fact
from services.common.guidance_rules import classify_statement_revision
from services.common.histories.facts import (
    ConflictingDuplicate,
    RecordedChange,
    Recording,
    RecordOutcome,
    RedisHistoryStore,
)
from services.common.histories.guidance import (
    RedisGuidanceStore,
    version_from_event,
)
from services.common.ids import derived_id
from services.common.streams import Acknowledgement, publish
from services.ingest.facts import facts_from_metric, facts_from_results
from services.ingest.integrity import Finding, check_statement, unit_slip

log = logging.getLogger(__name__)
PRODUCER = "guidepost-ingest"


class IngestService:
    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        streams: Streams,
        history: RedisHistoryStore,
        guidance: RedisGuidanceStore,
        max_length: int,
    ) -> None:
        self._redis = redis
        self._streams = streams
        self._history = history
        self._guidance = guidance
        self._max_length = max_length

    async def apply_all(self, events: Sequence[Event]) -> list[BaseException | None]:
        """Facts of the whole batch in one round trip, announcements in another."""
        outcomes: dict[int, BaseException | None] = {}
        fact_events = [(i, e) for i, e in enumerate(events) if not isinstance(e, GuidanceIssued)]
        outcomes.update(await self._apply_fact_batch(fact_events))
        guidance = [(i, e) for i, e in enumerate(events) if isinstance(e, GuidanceIssued)]
        applied = await apply_each([e for _, e in guidance], self._apply_guidance)  # type: ignore[arg-type]
        outcomes.update((i, outcome) for (i, _), outcome in zip(guidance, applied, strict=True))
        return [outcomes[i] for i in range(len(events))]

    async def apply_all_acknowledging(
        self, events: Sequence[Event], acknowledgement: Acknowledgement
    ) -> list[BaseException | None]:
        """`apply_all`; on one Redis, a batch of facts is acknowledged in the MULTI that
        publishes its alert signals (all or nothing: a failed event leaves every entry to the
        consumption). Batches with guidance are applied, then acknowledged on their own."""
        if self._history.announces_atomically and not any(
            isinstance(e, GuidanceIssued) for e in events
        ):
            outcomes = await self._apply_fact_batch(list(enumerate(events)), acknowledgement)
            return [outcomes[i] for i in range(len(events))]
        results = await self.apply_all(events)
        if all(result is None for result in results):
            await acknowledgement.send(self._redis)
        return results

    async def _apply_fact_batch(
        self, indexed: list[tuple[int, Event]], acknowledgement: Acknowledgement | None = None
    ) -> dict[int, BaseException | None]:
        if not indexed:
            return {}
        try:
            batch = [self._recording(event) for _, event in indexed]
            recorded = await self._history.record_many(batch, self._announcement_envelope())
            done = [
                (event, outcome)
                for (_, event), outcome in zip(indexed, recorded, strict=True)
                if not isinstance(outcome, BaseException)
            ]
            if len(done) < len(indexed):
                acknowledgement = None  # all or nothing: the consumption acknowledges the rest
            await self._announce_once([(e, o) for e, o in done if not o.announced])
            await self._publish_signals([(e, o) for e, o in done if o.announced], acknowledgement)
            conflicts = [
                _conflict_signal(event, outcome)
                for (_, event), outcome in zip(indexed, recorded, strict=True)
                if isinstance(outcome, ConflictingDuplicate)
            ]
            await self._publish(self._streams.signals, conflicts)
        except Exception as error:
            return {index: error for index, _ in indexed}
        return {
            index: outcome if isinstance(outcome, BaseException) else None
            for (index, _), outcome in zip(indexed, recorded, strict=True)
        }

    def _recording(self, event: Event) -> Recording:
        """The facts, and on one Redis where the store announces them, under which id."""
        facts = _facts_of(event)
        if not self._history.announces_atomically:
            return Recording(event.company, event.event_id, facts)
        stream = self._streams.for_company(self._streams.history, event.company)
        announcement_id = derived_id(event.event_id, "history")
        return Recording(event.company, event.event_id, facts, stream, announcement_id)

    def _announcement_envelope(self) -> dict[str, str | int] | None:
        """What every HistoryUpdated the store writes for this batch shares."""
        if not self._history.announces_atomically:
            return None
        return {
            "schema_version": HistoryUpdated.SCHEMA_VERSION,
            "occurred_at": utc_now().isoformat(),
            "producer": PRODUCER,
        }

    async def _publish_signals(
        self,
        done: list[tuple[Event, RecordOutcome]],
        acknowledgement: Acknowledgement | None = None,
    ) -> None:
        """Alert signals of facts whose announcements the store wrote; a redelivery repeats
        them with the same ids, which the alert lifecycle absorbs."""
        if not done and acknowledgement is None:
            return
        signals = [s for event, outcome in done for s in self._signals(event, outcome)]
        signals += await self._unit_slip_signals(done)
        await self._publish(self._streams.signals, signals, acknowledging=acknowledgement)

    async def _announce_once(self, done: list[tuple[Event, RecordOutcome]]) -> None:
        """(On a cluster.) Publish what each event changed, unless a previous delivery already
        did (the mark is set only after publishing, so a crash in between republishes the
        same ids)."""
        if not done:
            return
        duplicates = [(e.company, e.event_id) for e, outcome in done if outcome.duplicate]
        announced = await self._history.announced(duplicates)
        pending = [(e, outcome) for e, outcome in done if e.event_id not in announced]
        announcements = [self._announcements(e, o) for e, o in pending]
        announcements.append(([], await self._unit_slip_signals(pending)))
        await self._publish_announcements(announcements)
        await self._history.mark_announced([(e.company, e.event_id) for e, _ in pending])

    async def _unit_slip_signals(
        self, pending: list[tuple[Event, RecordOutcome]]
    ) -> list[AlertSignal]:
        """New quarterly money or count figures against the median of the four quarters before
        (a median, so one slipped quarter does not make its honest successor look slipped)."""
        candidates = [
            (event, change)
            for event, outcome in pending
            if _may_record_quarters(event)
            for change in outcome.changes
            if QUARTER_PATTERN.match(change.period)
            and metric_spec(change.metric).unit in SCALED_UNITS
        ]
        keys = [(e.company, c.metric, _four_before(c.period)) for e, c in candidates]
        values = await self._history.recent_values(keys)
        signals = []
        for (event, change), known in zip(candidates, values, strict=True):
            reference = statistics.median(known) if known else None
            factor = unit_slip(change.value, reference) if reference is not None else None
            if reference is not None and factor is not None:
                signals.append(_unit_slip_signal(event, change, reference, factor))
        return signals

    def _signals(self, event: Event, outcome: RecordOutcome) -> list[AlertSignal]:
        signals = self._restatement_signals(event, outcome)
        if isinstance(event, ResultsPublished):
            signals += self._integrity_signals(event)
        return signals

    def _announcements(
        self, event: Event, outcome: RecordOutcome
    ) -> tuple[list[HistoryUpdated], list[AlertSignal]]:
        signals = self._signals(event, outcome)
        changes = tuple(_fact_change(change) for change in outcome.changes)
        if not changes:
            return [], signals
        update = HistoryUpdated(
            event_id=derived_id(event.event_id, "history"),
            company=event.company,
            producer=PRODUCER,
            cause_event_id=event.event_id,
            facts=changes,
        )
        return [update], signals

    async def _publish_announcements(
        self, announcements: list[tuple[list[HistoryUpdated], list[AlertSignal]]]
    ) -> None:
        updates = [u for batch, _ in announcements for u in batch]
        signals = [s for _, batch in announcements for s in batch]
        await self._publish(self._streams.history, updates)
        await self._publish(self._streams.signals, signals)

    async def _publish(
        self,
        stream: str,
        events: Sequence[Event],
        *,
        acknowledging: Acknowledgement | None = None,
    ) -> None:
        """To the company's partition of `stream`, in one round trip (see `publish`)."""
        await publish(
            self._redis,
            stream,
            events,
            max_length=self._max_length,
            streams=self._streams,
            acknowledging=acknowledging,
        )

    async def apply(self, event: Event) -> None:
        """One event (the batch path with a batch of one)."""
        failure = (await self.apply_all([event]))[0]
        if failure is not None:
            raise failure

    def _restatement_signals(self, event: Event, outcome: RecordOutcome) -> list[AlertSignal]:
        if not outcome.restated:
            return []
        return [
            _restatement_signal(event, change)
            for change in outcome.changes
            if change.kind == ChangeKind.RESTATED.value
        ]

    def _integrity_signals(self, event: ResultsPublished) -> list[AlertSignal]:
        return [
            _integrity_signal(event, statement, check_statement(statement))
            for statement in (event.statement, *event.comparatives)
        ]

    async def _apply_guidance(self, event: GuidanceIssued) -> None:
        version = version_from_event(event)
        recorded_digest = await self._guidance.seen_digest(event.company, event.event_id)
        if recorded_digest is not None and recorded_digest != version.digest:
            conflict = ConflictingDuplicate(event.event_id, recorded_digest, version.digest)
            await self._publish(self._streams.signals, [_conflict_signal(event, conflict)])
            raise conflict
        previous = await self._guidance.history(event.company, event.metric, event.period)
        recorded = next(
            (v for v in previous if v.same_statement_key == version.same_statement_key), None
        )
        if recorded is not None:
            await self._guidance.remember(event.company, event.event_id, version.digest)
            revision = recorded.revision  # a redelivery or duplicate: announce what was recorded
        else:
            revision = classify_statement_revision(
                previous[-1].stated_range() if previous else None, version.stated_range()
            )
            await self._guidance.append(event.company, version, revision)
            log.info("guidance %s for %s %s", revision, event.company, event.period)
        update = HistoryUpdated(
            event_id=derived_id(event.event_id, "history"),
            company=event.company,
            producer=PRODUCER,
            cause_event_id=event.event_id,
            guidance=(GuidanceChange(metric=event.metric, period=event.period, revision=revision),),
        )
        await self._publish(self._streams.history, [update])


def _period_of(event: Event) -> str:
    if isinstance(event, ResultsPublished):
        return event.statement.period
    if isinstance(event, MetricReported | GuidanceIssued):
        return event.period
    raise TypeError(f"ingest has no period for {type(event).__name__}")


def _conflict_signal(event: Event, conflict: ConflictingDuplicate) -> AlertSignal:
    """A data-quality alert: a producer reused an event id for other content (the first
    content stays recorded; this one is dead-lettered as `conflict`)."""
    return AlertSignal(
        event_id=derived_id(event.event_id, "conflict", conflict.received_digest),
        company=event.company,
        producer=PRODUCER,
        kind=AlertKind.DATA_QUALITY,
        period=_period_of(event),
        subject=f"event_id:{event.event_id}"[:200],
        severity=Severity.WARNING,
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
        cause_event_id=event.event_id,
    )


def _four_before(period: str) -> tuple[str, ...]:
    quarter = Quarter.parse(period)
    return tuple(str(quarter.shift(-back)) for back in range(1, 5))


def _may_record_quarters(event: Event) -> bool:
    """False for a metric of a day, month or fiscal year (their changes need no unit check)."""
    return not isinstance(event, MetricReported) or bool(QUARTER_PATTERN.match(event.period))


def _facts_of(event: Event) -> list[Fact]:
    if isinstance(event, ResultsPublished):
        return facts_from_results(event)
    if isinstance(event, MetricReported):
        return facts_from_metric(event)
    raise TypeError(f"ingest does not record facts from {type(event).__name__}")


def _fact_change(change: RecordedChange) -> FactChange:
    kind = ChangeKind.RESTATED if change.kind == "restated" else ChangeKind.RECORDED
    return FactChange(
        metric=change.metric,
        period=change.period,
        kind=kind,
        value=change.value,
        previous=change.previous,
        currency=change.currency,
    )


def _restatement_signal(event: Event, change: RecordedChange) -> AlertSignal:
    old, new = change.previous or Decimal(0), change.value
    unit = change.currency or ""
    return AlertSignal(
        event_id=derived_id(event.event_id, "restated", change.metric, change.period),
        company=event.company,
        producer=PRODUCER,
        kind=AlertKind.RESTATEMENT,
        period=change.period,
        subject=change.metric,
        severity=Severity.WARNING,
        summary=(
            f"{event.company} {change.metric} for {change.period} was restated from "
            f"{_readable(old, unit)} to {_readable(new, unit)} "
            f"({_readable(new - old, unit, signed=True)})."
        ),
        details={
            "old": plain_decimal(old),
            "new": plain_decimal(new),
            "currency": unit,
            "cause": event.event_id,
        },
        cause_event_id=event.event_id,
    )


def _readable(value: Decimal, currency: str, *, signed: bool = False) -> str:
    """Money in millions of its currency (facts are stored in whole units); other units as is."""
    if not currency:
        return f"{value:+,}" if signed else f"{value:,}"
    millions = value / Decimal(1_000_000)
    return (
        f"{currency} {millions:+,.1f} million" if signed else f"{currency} {millions:,.1f} million"
    )


SCALED_UNITS = (Unit.MONEY, Unit.COUNT)


def _unit_slip_signal(
    event: Event, change: RecordedChange, previous: Decimal, factor: Decimal
) -> AlertSignal:
    direction = "larger" if factor > 0 else "smaller"
    unit = change.currency or ""
    return AlertSignal(
        event_id=derived_id(event.event_id, "unit-slip", change.metric, change.period),
        company=event.company,
        producer=PRODUCER,
        kind=AlertKind.DATA_QUALITY,
        period=change.period,
        subject=change.metric,
        severity=Severity.WARNING,
        summary=(
            f"{event.company} {change.metric} for {change.period} is "
            f"{_readable(change.value, unit)}, "
            f"about {abs(factor):,} times {direction} than the recent quarters' "
            f"{_readable(previous, unit)}: probably sent in the wrong scale."
        ),
        details={
            "value": plain_decimal(change.value),
            "recent_median": plain_decimal(previous),
            "factor": plain_decimal(abs(factor)),
            "rule": "a figure 1,000-fold off its previous quarter",
            "cause": event.event_id,
        },
        cause_event_id=event.event_id,
    )


STATEMENT_SUBJECT = "income_statement"


def _integrity_signal(
    event: ResultsPublished, statement: IncomeStatement, findings: list[Finding]
) -> AlertSignal:
    """One signal per statement: firing with every broken identity, or clear when all hold."""
    unit = f"{statement.currency} {statement.scale.value}"
    if findings:
        rules = "; ".join(finding.sentence(unit) for finding in findings)
        summary = f"{event.company} {statement.period} statement does not add up: {rules}."
    else:
        summary = f"{event.company} {statement.period} statement: every identity holds."
    return AlertSignal(
        event_id=derived_id(event.event_id, "integrity", statement.period),
        company=event.company,
        producer=PRODUCER,
        kind=AlertKind.DATA_QUALITY,
        period=statement.period,
        subject=STATEMENT_SUBJECT,
        condition=Condition.FIRING if findings else Condition.CLEAR,
        severity=Severity.WARNING if findings else Severity.INFO,
        summary=summary[:1000],
        details={
            "unit": unit,
            "cause": event.event_id,
            "broken": [
                {
                    "rule": finding.rule,
                    "subject": finding.subject,
                    "expected": plain_decimal(finding.expected),
                    "found": plain_decimal(finding.found),
                    "difference": plain_decimal(finding.difference),
                    "tolerance": plain_decimal(finding.tolerance),
                }
                for finding in findings
            ],
        },
        cause_event_id=event.event_id,
    )
