"""What the guidance worker reads and writes, and what the API and CLI read of it.

`GuidanceWorkerStore` is the worker's port: the guidance as recorded (through the guidance
history), reported actuals (through the fact history), the forecasts the forecast worker
published, the worker's own band checks and calls, and the signals it publishes.
`RedisGuidanceWorkerStore` is the Redis adapter and spells every key the worker uses;
`FakeGuidanceWorkerStore` keeps the same contract in memory for unit tests. `BandReader` and
`band_states` are the read side for the API and the CLI.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis

from schemas.alerts import AlertSignal
from schemas.forecasts import ForecastUpdated
from schemas.streams import Streams
from services.common.histories.facts import RedisHistoryStore
from services.common.histories.forecasts import PublishedForecasts
from services.common.histories.guidance import GuidanceVersion, RedisGuidanceStore
from services.common.streams import publish
from services.guidance.core import BandCheck, record_call

BANDS = "bands"  # the latest check of each guided figure
CALLS = "calls"  # every call made on each guided figure (its scorecard)

Key = tuple[str, str, str]  # company, metric, period


class GuidanceWorkerStore(Protocol):
    async def guidance_history(
        self, company: str, metric: str, period: str
    ) -> list[GuidanceVersion]:
        """Every statement of guidance for one figure, oldest first."""
        ...

    async def all_guidance(self, company: str) -> list[GuidanceVersion]: ...

    async def guided(self, companies: set[str]) -> dict[str, set[tuple[str, str]]]:
        """The (metric, period) pairs each company has guidance for."""
        ...

    async def actual(self, company: str, metric: str, period: str) -> Decimal | None:
        """The reported figure as known now (whole currency units), if any."""
        ...

    async def actual_known_at(self, company: str, metric: str, period: str) -> datetime | None:
        """When the reported figure as known now became known, if it is."""
        ...

    async def published_forecast(
        self, company: str, metric: str, period: str
    ) -> ForecastUpdated | None:
        """The forecast worker's latest record for the figure, if any."""
        ...

    async def latest_check(self, company: str, metric: str, period: str) -> BandCheck | None: ...

    async def calls(self, company: str, metric: str, period: str) -> list[BandCheck]:
        """The scorecard: one call per forecast and guidance checked, in the order made."""
        ...

    async def save_check(self, company: str, check: BandCheck) -> None:
        """Make `check` the latest and add it to the scorecard unless its call is there."""
        ...

    async def publish_signals(self, signals: Sequence[AlertSignal]) -> None: ...


def _field(metric: str, period: str) -> str:
    return f"{metric}|{period}"


def _check(blob: bytes | str) -> BandCheck:
    return BandCheck(**json.loads(blob))


class RedisGuidanceWorkerStore:
    def __init__(
        self,
        redis: aioredis.Redis,
        streams: Streams,
        *,
        max_length: int,
        history: RedisHistoryStore | None = None,
        guidance: RedisGuidanceStore | None = None,
    ) -> None:
        self._redis = redis
        self._streams = streams
        self._max_length = max_length
        self._history = history or RedisHistoryStore(redis, streams)
        self._guidance = guidance or RedisGuidanceStore(redis, streams)
        self._forecasts = PublishedForecasts(redis, streams)

    async def guidance_history(
        self, company: str, metric: str, period: str
    ) -> list[GuidanceVersion]:
        return await self._guidance.history(company, metric, period)

    async def all_guidance(self, company: str) -> list[GuidanceVersion]:
        return await self._guidance.all(company)

    async def guided(self, companies: set[str]) -> dict[str, set[tuple[str, str]]]:
        return await self._guidance.guided(companies)

    async def actual(self, company: str, metric: str, period: str) -> Decimal | None:
        return await self._history.latest(company, metric, period)

    async def actual_known_at(self, company: str, metric: str, period: str) -> datetime | None:
        return await self._history.latest_known_at(company, metric, period)

    async def published_forecast(
        self, company: str, metric: str, period: str
    ) -> ForecastUpdated | None:
        return await self._forecasts.get(company, metric, period)

    async def latest_check(self, company: str, metric: str, period: str) -> BandCheck | None:
        raw = await self._redis.hget(self._key(company, BANDS), _field(metric, period))  # type: ignore[misc]
        return _check(raw) if raw else None

    async def calls(self, company: str, metric: str, period: str) -> list[BandCheck]:
        raw = await self._redis.hget(self._key(company, CALLS), _field(metric, period))  # type: ignore[misc]
        return [BandCheck(**item) for item in json.loads(raw)] if raw else []

    async def save_check(self, company: str, check: BandCheck) -> None:
        calls = record_call(await self.calls(company, check.metric, check.period), check)
        name = _field(check.metric, check.period)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(company, BANDS), name, json.dumps(asdict(check)))
            pipe.hset(self._key(company, CALLS), name, json.dumps([asdict(c) for c in calls]))
            await pipe.execute()

    async def publish_signals(self, signals: Sequence[AlertSignal]) -> None:
        await publish(
            self._redis,
            self._streams.signals,
            signals,
            max_length=self._max_length,
            streams=self._streams,
        )

    def _key(self, company: str, name: str) -> str:
        return self._streams.company_key(company, name)


