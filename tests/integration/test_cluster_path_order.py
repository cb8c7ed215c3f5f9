"""On a cluster each event's facts are recorded by their own script call (the history stream
lives on another slot). Calls for different companies may run side by side, but one company's
events must be recorded in batch order: a restatement recorded before the figure it restates
would tell a different history than one Redis tells. The cluster path is run here on one
server with its first call held back, which is what made the two tell different histories."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from schemas.streams import Streams
from services.common.fact import Fact
from services.common.histories.facts import Recording, RecordOutcome, RedisHistoryStore

pytestmark = pytest.mark.integration
FIRST_KNOWN = datetime(2024, 5, 30, tzinfo=UTC)


class FirstCallHeldBack(RedisHistoryStore):
    """The cluster path (no atomic history append), its first script call delayed."""

    def __init__(self, redis: aioredis.Redis, streams: Streams) -> None:
        super().__init__(redis, streams)
        self._single = False
        script, calls = self._record, iter(range(1_000))

        async def held(**arguments: Any) -> Any:
            if next(calls) == 0:
                await asyncio.sleep(0.05)
            return await script(**arguments)

        self._record = held  # type: ignore[assignment]


def recording(company: str, event_id: str, value: int, known_at: datetime) -> Recording:
    fact = Fact("loan_volume", "2024Q1", Decimal(value), Decimal(1), known_at, event_id)
    return Recording(company, event_id, [fact], "update-" + event_id)


async def test_one_companys_events_are_recorded_in_batch_order(
    redis_client: aioredis.Redis, namespace: str
) -> None:
    store = FirstCallHeldBack(redis_client, Streams(namespace))
    batch = [
        recording("ACME", "figure", 100, FIRST_KNOWN),
        recording("ACME", "restatement", 101, FIRST_KNOWN + timedelta(days=1)),
        recording("OTHER", "other-figure", 7, FIRST_KNOWN),
    ]

    outcomes = await store.record_many(batch, {})

    assert all(isinstance(outcome, RecordOutcome) for outcome in outcomes), outcomes
    kinds = [outcome.kinds for outcome in outcomes if isinstance(outcome, RecordOutcome)]
    assert kinds == [b"recorded", b"restated", b"recorded"]
