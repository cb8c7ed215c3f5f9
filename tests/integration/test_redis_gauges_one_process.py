"""The Redis-derived gauges (XINFO/XPENDING on every stream, the refit ledger) come from one
process: the API by default, a worker only when it is designated (GUIDEPOST_STREAM_METRICS)."""

from __future__ import annotations

import time

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from schemas.streams import Streams
from services.app import build_workers
from services.common.embedded import free_port
from services.common.settings import ApiSettings
from services.forecast.store import RedisForecastStore
from tests.api.running import api_client
from tests.support.pipeline import worker_settings

pytestmark = pytest.mark.integration

REDIS_GAUGES = {"guidepost_stream_length", "guidepost_consumer_group_lag", "guidepost_redis_up"}


def families(text: str) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    found: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return found


async def scrape_worker(redis_url: str, namespace: str, *, designated: bool) -> str:
    settings = worker_settings(
        redis_url, namespace, metrics_port=free_port(), stream_metrics=designated
    )
    workers = build_workers(settings)
    await workers.ensure_groups()
    workers.start_exporter()
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{settings.metrics_port}/metrics")
    finally:
        workers.stop_exporter()
        await workers.redis.aclose()
    response.raise_for_status()
    return response.text


async def test_a_worker_exports_the_redis_gauges_only_when_designated(
    redis_url: str, namespace: str, redis_client: aioredis.Redis, streams: Streams
) -> None:
    ledger = RedisForecastStore(redis_client, streams)
    now = time.time()
    await ledger.failed("FAILING", "ValueError: bad", retry_at=now + 60)
    await ledger.failed("STUCK", "ValueError: worse", retry_at=now + 60)
    await ledger.quarantine("STUCK", attempts=3, error="ValueError: worse", since=now)

    plain = families(await scrape_worker(redis_url, namespace, designated=False))
    designated = families(await scrape_worker(redis_url, namespace, designated=True))

    assert REDIS_GAUGES & set(plain) == set()
    assert set(designated) >= REDIS_GAUGES
    lag = designated["guidepost_consumer_group_lag"]
    assert lag[frozenset({("stream", streams.signals), ("group", "alerts")})] == 0
    assert designated["guidepost_refit_failing_companies"] == {frozenset(): 2}
    assert designated["guidepost_refit_quarantined_companies"] == {frozenset(): 1}


async def test_the_api_exports_them_unless_told_not_to(
    redis_url: str, namespace: str, redis_client: aioredis.Redis
) -> None:
    await redis_client.sadd(f"{namespace}:companies", "ACME")
    await redis_client.xgroup_create(Streams(namespace).signals, "alerts", id="0", mkstream=True)
    values = {"redis_url": redis_url, "namespace": namespace}
    scraped = {}
    for exporting in (True, False):
        settings = ApiSettings.model_validate({**values, "stream_metrics": exporting})
        async with api_client(settings) as client:
            scraped[exporting] = families((await client.get("/metrics")).text)

    assert set(scraped[True]) >= REDIS_GAUGES
    assert REDIS_GAUGES & set(scraped[False]) == set()
    assert "guidepost_company_facts" in scraped[False], "its per-company counts stay"
