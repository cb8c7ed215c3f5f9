"""A net-income event for 9999Q4, which once made a refit build a quarterly index to the year
9999 (18 GB, then killed on every restart): the contract now refuses it at once; and the same
fact already in the store (recorded before the contract refused it) quarantines its company
without the refit ever building that index. The worker's memory stays bounded, and every other
company keeps getting forecasts, also after the quarantine."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from schemas.deadletter import FailureReason
from schemas.streams import Streams
from services.common.embedded import EmbeddedRedis
from services.common.histories.facts import Fact, RedisHistoryStore
from tests.reliability.support import (
    dead_letters,
    report,
    start_worker,
    wait_for,
    worker_pool,
)
from tests.reliability.test_burst import PeakRss
from tests.support.pipeline import synthetic_company

pytestmark = pytest.mark.reliability
NAMESPACE = "gp-far-future"
COMPANIES = [f"FF{n:02d}" for n in range(20)]
NET_INCOME = [410, 425, 433, 452, 470, 468, 490, 505, 512, 530, 541, 560]
RSS_LIMIT_MB = 700


def forecast_periods(client: redis.Redis, streams: Streams, company: str) -> set[str]:
    fields = client.hkeys(streams.company_key(company, "forecasts"))
    return {field.decode().split("|")[1] for field in fields}


def quarantined(client: redis.Redis, streams: Streams) -> dict[str, dict[str, object]]:
    raw = client.hgetall(streams.key("{forecast}", "quarantine"))
    return {k.decode(): json.loads(v) for k, v in raw.items()}


async def record_stray_fact(url: str, streams: Streams) -> None:
    """As an ingest worker recorded it before the contract refused the period."""
    connection = aioredis.Redis.from_url(url)
    store = RedisHistoryStore(connection, streams)
    known = datetime(2025, 1, 1, tzinfo=UTC)
    stray = Fact("net_income", "9999Q4", Decimal(500_000_000), Decimal(1), known, "stray")
    await store.record("STRAY", "stray", [stray])
    await connection.aclose()


@pytest.mark.timeout(150)
def test_a_far_future_period_is_refused_or_quarantined_with_bounded_memory(
    private_redis: EmbeddedRedis,
    client: redis.Redis,
    log_dir: Path,
    record_property: Callable[[str, object], None],
) -> None:
    streams = Streams(NAMESPACE)
    asyncio.run(record_stray_fact(private_redis.url, streams))
    events = [
        event
        for company in [*COMPANIES, "STRAY"]
        for event in synthetic_company(
            company, first="2021Q1", values=NET_INCOME, guided=(570, 590)
        )
    ]
    far = json.loads(events[0].model_dump_json()) | {"event_id": "far", "period": "9999Q4"}
    with worker_pool() as pool:
        worker = start_worker(pool, log_dir, private_redis.url, NAMESPACE,
                              services="ingest,forecast")  # fmt: skip
        with PeakRss(worker) as rss:
            started = time.monotonic()
            client.xadd(streams.metrics, {"__data__": json.dumps(far)})
            for event in events:
                stream = streams.guidance if "Guidance" in type(event).__name__ else streams.metrics
                client.xadd(stream, {"__data__": event.model_dump_json()})
            wait_for(
                lambda: all("2024Q1" in forecast_periods(client, streams, c) for c in COMPANIES),
                timeout_s=90,
                what="every other company's forecast",
            )
            wait_for(lambda: "STRAY" in quarantined(client, streams), timeout_s=30,
                     what="the stray company quarantined")  # fmt: skip
            first_round_s = time.monotonic() - started
            # after the quarantine, a new quarter for every other company still flows
            later = [
                e.model_copy(update={"event_id": e.event_id + "-q2", "period": "2024Q1"})
                for e in events
                if e.company in COMPANIES and getattr(e, "period", "") == "2023Q4"
            ]
            for event in later:
                client.xadd(streams.metrics, {"__data__": event.model_dump_json()})
            wait_for(
                lambda: all("2024Q2" in forecast_periods(client, streams, c) for c in COMPANIES),
                timeout_s=60,
                what="every other company's next forecast after the quarantine",
            )
        assert worker.alive, worker.tail()

    letters = dead_letters(client, streams)
    without_forecast = [
        c for c in COMPANIES if "2024Q2" not in forecast_periods(client, streams, c)
    ]
    quarantine = quarantined(client, streams)
    report(
        record_property,
        "far_future_period",
        events=len(events) + len(later) + 1,
        companies=len(COMPANIES) + 1,
        lost=len(without_forecast),
        quarantined=sorted(quarantine),
        quarantine_attempts=quarantine["STRAY"]["attempts"],
        dead_letter_reasons=sorted(letter.reason.value for letter in letters),
        peak_rss_mb=round(rss.peak_mb, 1),
        first_round_s=round(first_round_s, 1),
    )
    assert without_forecast == []
    assert list(quarantine) == ["STRAY"]
    assert sorted(letter.reason for letter in letters) == sorted(
        [FailureReason.INVALID, FailureReason.REFIT_FAILED]
    )
    (invalid,) = [letter for letter in letters if letter.reason is FailureReason.INVALID]
    assert invalid.field == "period"
    assert rss.peak_mb < RSS_LIMIT_MB
