"""The refit ledger: which companies need a refit, how often each has been tried, which are
quarantined. Redis only (no numerical stack), so operator commands can use it too.

An attempt is counted before it runs, so a refit that kills its worker (out of memory, say)
still counts: past the cap the company is quarantined instead of crash-looping every worker,
and the others keep flowing. `release` (what `dlq replay` does with a refit letter) lifts the
quarantine and marks the company for a fresh refit.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from schemas.streams import Streams
from services.common.wire import as_text


@dataclass(frozen=True)
class Quarantine:
    company: str
    attempts: int
    error: str
    since: float  # epoch seconds


class RefitLedger:
    def __init__(self, redis: aioredis.Redis, streams: Streams) -> None:
        self._redis = redis
        self._streams = streams

    @property
    def dirty_key(self) -> str:
        return self._streams.key("{forecast}", "dirty")  # one slot with generation

    @property
    def generation_key(self) -> str:
        return self._streams.key("{forecast}", "generation")

    @property
    def attempts_key(self) -> str:
        return self._streams.key("{forecast}", "attempts")

    @property
    def errors_key(self) -> str:
        return self._streams.key("{forecast}", "errors")

    @property
    def quarantine_key(self) -> str:
        return self._streams.key("{forecast}", "quarantine")

    async def count_attempt(self, company: str) -> int:
        """Count an attempt before running it; returns the attempts so far, this one included."""
        return int(await self._redis.hincrby(self.attempts_key, company, 1))  # type: ignore[misc]

    async def failed(self, company: str, error: str, *, retry_in_s: float) -> None:
        """Remember the error, and push the company's mark back so it is retried later."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.errors_key, company, error[:2_000])
            pipe.zadd(self.dirty_key, {company: time.time() + retry_in_s}, xx=True)
            await pipe.execute()

    async def succeeded(self, company: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hdel(self.attempts_key, company)
            pipe.hdel(self.errors_key, company)
            await pipe.execute()

    async def last_error(self, company: str) -> str | None:
        raw = await self._redis.hget(self.errors_key, company)  # type: ignore[misc]
        return as_text(raw) if raw else None

    async def quarantine(self, company: str, *, attempts: int, error: str) -> bool:
        """Quarantine the company and drop its mark; False if it already was quarantined."""
        record = json.dumps({"attempts": attempts, "error": error[:2_000], "since": time.time()})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(self.quarantine_key, company, record)
            pipe.zrem(self.dirty_key, company)
            pipe.hdel(self.generation_key, company)
            added, *_ = await pipe.execute()
        return bool(added)

    async def quarantined(self, companies: list[str]) -> set[str]:
        if not companies:
            return set()
        flags: Any = await self._redis.hmget(self.quarantine_key, companies)  # type: ignore[misc]
        return {company for company, flag in zip(companies, flags, strict=True) if flag}

    async def quarantines(self) -> list[Quarantine]:
        raw: Any = await self._redis.hgetall(self.quarantine_key)  # type: ignore[misc]
        found = []
        for company, blob in raw.items():
            record = json.loads(blob)
            found.append(
                Quarantine(as_text(company), record["attempts"], record["error"], record["since"])
            )
        return sorted(found, key=lambda q: q.company)

    async def mark(self, company: str) -> None:
        """Mark the company for a refit (as a history change does)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.dirty_key, {company: time.time()}, nx=True)
            pipe.hincrby(self.generation_key, company, 1)
            await pipe.execute()

    async def drop_mark(self, company: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.dirty_key, company)
            pipe.hdel(self.generation_key, company)
            await pipe.execute()

    async def release(self, company: str) -> bool:
        """Lift the quarantine (if any), forget the attempts and mark the company for a refit
        now. True if it was quarantined."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.quarantine_key, company)
            pipe.hdel(self.attempts_key, company)
            pipe.hdel(self.errors_key, company)
            pipe.zadd(self.dirty_key, {company: time.time()})
            pipe.hincrby(self.generation_key, company, 1)
            released, *_ = await pipe.execute()
        return bool(released)

    async def pending(self) -> int:
        return int(await self._redis.zcard(self.dirty_key))
