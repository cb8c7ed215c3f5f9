"""Operator actions behind the command: dead letters, history, alert tailing, silences."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from schemas.alerts import Alert
from schemas.deadletter import DeadLetter, FailureReason
from schemas.streams import Streams
from services.common.wire import B_DATA_FIELD, as_text
from services.ingest.store import FactVersion, RedisHistoryStore


@dataclass(frozen=True)
class StoredLetter:
    entry_id: str
    letter: DeadLetter


async def dead_letters(redis: aioredis.Redis, streams: Streams) -> list[StoredLetter]:
    entries: Any = await redis.xrange(streams.dead_letters)
    return [
        StoredLetter(as_text(entry_id), DeadLetter.model_validate_json(fields[B_DATA_FIELD]))
        for entry_id, fields in entries
    ]


async def replay(redis: aioredis.Redis, streams: Streams, letters: list[StoredLetter]) -> int:
    """Put each letter's original entry back on its stream (it is validated again there)."""
    replayed = 0
    for stored in letters:
        if stored.letter.reason is FailureReason.DELIVERY_FAILED:
            continue  # a webhook payload, not a stream entry: redelivered by the alerts worker
        # put back first, then delete: a crash in between replays twice, which dedupe absorbs
        async with redis.pipeline(transaction=False) as pipe:
            pipe.xadd(stored.letter.source_stream, dict(stored.letter.payload))  # type: ignore[arg-type]
            pipe.xdel(streams.dead_letters, stored.entry_id)
            await pipe.execute()
        replayed += 1
    return replayed


async def purge(redis: aioredis.Redis, streams: Streams, *, before: datetime) -> int:
    """Delete dead letters older than `before` (stream ids are millisecond timestamps)."""
    boundary = f"{int(before.timestamp() * 1000)}-0"
    entries: Any = await redis.xrange(streams.dead_letters, max=f"({boundary}")
    ids = [entry_id for entry_id, _ in entries]
    if ids:
        await redis.xdel(streams.dead_letters, *ids)
    return len(ids)


async def history(
    redis: aioredis.Redis, streams: Streams, *, company: str, period: str | None
) -> list[FactVersion]:
    versions = await RedisHistoryStore(redis, streams).versions(company)
    chosen = [v for v in versions if period is None or v.period == period]
    return sorted(chosen, key=lambda v: (v.metric, v.period, v.known_at))


async def tail_alerts(
    redis: aioredis.Redis,
    streams: Streams,
    *,
    count: int | None,
    timeout_s: float | None,
    from_beginning: bool,
) -> AsyncIterator[Alert]:
    """Read alerts without a group (a tail never takes entries from a subscriber)."""
    last_id = "0" if from_beginning else "$"
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    seen = 0
    while (count is None or seen < count) and (deadline is None or time.monotonic() < deadline):
        block_ms = (
            500 if deadline is None else max(1, int(min(0.5, deadline - time.monotonic()) * 1000))
        )
        response: Any = await redis.xread({streams.alerts: last_id}, count=100, block=block_ms)
        for _stream, entries in response:
            for entry_id, fields in entries:
                last_id = as_text(entry_id)
                seen += 1
                yield Alert.model_validate_json(fields[B_DATA_FIELD])
                if count is not None and seen >= count:
                    return
        await asyncio.sleep(0)
