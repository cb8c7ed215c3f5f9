"""Streams are trimmed only behind every consumer group."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from services.common.streams import ensure_group, trim_acknowledged

pytestmark = pytest.mark.integration


async def test_trimming_never_cuts_an_entry_a_group_has_not_acknowledged(
    redis_client: aioredis.Redis, namespace: str
) -> None:
    stream = f"{namespace}:in:metrics"
    await ensure_group(redis_client, stream, "fast")
    await ensure_group(redis_client, stream, "slow")
    ids = [await redis_client.xadd(stream, {"__data__": str(n)}) for n in range(10)]
    fast: Any = await redis_client.xreadgroup("fast", "c", {stream: ">"}, count=10)
    await redis_client.xack(stream, "fast", *[entry for entry, _ in fast[0][1]])
    slow: Any = await redis_client.xreadgroup("slow", "c", {stream: ">"}, count=6)
    await redis_client.xack(stream, "slow", *[entry for entry, _ in slow[0][1]][:4])

    trimmed = await trim_acknowledged(redis_client, stream, keep=2)

    remaining = [entry for entry, _ in await redis_client.xrange(stream)]
    assert trimmed == 4
    assert remaining == ids[4:], (
        "the slow group's unacknowledged 5th and 6th and its undelivered rest stay"
    )


async def test_a_stream_under_its_cap_is_left_alone(
    redis_client: aioredis.Redis, namespace: str
) -> None:
    stream = f"{namespace}:in:results"
    await ensure_group(redis_client, stream, "g")
    await redis_client.xadd(stream, {"__data__": "1"})
    assert await trim_acknowledged(redis_client, stream, keep=10) == 0
