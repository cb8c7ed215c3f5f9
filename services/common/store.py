"""What the stream consumption keeps beside the streams: the last error of each entry that is
still being retried, so the dead letter written when retries run out can say why."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from schemas.streams import Streams

MAX_ERROR_CHARS = 2_000


@dataclass(frozen=True)
class EntryErrors:
    """One group's notes on one stream's failing entries (a hash per group, the stream in each
    field: a group reads several streams whose entry ids may coincide)."""

    redis: aioredis.Redis
    streams: Streams
    stream: str
    group: str

    @property
    def key(self) -> str:
        return self.streams.key("errors", self.group)

    def field(self, entry_id: bytes) -> bytes:
        return self.stream.encode() + b" " + entry_id

    async def remember(self, entry_id: bytes, message: str) -> None:
        await self.redis.hset(self.key, self.field(entry_id), message[:MAX_ERROR_CHARS])  # type: ignore[misc]

    async def last(self, entry_id: bytes) -> str | None:
        raw = await self.redis.hget(self.key, self.field(entry_id))  # type: ignore[misc]
        return raw.decode() if isinstance(raw, bytes) else raw

    def forget(self, pipe: aioredis.client.Pipeline, entry_ids: list[bytes]) -> None:
        """Queue forgetting on the caller's pipeline, beside its acknowledgement."""
        pipe.hdel(self.key, *(self.field(entry_id) for entry_id in entry_ids))
