"""The same 1,000 events published twice, and once more under new ids, leave exactly the state
of publishing them once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from schemas.metrics import MetricReported
from schemas.money import Scale
from schemas.registry import Unit
from services.app import Workers
from tests.support.pipeline import pipeline, publish_and_settle, worker_settings

pytestmark = pytest.mark.integration
COMPANIES = [f"CO{n:02d}" for n in range(10)]


def thousand_events() -> list[MetricReported]:
    months = [f"{year}-{month:02d}" for year in range(2019, 2024) for month in range(1, 13)]
    events = []
    for n in range(1000):
        company, month = COMPANIES[n % 10], months[n // 10 if n < 480 else n // 10 - 48]
        metric, unit = (
            ("loan_volume", Unit.MONEY) if n < 480 else ("day1_delinquency_pct", Unit.PERCENT)
        )
        money = {"currency": "CNY", "scale": Scale.MILLIONS} if unit is Unit.MONEY else {}
        value = Decimal(1000 + n) if unit is Unit.MONEY else Decimal(n % 90) / 10 + 1
        events.append(
            MetricReported(
                company=company, metric=metric, period=month, value=value, unit=unit, **money
            )
        )
    return events


async def state(workers: Workers) -> dict[str, Any]:
    """Every company's fact versions and every announcement, minus timestamps of processing."""
    snapshot: dict[str, Any] = {}
    for company in COMPANIES:
        key = workers.streams.key("{" + company + "}", "versions")
        snapshot[company] = await workers.redis.hgetall(key)
    snapshot["history"] = sorted(
        fields[b"__data__"] for _, fields in await workers.redis.xrange(workers.streams.history)
    )
    return snapshot


@pytest.mark.timeout(240)
async def test_duplicates_and_re_ids_change_nothing(redis_url: str, namespace: str) -> None:
    events = thousand_events()
    assert len({(e.company, e.metric, e.period) for e in events}) == 1000
    renamed = [e.model_copy(update={"event_id": e.event_id + "-again"}) for e in events]
    settings = worker_settings(redis_url, namespace, services="ingest")

    async with pipeline(settings) as workers:
        await publish_and_settle(workers, events)
        once = await state(workers)
        await publish_and_settle(workers, events)
        await publish_and_settle(workers, renamed)
        after = await state(workers)

    assert sum(len(once[c]) for c in COMPANIES) == 1000
    assert len(once["history"]) == 1000
    assert after == once
