"""The forecast worker's store: one contract, held by the Redis adapter (a real Redis) and by
the in-memory fake the service's unit tests use, so the fake cannot drift."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from schemas.alerts import AlertKind, AlertSignal
from schemas.deadletter import DeadLetter, FailureReason
from schemas.streams import Streams
from services.common.histories.forecasts import PublishedForecasts
from services.common.records import decode_entries
from services.common.wire import entry_body
from services.forecast.core.guided import PastCall, Track
from services.forecast.fakes import InMemoryForecastStore
from services.forecast.store import ERROR_LIMIT, ForecastReader, ForecastStore, RedisForecastStore
from tests.support.forecast_records import forecast_record, trend_record

pytestmark = pytest.mark.integration
Published = Callable[[str], Coroutine[Any, Any, list[str]]]  # output -> the event ids on it


@dataclass
class Subject:
    store: ForecastStore
    published: Published
    letters: Callable[[], Coroutine[Any, Any, list[DeadLetter]]]


@pytest.fixture(params=["redis", "memory"])
async def subject(
    request: pytest.FixtureRequest, redis_client: aioredis.Redis, streams: Streams
) -> AsyncIterator[Subject]:
    if request.param == "memory":
        fake = InMemoryForecastStore()

        async def fake_published(output: str) -> list[str]:
            return [event.event_id for event in fake.published.get(output, [])]

        async def fake_letters() -> list[DeadLetter]:
            return list(fake.letters)

        yield Subject(fake, fake_published, fake_letters)
        return

    async def published(output: str) -> list[str]:
        entries: Any = await redis_client.xrange(getattr(streams, output))
        return [str(json.loads(entry_body(fields))["event_id"]) for _, fields in entries]

    async def letters() -> list[DeadLetter]:
        entries: Any = await redis_client.xrange(streams.dead_letters)
        return decode_entries(entries, DeadLetter, stream=streams.dead_letters).values

    yield Subject(RedisForecastStore(redis_client, streams), published, letters)


async def test_saved_forecasts_and_trends_read_back_and_settled_quarters_are_dropped(
    subject: Subject,
) -> None:
    store = subject.store
    first, second = forecast_record("ACME", "2024Q1"), forecast_record("ACME", "2024Q2")
    trend = trend_record("ACME", "dpd90_rate_pct", "2024Q1")
    await store.save("ACME", forecasts=[first, second], trends=[trend])
    await store.save("OTHER", forecasts=[forecast_record("OTHER", "2024Q1")], trends=[])
    newer = forecast_record("ACME", "2024Q2", point="520")
    await store.save("ACME", forecasts=[newer], trends=[], settled=[("net_income", "2024Q1")])

    assert await store.forecasts("ACME") == {("net_income", "2024Q2"): newer}
    assert await store.trends("ACME") == {"dpd90_rate_pct": trend}
    assert list(await store.forecasts("OTHER")) == [("net_income", "2024Q1")]
    assert await store.forecasts("NOBODY") == {}
    assert await store.trends("NOBODY") == {}


async def test_evidence_tracks_read_back_per_company(subject: Subject) -> None:
    track = Track((0.25, 0.75), (PastCall("2024Q1", -1.5, -2.25),))
    await subject.store.save_track("ACME", track)
    await subject.store.save_track("OTHER", Track((0.5,), ()))

    tracks = await subject.store.tracks()

    assert tracks == {"ACME": track, "OTHER": Track((0.5,), ())}


async def test_a_mark_keeps_its_first_time_and_is_due_after_it(subject: Subject) -> None:
    store = subject.store
    await store.mark_all(["LATE"], at=300.0)
    await store.mark_all(["ACME", "ACME", "BETA"], at=100.0)
    await store.mark_all(["ACME"], at=200.0)  # marked again: its first mark still counts

    assert await store.pending() == 3
    assert await store.earliest_mark() == 100.0
    assert sorted(await store.due(before=150.0, limit=16)) == ["ACME", "BETA"]
    assert len(await store.due(before=150.0, limit=1)) == 1
    assert await store.due(before=99.0, limit=16) == []
    assert await store.generation("ACME") == "3"
    assert await store.generation("NOBODY") is None


async def test_a_mark_is_cleared_only_if_no_new_mark_came_since_its_generation(
    subject: Subject,
) -> None:
    store = subject.store
    await store.mark_all(["ACME", "BETA"], at=100.0)
    acme, beta = await store.generation("ACME"), await store.generation("BETA")
    await store.mark_all(["BETA"], at=150.0)  # a change during BETA's refit

    assert await store.clear_if_unchanged("ACME", acme) is True
    assert await store.clear_if_unchanged("BETA", beta) is False
    assert await store.clear_if_unchanged("BETA", None) is False
    assert await store.due(before=1e12, limit=16) == ["BETA"]
    await store.drop_mark("BETA")
    assert (await store.pending(), await store.earliest_mark()) == (0, None)


async def test_a_failure_is_remembered_and_moves_only_an_existing_mark(subject: Subject) -> None:
    store = subject.store
    await store.mark_all(["ACME"], at=100.0)
    assert [await store.count_attempt("ACME") for _ in range(2)] == [1, 2]
    await store.failed("ACME", "ValueError: " + "x" * 3_000, retry_at=500.0)
    await store.failed("UNMARKED", "ValueError: bad", retry_at=500.0)

    assert await store.due(before=400.0, limit=16) == []
    assert await store.earliest_mark() == 500.0
    assert await store.pending() == 1, "a failure never marks a company"
    assert len(await store.last_error("ACME") or "") == ERROR_LIMIT
    await store.succeeded("ACME")
    assert await store.last_error("ACME") is None
    assert await store.count_attempt("ACME") == 1, "success forgets the attempts"


async def test_a_quarantine_drops_the_mark_and_holds_until_released(subject: Subject) -> None:
    store = subject.store
    await store.mark_all(["ACME", "BETA"], at=100.0)
    await store.count_attempt("ACME")

    first = await store.quarantine("ACME", attempts=3, error="boom", since=123.5)
    again = await store.quarantine("ACME", attempts=4, error="later", since=200.0)
    quarantines = await store.quarantines()
    quarantined = await store.quarantined(["ACME", "BETA"])
    due = await store.due(before=1e12, limit=16)
    released = await store.release("ACME", at=300.0)
    released_again = await store.release("BETA", at=300.0)

    assert (first, again) == (True, False)
    assert [(q.company, q.attempts, q.error, q.since) for q in quarantines] == [
        ("ACME", 3, "boom", 123.5)
    ]
    assert quarantined == {"ACME"}
    assert due == ["BETA"]
    assert (released, released_again) == (True, False)
    assert await store.quarantines() == []
    assert await store.quarantined([]) == set()
    assert await store.due(before=250.0, limit=16) == [], "release marks at its own time"
    assert await store.due(before=300.0, limit=16) == ["ACME", "BETA"]
    assert await store.count_attempt("ACME") == 1, "release forgets the attempts"


async def test_published_events_and_dead_letters_reach_their_streams(subject: Subject) -> None:
    store = subject.store
    forecast = forecast_record("ACME", "2024Q2")
    signal = AlertSignal(
        company="ACME", kind=AlertKind.DATA_QUALITY, period="2024Q2", subject="refit", summary="s"
    )
    letter = DeadLetter(
        source_stream="history", entry_id="refit:ACME", group="forecast", payload={},
        reason=FailureReason.REFIT_FAILED, error="boom", delivery_count=3, company="ACME",
    )  # fmt: skip
    await store.publish("forecasts", [forecast])
    await store.publish("signals", [signal])
    await store.publish("trends", [])
    await store.dead_letter(letter)

    assert await subject.published("forecasts") == [forecast.event_id]
    assert await subject.published("signals") == [signal.event_id]
    assert await subject.published("trends") == []
    assert [(x.reason, x.company) for x in await subject.letters()] == [
        (FailureReason.REFIT_FAILED, "ACME")
    ]


async def test_the_read_side_lists_what_the_worker_kept(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    store = RedisForecastStore(redis_client, streams)
    later, earlier = forecast_record("ACME", "2024Q3"), forecast_record("ACME", "2024Q2")
    trends = [trend_record("ACME", m, "2024Q1") for m in ("dpd90_rate_pct", "collection_30d_pct")]
    await store.save("ACME", forecasts=[later, earlier], trends=trends)
    await store.quarantine("ACME", attempts=1, error="boom", since=1.0)
    reader = ForecastReader(redis_client, streams)

    assert await reader.forecasts("ACME") == [earlier, later]
    assert [t.metric for t in await reader.trends("ACME")] == [
        "collection_30d_pct",
        "dpd90_rate_pct",
    ]
    assert [q.company for q in await reader.quarantines()] == ["ACME"]


async def test_another_worker_reads_one_published_forecast_record(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    record = forecast_record("ACME", "2024Q2")
    await RedisForecastStore(redis_client, streams).save("ACME", forecasts=[record], trends=[])
    published = PublishedForecasts(redis_client, streams)

    assert await published.get("ACME", "net_income", "2024Q2") == record
    assert await published.get("ACME", "net_income", "2024Q3") is None
    assert await published.get("NOBODY", "net_income", "2024Q2") is None
