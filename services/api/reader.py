"""What the status page and the read API show, read from the workers' state in Redis.

Read-only: forecasts, band checks and trends from each company's hashes, fact versions from
the history store, and alerts from the alerts stream (read by range, never by a group, so no
subscriber loses an entry to the status page).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from schemas.alerts import Alert
from schemas.forecasts import ForecastUpdated, TrendUpdated
from schemas.streams import Streams
from services.alerts.store import RedisAlertsView
from services.api.timeline import INFORMATIONAL, record_status
from services.common.histories.facts import FactVersion, RedisHistoryStore
from services.forecast.store import ForecastReader
from services.guidance.core import BandCheck
from services.guidance.store import BandReader

ALERT_PAGE = 500
MAX_ALERTS_SCANNED = 20_000


@dataclass(frozen=True)
class CompanyState:
    """Everything the status page shows for one company."""

    company: str
    forecasts: list[ForecastUpdated]
    bands: list[BandCheck]
    trends: list[TrendUpdated]
    versions: list[FactVersion]
    alerts: list[Alert]
    firing: int
    informational: int = 0


class StatusReader:
    def __init__(self, redis: aioredis.Redis, streams: Streams) -> None:
        self._redis = redis
        self._streams = streams
        self._history = RedisHistoryStore(redis, streams)
        self._bands = BandReader(redis, streams)
        self._forecasts = ForecastReader(redis, streams)
        self._alert_records = RedisAlertsView(redis, streams)

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def companies(self) -> list[str]:
        return await self._history.companies()

    async def knows(self, company: str) -> bool:
        return await self._history.knows(company)

    async def forecasts(self, company: str) -> list[ForecastUpdated]:
        return await self._forecasts.forecasts(company)

    async def bands(self, company: str) -> list[BandCheck]:
        found = await self._bands.checks(company)
        return sorted(found, key=lambda b: (b.metric, b.period))

    async def trends(self, company: str) -> list[TrendUpdated]:
        return await self._forecasts.trends(company)

    async def history(self, company: str) -> list[FactVersion]:
        versions = await self._history.versions(company)
        return sorted(versions, key=lambda v: (v.metric, v.period, v.known_at))

    async def firing(self, company: str) -> tuple[int, int]:
        """Alerts firing now and informational notices standing, from the alert service's
        records (one per fingerprint); an informational one never counts as firing."""
        records = (await self._alert_records.records(company)).values()
        statuses = [record_status(r.status, r.severity) for r in records]
        return statuses.count("firing"), statuses.count(INFORMATIONAL)

    async def alerts(self, company: str | None = None, *, limit: int = 50) -> list[Alert]:
        """The newest `limit` alerts (of one company, if given), newest first."""
        return await self._alert_records.newest(company, limit=limit)

    async def state(self, company: str, *, alerts: int = 50) -> CompanyState:
        firing, informational = await self.firing(company)
        return CompanyState(
            company=company,
            forecasts=await self.forecasts(company),
            bands=await self.bands(company),
            trends=await self.trends(company),
            versions=await self.history(company),
            alerts=await self.alerts(company, limit=alerts),
            firing=firing,
            informational=informational,
        )
