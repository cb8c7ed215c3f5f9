"""A real pipeline run on the bundled company, and the API served in process over it.

The workers run with their metrics exporter on, designated to export the Redis-derived gauges
too; it is scraped once the pipeline is idle, so tests can check what a Prometheus scrape of a
worker saw.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from services.api.app import create_api
from services.cli.demo import DEFAULT_DATA_DIR, DemoInputs, backfill_until
from services.common.embedded import free_port
from services.common.publishing import stream_for
from services.common.settings import ApiSettings
from tests.support.pipeline import pipeline, publish_and_settle, worker_settings

DATA = DEFAULT_DATA_DIR
BACKFILL_UNTIL = "2024Q1"
POPULATE_TIMEOUT_S = 150


@dataclass(frozen=True)
class BundledRun:
    redis_url: str
    namespace: str
    company: str
    published: dict[str, int]  # entries published per input stream
    worker_metrics: str  # the workers' /metrics, scraped after the pipeline went idle

    def api_settings(self, **overrides: Any) -> ApiSettings:
        values = {"redis_url": self.redis_url, "namespace": self.namespace, "api_token": None}
        return ApiSettings.model_validate({**values, **overrides})


async def populate(redis_url: str, namespace: str) -> BundledRun:
    inputs = DemoInputs.load(DATA)
    events = backfill_until(inputs, BACKFILL_UNTIL)
    # this worker is the one process exporting the Redis-derived gauges
    settings = worker_settings(redis_url, namespace, metrics_port=free_port(), stream_metrics=True)
    async with pipeline(settings) as workers:
        await publish_and_settle(workers, events, timeout_s=120)
        published = Counter(stream_for(workers.streams, event) for event in events)
        async with httpx.AsyncClient() as client:
            scrape = await client.get(f"http://127.0.0.1:{settings.metrics_port}/metrics")
        scrape.raise_for_status()
    return BundledRun(redis_url, namespace, inputs.company, dict(published), scrape.text)


@contextlib.asynccontextmanager
async def api_client(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The API in process, its lifespan run as a server would run it."""
    api = create_api(settings)
    transport = httpx.ASGITransport(app=api)
    async with (
        api.router.lifespan_context(api),
        httpx.AsyncClient(transport=transport, base_url="http://guidepost.test") as client,
    ):
        yield client
