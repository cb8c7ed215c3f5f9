"""What the forecast worker keeps: its port (`ForecastStore`), the Redis adapter that holds
every key name and script the worker uses, and the read side the API and the operator's
commands use (`ForecastReader`, `published_counts`). The in-memory fake is in `fakes.py`.

Kept per company: the published forecasts (one record per metric and open quarter; settled
quarters are pruned, the stream keeps what was said) and trends (one per metric). Kept for
all: the refit queue (a sorted set of marked companies by when they were first marked, and a
generation counter per company, so a mark made during a refit survives its clearing), the
refit ledger (attempts, last errors, quarantines) and each company's evidence track.

No numerical stack is imported here, so the operator's commands stay quick to start.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import redis
import redis.asyncio as aioredis

from schemas.base import Event
from schemas.deadletter import DeadLetter
from schemas.forecasts import ForecastUpdated, TrendUpdated
from schemas.streams import Streams
from services.common.histories.forecasts import (
    FORECAST_SLOT,
    PublishedForecasts,
    forecast_field,
    forecasts_key,
    refit_errors_key,
    refit_quarantine_key,
)
from services.common.streams import dead_letter, publish
from services.common.wire import as_text

if TYPE_CHECKING:
    from services.common.histories.facts import FactVersion
    from services.common.histories.guidance import GuidanceVersion
    from services.forecast.core.guided import Track

Output = Literal["forecasts", "trends", "signals"]
ForecastKey = tuple[str, str]  # metric, period
ERROR_LIMIT = 2_000  # characters of an error the ledger keeps
DEFAULT_MAX_LENGTH = 1_000_000
CLEAR_IF_UNCHANGED = """
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1]); redis.call('HDEL', KEYS[2], ARGV[1]); return 1
end
return 0
"""


@dataclass(frozen=True)
class Quarantine:
    company: str
    attempts: int
    error: str
    since: float  # epoch seconds


class FactHistory(Protocol):
    """What a refit reads of the fact history (`histories.facts.RedisHistoryStore`)."""

    async def versions(self, company: str) -> list[FactVersion]: ...


class GuidanceHistory(Protocol):
    """What a refit reads of the guidance history (`histories.guidance.RedisGuidanceStore`)."""

    async def all(self, company: str) -> list[GuidanceVersion]: ...


class ForecastStore(Protocol):
    """The forecast worker's port. Times are epoch seconds chosen by the caller."""

    # published state
    async def forecasts(self, company: str) -> dict[ForecastKey, ForecastUpdated]: ...
    async def trends(self, company: str) -> dict[str, TrendUpdated]: ...
    async def save(
        self,
        company: str,
        *,
        forecasts: Sequence[ForecastUpdated],
        trends: Sequence[TrendUpdated],
        settled: Sequence[ForecastKey] = (),
    ) -> None:
        """Atomically: drop the `settled` forecasts, keep the new forecasts and trends."""

    async def tracks(self) -> dict[str, Track]: ...
    async def save_track(self, company: str, track: Track) -> None: ...

    # the refit queue
    async def mark_all(self, companies: Sequence[str], *, at: float) -> None:
        """Mark each for a refit (an existing mark keeps its time); one generation each."""

    async def earliest_mark(self) -> float | None: ...
    async def due(self, *, before: float, limit: int) -> list[str]:
        """Companies marked at or before `before`, earliest first."""

    async def generation(self, company: str) -> str | None: ...
    async def clear_if_unchanged(self, company: str, generation: str | None) -> bool:
        """Clear the mark unless it was marked again since `generation` was read."""

    async def drop_mark(self, company: str) -> None: ...
    async def pending(self) -> int: ...

    # the refit ledger
    async def count_attempt(self, company: str) -> int:
        """Count an attempt before running it; the attempts so far, this one included."""

    async def failed(self, company: str, error: str, *, retry_at: float) -> None:
        """Remember the error; a marked company's mark moves to `retry_at`."""

    async def succeeded(self, company: str) -> None: ...
    async def last_error(self, company: str) -> str | None: ...
    async def quarantine(self, company: str, *, attempts: int, error: str, since: float) -> bool:
        """Quarantine and drop the mark; False if it already was quarantined."""

    async def quarantined(self, companies: Sequence[str]) -> set[str]: ...
    async def quarantines(self) -> list[Quarantine]: ...
    async def release(self, company: str, *, at: float) -> bool:
        """Lift any quarantine, forget attempts and errors, mark for a refit at `at`.
        True if it was quarantined."""

    # what the worker publishes
    async def publish(self, output: Output, events: Sequence[Event]) -> None: ...
    async def dead_letter(self, letter: DeadLetter) -> None: ...


