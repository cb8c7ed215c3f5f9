"""History announcements are read in batches by the workers off the alert path: a trickle
costs the forecast worker (refit marks) and the guidance worker (outcome checks) a few reads,
not one each (every read and ack is a round trip), and every announcement is still handled."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from schemas.history import ChangeKind, FactChange, HistoryUpdated
from schemas.streams import Groups
from services.app import Workers
from services.common.streams import backlog, publish
from tests.support.pipeline import pipeline, worker_settings

pytestmark = pytest.mark.integration
TRICKLE = 20


def announcement(company: str) -> HistoryUpdated:
    change = FactChange(
        metric="loan_volume", period="2024Q1", kind=ChangeKind.RECORDED, value=Decimal(1)
    )
    return HistoryUpdated(company=company, cause_event_id=f"{company}-cause", facts=(change,))


def batches_read(workers: Workers, group: str = Groups.FORECAST) -> float:
    labels = {"stream": workers.streams.history, "group": group}
    count = workers.metrics.registry.get_sample_value("guidepost_handling_seconds_count", labels)
    return count or 0.0


async def until_marked(workers: Workers, companies: int, timeout_s: float = 30) -> None:
    assert workers.forecast is not None
    deadline = time.monotonic() + timeout_s
    while await workers.forecast.pending() < companies:
        assert time.monotonic() < deadline, "not every company was marked for a refit"
        await asyncio.sleep(0.02)


async def trickle(workers: Workers) -> None:
    for serial in range(TRICKLE):
        await publish(
            workers.redis, workers.streams.history, [announcement(f"CO{serial}")],
            max_length=1_000, streams=workers.streams,
        )  # fmt: skip
        await asyncio.sleep(0.005)  # pacing the publisher: one announcement every ~5 ms


@pytest.mark.timeout(60)
async def test_a_trickle_of_announcements_is_marked_in_a_few_reads(
    redis_url: str, namespace: str
) -> None:
    # a coalescing window of ten minutes: marks may wait the longest linger (100 ms)
    settings = worker_settings(redis_url, namespace, services="forecast", coalesce_ms=600_000)
    async with pipeline(settings) as workers:
        await trickle(workers)
        await until_marked(workers, TRICKLE)
        reads = batches_read(workers)

    assert 1 <= reads <= TRICKLE // 4


async def until_consumed(workers: Workers, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while await backlog(workers.redis, [workers.streams.history]):
        assert time.monotonic() < deadline, "the announcements were not all consumed"
        await asyncio.sleep(0.02)


async def guidance_reads_of_a_trickle(
    redis_url: str, namespace: str, linger_ms: int
) -> tuple[float, float]:
    """How many reads the guidance worker took for a trickle, and how long the trickle lasted
    (ms)."""
    settings = worker_settings(
        redis_url, namespace, services="guidance", guidance_linger_ms=linger_ms
    )
    async with pipeline(settings) as workers:
        started = time.monotonic()
        await trickle(workers)
        lasted_ms = (time.monotonic() - started) * 1000
        await until_consumed(workers)
        return batches_read(workers, Groups.GUIDANCE), lasted_ms


@pytest.mark.timeout(60)
async def test_the_guidance_worker_reads_a_trickle_in_batches_while_it_lingers(
    redis_url: str, namespace: str
) -> None:
    linger_ms = 50
    reads, lasted_ms = await guidance_reads_of_a_trickle(redis_url, namespace, linger_ms)

    # at most one read per linger while the trickle lasts, one more for its tail
    assert 1 <= reads <= min(lasted_ms // linger_ms + 2, TRICKLE // 2)


@pytest.mark.timeout(60)
async def test_without_a_linger_the_guidance_worker_reads_each_announcement_as_it_comes(
    redis_url: str, namespace: str
) -> None:
    reads, _ = await guidance_reads_of_a_trickle(redis_url, namespace, linger_ms=0)

    assert reads > TRICKLE // 2
