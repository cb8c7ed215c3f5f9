"""The ingest worker's store, one contract: the same assertions on the in-memory fake the unit
tests use and on the Redis adapter over a real Redis, so the fake cannot drift."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from schemas.alerts import AlertKind, AlertSignal
from schemas.history import ChangeKind, HistoryUpdated
from schemas.streams import DATA_FIELD, Streams
from services.common.fact import Fact
from services.common.histories.facts import ConflictingDuplicate, Recording, RecordOutcome
from services.common.histories.guidance import GuidanceVersion
from services.ingest.fakes import InMemoryIngestStore
from services.ingest.store import IngestStore, RedisIngestStore

pytestmark = pytest.mark.integration
COMPANY = "ACME"
ENVELOPE: dict[str, str | int] = {
    "schema_version": 1,
    "occurred_at": "2024-06-01T00:00:00+00:00",
    "producer": "guidepost-ingest",
}


@dataclass(frozen=True)
class Subject:
    """A store, and how a test reads what it published."""

    store: IngestStore
    history_updates: Callable[[], Awaitable[list[HistoryUpdated]]]
    signals: Callable[[], Awaitable[list[AlertSignal]]]


@pytest.fixture(params=["fake", "redis"])
async def subject(
    request: pytest.FixtureRequest, redis_url: str, namespace: str
) -> AsyncIterator[Subject]:
    if request.param == "fake":
        fake = InMemoryIngestStore()
        yield Subject(fake, _returning(fake.history_updates), _returning(fake.signals))
        return
    client = aioredis.Redis.from_url(redis_url)
    streams = Streams(namespace)
    try:
        yield Subject(
            RedisIngestStore(client, streams, max_length=10_000),
            lambda: _entries(client, streams.for_company(streams.history, COMPANY), HistoryUpdated),
            lambda: _entries(client, streams.for_company(streams.signals, COMPANY), AlertSignal),
        )
    finally:
        async for key in client.scan_iter(match=f"{namespace}:*", count=1000):
            await client.delete(key)
        await client.aclose()


def _returning(items: list[Any]) -> Callable[[], Awaitable[list[Any]]]:
    async def read() -> list[Any]:
        return list(items)

    return read


async def _entries(client: aioredis.Redis, stream: str, model: Any) -> list[Any]:
    raw: Any = await client.xrange(stream)
    return [model.model_validate_json(fields[DATA_FIELD.encode()]) for _, fields in raw]


def recording(
    event_id: str, value: str, *, day: int = 1, precision: str = "1000000", period: str = "2024Q1"
) -> Recording:
    fact = Fact(
        metric="loan_volume",
        period=period,
        value=Decimal(value),
        precision=Decimal(precision),
        known_at=datetime(2024, 5, day, tzinfo=UTC),
        event_id=event_id,
        currency="CNY",
    )
    return Recording(COMPANY, event_id, [fact], update_id=f"{event_id}-history")


async def record(subject: Subject, *items: Recording) -> list[RecordOutcome | BaseException]:
    return await subject.store.record_facts(list(items), ENVELOPE)


async def recorded(subject: Subject, item: Recording) -> RecordOutcome:
    (outcome,) = await record(subject, item)
    assert isinstance(outcome, RecordOutcome), outcome
    return outcome


def kinds(outcome: RecordOutcome) -> list[tuple[str, Decimal, Decimal | None]]:
    return [(change.kind, change.value, change.previous) for change in outcome.changes]


async def test_a_new_event_records_its_facts_with_their_history_update(subject: Subject) -> None:
    outcome = await recorded(subject, recording("e1", "1200000000"))

    assert subject.store.writes_history_updates_atomically
    assert (outcome.duplicate, outcome.history_updated) == (False, True)
    assert kinds(outcome) == [("recorded", Decimal(1_200_000_000), None)]
    (update,) = await subject.history_updates()
    assert (update.event_id, update.cause_event_id, update.company) == ("e1-history", "e1", COMPANY)
    assert update.occurred_at == datetime(2024, 6, 1, tzinfo=UTC)
    assert [(f.metric, f.period, f.kind, f.value, f.currency) for f in update.facts] == [
        ("loan_volume", "2024Q1", ChangeKind.RECORDED, Decimal(1_200_000_000), "CNY")
    ]
    assert await subject.store.recent_values([(COMPANY, "loan_volume", ("2024Q1",))]) == [
        [Decimal(1_200_000_000)]
    ]


async def test_the_same_event_again_is_a_duplicate_with_the_changes_first_recorded(
    subject: Subject,
) -> None:
    first = await recorded(subject, recording("e1", "1200000000"))
    again = await recorded(subject, recording("e1", "1200000000"))

    assert again.duplicate
    assert not first.duplicate
    assert again.changes == first.changes
    assert len(await subject.history_updates()) == 1, "no second history update"


async def test_an_event_id_reused_for_other_content_is_a_conflict_that_writes_nothing(
    subject: Subject,
) -> None:
    await recorded(subject, recording("e1", "1200000000"))
    (conflict,) = await record(subject, recording("e1", "9999000000"))

    assert isinstance(conflict, ConflictingDuplicate)
    assert conflict.event_id == "e1"
    assert conflict.recorded_digest != conflict.received_digest
    assert await subject.store.recent_values([(COMPANY, "loan_volume", ("2024Q1",))]) == [
        [Decimal(1_200_000_000)]
    ]
    assert len(await subject.history_updates()) == 1


async def test_a_later_other_value_restates_a_more_precise_equal_one_refines_and_a_repeat_is_no_change(
    subject: Subject,
) -> None:
    await recorded(subject, recording("e1", "1200000000", day=1))
    restated = await recorded(subject, recording("e2", "1250000000", day=2))
    refined = await recorded(subject, recording("e3", "1250000000", day=3, precision="1000"))
    repeated = await recorded(subject, recording("e4", "1250000000", day=4))

    assert kinds(restated) == [("restated", Decimal(1_250_000_000), Decimal(1_200_000_000))]
    assert restated.restated
    assert kinds(refined) == [("refined", Decimal(1_250_000_000), Decimal(1_250_000_000))]
    assert kinds(repeated) == []
    updates = await subject.history_updates()
    assert [u.cause_event_id for u in updates] == ["e1", "e2", "e3"], "one per change"
    assert [u.facts[0].kind for u in updates] == [ChangeKind.RECORDED, ChangeKind.RESTATED,
                                                  ChangeKind.RECORDED]  # fmt: skip


async def test_a_version_learned_late_just_before_the_current_one_is_restated_by_it(
    subject: Subject,
) -> None:
    await recorded(subject, recording("e2", "1250000000", day=5))
    late = await recorded(subject, recording("e1", "1200000000", day=1))

    assert kinds(late) == [("restated", Decimal(1_250_000_000), Decimal(1_200_000_000))]
    assert await subject.store.recent_values([(COMPANY, "loan_volume", ("2024Q1",))]) == [
        [Decimal(1_250_000_000)]
    ]


async def test_recent_values_are_the_latest_known_of_each_period_asked(subject: Subject) -> None:
    await record(
        subject,
        recording("q1", "100000000", period="2024Q1"),
        recording("q2", "110000000", period="2024Q2"),
        recording("q2b", "120000000", period="2024Q2", day=9),
    )

    values = await subject.store.recent_values(
        [
            (COMPANY, "loan_volume", ("2024Q1", "2024Q2", "2024Q3")),
            ("OTHER", "loan_volume", ("2024Q1",)),
        ]
    )

    assert values == [[Decimal(100_000_000), Decimal(120_000_000)], []]


async def test_a_retraction_withdraws_the_current_value_until_a_new_one_is_recorded(
    subject: Subject,
) -> None:
    await recorded(subject, recording("e1", "1200000000"))
    at = datetime(2024, 5, 10, tzinfo=UTC)

    withdrawn = await subject.store.retract(
        COMPANY, "loan_volume", "2024Q1", at=at, retraction_id="r1"
    )
    again = await subject.store.retract(COMPANY, "loan_volume", "2024Q1", at=at, retraction_id="r2")
    values = await subject.store.recent_values([(COMPANY, "loan_volume", ("2024Q1",))])
    afresh = await recorded(subject, recording("e2", "1300000000", day=20))

    assert withdrawn is not None
    assert withdrawn.value == Decimal(1_200_000_000)
    assert (withdrawn.event_id, withdrawn.retracted) == ("e1", False)
    assert again is None
    assert values == [[]]
    assert kinds(afresh) == [("recorded", Decimal(1_300_000_000), None)]


def statement(
    event_id: str, low: str, *, known_at: str = "2024-05-20T00:00:00.000000Z"
) -> GuidanceVersion:
    return GuidanceVersion(
        event_id=event_id, metric="net_income", period="2024Q2", basis="gaap", status="issued",
        low=low, high="1230000000", currency="CNY", yoy_low_pct=None, yoy_high_pct=None,
        issued_in_period=None, known_at=known_at, source=None,
    )  # fmt: skip


async def test_guidance_keeps_the_first_content_of_an_event_id_and_each_statement_once(
    subject: Subject,
) -> None:
    store = subject.store
    first = statement("g1", "1170000000")
    appended = await store.append_guidance(COMPANY, first, "initial")
    same_statement = await store.append_guidance(COMPANY, statement("g2", "1170000000"), "x")
    await store.remember_guidance(COMPANY, "g1", "another digest")
    raised = await store.append_guidance(
        COMPANY, statement("g3", "1190000000", known_at="2024-06-20T00:00:00.000000Z"), "raised"
    )

    history = await store.guidance_history(COMPANY, "net_income", "2024Q2")
    assert (appended, same_statement, raised) == (True, False, True)
    assert [(v.event_id, v.revision) for v in history] == [("g1", "initial"), ("g3", "raised")]
    assert await store.guidance_digest(COMPANY, "g1") == first.digest
    assert await store.guidance_digest(COMPANY, "g2") is not None, "taken by the same statement"
    assert await store.guidance_digest(COMPANY, "unknown") is None
    assert await store.guidance_history(COMPANY, "net_income", "2024Q3") == []


async def test_published_signals_and_history_updates_reach_the_company(subject: Subject) -> None:
    signal = AlertSignal(
        company=COMPANY, kind=AlertKind.DATA_QUALITY, period="2024Q1", subject="s", summary="x"
    )
    update = HistoryUpdated(company=COMPANY, cause_event_id="g1")

    await subject.store.publish_signals([signal])
    await subject.store.publish_history_updates([update])

    assert await subject.signals() == [signal]
    assert await subject.history_updates() == [update]


async def test_history_updates_a_caller_appends_are_kept_and_marked_published(
    subject: Subject,
) -> None:
    update = HistoryUpdated(event_id="e1-history", company=COMPANY, cause_event_id="e1")

    await subject.store.append_history_updates([(COMPANY, update.model_dump_json().encode())])
    before = await subject.store.history_updates_published([(COMPANY, "e1")])
    await subject.store.mark_history_updates_published([(COMPANY, "e1")])
    after = await subject.store.history_updates_published([(COMPANY, "e1"), (COMPANY, "e2")])

    assert await subject.history_updates() == [update]
    assert (before, after) == (set(), {"e1"})
