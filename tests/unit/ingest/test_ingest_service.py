"""The ingest service on its in-memory store: what it records, refuses, flags and tells."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.alerts import AlertKind, Condition
from schemas.base import Event
from schemas.guidance import GuidanceIssued
from schemas.history import ChangeKind
from schemas.metrics import MetricReported
from schemas.money import Scale
from schemas.registry import Basis, Unit
from schemas.results import ResultsPublished
from services.common.histories.facts import ConflictingDuplicate, Recording
from services.common.ids import derived_id
from services.common.publishing import read_jsonl
from services.common.streams import Acknowledgement
from services.ingest.events import history_update_envelope, history_update_id
from services.ingest.facts import facts_from_metric
from services.ingest.fakes import InMemoryIngestStore
from services.ingest.service import IngestService

pytestmark = pytest.mark.unit
NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "qfin_2024q1_events.jsonl"


def volume(
    value: str, *, period: str = "2024Q1", event_id: str | None = None, day: int = 0
) -> MetricReported:
    extra = {"event_id": event_id} if event_id else {}
    return MetricReported(
        company="ACME", metric="loan_volume", period=period, value=Decimal(value),
        unit=Unit.MONEY, currency="CNY", scale=Scale.MILLIONS,
        occurred_at=datetime(2024, 5, 1, tzinfo=UTC) + timedelta(days=day), **extra,
    )  # fmt: skip


def guidance(low: str, high: str, *, event_id: str | None = None, day: int = 0) -> GuidanceIssued:
    extra = {"event_id": event_id} if event_id else {}
    return GuidanceIssued(
        company="ACME", metric="net_income", period="2024Q2", basis=Basis.GAAP,
        low=Decimal(low), high=Decimal(high), currency="CNY", scale=Scale.MILLIONS,
        occurred_at=datetime(2024, 5, 20, tzinfo=UTC) + timedelta(days=day), **extra,
    )  # fmt: skip


async def ingest(*batches: list[Event]) -> tuple[InMemoryIngestStore, list[list[object]]]:
    store = InMemoryIngestStore()
    service = IngestService(store=store, clock=lambda: NOW)
    results = [list(await service.apply_all(batch)) for batch in batches]
    return store, results


async def test_an_event_delivered_again_is_recorded_and_told_once() -> None:
    event = volume("99237")

    store, results = await ingest([event], [event, event])

    assert results == [[None], [None, None]]
    (update,) = store.history_updates
    assert update.event_id == derived_id(event.event_id, "history")
    assert [(f.kind, f.value) for f in update.facts] == [
        (ChangeKind.RECORDED, Decimal(99_237_000_000))
    ]


async def test_the_same_figure_under_a_new_event_id_changes_nothing() -> None:
    store, _ = await ingest([volume("99237")], [volume("99237", day=1)])

    assert len(store.history_updates) == 1
    assert store.signals == []


async def test_an_event_id_reused_for_other_content_is_refused_with_a_data_quality_signal() -> None:
    first = volume("99237", event_id="lv-1")
    other = volume("12345", event_id="lv-1")

    store, results = await ingest([first], [other])

    (refusal,) = results[1]
    assert isinstance(refusal, ConflictingDuplicate)
    (signal,) = store.signals
    assert (signal.kind, signal.subject) == (AlertKind.DATA_QUALITY, "event_id:lv-1")
    assert signal.details["received_digest"] == refusal.received_digest
    assert len(store.history_updates) == 1, "the first content stays; nothing else is told"


async def test_a_restated_figure_is_told_as_a_restatement_and_raises_its_signal() -> None:
    store, _ = await ingest([volume("119000")], [volume("118500", day=1)])

    assert [u.facts[0].kind for u in store.history_updates] == [
        ChangeKind.RECORDED,
        ChangeKind.RESTATED,
    ]
    assert store.history_updates[1].facts[0].previous == Decimal(119_000_000_000)
    (signal,) = store.signals
    assert signal.kind is AlertKind.RESTATEMENT
    assert "from CNY 119,000.0 million to CNY 118,500.0 million" in signal.summary


async def test_a_figure_a_thousand_times_its_recent_quarters_is_recorded_and_flagged() -> None:
    history = [volume(str(1000 + n), period=f"2023Q{n}") for n in range(1, 5)]
    slipped = volume("1002000", period="2024Q1")

    store, _ = await ingest(history, [slipped])

    assert store.history_updates[-1].cause_event_id == slipped.event_id
    (signal,) = store.signals
    assert (signal.kind, signal.subject, signal.period) == (
        AlertKind.DATA_QUALITY,
        "loan_volume",
        "2024Q1",
    )
    assert signal.details["factor"] == "1000"
    assert "probably sent in the wrong scale" in signal.summary


async def test_a_month_is_not_checked_against_quarters() -> None:
    history = [volume(str(1000 + n), period=f"2023Q{n}") for n in range(1, 5)]

    store, _ = await ingest(history, [volume("1002000", period="2024-01")])

    assert store.signals == []


async def test_each_input_that_changes_facts_is_told_in_one_history_update_with_every_change() -> (
    None
):
    events, errors = read_jsonl(FIXTURE)
    results = [e for e in events if isinstance(e, ResultsPublished)]
    assert results
    assert not errors

    store, _ = await ingest(results)

    (update,) = store.history_updates
    (event,) = results
    assert update.cause_event_id == event.event_id
    assert update.occurred_at == NOW
    recorded = {(f.metric, f.period) for f in update.facts}
    assert ("net_income", "2024Q1") in recorded
    assert len(recorded) == len(update.facts) > 3
    integrity = [s for s in store.signals if s.subject == "income_statement"]
    assert {s.period for s in integrity} == {
        s.period for s in (event.statement, *event.comparatives)
    }
    assert all(s.condition is Condition.CLEAR for s in integrity), "the bundled figures add up"


async def test_guidance_revisions_are_classified_against_the_statement_before() -> None:
    first, raised = guidance("1170", "1230"), guidance("1200", "1260", day=10)
    again_under_another_id = guidance("1200", "1260", day=10)

    store, results = await ingest([first], [raised], [again_under_another_id])

    assert results == [[None], [None], [None]]
    revisions = [(u.cause_event_id, u.guidance[0].revision) for u in store.history_updates]
    assert revisions == [
        (first.event_id, "initial"),
        (raised.event_id, "raised"),
        (again_under_another_id.event_id, "raised"),  # told as recorded, not "maintained"
    ]


async def test_a_guidance_event_id_reused_for_another_band_is_refused() -> None:
    first = guidance("1170", "1230", event_id="g-1")
    moved = guidance("1000", "1230", event_id="g-1")

    store, results = await ingest([first], [moved])

    assert isinstance(results[1][0], ConflictingDuplicate)
    assert [s.subject for s in store.signals] == ["event_id:g-1"]
    assert len(store.history_updates) == 1


def acknowledgement() -> Acknowledgement:
    return Acknowledgement("in:metrics", "ingest", (b"1-0", b"2-0"))


async def test_a_batch_of_facts_is_acknowledged_with_its_signals_only_when_all_applied() -> None:
    store = InMemoryIngestStore()
    service = IngestService(store=store, clock=lambda: NOW)
    applied = await service.apply_all_acknowledging([volume("1", event_id="a")], acknowledgement())
    refused = await service.apply_all_acknowledging(
        [volume("2", event_id="b"), volume("3", event_id="a")], acknowledgement()
    )

    assert applied == [None]
    assert refused[0] is None
    assert isinstance(refused[1], ConflictingDuplicate)
    assert store.acknowledged == [acknowledgement()], "all or nothing"


async def test_on_a_cluster_a_redelivery_after_a_crash_before_publishing_publishes_once() -> None:
    store = InMemoryIngestStore(atomic=False)
    service = IngestService(store=store, clock=lambda: NOW)
    event = volume("99237")
    recording = Recording(
        event.company, event.event_id, facts_from_metric(event), history_update_id(event)
    )
    await store.record_facts([recording], history_update_envelope(NOW))  # then the worker died
    assert store.history_updates == []

    await service.apply_all([event])
    await service.apply_all([event])

    (update,) = store.history_updates
    assert (update.cause_event_id, update.occurred_at) == (event.event_id, NOW)
    assert [(f.kind, f.value) for f in update.facts] == [
        (ChangeKind.RECORDED, Decimal(99_237_000_000))
    ]


async def test_on_a_cluster_a_restatement_is_told_and_signalled_once_however_often_it_arrives() -> (
    None
):
    store = InMemoryIngestStore(atomic=False)
    service = IngestService(store=store, clock=lambda: NOW)
    restated = volume("118500", day=1)

    for batch in ([volume("119000")], [restated], [restated]):
        assert await service.apply_all(batch) == [None]

    assert [u.facts[0].kind for u in store.history_updates] == [
        ChangeKind.RECORDED,
        ChangeKind.RESTATED,
    ]
    assert [s.kind for s in store.signals] == [AlertKind.RESTATEMENT]