@dataclass(frozen=True)
class ForecastKeys:
    """Every key the forecast worker uses (the shared ones named in `histories.forecasts`)."""

    streams: Streams

    def forecasts(self, company: str) -> str:
        return forecasts_key(self.streams, company)

    def trends(self, company: str) -> str:
        return self.streams.company_key(company, "trends")

    def _shared(self, name: str) -> str:
        return self.streams.key(FORECAST_SLOT, name)

    @property
    def dirty(self) -> str:
        return self._shared("dirty")  # one slot with generation: the script spans both

    @property
    def generation(self) -> str:
        return self._shared("generation")

    @property
    def attempts(self) -> str:
        return self._shared("attempts")

    @property
    def errors(self) -> str:
        return refit_errors_key(self.streams)

    @property
    def quarantine(self) -> str:
        return refit_quarantine_key(self.streams)

    @property
    def evidence(self) -> str:
        return self._shared("evidence")  # its own slot: written outside a company's MULTI


class ForecastReader:
    """The read side for the API and the operator's commands."""

    def __init__(self, redis: aioredis.Redis, streams: Streams) -> None:
        self._redis = redis
        self.keys = ForecastKeys(streams)
        self._published = PublishedForecasts(redis, streams)

    async def forecasts(self, company: str) -> list[ForecastUpdated]:
        """The company's open forecasts, by metric then period."""
        return await self._published.all(company)

    async def trends(self, company: str) -> list[TrendUpdated]:
        """The company's trends, by metric."""
        raw = await self._redis.hgetall(self.keys.trends(company))  # type: ignore[misc]
        found = [TrendUpdated.model_validate_json(blob) for blob in raw.values()]
        return sorted(found, key=lambda trend: trend.metric)

    async def quarantined(self, companies: Sequence[str]) -> set[str]:
        if not companies:
            return set()
        flags: Any = await self._redis.hmget(self.keys.quarantine, list(companies))  # type: ignore[misc]
        return {company for company, flag in zip(companies, flags, strict=True) if flag}

    async def quarantines(self) -> list[Quarantine]:
        raw: Any = await self._redis.hgetall(self.keys.quarantine)  # type: ignore[misc]
        found = [_quarantine(as_text(company), blob) for company, blob in raw.items()]
        return sorted(found, key=lambda q: q.company)


def _quarantine(company: str, blob: bytes | str) -> Quarantine:
    record = json.loads(blob)
    return Quarantine(company, record["attempts"], record["error"], record["since"])


def published_counts(client: redis.Redis, streams: Streams, company: str) -> dict[str, int]:
    """How many forecasts and trends the company has published (a sync client: the scrape)."""
    keys = ForecastKeys(streams)
    counts: Any = [client.hlen(keys.forecasts(company)), client.hlen(keys.trends(company))]
    return {"forecasts": int(counts[0]), "trends": int(counts[1])}


