"""A valid event whose handling always fails is retried up to GUIDEPOST_MAX_DELIVERIES times,
then dead-lettered with its delivery count, while other events keep flowing; once the cause is
fixed, `dlq replay` processes it cleanly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import redis

from schemas.base import Event
from schemas.deadletter import FailureReason
from schemas.streams import Groups
from services.app import build_workers, running
from services.cli.ops import dead_letters, replay
from services.common.consumer import Apply, ApplyAcknowledging
from services.common.embedded import EmbeddedRedis
from services.common.histories.facts import RedisHistoryStore
from services.common.streams import Acknowledgement
from tests.reliability.support import daily_metric, report, store_count
from tests.support.pipeline import worker_settings

pytestmark = pytest.mark.reliability
MAX_DELIVERIES = 3


class BrokenFor:
    """Wraps a Consumption's apply: the effect of one event fails until `fixed`.

    A batch holding it takes the plain path, as a failing event does in the acknowledging
    handlers (all or nothing): the others are applied and the consumption acknowledges them."""

    def __init__(
        self, apply: Apply, event_id: str, acknowledging: ApplyAcknowledging | None = None
    ) -> None:
        self._apply = apply
        self._acknowledging = acknowledging
        self._event_id = event_id
        self.fixed = False
        self.failures = 0

    async def acknowledging(
        self, events: Sequence[Event], acknowledgement: Acknowledgement
    ) -> Sequence[BaseException | None]:
        poisoned = not self.fixed and any(e.event_id == self._event_id for e in events)
        if poisoned or self._acknowledging is None:
            return await self(events)
        return await self._acknowledging(events, acknowledgement)

    async def __call__(self, events: Sequence[Event]) -> list[BaseException | None]:
        healthy = [e for e in events if self.fixed or e.event_id != self._event_id]
        done = iter(await self._apply(healthy))
        outcomes: list[BaseException | None] = []
        for event in events:
            if event in healthy:
                outcomes.append(next(done))
            else:
                self.failures += 1
                outcomes.append(RuntimeError(f"effect of {event.event_id} failed (injected)"))
        return outcomes


@pytest.mark.timeout(90)
async def test_a_poison_event_is_dead_lettered_after_max_deliveries_and_replays_once_fixed(
    private_redis: EmbeddedRedis, record_property: Callable[[str, object], None]
) -> None:
    settings = worker_settings(
        private_redis.url, "gp-poison", services="ingest", max_deliveries=MAX_DELIVERIES,
        claim_idle_ms=200,
    )  # fmt: skip
    workers = build_workers(settings)
    events = [daily_metric("POISON", day, 100 + day) for day in range(200)]
    poison = events[50]
    consumption = next(c for c in workers.consumptions if c.stream == workers.streams.metrics)
    broken = BrokenFor(consumption.apply, poison.event_id, consumption.apply_acknowledging)
    consumption.apply = broken
    consumption.apply_acknowledging = broken.acknowledging
    client = redis.Redis.from_url(private_redis.url)
    store = RedisHistoryStore(workers.redis, workers.streams)

    async with running(workers):
        started = time.monotonic()
        for event in events:
            await workers.redis.xadd(workers.streams.metrics, {"__data__": event.model_dump_json()})
        letters: Any = await _until(
            lambda: dead_letters(workers.redis, workers.streams), timeout_s=30
        )
        dead_lettered_s = time.monotonic() - started
        recorded = {v.event_id for v in await store.versions("POISON")}
        assert recorded == {e.event_id for e in events} - {poison.event_id}, "others flowed"

        broken.fixed = True
        replayed = await replay(workers.redis, workers.streams, letters)
        assert replayed["handler_failed"].replayed == 1
        await _until(lambda: _recorded(store, poison.event_id), timeout_s=30)

    (letter,) = [s.letter for s in letters]
    versions = await store.versions("POISON")
    pending = client.xpending(workers.streams.metrics, Groups.INGEST)
    count = store_count(client, workers.streams.namespace)
    remaining_letters = client.xlen(workers.streams.dead_letters)
    await workers.redis.aclose()
    client.close()
    report(
        record_property,
        "poison_event",
        events=len(events),
        lost=len({e.event_id for e in events} - count.recorded_events),
        duplicated=count.applied_twice,
        dead_lettered=len(letters),
        dead_letters_left_after_replay=remaining_letters,
        delivery_count=letter.delivery_count,
        attempts=broken.failures,
        time_to_dead_letter_s=round(dead_lettered_s, 2),
    )
    assert letter.reason is FailureReason.HANDLER_FAILED
    assert letter.delivery_count == MAX_DELIVERIES
    # its first delivery tried it in its batch, then alone (its batch-mates went on)
    assert broken.failures == MAX_DELIVERIES + 1
    assert "injected" in letter.error
    assert sorted(v.event_id for v in versions) == sorted(e.event_id for e in events)
    assert pending["pending"] == 0


async def _recorded(store: RedisHistoryStore, event_id: str) -> bool:
    return event_id in {v.event_id for v in await store.versions("POISON")}


async def _until(probe: Callable[[], object], *, timeout_s: float) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = await probe()  # type: ignore[misc]
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reached within {timeout_s:.0f}s")
