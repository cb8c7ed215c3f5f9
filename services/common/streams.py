"""Redis Streams primitives shared by every worker: groups, acks, dead letters, idleness."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from schemas.base import Event
from schemas.deadletter import DeadLetter
from schemas.streams import Streams
from services.common.wire import as_text, entry_fields

GROUP_START = "0"  # a new group reads every entry already in the stream, not only new ones


async def ensure_group(redis: aioredis.Redis, stream: str, group: str) -> bool:
    """Create the consumer group at the start of the stream; False if it already existed."""
    try:
        await redis.xgroup_create(stream, group, id=GROUP_START, mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise
        return False
    return True


async def delivery_count(redis: aioredis.Redis, stream: str, group: str, entry_id: str) -> int:
    """How many times the group has delivered this entry (0 if it is no longer pending)."""
    pending = await redis.xpending_range(stream, group, min=entry_id, max=entry_id, count=1)
    return int(pending[0]["times_delivered"]) if pending else 0


@dataclass(frozen=True)
class Acknowledgement:
    """The entries of a batch, for a handler that acknowledges them in its own last write
    (atomically with its effects, one round trip less per batch)."""

    stream: str
    group: str
    entry_ids: tuple[bytes, ...]

    def add_to(self, pipe: Any) -> None:
        """Queue the XACK on `pipe` (a MULTI holding the batch's effects)."""
        pipe.xack(self.stream, self.group, *self.entry_ids)

    async def send(self, redis: aioredis.Redis) -> None:
        """On its own, for a batch that had nothing to write."""
        await redis.xack(self.stream, self.group, *self.entry_ids)


async def publish(
    redis: aioredis.Redis,
    stream: str,
    events: Sequence[Event],
    *,
    max_length: int,
    streams: Streams | None = None,
    acknowledging: Acknowledgement | None = None,
) -> None:
    """Append events in one round trip.

    With `streams`, each event goes to its company's partition of `stream`, and company-keyed
    streams are not capped here: `trim_acknowledged` trims them only behind every group.
    Other streams (alerts, dead letters: read by outside subscribers) keep an approximate cap.
    With `acknowledging` (on one Redis), the entries that caused the events are acknowledged
    after them in the same MULTI: MULTI refuses the whole block if a command cannot be queued
    (out of memory, say), and an XADD that was queued fails only on a key of the wrong type.
    """
    if not events and acknowledging is None:
        return
    acked_trim = streams is not None and stream in streams.partitioned
    cap = None if acked_trim else max_length
    async with redis.pipeline(transaction=acknowledging is not None and bool(events)) as pipe:
        for event in events:
            target = streams.for_company(stream, event.company) if streams else stream
            pipe.xadd(target, entry_fields(event), maxlen=cap, approximate=True)  # type: ignore[arg-type]
        if acknowledging is not None:
            acknowledging.add_to(pipe)
        await pipe.execute()


async def dead_letter(
    redis: aioredis.Redis, stream: str, letter: DeadLetter, *, max_length: int
) -> None:
    fields = {"__data__": letter.model_dump_json()}
    await redis.xadd(stream, fields, maxlen=max_length, approximate=True)  # type: ignore[arg-type]


async def group_backlog(redis: aioredis.Redis, stream: str) -> int:
    """Entries not yet delivered (lag) plus delivered but unacknowledged (pending), all groups."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:
        return 0
    total = 0
    for group in groups:
        total += int(group.get("pending", 0)) + await _lag(redis, stream, group)
    return total


async def _lag(redis: aioredis.Redis, stream: str, group: dict[str, Any]) -> int:
    """Entries the group has not been given yet. Redis reports the lag as unknown after some
    trims and after loading an AOF; then look past the last delivered id instead."""
    if group.get("lag") is not None:
        return int(group["lag"])
    last = as_text(group["last-delivered-id"])
    after: Any = await redis.xrange(stream, min=f"({last}", count=1)
    return len(after)


async def backlog(redis: aioredis.Redis, streams: Iterable[str]) -> int:
    total = 0
    for stream in streams:
        total += await group_backlog(redis, stream)
    return total


async def safe_trim_id(redis: aioredis.Redis, stream: str) -> str | None:
    """The oldest id some group still needs (undelivered or unacknowledged); None if unknown."""
    try:
        groups: Any = await redis.xinfo_groups(stream)
    except ResponseError:
        return None
    if not groups:
        return None
    needed = []
    for group in groups:
        name = group["name"]
        summary: Any = await redis.xpending(stream, name)
        oldest = summary.get("min") if summary.get("pending") else None
        needed.append(as_text(oldest) if oldest else _next_id(as_text(group["last-delivered-id"])))
    return min(needed, key=_id_key)


async def trim_acknowledged(redis: aioredis.Redis, stream: str, *, keep: int) -> int:
    """Trim entries every group has acknowledged, once the stream holds more than `keep`."""
    if await redis.xlen(stream) <= keep:
        return 0
    boundary = await safe_trim_id(redis, stream)
    if boundary is None:
        return 0
    return int(await redis.xtrim(stream, minid=boundary, approximate=False))


def _id_key(entry_id: str) -> tuple[int, int]:
    millis, _, sequence = entry_id.partition("-")
    return int(millis), int(sequence or 0)


def _next_id(entry_id: str) -> str:
    millis, sequence = _id_key(entry_id)
    return f"{millis}-{sequence + 1}"
