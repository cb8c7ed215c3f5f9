"""Redis Streams primitives shared by every worker: groups, acks, dead letters, idleness."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from schemas.base import Event
from schemas.deadletter import DeadLetter
from schemas.streams import Streams
from services.common.wire import entry_fields

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


async def publish(
    redis: aioredis.Redis,
    stream: str,
    events: Sequence[Event],
    *,
    max_length: int,
    streams: Streams | None = None,
) -> None:
    """Append events in one round trip; trimming is approximate and never exact-cuts.

    With `streams`, each event goes to its company's partition of `stream`.
    """
    if not events:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            target = streams.for_company(stream, event.company) if streams else stream
            pipe.xadd(target, entry_fields(event), maxlen=max_length, approximate=True)  # type: ignore[arg-type]
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
    return sum(int(g.get("pending", 0)) + int(g.get("lag") or 0) for g in groups)


async def backlog(redis: aioredis.Redis, streams: Iterable[str]) -> int:
    total = 0
    for stream in streams:
        total += await group_backlog(redis, stream)
    return total
