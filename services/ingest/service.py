"""Ingestion: validated input events become durable facts, then downstream events.

Effects and the event's dedupe mark are written atomically; the HistoryUpdated events telling
what changed carry ids derived from the cause, so a redelivered input republishes the same ids
and downstream dedupes them. Order per event: record (durable) → publish → acknowledge.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Sequence
from datetime import datetime

from schemas.alerts import AlertSignal
from schemas.base import Event, utc_now
from schemas.guidance import GuidanceIssued
from schemas.history import ChangeKind
from schemas.metrics import MetricReported
from schemas.periods import QUARTER_PATTERN, Quarter
from schemas.registry import Unit, metric_spec
from schemas.results import ResultsPublished
from services.common.consumer import apply_each
from services.common.fact import Fact
from services.common.guidance_rules import classify_statement_revision
from services.common.histories.facts import ConflictingDuplicate, Recording, RecordOutcome
from services.common.histories.guidance import version_from_event
from services.common.streams import Acknowledgement
from services.ingest.events import (
    conflict_signal,
    guidance_history_update,
    history_update_envelope,
    history_update_id,
    integrity_signal,
    restatement_signal,
    unit_slip_signal,
)
from services.ingest.facts import facts_from_metric, facts_from_results
from services.ingest.integrity import check_statement, unit_slip
from services.ingest.store import IngestStore

log = logging.getLogger(__name__)
SCALED_UNITS = (Unit.MONEY, Unit.COUNT)


class IngestService:
    def __init__(self, *, store: IngestStore, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._clock = clock

    async def apply_all(self, events: Sequence[Event]) -> list[BaseException | None]:
        """Facts of the whole batch in one round trip, history updates in another."""
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
        if self._store.writes_history_updates_atomically and not any(
            isinstance(e, GuidanceIssued) for e in events
        ):
            outcomes = await self._apply_fact_batch(list(enumerate(events)), acknowledgement)
            return [outcomes[i] for i in range(len(events))]
        results = await self.apply_all(events)
        if all(result is None for result in results):
            await self._store.acknowledge(acknowledgement)
        return results

    async def _apply_fact_batch(
        self, indexed: list[tuple[int, Event]], acknowledgement: Acknowledgement | None = None
    ) -> dict[int, BaseException | None]:
        if not indexed:
            return {}
        try:
            batch = [_recording(event) for _, event in indexed]
            envelope = history_update_envelope(self._clock())
            recorded = await self._store.record_facts(batch, envelope)
            done = [
                (event, outcome)
                for (_, event), outcome in zip(indexed, recorded, strict=True)
                if not isinstance(outcome, BaseException)
            ]
            if len(done) < len(indexed):
                acknowledgement = None  # all or nothing: the consumption acknowledges the rest
            await self._publish_history_updates_once(
                [(e, o) for e, o in done if not o.history_updated]
            )
            await self._publish_signals(
                [(e, o) for e, o in done if o.history_updated], acknowledgement
            )
            conflicts = [
                conflict_signal(event, outcome)
                for (_, event), outcome in zip(indexed, recorded, strict=True)
                if isinstance(outcome, ConflictingDuplicate)
            ]
            await self._store.publish_signals(conflicts)
        except Exception as error:
            return {index: error for index, _ in indexed}
        return {
            index: outcome if isinstance(outcome, BaseException) else None
            for (index, _), outcome in zip(indexed, recorded, strict=True)
        }

    async def _publish_signals(
        self,
        done: list[tuple[Event, RecordOutcome]],
        acknowledgement: Acknowledgement | None = None,
    ) -> None:
        """Alert signals of facts whose history updates the store wrote; a redelivery repeats
        them with the same ids, which the alert lifecycle absorbs."""
        if not done and acknowledgement is None:
            return
        signals = [s for event, outcome in done for s in _signals(event, outcome)]
        signals += await self._unit_slip_signals(done)
        await self._store.publish_signals(signals, acknowledging=acknowledgement)

    async def _publish_history_updates_once(self, done: list[tuple[Event, RecordOutcome]]) -> None:
        """(On a cluster.) Append the history update the store built for each event, unless a
        previous delivery already did (the mark is set only after appending, so a crash in
        between appends the same ids again)."""
        if not done:
            return
        duplicates = [(e.company, e.event_id) for e, outcome in done if outcome.duplicate]
        published = await self._store.history_updates_published(duplicates)
        pending = [(e, outcome) for e, outcome in done if e.event_id not in published]
        entries = [(e.company, o.history_entry) for e, o in pending if o.history_entry]
        signals = [s for e, o in pending for s in _signals(e, o)]
        signals += await self._unit_slip_signals(pending)
        await self._store.append_history_updates(entries)
        await self._store.publish_signals(signals)
        await self._store.mark_history_updates_published(
            [(e.company, e.event_id) for e, _ in pending]
        )

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
        values = await self._store.recent_values(keys)
        signals = []
        for (event, change), known in zip(candidates, values, strict=True):
            reference = statistics.median(known) if known else None
            factor = unit_slip(change.value, reference) if reference is not None else None
            if reference is not None and factor is not None:
                signals.append(unit_slip_signal(event, change, reference, factor))
        return signals

    async def apply(self, event: Event) -> None:
        """One event (the batch path with a batch of one)."""
        failure = (await self.apply_all([event]))[0]
        if failure is not None:
            raise failure

    async def _apply_guidance(self, event: GuidanceIssued) -> None:
        version = version_from_event(event)
        recorded_digest = await self._store.guidance_digest(event.company, event.event_id)
        if recorded_digest is not None and recorded_digest != version.digest:
            conflict = ConflictingDuplicate(event.event_id, recorded_digest, version.digest)
            await self._store.publish_signals([conflict_signal(event, conflict)])
            raise conflict
        previous = await self._store.guidance_history(event.company, event.metric, event.period)
        recorded = next(
            (v for v in previous if v.same_statement_key == version.same_statement_key), None
        )
        if recorded is not None:
            await self._store.remember_guidance(event.company, event.event_id, version.digest)
            revision = recorded.revision  # a redelivery or duplicate: tell what was recorded
        else:
            revision = classify_statement_revision(
                previous[-1].stated_range() if previous else None, version.stated_range()
            )
            await self._store.append_guidance(event.company, version, revision)
            log.info("guidance %s for %s %s", revision, event.company, event.period)
        await self._store.publish_history_updates([guidance_history_update(event, revision)])


def _recording(event: Event) -> Recording:
    return Recording(event.company, event.event_id, _facts_of(event), history_update_id(event))


def _signals(event: Event, outcome: RecordOutcome) -> list[AlertSignal]:
    signals = _restatement_signals(event, outcome)
    if isinstance(event, ResultsPublished):
        signals += [
            integrity_signal(event, statement, check_statement(statement))
            for statement in (event.statement, *event.comparatives)
        ]
    return signals


def _restatement_signals(event: Event, outcome: RecordOutcome) -> list[AlertSignal]:
    if not outcome.restated:
        return []
    return [
        restatement_signal(event, change)
        for change in outcome.changes
        if change.kind == ChangeKind.RESTATED.value
    ]


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
