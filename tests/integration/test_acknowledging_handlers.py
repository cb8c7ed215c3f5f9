"""A handler may acknowledge a batch in its own last write (the alerts worker does, in the MULTI
with its records): then the consumption does not acknowledge those entries again, a failed
batch stays pending with its error, and a redelivery goes through the plain path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest
import redis.asyncio as aioredis

from schemas.alerts import AlertKind, AlertSignal, Condition, Severity
from schemas.base import Event
from schemas.metrics import MetricReported
from schemas.streams import Groups, Streams
from services.common.consumer import Consumption, Entry
from services.common.streams import Acknowledgement, publish
from tests.reliability.support import daily_metric
from tests.support.pipeline import pipeline, worker_settings

pytestmark = pytest.mark.integration
GROUP = "g"


class Handler:
    """Writes a mark per event; acknowledges in the same MULTI unless told not to."""

    def __init__(self, redis: aioredis.Redis, streams: Streams, *, acknowledges: bool = True):
        self.redis, self.streams, self.acknowledges = redis, streams, acknowledges
        self.failing = False
        self.plain_calls = 0

    async def acknowledging(
        self, events: Sequence[Event], acknowledgement: Acknowledgement
    ) -> list[BaseException | None]:
        if self.failing:
            return [RuntimeError("injected")] * len(events)
        async with self.redis.pipeline(transaction=True) as pipe:
            for event in events:
                pipe.sadd(self.streams.key("marks"), event.event_id)
            if self.acknowledges:
                acknowledgement.add_to(pipe)
            await pipe.execute()
        return [None] * len(events)

    async def plain(self, events: Sequence[Event]) -> list[BaseException | None]:
        self.plain_calls += 1
        if self.failing:
            return [RuntimeError(f"injected for {e.event_id}") for e in events]
        await self.redis.sadd(self.streams.key("marks"), *[e.event_id for e in events])  # type: ignore[misc]
        return [None] * len(events)


def consumption(redis: aioredis.Redis, streams: Streams, handler: Handler) -> Consumption:
    return Consumption(
        redis=redis, streams=streams, stream=streams.metrics, group=GROUP,
        event_type=MetricReported, apply=handler.plain, max_deliveries=3,
        max_payload_bytes=65_536, apply_acknowledging=handler.acknowledging,
    )  # fmt: skip


async def delivered(redis: aioredis.Redis, stream: str, bodies: list[bytes]) -> list[Entry]:
    await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    for body in bodies:
        await redis.xadd(stream, {"__data__": body})
    reply: Any = await redis.xreadgroup(GROUP, "c", {stream: ">"}, count=100)
    return [(entry_id, fields) for entry_id, fields in reply[0][1]]


async def pending(redis: aioredis.Redis, stream: str, group: str = GROUP) -> int:
    summary: Any = await redis.xpending(stream, group)
    return int(summary["pending"])


async def failed_once(
    redis: aioredis.Redis, streams: Streams, *, events: int
) -> tuple[Handler, Consumption, list[Entry]]:
    """A first delivery of `events` entries whose handler failed."""
    handler = Handler(redis, streams)
    handler.failing = True
    entries = await delivered(redis, streams.metrics, bodies(events))
    consumer = consumption(redis, streams, handler)
    await consumer.consume_batch(entries)
    return handler, consumer, entries


def bodies(count: int) -> list[bytes]:
    return [daily_metric("ACK", day, 100 + day).model_dump_json().encode() for day in range(count)]


async def test_a_batch_the_handler_acknowledged_leaves_nothing_pending(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    handler = Handler(redis_client, streams)
    entries = await delivered(redis_client, streams.metrics, [*bodies(3), b"{not json"])

    await consumption(redis_client, streams, handler).consume_batch(entries)

    assert await pending(redis_client, streams.metrics) == 0  # the bad one dead-lettered too
    assert await redis_client.scard(streams.key("marks")) == 3  # type: ignore[misc]
    assert handler.plain_calls == 0


async def test_the_consumption_leaves_the_acknowledgement_of_applied_entries_to_the_handler(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    handler = Handler(redis_client, streams, acknowledges=False)
    entries = await delivered(redis_client, streams.metrics, [*bodies(3), b"{not json"])

    await consumption(redis_client, streams, handler).consume_batch(entries)

    assert await pending(redis_client, streams.metrics) == 3  # only the rejected one acked


async def test_a_failed_batch_stays_pending_with_its_error(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    handler, consumer, entries = await failed_once(redis_client, streams, events=2)

    assert await pending(redis_client, streams.metrics) == 2
    errors = await redis_client.hgetall(consumer.errors.key)  # type: ignore[misc]
    assert set(errors) == {consumer.errors.field(entry_id) for entry_id, _ in entries}
    assert handler.plain_calls == 2, "after the failed batch, each event was tried on its own"
    assert len(set(errors.values())) == 2, "each entry keeps its own error"


async def test_after_a_failed_batch_the_entries_that_succeed_alone_are_applied_at_once(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    """A batch fails as a whole (the handler's MULTI refused it); alone, each event applies:
    nothing is left for a retry."""
    handler = Handler(redis_client, streams)
    entries = await delivered(redis_client, streams.metrics, bodies(3))
    consumer = consumption(redis_client, streams, handler)

    async def batch_fails(
        events: Sequence[Event], acknowledgement: Acknowledgement
    ) -> list[BaseException | None]:
        return [RuntimeError("the batch's write failed")] * len(events)

    consumer.apply_acknowledging = batch_fails
    await consumer.consume_batch(entries)

    assert await pending(redis_client, streams.metrics) == 0
    assert await redis_client.scard(streams.key("marks")) == 3  # type: ignore[misc]
    assert handler.plain_calls == 3
    assert await redis_client.hlen(consumer.errors.key) == 0  # type: ignore[misc]


async def test_a_redelivered_entry_goes_through_the_plain_path_and_forgets_its_error(
    redis_client: aioredis.Redis, streams: Streams
) -> None:
    handler, consumer, entries = await failed_once(redis_client, streams, events=1)
    handler.failing = False
    claimed: Any = await redis_client.xclaim(
        streams.metrics, GROUP, "c2", min_idle_time=0, message_ids=[entries[0][0]]
    )

    await consumer.consume_claimed(claimed[0])

    assert handler.plain_calls == 1
    assert await pending(redis_client, streams.metrics) == 0
    assert await redis_client.hlen(consumer.errors.key) == 0  # type: ignore[misc]


async def test_the_alerts_worker_acknowledges_a_signal_that_changes_nothing(
    redis_url: str, namespace: str
) -> None:
    clear = AlertSignal(
        company="ACK", producer="test", kind=AlertKind.RESTATEMENT, period="2024Q1",
        subject="net_income", condition=Condition.CLEAR, severity=Severity.INFO,
        summary="nothing restated", cause_event_id="c",
    )  # fmt: skip
    # no claims within the test: only the first delivery's own acknowledgement can clear it
    settings = worker_settings(redis_url, namespace, services="alerts", claim_idle_ms=60_000)
    async with pipeline(settings) as workers:
        # clear for an alert that never fired: no record, no notice, nothing to write but the ack
        await publish(
            workers.redis, workers.streams.signals, [clear], max_length=1_000,
            streams=workers.streams,
        )  # fmt: skip
        await until_read(workers.redis, workers.streams.signals)
        left = await until_acknowledged(workers.redis, workers.streams.signals, timeout_s=5)
        alerts: Any = await workers.redis.xlen(workers.streams.alerts)

    assert left == 0
    assert alerts == 0


async def until_read(redis: aioredis.Redis, stream: str, timeout_s: float = 10) -> None:
    """Until the stream's group has read its last entry."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        groups: Any = await redis.xinfo_groups(stream)
        if groups and int(groups[0]["lag"] or 0) == 0 and int(groups[0]["entries-read"] or 0):
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"{stream} was not read to its end in {timeout_s} s")


async def until_acknowledged(
    redis: aioredis.Redis, stream: str, *, timeout_s: float, group: str = Groups.ALERTS
) -> int:
    """Entries still pending once none are, or when `timeout_s` ran out."""
    deadline = time.monotonic() + timeout_s
    left = await pending(redis, stream, group=group)
    while left and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        left = await pending(redis, stream, group=group)
    return left


async def test_ingest_acknowledges_facts_with_their_signals_or_on_their_own(
    redis_url: str, namespace: str
) -> None:
    original, restated = daily_metric("ACK", 0, 100), daily_metric("ACK", 0, 900, restated=True)
    settings = worker_settings(redis_url, namespace, services="ingest", claim_idle_ms=60_000)
    async with pipeline(settings) as workers:
        for event in (original, restated):  # no signal, then a restatement signal
            await publish(
                workers.redis, workers.streams.metrics, [event], max_length=1_000,
                streams=workers.streams,
            )  # fmt: skip
            await until_read(workers.redis, workers.streams.metrics)
            left = await until_acknowledged(
                workers.redis, workers.streams.metrics, group=Groups.INGEST, timeout_s=5
            )
            assert left == 0
        signals: Any = await workers.redis.xlen(workers.streams.signals)

    assert signals == 1
