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
from services.common.records import decode_entries, decode_record, log_unreadable
from services.common.wire import as_text
from services.ingest.store import FactVersion, RedisHistoryStore


@dataclass(frozen=True)
class StoredLetter:
    entry_id: str
    letter: DeadLetter


@dataclass(frozen=True)
class LetterRead:
    """Every readable dead letter, and the ids of entries in the stream that are none."""

    letters: list[StoredLetter]
    unreadable: list[str]


async def read_dead_letters(redis: aioredis.Redis, streams: Streams) -> LetterRead:
    entries: Any = await redis.xrange(streams.dead_letters)
    decoded = decode_entries(entries, DeadLetter, stream=streams.dead_letters)
    letters = [StoredLetter(entry_id, letter) for entry_id, letter in decoded.records]
    return LetterRead(letters, decoded.unreadable)


async def dead_letters(redis: aioredis.Redis, streams: Streams) -> list[StoredLetter]:
    """The readable dead letters (an unreadable entry is skipped and logged)."""
    return (await read_dead_letters(redis, streams)).letters


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
            unreadable = []
            for entry_id, fields in entries:
                last_id = as_text(entry_id)
                alert = decode_record(fields, Alert)
                if alert is None:  # skipped (and logged below); the tail goes on
                    unreadable.append(last_id)
                    continue
                seen += 1
                yield alert
                if count is not None and seen >= count:
                    return
            if unreadable:
                log_unreadable(streams.alerts, Alert, unreadable)
        await asyncio.sleep(0)
