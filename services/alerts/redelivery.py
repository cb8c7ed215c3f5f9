"""Notices a webhook did not take, kept and retried with backoff over a long horizon.

A receiver down for longer than the sink's own retries (seconds) must not lose notices: each is
scheduled here and retried with exponential backoff for `horizon_s` (hours by default), then
dead-lettered as `delivery_failed` with the notice itself as its payload, which `guidepost dlq
replay` puts back here. Redis only, so the operator's command can schedule too.

Each sink has its own schedule (`webhook`, `alertmanager`); a schedule's keys share the sink's
hash tag (`{webhook}`: one cluster slot): a sorted set of event ids by the time each is due,
and a hash of the notices with their attempt counts.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis

from schemas.streams import Streams
from services.common.wire import as_text


@dataclass(frozen=True)
class Pending:
    """A notice waiting for its next attempt."""

    event_id: str
    alert_json: str
    first_failed_at: float  # epoch seconds
    attempts: int
    last_error: str


class RedeliverySchedule:
    def __init__(self, redis: aioredis.Redis, streams: Streams, *, sink: str = "webhook") -> None:
        self._redis = redis
        self._streams = streams
        self._tag = f"{{{sink}}}"

    @property
    def due_key(self) -> str:
        return self._streams.key(self._tag, "due")

    @property
    def notices_key(self) -> str:
        return self._streams.key(self._tag, "notices")

    async def schedule(self, pending: Pending, *, at: float, keep_existing: bool = False) -> None:
        """Schedule the notice's next attempt at `at`; with `keep_existing`, a notice already
        waiting keeps its record and time (a redelivered stream entry joins, not restarts)."""
        record = json.dumps(asdict(pending))
        async with self._redis.pipeline(transaction=True) as pipe:
            if keep_existing:
                pipe.hsetnx(self.notices_key, pending.event_id, record)
                pipe.zadd(self.due_key, {pending.event_id: at}, nx=True)
            else:
                pipe.hset(self.notices_key, pending.event_id, record)
                pipe.zadd(self.due_key, {pending.event_id: at})
            await pipe.execute()

    async def postpone(self, event_ids: list[str], *, at: float) -> None:
        """Move notices not tried this round (the receiver is evidently down) to `at`."""
        if event_ids:
            await self._redis.zadd(self.due_key, dict.fromkeys(event_ids, at), xx=True)

    async def due(self, *, now: float, limit: int = 50) -> list[Pending]:
        ids: Any = await self._redis.zrangebyscore(self.due_key, "-inf", now, start=0, num=limit)
        if not ids:
            return []
        blobs: Any = await self._redis.hmget(self.notices_key, ids)  # type: ignore[misc]
        found = []
        for event_id, blob in zip(ids, blobs, strict=True):
            if blob is None:  # its notice went with a finished delivery: drop the stray id
                await self._redis.zrem(self.due_key, event_id)
                continue
            found.append(Pending(**json.loads(blob)))
        return found

    async def done(self, event_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.due_key, event_id)
            pipe.hdel(self.notices_key, event_id)
            await pipe.execute()

    async def waiting(self) -> int:
        return int(await self._redis.zcard(self.due_key))

    async def next_due(self) -> float | None:
        first: Any = await self._redis.zrange(self.due_key, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def requeue(self, event_id: str, alert_json: str, *, error: str) -> None:
        """A notice back from the dead-letter stream: due now, with a fresh horizon."""
        await self.schedule(Pending(event_id, alert_json, time.time(), 0, error), at=time.time())

    async def ids(self) -> set[str]:
        raw: Any = await self._redis.hkeys(self.notices_key)  # type: ignore[misc]
        return {as_text(event_id) for event_id in raw}


@dataclass(frozen=True)
class Backoff:
    """When to try again: base × 2^(attempts − 1), capped, with equal jitter."""

    base_s: float = 5.0
    max_s: float = 600.0

    def delay_s(self, attempts: int) -> float:
        ceiling = min(self.max_s, self.base_s * 2.0 ** min(max(attempts - 1, 0), 30))
        return ceiling / 2 + random.random() * ceiling / 2
