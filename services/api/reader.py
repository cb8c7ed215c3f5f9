"""What the status page and the read API show, read from the workers' state in Redis.

Read-only: forecasts, band checks and trends from each company's hashes, fact versions from
the history store, and alerts from the alerts stream (read by range, never by a group, so no
subscriber loses an entry to the status page).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from schemas.alerts import Alert
from schemas.forecasts import ForecastUpdated, TrendUpdated
from schemas.streams import Streams
from services.common.histories.facts import FactVersion, RedisHistoryStore
from services.common.records import decode_entries
from services.common.wire import as_text
from services.guidance.service import BandCheck

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


class StatusReader:
    def __init__(self, redis: aioredis.Redis, streams: Streams) -> None:
        self._redis = redis
        self._streams = streams
        self._history = RedisHistoryStore(redis, streams)

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def companies(self) -> list[str]:
        return await self._history.companies()

    async def knows(self, company: str) -> bool:
        return await self._history.knows(company)

    async def forecasts(self, company: str) -> list[ForecastUpdated]:
        blobs = await self._values(company, "forecasts")
        found = [ForecastUpdated.model_validate_json(blob) for blob in blobs]
        return sorted(found, key=lambda f: (f.metric, f.period))

    async def bands(self, company: str) -> list[BandCheck]:
        found = [BandCheck(**json.loads(blob)) for blob in await self._values(company, "bands")]
        return sorted(found, key=lambda b: (b.metric, b.period))

    async def trends(self, company: str) -> list[TrendUpdated]:
        blobs = await self._values(company, "trends")
        return sorted((TrendUpdated.model_validate_json(b) for b in blobs), key=lambda t: t.metric)

    async def history(self, company: str) -> list[FactVersion]:
        versions = await self._history.versions(company)
        return sorted(versions, key=lambda v: (v.metric, v.period, v.known_at))

    async def firing(self, company: str) -> int:
        """Alerts firing now, from the alert service's records (one per fingerprint)."""
        records = [json.loads(blob) for blob in await self._values(company, "alerts")]
        return sum(1 for record in records if record.get("status") == "firing")

    async def alerts(self, company: str | None = None, *, limit: int = 50) -> list[Alert]:
        """The newest `limit` alerts (of one company, if given), newest first."""
        found: list[Alert] = []
        upper, scanned = "+", 0
        while len(found) < limit and scanned < MAX_ALERTS_SCANNED:
            page: Any = await self._redis.xrevrange(
                self._streams.alerts, max=upper, min="-", count=ALERT_PAGE
            )
            if not page:
                break
            scanned += len(page)
            alerts = decode_entries(page, Alert, stream=self._streams.alerts).values
            found += [a for a in alerts if company is None or a.company == company]
            upper = "(" + as_text(page[-1][0])
        return found[:limit]

    async def state(self, company: str, *, alerts: int = 50) -> CompanyState:
        return CompanyState(
            company=company,
            forecasts=await self.forecasts(company),
            bands=await self.bands(company),
            trends=await self.trends(company),
            versions=await self.history(company),
            alerts=await self.alerts(company, limit=alerts),
            firing=await self.firing(company),
        )

    async def _values(self, company: str, name: str) -> list[bytes | str]:
        raw = await self._redis.hgetall(self._streams.company_key(company, name))
        return list(raw.values())
