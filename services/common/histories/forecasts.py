"""What the forecast worker publishes that others read: each company's published forecasts
(one record per metric and quarter) and its refit ledger's failing and quarantined companies.

The forecast worker writes them (`services.forecast.store`); the guidance worker reads a
forecast record, and the metrics exporter counts the ledger. The key names live here, below
the workers, so none of those readers imports the forecast worker.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from schemas.forecasts import ForecastUpdated
from schemas.streams import Streams

FORECAST_SLOT = "{forecast}"  # the worker's shared keys: one cluster slot, scripts span them


def forecasts_key(streams: Streams, company: str) -> str:
    return streams.company_key(company, "forecasts")


def forecast_field(metric: str, period: str) -> str:
    return f"{metric}|{period}"


def refit_errors_key(streams: Streams) -> str:
    """Companies whose last refit failed, with the error."""
    return streams.key(FORECAST_SLOT, "errors")


def refit_quarantine_key(streams: Streams) -> str:
    """Companies whose refits wait for the operator's release."""
    return streams.key(FORECAST_SLOT, "quarantine")


class PublishedForecasts:
    """The forecast records as the forecast worker last published them (read only)."""

    def __init__(self, redis: aioredis.Redis, streams: Streams) -> None:
        self._redis = redis
        self._streams = streams

    async def get(self, company: str, metric: str, period: str) -> ForecastUpdated | None:
        key = forecasts_key(self._streams, company)
        raw = await self._redis.hget(key, forecast_field(metric, period))  # type: ignore[misc]
        return ForecastUpdated.model_validate_json(raw) if raw else None

    async def all(self, company: str) -> list[ForecastUpdated]:
        """The company's open forecasts, by metric then period."""
        raw = await self._redis.hgetall(forecasts_key(self._streams, company))  # type: ignore[misc]
        found = [ForecastUpdated.model_validate_json(blob) for blob in raw.values()]
        return sorted(found, key=lambda f: (f.metric, f.period))