FAKE_KNOWN_AT = datetime(2024, 8, 20, tzinfo=UTC)  # when a scene's actual became known


@dataclass
class FakeGuidanceWorkerStore:
    """The worker's store in memory, with the writes of the other workers it reads
    (`record_guidance`, `record_actual`, `publish_forecast`) to arrange a scene."""

    guidance: dict[Key, list[GuidanceVersion]] = field(default_factory=dict)
    actuals: dict[Key, Decimal] = field(default_factory=dict)
    actual_times: dict[Key, datetime] = field(default_factory=dict)
    forecasts: dict[Key, ForecastUpdated] = field(default_factory=dict)
    checks: dict[Key, BandCheck] = field(default_factory=dict)
    scorecards: dict[Key, list[BandCheck]] = field(default_factory=dict)
    signals: list[AlertSignal] = field(default_factory=list)

    def record_guidance(self, company: str, version: GuidanceVersion) -> None:
        self.guidance.setdefault((company, version.metric, version.period), []).append(version)

    def record_actual(
        self,
        company: str,
        metric: str,
        period: str,
        value: Decimal,
        known_at: datetime = FAKE_KNOWN_AT,
    ) -> None:
        self.actuals[company, metric, period] = value
        self.actual_times[company, metric, period] = known_at

    def publish_forecast(self, forecast: ForecastUpdated) -> None:
        self.forecasts[forecast.company, forecast.metric, forecast.period] = forecast

    async def guidance_history(
        self, company: str, metric: str, period: str
    ) -> list[GuidanceVersion]:
        return list(self.guidance.get((company, metric, period), []))

    async def all_guidance(self, company: str) -> list[GuidanceVersion]:
        return [v for key, versions in self.guidance.items() if key[0] == company for v in versions]

    async def guided(self, companies: set[str]) -> dict[str, set[tuple[str, str]]]:
        pairs = {company: set[tuple[str, str]]() for company in companies}
        for company, metric, period in self.guidance:
            if company in pairs:
                pairs[company].add((metric, period))
        return pairs

    async def actual(self, company: str, metric: str, period: str) -> Decimal | None:
        return self.actuals.get((company, metric, period))

    async def actual_known_at(self, company: str, metric: str, period: str) -> datetime | None:
        return self.actual_times.get((company, metric, period))

    async def published_forecast(
        self, company: str, metric: str, period: str
    ) -> ForecastUpdated | None:
        return self.forecasts.get((company, metric, period))

    async def latest_check(self, company: str, metric: str, period: str) -> BandCheck | None:
        return self.checks.get((company, metric, period))

    async def calls(self, company: str, metric: str, period: str) -> list[BandCheck]:
        return list(self.scorecards.get((company, metric, period), []))

    async def save_check(self, company: str, check: BandCheck) -> None:
        key = (company, check.metric, check.period)
        self.checks[key] = check
        self.scorecards[key] = record_call(self.scorecards.get(key, []), check)

    async def publish_signals(self, signals: Sequence[AlertSignal]) -> None:
        self.signals.extend(signals)


# --------------------------------------------------------------------------- read side


class BandReader:
    """The latest band checks, for the API and the CLI (read-only)."""

    def __init__(self, redis: aioredis.Redis, streams: Streams) -> None:
        self._redis = redis
        self._streams = streams

    async def checks(self, company: str) -> list[BandCheck]:
        """One per guided figure, in the order the hash yields them."""
        raw = await self._redis.hgetall(self._streams.company_key(company, BANDS))  # type: ignore[misc]
        return [_check(blob) for blob in raw.values()]


def band_states(client: redis.Redis, streams: Streams, company: str) -> Counter[str]:
    """How many of a company's latest band checks are in each state (sync, for a scrape)."""
    blobs: Any = client.hvals(streams.company_key(company, BANDS))
    return Counter(str(json.loads(blob).get("state")) for blob in blobs)
