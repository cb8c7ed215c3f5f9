"""The shipped rules in a real Prometheus scraping a real worker, its alerts sent to a real
Alertmanager: the recorded series appear with Guidepost's labels, and a quarantined company
raises GuidepostCompanyQuarantined all the way to Alertmanager. Skipped only where Debian's
prometheus or prometheus-alertmanager is not installed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

import pytest
import redis.asyncio as aioredis

from schemas.streams import Streams
from services.app import build_workers, running
from services.common.embedded import free_port
from services.forecast.store import RedisForecastStore
from tests.deploy.observability import RULES
from tests.support.alertmanager import (
    NotificationReceiver,
    alertmanager_binary,
    running_alertmanager,
)
from tests.support.pipeline import worker_settings
from tests.support.prometheus import prometheus_binary, running_prometheus

pytestmark = pytest.mark.integration
T = TypeVar("T")


async def until(what: str, probe: Callable[[], T], timeout_s: float = 60) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        found = await asyncio.to_thread(probe)
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.25)


@pytest.mark.timeout(180)
async def test_the_rules_run_on_real_metrics_and_a_quarantine_reaches_alertmanager(
    redis_url: str, namespace: str, redis_client: aioredis.Redis, streams: Streams
) -> None:
    prometheus_binary(), alertmanager_binary()  # skip where either is missing
    settings = worker_settings(
        redis_url, namespace, services="alerts", metrics_port=free_port(), stream_metrics=True
    )
    workers = build_workers(settings)
    with (
        NotificationReceiver().serving() as receiver,
        running_alertmanager(
            receiver_url=receiver.url,
            resolve_timeout_s=60,
            route_on={"alertname": "GuidepostCompanyQuarantined"},
        ) as am,
    ):
        async with running(workers):
            target = f"127.0.0.1:{settings.metrics_port}"
            with running_prometheus(
                jobs={"guidepost-workers": [target]}, rule_files=[RULES], alertmanager=am.url
            ) as prometheus:
                lag = await until(
                    "the recorded lag of the alerts group",
                    lambda: prometheus.query(
                        'group:guidepost_consumer_group_lag:sum{group="alerts"}'
                    ),
                )
                up = prometheus.query('up{job="guidepost-workers"}')
                quiet = [a["labels"]["alertname"] for a in prometheus.alerts()]
                await RedisForecastStore(redis_client, streams).quarantine(
                    "PROMCO", attempts=3, error="ValueError: a stray period", since=time.time()
                )
                firing = await until(
                    "GuidepostCompanyQuarantined firing in Prometheus",
                    lambda: [
                        a
                        for a in prometheus.alerts()
                        if a["labels"]["alertname"] == "GuidepostCompanyQuarantined"
                        and a["state"] == "firing"
                    ],
                )
                notified = await until(
                    "the quarantine notified by Alertmanager", receiver.notifications
                )
        await workers.redis.aclose()

    assert lag[0]["value"][1] == "0"
    assert up[0]["value"][1] == "1"
    assert quiet == [], "nothing fires while all is well"
    assert firing[0]["labels"]["severity"] == "critical"
    assert firing[0]["value"] in {"1", "1e+00"}
    (alert,) = notified[0]["alerts"]
    assert alert["labels"]["alertname"] == "GuidepostCompanyQuarantined"
    assert (
        alert["annotations"]["summary"] == "1 companies are quarantined: their forecasts are frozen"
    )