class RedisForecastStore:
    """`ForecastStore` on Redis."""

    def __init__(
        self, redis: aioredis.Redis, streams: Streams, *, max_length: int = DEFAULT_MAX_LENGTH
    ) -> None:
        self._redis = redis
        self._streams = streams
        self._max_length = max_length
        self.keys = ForecastKeys(streams)
        self.reader = ForecastReader(redis, streams)
        self._clear = redis.register_script(CLEAR_IF_UNCHANGED)

    async def forecasts(self, company: str) -> dict[ForecastKey, ForecastUpdated]:
        return {(f.metric, f.period): f for f in await self.reader.forecasts(company)}

    async def trends(self, company: str) -> dict[str, TrendUpdated]:
        return {trend.metric: trend for trend in await self.reader.trends(company)}

    async def save(
        self,
        company: str,
        *,
        forecasts: Sequence[ForecastUpdated],
        trends: Sequence[TrendUpdated],
        settled: Sequence[ForecastKey] = (),
    ) -> None:
        key = self.keys.forecasts(company)
        async with self._redis.pipeline(transaction=True) as pipe:
            if settled:
                pipe.hdel(key, *(forecast_field(*k) for k in settled))
            for forecast in forecasts:
                field = forecast_field(forecast.metric, forecast.period)
                pipe.hset(key, field, forecast.model_dump_json())
            for trend in trends:
                pipe.hset(self.keys.trends(company), trend.metric, trend.model_dump_json())
            await pipe.execute()

    async def tracks(self) -> dict[str, Track]:
        from services.forecast.core.guided import Track  # the numerical stack, when needed

        raw = await self._redis.hgetall(self.keys.evidence)  # type: ignore[misc]
        return {as_text(company): Track.from_json(blob) for company, blob in raw.items()}

    async def save_track(self, company: str, track: Track) -> None:
        await self._redis.hset(self.keys.evidence, company, track.to_json())  # type: ignore[misc]

    async def mark_all(self, companies: Sequence[str], *, at: float) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for company in companies:
                pipe.zadd(self.keys.dirty, {company: at}, nx=True)
                pipe.hincrby(self.keys.generation, company, 1)
            await pipe.execute()

    async def earliest_mark(self) -> float | None:
        earliest = await self._redis.zrange(self.keys.dirty, 0, 0, withscores=True)
        return float(earliest[0][1]) if earliest else None

    async def due(self, *, before: float, limit: int) -> list[str]:
        due = await self._redis.zrangebyscore(self.keys.dirty, "-inf", before, start=0, num=limit)
        return [as_text(member) for member in due]

    async def generation(self, company: str) -> str | None:
        raw = await self._redis.hget(self.keys.generation, company)  # type: ignore[misc]
        return as_text(raw) if raw is not None else None

    async def clear_if_unchanged(self, company: str, generation: str | None) -> bool:
        keys = [self.keys.dirty, self.keys.generation]
        # a generation never read matches nothing: HGET of a missing field is false in Lua
        cleared = await self._clear(keys=keys, args=[company, generation or ""])
        return bool(cleared) and generation is not None

    async def drop_mark(self, company: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.keys.dirty, company)
            pipe.hdel(self.keys.generation, company)
            await pipe.execute()

    async def pending(self) -> int:
        return int(await self._redis.zcard(self.keys.dirty))

    async def count_attempt(self, company: str) -> int:
        return int(await self._redis.hincrby(self.keys.attempts, company, 1))  # type: ignore[misc]

    async def failed(self, company: str, error: str, *, retry_at: float) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.keys.errors, company, error[:ERROR_LIMIT])
            pipe.zadd(self.keys.dirty, {company: retry_at}, xx=True)
            await pipe.execute()

    async def succeeded(self, company: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hdel(self.keys.attempts, company)
            pipe.hdel(self.keys.errors, company)
            await pipe.execute()

    async def last_error(self, company: str) -> str | None:
        raw = await self._redis.hget(self.keys.errors, company)  # type: ignore[misc]
        return as_text(raw) if raw else None

    async def quarantine(self, company: str, *, attempts: int, error: str, since: float) -> bool:
        record = json.dumps({"attempts": attempts, "error": error[:ERROR_LIMIT], "since": since})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(self.keys.quarantine, company, record)
            pipe.zrem(self.keys.dirty, company)
            pipe.hdel(self.keys.generation, company)
            added, *_ = await pipe.execute()
        return bool(added)

    async def quarantined(self, companies: Sequence[str]) -> set[str]:
        return await self.reader.quarantined(companies)

    async def quarantines(self) -> list[Quarantine]:
        return await self.reader.quarantines()

    async def release(self, company: str, *, at: float) -> bool:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.keys.quarantine, company)
            pipe.hdel(self.keys.attempts, company)
            pipe.hdel(self.keys.errors, company)
            pipe.zadd(self.keys.dirty, {company: at})
            pipe.hincrby(self.keys.generation, company, 1)
            released, *_ = await pipe.execute()
        return bool(released)

    async def publish(self, output: Output, events: Sequence[Event]) -> None:
        stream = getattr(self._streams, output)
        await publish(
            self._redis, stream, events, max_length=self._max_length, streams=self._streams
        )

    async def dead_letter(self, letter: DeadLetter) -> None:
        stream = self._streams.dead_letters
        await dead_letter(self._redis, stream, letter, max_length=self._max_length)


def _honours_the_port(store: RedisForecastStore) -> ForecastStore:
    """mypy checks the adapter against the port here (never called)."""
    return store


__all__ = [
    "ERROR_LIMIT",
    "FactHistory",
    "ForecastKey",
    "ForecastReader",
    "ForecastStore",
    "GuidanceHistory",
    "Output",
    "Quarantine",
    "RedisForecastStore",
    "published_counts",
]
